"""The `estate` command."""

from __future__ import annotations

import contextlib
import os
import sys
import time
from datetime import date
from pathlib import Path

import typer
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from .. import __version__
from ..assess import STEPS, StepContext, is_root, run_steps
from ..findings import Finding
from ..model.loader import LoadedEstate
from ..store import Store
from . import check, devices, evidence, history, infra, lab, report, scan, serve
from .common import (
    DEFAULT_HOME,
    DEMO_ESTATE,
    EstateOpt,
    FailOn,
    FailOnOpt,
    Format,
    FormatOpt,
    HomeOpt,
    OutOpt,
    emit_json,
    err,
    exit_for,
    load_or_exit,
    open_store,
)

app = typer.Typer(
    name="estate",
    help=(
        "A council's IT estate as code and as evidence.\n\n"
        "The estate model (YAML under inventory/) is the one source of truth: Pulumi builds the cloud "
        "and network from it, Ansible holds devices to its baseline, scans and checks compare what "
        "they observe with it, and every result is a finding in one store, reported and sealed as "
        "evidence.\n\n"
        "Start with:  estate validate  then  estate assess"
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.command()(history.runs)
app.command()(history.findings)
app.command(epilog=report.EPILOG)(report.report)
app.command(epilog=serve.EPILOG)(serve.serve)
app.add_typer(lab.app, name="lab")
app.add_typer(scan.app, name="scan")
app.add_typer(infra.app, name="infra")
app.add_typer(devices.app, name="devices")
app.add_typer(check.app, name="check")
app.add_typer(evidence.app, name="evidence")


def _version(value: bool) -> None:
    if value:
        print(f"estate {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                       help="Print the version and exit.")) -> None:
    pass


@app.command(epilog="Examples:\n\n  estate validate\n\n  estate validate --estate ../our-estate --format json")
def validate(estate: EstateOpt = DEMO_ESTATE, format: FormatOpt = Format.TEXT) -> None:
    """Check an estate model: every schema error and broken reference, as file:line: field: message.

    Exits 0 when the estate is sound, 2 when it is not (listing every problem, not just the first).
    """
    from ..model.loader import EstateError, load_estate

    try:
        loaded = load_estate(estate)
    except EstateError as exc:
        if format is Format.JSON:
            emit_json({"valid": False, "problems": [p.__dict__ for p in exc.problems]})
        else:
            for problem in exc.problems:
                err.print(str(problem), soft_wrap=True, markup=False)
            err.print(f"[bold red]{len(exc.problems)} problem(s)[/] in {estate}")
        raise typer.Exit(2) from None
    e = loaded.estate
    counts = {"sites": len(e.sites), "zones": len(e.zones), "ssids": len(e.ssids),
              "lob_systems": len(e.lob_systems), "endpoint_groups": len(e.endpoint_groups),
              "firewalls": len(e.firewalls), "firewall_rules": sum(len(f.rules) for f in e.firewalls),
              "declared_hosts": len(e.declared_hosts), "scan_scopes": len(e.scan_scopes)}
    if format is Format.JSON:
        emit_json({"valid": True, "estate": str(estate), "digest": loaded.digest, "counts": counts})
    else:
        err.print(f"[green]valid[/]: {e.organisation.name} ({estate})")
        err.print(", ".join(f"{v} {k.replace('_', ' ')}" for k, v in counts.items()))


@app.command(epilog=(
    "Examples:\n\n  estate assess\n\n  estate assess --estate ../our-estate --out /srv/reports --fail-on critical\n\n"
    "  estate assess --format json | jq .summary"))
def assess(
    estate: EstateOpt = DEMO_ESTATE,
    home: HomeOpt = DEFAULT_HOME,
    out: OutOpt = None,
    format: FormatOpt = Format.TEXT,
    fail_on: FailOnOpt = FailOn.HIGH,
    only: list[str] = typer.Option([], "--only", help="Run only these steps (repeat the option)."),
    skip: list[str] = typer.Option([], "--skip", help="Skip these steps (repeat the option)."),
    advisory_feed: Path | None = typer.Option(
        None, "--advisory-feed", envvar="ESTATE_ADVISORY_FEED",
        help="Advisory feed (JSON) for patch compliance, built offline from the Debian Security Tracker and "
             "vendor bulletins. Default: the demo feed shipped in security_checks/compliance/data/."),
) -> None:
    """Run the whole assessment: validate, scan, audit, check, store the run, write the report.

    Every capability adds a step. Steps that cannot run here (for example lab scans when not
    root) are skipped with the reason, which the run and its report record. The run is stored
    whole or not at all: an interrupted assessment leaves no partial run behind.
    """
    loaded = load_or_exit(estate)
    known = {s.name for s in STEPS}
    for name in (*only, *skip):
        if name not in known:
            from .common import usage_error

            usage_error(f"--only/--skip: unknown step {name!r} (steps: {', '.join(sorted(known)) or 'none'})")
    steps = [s for s in STEPS if (not only or s.name in only) and s.name not in skip]
    if advisory_feed is not None:
        # A broken feed is bad input: refuse it before a run starts, not half-way through.
        from ..compliance.advisories import FeedError, load_feed

        try:
            load_feed(advisory_feed)
        except FeedError as exc:
            from .common import usage_error

            usage_error(f"--advisory-feed: {exc}")
    store = open_store(home)
    out_dir = out or Path("out") / "report"
    started = time.monotonic()
    with store.run("assess", estate_dir=str(estate), estate_digest=loaded.digest,
                   full_scope=not only and not skip) as run:
        run.tool_versions.update(_tool_versions())
        ctx = StepContext(loaded=loaded, run=run, store=store, console=err, is_root=is_root(),
                          today=date.today(), options={"out": out_dir, "advisory_feed": advisory_feed})
        with Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                      TextColumn("{task.completed}/{task.total}"), TimeElapsedColumn(),
                      console=err, transient=True, disable=not err.is_terminal) as progress:
            task = progress.add_task("assessing", total=len(steps))

            def on_step(step: object, i: int) -> None:
                progress.update(task, completed=i, description=getattr(step, "description", ""))
                if not err.is_terminal:
                    err.print(f"[{i + 1}/{len(steps)}] {getattr(step, 'description', '')}")

            run_steps(ctx, steps, on_step)
            progress.update(task, completed=len(steps))
        findings = list(run.findings)
        run_id = run.id
        steps_done = list(run.steps)
    report_paths = _write_reports(store, run_id, loaded, out_dir)
    summary = _summary(findings)
    if format is Format.JSON:
        emit_json({"run": run_id, "summary": summary, "steps": steps_done,
                   "reports": {k: str(v) for k, v in report_paths.items()},
                   "seconds": round(time.monotonic() - started, 1)})
    else:
        for s in steps_done:
            colour = {"ran": "green", "skipped": "yellow", "error": "red"}[s["status"]]
            err.print(f"  [{colour}]{s['status']:>7}[/] {s['name']}: {s['summary']}", soft_wrap=True)
        err.print(f"run [bold]{run_id}[/]: " + ", ".join(f"{v} {k}" for k, v in summary.items() if v))
        for name, path in report_paths.items():
            err.print(f"{name}: {path}")
    raise typer.Exit(exit_for(findings, fail_on))


def _summary(findings: list[Finding]) -> dict[str, int]:
    from collections import Counter

    c = Counter(f.status.value for f in findings)
    return {k: c.get(k, 0) for k in ("fail", "error", "manual", "not_assessed", "pass")}


def _write_reports(store: Store, run_id: str, loaded: LoadedEstate, out_dir: Path) -> dict[str, Path]:
    """Reports for a run; the reporting package decides which (HTML, PDF, machine outputs)."""
    from ..report import write_reports

    return write_reports(store, run_id, loaded, out_dir)


def _tool_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"estate": __version__, "python": sys.version.split()[0]}
    for pkg in ("pulumi", "pulumi-azure-native", "ansible-core", "ansible-runner", "python-nmap", "scapy"):
        with contextlib.suppress(PackageNotFoundError):
            out[pkg] = version(pkg)
    return out


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        err.print("interrupted: nothing from the unfinished run was stored")
        sys.exit(130)
    except Exception as exc:  # the last guard: one line, not a traceback, unless asked
        if os.environ.get("ESTATE_DEBUG"):
            raise
        err.print(f"[bold red]estate: internal error:[/] {type(exc).__name__}: {exc} "
                  "(set ESTATE_DEBUG=1 for the traceback)", soft_wrap=True)
        sys.exit(70)
