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
    err,
    load_or_exit,
    open_store,
    run_or_exit,
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

    The site is static (no scripts, styles or fonts from the network): open out/report/index.html from a
    file share, or serve it with `estate serve`. Waivers and attestations come from the estate model
    (--estate); the findings, evidence and history come from the store (--home).
    """
    from ..report import write_reports

    store = open_store(home)
    info = run_or_exit(store, run, home)
    loaded = load_or_exit(estate)
    out_dir = out or Path("out") / "report"
    paths = write_reports(store, info.id, loaded, out_dir, pdf=pdf)
    if format is Format.JSON:
        emit_json({"run": info.id, "reports": {k: str(v) for k, v in paths.items()}})
    else:
        err.print(f"report for run [bold]{info.id}[/]: {out_dir / 'index.html'}")
        for name, path in paths.items():
            err.print(f"  {name}: {path}")
