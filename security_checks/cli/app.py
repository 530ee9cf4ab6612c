"""The `estate` command."""

from __future__ import annotations

import errno
import gc
import os
import sys
import time
from pathlib import Path
from typing import Any

import typer

from .. import __version__
from ..findings import Finding
from ..model.loader import LoadedEstate
from ..store import StoreError
from . import advisories, check, devices, evidence, history, infra, lab, report, scan, serve, store
from . import firewalls as firewalls_cli
from . import notify as notify_cli
from . import schedule as schedule_cli
from .common import (
    DEFAULT_HOME,
    DEMO_ESTATE,
    DbOpt,
    EstateOpt,
    FailOn,
    FailOnOpt,
    Format,
    FormatOpt,
    HomeOpt,
    OutOpt,
    WaitOpt,
    emit_json,
    err,
    exit_for,
    load_or_exit,
    open_store,
    print_steps,
    run_job,
    show,
    usage_error,
    use_database,
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
app.add_typer(firewalls_cli.app, name="firewalls")
app.add_typer(check.app, name="check")
app.add_typer(evidence.app, name="evidence")
app.add_typer(store.app, name="store")
app.add_typer(advisories.app, name="advisories")
app.command(name="checks")(history.checks)


app.add_typer(schedule_cli.app, name="schedule")
app.command(name="notify", epilog=notify_cli.EPILOG)(notify_cli.notify)
def _version(value: bool) -> None:
    if value:
        print(f"estate {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                       help="Print the version and exit."),
          db: DbOpt = None) -> None:
    use_database(db)


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
        show.print(f"[green]valid[/]: {e.organisation.name} ({estate})")
        show.print(", ".join(f"{v} {k.replace('_', ' ')}" for k, v in counts.items()))


@app.command(epilog=(
    "Examples:\n\n  estate assess\n\n  estate assess --estate ../our-estate --out /srv/reports --fail-on critical\n\n"
    "  estate assess --skip devices --check 'scan.*'\n\n  estate assess --format json | jq .summary\n\n"
    "Exit status: 0 nothing open at or above --fail-on; 1 something is; 2 bad input; 75 another command "
    "is writing to --home."))
def assess(
    estate: EstateOpt = DEMO_ESTATE,
    home: HomeOpt = DEFAULT_HOME,
    out: OutOpt = None,
    format: FormatOpt = Format.TEXT,
    fail_on: FailOnOpt = FailOn.HIGH,
    only: list[str] = typer.Option([], "--only", help="Run only these steps (repeat the option)."),
    skip: list[str] = typer.Option([], "--skip", help="Skip these steps (repeat the option)."),
    check: list[str] = typer.Option([], "--check", help="Keep only checks matching this pattern, e.g. 'scan.*' "
                                    "(repeat). Steps with no selected check are skipped."),
    exclude_check: list[str] = typer.Option([], "--exclude-check", help="Leave out checks matching this pattern "
                                            "(repeat)."),
    advisory_feed: Path | None = typer.Option(
        None, "--advisory-feed", envvar="ESTATE_ADVISORY_FEED",
        help="Advisory feed (JSON) for patch compliance, built offline from the Debian Security Tracker and "
             "vendor bulletins. Default: the one the estate declares (organisation.advisory_feed); with none, "
             "installed versions are not matched and the run says so."),
    entra_export: Path | None = typer.Option(
        None, "--entra-export", envvar="ESTATE_ENTRA_EXPORT",
        help="Directory of Microsoft Graph JSON exports of the Entra ID tenant (conditional access policies, MFA "
             "registration) for the identity step. Default: the one the estate declares (azure.entra_export); with "
             "none, cloud MFA is not read from the tenant and the run says so."),
    intune_export: Path | None = typer.Option(
        None, "--intune-export", envvar="ESTATE_INTUNE_EXPORT",
        help="Intune managed-devices export (Microsoft Graph deviceManagement/managedDevices JSON, or the admin "
             "centre's devices CSV) for the mdm step. Default: the one the estate declares (azure.intune_export); "
             "with none, MDM-managed devices are not assessed and the run says so."),
    stack: str = typer.Option("demo", "--stack", help="Pulumi stack whose configuration the infra-plan step uses."),
    wait: WaitOpt = 0.0,
    report: bool = typer.Option(True, "--report/--no-report", help="Write the report site after the run."),
) -> None:
    """Run the whole assessment, store the run whole, write the report.

    Scans, the device audit, the offline infrastructure plan, cloud MFA from the Entra export,
    the declared configuration and estate hygiene, and patch compliance: each a step of one run.

    Steps that cannot run here (lab scans when not root, say) are skipped with the reason, which the
    run and its report record as plainly as the steps that ran. With --only, --skip, --check or
    --exclude-check the run is partial: it can open and mitigate Remediation Action Plan items but
    never close one. The run is stored whole or not at all.
    """
    from ..jobs import ASSESS
    from ..runner import Selection, validate_selection

    # Overlapping ranges are findings of the run (estate-hygiene), not a reason to refuse it.
    loaded = load_or_exit(estate, policy=False)
    sel = Selection(only=tuple(only), skip=tuple(skip), checks=tuple(check), exclude_checks=tuple(exclude_check))
    problems = validate_selection(ASSESS, sel)
    if problems:
        usage_error(f"--only/--skip/--check: {problems[0]}")
    declared = loaded.estate.organisation.advisory_feed
    feed = advisory_feed or (loaded.root / declared if declared else None)
    if feed is not None:
        # A broken feed is bad input: refuse it before a run starts, not half-way through.
        from ..compliance.advisories import FeedError, load_feed

        try:
            load_feed(feed)
        except FeedError as exc:
            usage_error(f"{'--advisory-feed' if advisory_feed else 'organisation.advisory_feed'}: {exc}")
    declared_export = loaded.estate.azure.entra_export
    export = entra_export or (loaded.root / declared_export if declared_export else None)
    if export is not None:
        # A broken export is bad input too: refused before the run opens, so nothing is stored.
        from rich.markup import escape

        from ..identity.export import ExportError, load_export

        try:
            load_export(export, loaded.estate.azure.tenant_id)
        except ExportError as exc:
            usage_error(f"{'--entra-export' if entra_export else 'azure.entra_export'}: {escape(str(exc))}")
    declared_mdm = loaded.estate.azure.intune_export
    mdm_export = intune_export or (loaded.root / declared_mdm if declared_mdm else None)
    if mdm_export is not None:
        from rich.markup import escape

        from ..devices.mdm import MdmExportError, parse_export

        try:
            parse_export(mdm_export)
        except MdmExportError as exc:
            usage_error(f"{'--intune-export' if intune_export else 'azure.intune_export'}: {escape(str(exc))}")
    # The network scans judge service versions against the same feed the patch step uses.
    vulnerability_data = scan.knowledge(loaded, advisory_feed)
    started = time.monotonic()
    outcome = run_job(ASSESS, loaded, home, options={"advisory_feed": advisory_feed, "entra_export": entra_export,
                                                      "intune_export": intune_export, "stack": stack,
                                                      "knowledge": vulnerability_data},
                      selection=sel, harness=lab_harness(loaded, namespaces="build"), wait=wait,
                      quiet=format is Format.JSON)
    run = outcome.run
    report_paths = _write_reports(home, run.id, out or Path("out") / "report") if report else {}
    summary = _summary(outcome.findings)
    if format is Format.JSON:
        emit_json({"run": run.id, "kind": run.kind, "full_scope": run.full_scope, "summary": summary,
                   "steps": run.steps, "verdicts": {f"{v.framework} {v.version}": v.verdict for v in outcome.verdicts
                                                    if v.in_force},
                   "rap": outcome.rap, "reports": {k: str(v) for k, v in report_paths.items()},
                   "seconds": round(time.monotonic() - started, 1)})
    else:
        print_steps(run.steps)
        for v in outcome.verdicts:
            if v.in_force:
                show.print(f"  {v.title}: [bold]{v.verdict}[/]", soft_wrap=True)
        show.print("  RAP: " + (", ".join(f"{n} {k}" for k, n in outcome.rap.items() if n) or "unchanged"))
        show.print(f"run [bold]{run.id}[/]{'' if run.full_scope else ' (partial)'}: "
                   + ", ".join(f"{v} {k}" for k, v in summary.items() if v))
        for name, path in report_paths.items():
            show.print(f"{name}: {path}")
    raise typer.Exit(exit_for(outcome.findings, fail_on))


def lab_harness(loaded: LoadedEstate, *, namespaces: str, selftest: bool = True, endpoint: bool = True) -> Any:
    """The demo lab around a run, for an estate that declares lab things; None for a real estate."""
    e = loaded.estate
    if not (any(s.lab for s in e.scan_scopes) or any(h.role == "selftest" for h in e.declared_hosts)):
        return None   # a real estate: the lab package is never imported
    from ..lab.harness import LabHarness

    return LabHarness(selftest=selftest, namespaces=namespaces, endpoint=endpoint)  # type: ignore[arg-type]


def _summary(findings: list[Finding]) -> dict[str, int]:
    from collections import Counter

    c = Counter(f.status.value for f in findings)
    out = {k: c.get(k, 0) for k in ("fail", "error", "manual", "not_assessed", "pass")}
    out["accepted"] = sum(1 for f in findings if f.accepted)
    return out


def _write_reports(home: Path, run_id: str, out_dir: Path) -> dict[str, Path]:
    """Reports for a run, from the store alone."""
    from ..report import write_reports

    with open_store(home) as store:
        return write_reports(store, run_id, out_dir)


def main() -> None:
    # Evidence and findings describe the council's weaknesses: everything estate (and the tools it
    # runs: nmap, ansible-runner) creates is private unless it says otherwise (reports for a share do).
    os.umask(0o077)
    # What importing the command line built (models, schemas, the CLI's own tree: hundreds of
    # thousands of objects that live as long as the process) is set aside from the cyclic collector,
    # which otherwise walks all of it again at every full collection: a tenth of the CPU of a big
    # `estate scan import` (bench/bench_ithc.py). Nothing is kept alive that would not be anyway.
    gc.freeze()
    try:
        app()
    except KeyboardInterrupt:
        err.print("interrupted: nothing from the unfinished run was stored")
        sys.exit(130)
    except StoreError as exc:   # damage found while reading, after the store opened cleanly
        err.print(f"[bold red]error:[/] {exc}", soft_wrap=True)
        sys.exit(2)
    except Exception as exc:  # the last guard: one line, not a traceback, unless asked
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EIO):
            # A full or read-only disk: what was being written is not half there (runs commit whole,
            # reports swap whole); say which file and stop.
            err.print(f"[bold red]error:[/] {exc.filename or 'a file'}: {exc.strerror}: nothing half-written was "
                      "kept; free space and run again", soft_wrap=True)
            sys.exit(74)
        if os.environ.get("ESTATE_DEBUG"):
            raise
        err.print(f"[bold red]estate: internal error:[/] {type(exc).__name__}: {exc} "
                  "(set ESTATE_DEBUG=1 for the traceback)", soft_wrap=True)
        sys.exit(70)
