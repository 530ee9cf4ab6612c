"""`estate report`: write the report site (HTML, PDF, machine outputs) for a stored run."""

from __future__ import annotations

from pathlib import Path

import typer

from .common import (
    DEFAULT_HOME,
    DEMO_ESTATE,
    EstateOpt,
    Format,
    FormatOpt,
    HomeOpt,
    OutOpt,
    emit_json,
    load_or_exit,
    open_store,
    run_or_exit,
    same_estate,
    show,
)

EPILOG = ("Examples:\n\n  estate report\n\n  estate report --run 20261122T0505 --out /srv/share/security\n\n"
          "  estate report --format json | jq .reports.pdf")


def report(
    run: str | None = typer.Option(None, "--run", help="Run id (a unique prefix will do). Default: the latest run."),
    out: OutOpt = None,
    estate: EstateOpt = DEMO_ESTATE,
    home: HomeOpt = DEFAULT_HOME,
    format: FormatOpt = Format.TEXT,
    pdf: bool = typer.Option(True, "--pdf/--no-pdf", help="Also render the board report PDF (WeasyPrint)."),
) -> None:
    """Write the report site for a run: dashboard, control matrix, scope and evidence, PDF, machine outputs.

    Everything in it is what the run stored: its findings, the verdicts computed when it committed,
    its evidence, the scope and waivers as they were then, and the Remediation Action Plan. --estate
    must be the estate the run assessed (exit 2 otherwise), so one council's report never shows
    another's. The site is static (no scripts, styles or fonts from the network): open
    out/report/index.html from a file share, or serve it with `estate serve`. It replaces --out in
    one atomic step.
    """
    from ..report import write_reports

    loaded = load_or_exit(estate, policy=False)   # a run's estate: its overlaps are findings, not refusals
    out_dir = out or Path("out") / "report"
    with open_store(home) as store:
        info = run_or_exit(store, run, home)
        same_estate(info, loaded)
        paths = write_reports(store, info.id, out_dir, pdf=pdf)
    if format is Format.JSON:
        emit_json({"run": info.id, "reports": {k: str(v) for k, v in paths.items()}})
    else:
        show.print(f"report for run [bold]{info.id}[/] ({info.kind}): {out_dir / 'index.html'}")
        for name, path in paths.items():
            show.print(f"  {name}: {path}")
