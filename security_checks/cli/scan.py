"""`estate scan`: authorised network scans, compared with the estate, stored as a run with the XML."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..findings import Finding
from .common import (
    DEFAULT_HOME,
    DEMO_ESTATE,
    EstateOpt,
    FailOn,
    FailOnOpt,
    Format,
    FormatOpt,
    HomeOpt,
    emit_json,
    err,
    exit_for,
    load_or_exit,
    open_store,
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


def _report(findings: list[Finding], run_id: str, format: Format, extra: dict[str, object]) -> None:
    fails = [f for f in findings if f.failing]
    if format is Format.JSON:
        emit_json({"run": run_id, **extra, "findings": [f.model_dump(mode="json") for f in findings]})
        return
    for f in sorted(fails, key=lambda f: (-f.severity.rank, f.check_id, f.asset)):
        err.print(f"  {f.severity.value:>8} {f.check_id} {f.asset} {f.key}: {f.observed}", soft_wrap=True, markup=False)
    err.print(f"run [bold]{run_id}[/]: {len(findings)} findings, {len(fails)} failing")


@app.callback(epilog=(
    "Examples:\n\n  estate scan --scope selftest --target 127.0.0.1\n\n"
    "  sudo estate lab up && sudo estate scan --scope lab --profile standard\n\n"
    "  estate scan import ithc-internal.xml\n\n  sudo estate scan matrix\n\n"
    "  sudo estate scan site central-library"))
def scan(ctx: typer.Context, scope: ScopeOpt = None, profile: ProfileOpt = "standard",
         target: TargetOpt = [],  # noqa: B006 (typer reads the default)
         estate: EstateOpt = DEMO_ESTATE, home: HomeOpt = DEFAULT_HOME, format: FormatOpt = Format.TEXT,
         fail_on: FailOnOpt = FailOn.HIGH) -> None:
    """Scan a scope (or targets in it) and compare what answers with the estate."""
    if ctx.invoked_subcommand is not None:
        return
    if not scope and not target:
        usage_error("give --scope NAME and/or --target ADDRESS (see estate scan --help)")
    from ..scan import engine
    from ..scan.scope import ScopeRefused, authorise

    loaded = load_or_exit(estate)
    named = next((s for s in loaded.estate.scan_scopes if s.name == scope), None)
    try:
        # Lab scopes are authorised for the lab's scanner namespace; anything else for this machine.
        chosen = authorise(loaded, target or None, scope_name=scope, profile=profile,
                           netns="est-scan" if named is not None and named.lab else None).scope
    except ScopeRefused as exc:
        usage_error(f"refused: {exc}")
    store = open_store(home)
    if chosen.lab:
        from ..lab import build
        from ..scan.steps import scan_lab

        if not build.status(home)["up"]:
            usage_error("scope is a lab scope and the lab is not up: run `estate lab up` first")
        from ..lab.topology import build_lab

        lab = build_lab(loaded.estate)
        with store.run("scan", estate_dir=str(estate), estate_digest=loaded.digest) as run:
            findings, notes = scan_lab(loaded, lab, run, home, profile=profile, scope_name=chosen.name,
                                       targets=target or None)
            run.step("scan", "ran", "; ".join(notes))
            run_id = run.id
    else:
        auth = authorise(loaded, target or None, scope_name=chosen.name, profile=profile)
        import os

        with store.run("scan", estate_dir=str(estate), estate_digest=loaded.digest) as run:
            outcome = engine.scan(loaded, auth, engine.Vantage(name="this machine"), run, chosen.name,
                                  privileged=os.geteuid() == 0, top_ports=1000, skip_discovery=chosen.loopback)
            findings = outcome.findings
            run.step("scan", "ran", f"{len(outcome.result.hosts)} hosts")
            run_id = run.id
    _report(findings, run_id, format, {"scope": chosen.name, "profile": profile})
    raise typer.Exit(exit_for(findings, fail_on))


@app.command("import", epilog="Examples:\n\n  estate scan import ithc-internal.xml\n\n"
             "  estate scan import site-scan.xml --format json | jq '.findings | length'")
def import_(file: Annotated[Path, typer.Argument(help="nmap XML (-oX) produced elsewhere.")],
            estate: EstateOpt = DEMO_ESTATE, home: HomeOpt = DEFAULT_HOME, format: FormatOpt = Format.TEXT,
            fail_on: FailOnOpt = FailOn.HIGH) -> None:
    """Import nmap XML from an ITHC tester or a site scanner into a run of kind scan-import.

    Hostile or broken XML (DTDs, entities, external references, truncated, over 64 MiB) is refused
    with one line and exit 2, and nothing is stored.
    """
    from ..scan.engine import import_xml
    from ..scan.nmapxml import MAX_XML_BYTES, BadScanXml

    loaded = load_or_exit(estate)
    try:
        size = file.stat().st_size
        if size > MAX_XML_BYTES:
            usage_error(f"{file}: {size} bytes is over the {MAX_XML_BYTES // (1024 * 1024)} MiB limit for a scan file")
        data = file.read_bytes()
    except OSError as exc:
        usage_error(f"{file}: cannot read ({exc.strerror or exc})")
    store = open_store(home)
    try:
        with store.run("scan-import", estate_dir=str(estate), estate_digest=loaded.digest) as run:
            result, findings = import_xml(loaded, run, data, source=str(file))
            run.step("import", "ran", f"{file.name}: {len(result.hosts)} hosts")
            run_id = run.id
    except BadScanXml as exc:
        usage_error(str(exc))
    _report(findings, run_id, format, {"file": str(file), "hosts": len(result.hosts)})
    raise typer.Exit(exit_for(findings, fail_on))


@app.command(epilog="Examples:\n\n  sudo estate scan matrix\n\n  sudo estate scan matrix --format json | jq .breaches")
def matrix(estate: EstateOpt = DEMO_ESTATE, home: HomeOpt = DEFAULT_HOME, format: FormatOpt = Format.TEXT,
           fail_on: FailOnOpt = FailOn.HIGH) -> None:
    """Segregation matrix of the lab: scapy probes from every zone to every other, against the policy."""
    from ..lab import build
    from ..lab.topology import build_lab
    from ..scan.segregation import run_matrix

    loaded = load_or_exit(estate)
    if not build.status(home)["up"]:
        usage_error("the lab is not up: run `estate lab up` first")
    store = open_store(home)
    with store.run("scan", estate_dir=str(estate), estate_digest=loaded.digest) as run:
        m, findings = run_matrix(loaded, build_lab(loaded.estate), run)
        run.step("segregation", "ran", f"{len(m['flows'])} probes, {m['breaches']} breaches")
        run_id = run.id
    if format is Format.TEXT:
        err.print("from \\ to: reachable/probes (breaches)")
        for src, row in m["zones"].items():
            cells = ", ".join(f"{dst} {c['reachable']}/{c['probes']}"
                              + (f" ({c['breaches']}!)" if c["breaches"] else "") for dst, c in row.items())
            err.print(f"  {src}: {cells}", soft_wrap=True, markup=False)
    _report(findings, run_id, format, {"breaches": m["breaches"], "zones": m["zones"]})
    raise typer.Exit(exit_for(findings, fail_on))


@app.command(epilog="Examples:\n\n  sudo estate scan site central-library")
def site(name: Annotated[str, typer.Argument(help="The site whose scanner runs the scan.")],
         profile: ProfileOpt = "standard", estate: EstateOpt = DEMO_ESTATE, home: HomeOpt = DEFAULT_HOME,
         format: FormatOpt = Format.TEXT, fail_on: FailOnOpt = FailOn.HIGH) -> None:
    """Scan a site from its own scanner: ansible-runner transmit | worker (at the site) | process.

    In the lab the site's scanner is the namespace est-scan-<site>; the job is authorised here,
    streamed to the worker, and the XML it brings back is imported into the central store.
    """
    from ..scan.remote import RemoteError, scan_site
    from ..scan.scope import ScopeRefused

    loaded = load_or_exit(estate)
    store = open_store(home)
    try:
        with store.run("scan", estate_dir=str(estate), estate_digest=loaded.digest) as run:
            findings, summary = scan_site(loaded, name, run, home, profile=profile)
            run.step("site-scan", "ran", summary)
            run_id = run.id
    except (ScopeRefused, RemoteError) as exc:
        usage_error(f"refused: {exc}" if isinstance(exc, ScopeRefused) else str(exc))
    _report(findings, run_id, format, {"site": name})
    raise typer.Exit(exit_for(findings, fail_on))
