"""`estate scan`: authorised network scans, compared with the estate, stored as a run with the XML."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from .common import (
    DEFAULT_HOME,
    DEMO_ESTATE,
    EstateOpt,
    FailOn,
    FailOnOpt,
    Format,
    FormatOpt,
    HomeOpt,
    WaitOpt,
    emit_json,
    err,
    exit_for,
    load_or_exit,
    print_failing,
    print_steps,
    run_job,
    usage_error,
)

app = typer.Typer(
    help=("Network scans (nmap, scapy) inside the authorised scan scopes, compared with the estate: undeclared "
          "hosts and ports, declared services down, weak TLS/SSH/SMB, plaintext protocols, exposed management "
          "interfaces, segregation breaches. Every target is checked against scan_scopes (ranges, exclusions, "
          "Europe/London time windows, expiry) before a packet is sent; there is no override. Lab scopes are "
          "scanned only from the lab's scanner namespaces. The raw nmap XML is kept as evidence."),
    rich_markup_mode="rich", invoke_without_command=True, no_args_is_help=False)

ProfileOpt = Annotated[str, typer.Option("--profile", help="discovery | standard | deep (capped by the scope).")]
ScopeOpt = Annotated[str | None, typer.Option("--scope", help="Scan scope name (scan_scopes in the estate).")]
TargetOpt = Annotated[list[str], typer.Option("--target", "-t", help="Address or network inside the scope "
                                                                      "(repeat). Default: the whole scope.")]


def _done(outcome: Any, format: Format, extra: dict[str, object], fail_on: FailOn) -> NoReturn:
    """Print what the run stored (read back from the store) and exit by --fail-on."""
    run, findings = outcome.run, outcome.findings
    fails = [f for f in findings if f.failing]
    if format is Format.JSON:
        emit_json({"run": run.id, "kind": run.kind, **extra, "steps": run.steps, "rap": outcome.rap,
                   "findings": [f.model_dump(mode="json") for f in findings]})
    else:
        print_steps(run.steps)
        print_failing(findings)
        err.print(f"run [bold]{run.id}[/]: {len(findings)} findings stored, {len(fails)} failing"
                  + (f"; RAP: {', '.join(f'{n} {k}' for k, n in outcome.rap.items() if n)}"
                     if any(outcome.rap.values()) else ""))
    raise typer.Exit(exit_for(findings, fail_on))


@app.callback(epilog=(
    "Examples:\n\n  estate scan --scope selftest --target 127.0.0.1\n\n"
    "  sudo estate lab up && sudo estate scan --scope lab --profile standard\n\n"
    "  estate scan import ithc-internal.xml\n\n  sudo estate scan matrix\n\n"
    "  sudo estate scan site central-library\n\n"
    "Every scan is a stored run: `estate findings --run <id>` lists what it printed, and the next "
    "`estate check psn` shows its Remediation Action Plan items."))
def scan(ctx: typer.Context, scope: ScopeOpt = None, profile: ProfileOpt = "standard",
         target: TargetOpt = [],  # noqa: B006 (typer reads the default)
         estate: EstateOpt = DEMO_ESTATE, home: HomeOpt = DEFAULT_HOME, format: FormatOpt = Format.TEXT,
         fail_on: FailOnOpt = FailOn.HIGH, wait: WaitOpt = 0.0) -> None:
    """Scan a scope (or targets in it) and compare what answers with the estate."""
    if ctx.invoked_subcommand is not None:
        return
    if not scope and not target:
        usage_error("give --scope NAME and/or --target ADDRESS (see estate scan --help)")
    from ..jobs import SCAN_SCOPE
    from ..scan.scope import ScopeRefused, authorise

    loaded = load_or_exit(estate)
    named = next((s for s in loaded.estate.scan_scopes if s.name == scope), None)
    try:
        # Refused before a run opens or a packet is sent. Lab scopes are authorised for the lab's
        # scanner namespace; anything else for this machine.
        auth = authorise(loaded, target or None, scope_name=scope, profile=profile,
                         netns="est-scan" if named is not None and named.lab else None)
    except ScopeRefused as exc:
        usage_error(f"refused: {exc}")
    harness = None
    if auth.scope.lab:
        harness = _lab_in_use(loaded, home)
    outcome = run_job(SCAN_SCOPE, loaded, home, options={"authorisation": auth, "targets": target or None},
                      harness=harness, wait=wait, quiet=format is Format.JSON)
    _done(outcome, format, {"scope": auth.scope.name, "profile": profile}, fail_on)


def _lab_in_use(loaded: Any, home: Path) -> Any:
    """The running lab (never built by a scan command): exit 2 when it is not up."""
    from ..lab import build
    from ..lab.harness import LabHarness

    if os.geteuid() != 0:
        usage_error("lab scans run from the lab's network namespaces: run as root")
    if not build.status(home)["up"]:
        usage_error("the lab is not up: run `estate lab up` first")
    return LabHarness(selftest=False, namespaces="use", endpoint=False)


@app.command("import", epilog="Examples:\n\n  estate scan import ithc-internal.xml\n\n"
             "  estate scan import site-scan.xml --format json | jq '.findings | length'")
def import_(file: Annotated[Path, typer.Argument(help="nmap XML (-oX) produced elsewhere.")],
            estate: EstateOpt = DEMO_ESTATE, home: HomeOpt = DEFAULT_HOME, format: FormatOpt = Format.TEXT,
            fail_on: FailOnOpt = FailOn.HIGH, wait: WaitOpt = 0.0) -> None:
    """Import nmap XML from an ITHC tester or a site scanner into a run of kind scan-import.

    Every finding printed is stored (`estate findings --run <id>`), and its failing findings open
    Remediation Action Plan items (`estate check psn`). Hostile or broken XML (DTDs, entities,
    external references, truncated, over 64 MiB) is refused with one line and exit 2, and nothing
    is stored. An import never closes a RAP item: it is not a full-scope run.
    """
    from ..jobs import SCAN_IMPORT
    from ..scan.nmapxml import MAX_XML_BYTES, BadScanXml, parse

    loaded = load_or_exit(estate)
    try:
        size = file.stat().st_size
        if size > MAX_XML_BYTES:
            usage_error(f"{file}: {size} bytes is over the {MAX_XML_BYTES // (1024 * 1024)} MiB limit for a scan file")
        data = file.read_bytes()
    except OSError as exc:
        usage_error(f"{file}: cannot read ({exc.strerror or exc})")
    try:
        hosts = len(parse(data, source=str(file)).hosts)   # bad input: refused before a run opens
    except BadScanXml as exc:
        usage_error(str(exc))
    outcome = run_job(SCAN_IMPORT, loaded, home, options={"xml": data, "source": str(file)}, wait=wait,
                      quiet=format is Format.JSON)
    _done(outcome, format, {"file": str(file), "hosts": hosts}, fail_on)


@app.command(epilog="Examples:\n\n  sudo estate scan matrix\n\n  sudo estate scan matrix --format json | jq .breaches")
def matrix(estate: EstateOpt = DEMO_ESTATE, home: HomeOpt = DEFAULT_HOME, format: FormatOpt = Format.TEXT,
           fail_on: FailOnOpt = FailOn.HIGH, wait: WaitOpt = 0.0) -> None:
    """Segregation matrix of the lab: scapy probes from every zone to every other, against the policy."""
    from ..jobs import SCAN_MATRIX

    loaded = load_or_exit(estate)
    harness = _lab_in_use(loaded, home)
    outcome = run_job(SCAN_MATRIX, loaded, home, harness=harness, wait=wait, quiet=format is Format.JSON)
    m = outcome.data.get("segregation", {}).get("matrix")
    if m is None:
        print_steps(outcome.run.steps)
        raise typer.Exit(2)
    if format is Format.TEXT:
        err.print("from \\ to: reachable/probes (breaches)")
        for src, row in m["zones"].items():
            cells = ", ".join(f"{dst} {c['reachable']}/{c['probes']}"
                              + (f" ({c['breaches']}!)" if c["breaches"] else "") for dst, c in row.items())
            err.print(f"  {src}: {cells}", soft_wrap=True, markup=False)
    _done(outcome, format, {"breaches": m["breaches"], "zones": m["zones"]}, fail_on)


@app.command(epilog="Examples:\n\n  sudo estate scan site central-library")
def site(name: Annotated[str, typer.Argument(help="The site whose scanner runs the scan.")],
         profile: ProfileOpt = "standard", estate: EstateOpt = DEMO_ESTATE, home: HomeOpt = DEFAULT_HOME,
         format: FormatOpt = Format.TEXT, fail_on: FailOnOpt = FailOn.HIGH, wait: WaitOpt = 0.0) -> None:
    """Scan a site from its own scanner: ansible-runner transmit | worker (at the site) | process.

    In the lab the site's scanner is the namespace est-scan-<site>; the job is authorised here,
    streamed to the worker, and the XML it brings back is stored in the central store.
    """
    from ..jobs import SCAN_SITE
    from ..lab.topology import build_lab

    loaded = load_or_exit(estate)
    if not any(s.name == name for s in loaded.estate.sites):
        usage_error(f"{name!r}: no such site in {estate}")
    if not any(s.lab for s in loaded.estate.scan_scopes) or f"est-scan-{name}" not in build_lab(loaded.estate).scanners:
        usage_error(f"site {name!r} has no scanner that estate can reach from here")
    harness = _lab_in_use(loaded, home)
    outcome = run_job(SCAN_SITE, loaded, home, options={"site": name, "profile": profile}, harness=harness,
                      wait=wait, quiet=format is Format.JSON)
    _done(outcome, format, {"site": name}, fail_on)
