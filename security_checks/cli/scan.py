"""`estate scan`: authorised network scans, compared with the estate, stored as a run with the XML."""

from __future__ import annotations

import os
import sys
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
    exit_for,
    load_or_exit,
    print_failing,
    print_steps,
    run_job,
    show,
    usage_error,
)

app = typer.Typer(
    help=("Network scans (nmap, scapy) inside the authorised scan scopes, compared with the estate: undeclared "
          "hosts and ports, declared services down, weak TLS/SSH/SMB, plaintext protocols, exposed management "
          "interfaces, segregation breaches. Every target is checked against scan_scopes (ranges, exclusions, "
          "Europe/London time windows, expiry) before a packet is sent; there is no override. Lab scopes are "
          "scanned only from the lab's scanner namespaces. The raw nmap XML is kept as evidence. Service versions "
          "are judged offline against the council's advisory feed (never the vulners script), and `estate scan "
          "import` also takes an ITHC tester's Nessus or OpenVAS file."),
    rich_markup_mode="rich", invoke_without_command=True, no_args_is_help=False)

ProfileOpt = Annotated[str, typer.Option("--profile", help="discovery | standard | deep (capped by the scope).")]
ScopeOpt = Annotated[str | None, typer.Option("--scope", help="Scan scope name (scan_scopes in the estate).")]
TargetOpt = Annotated[list[str], typer.Option("--target", "-t", help="Address or network inside the scope "
                                                                      "(repeat). Default: the whole scope.")]


FeedOpt = Annotated[Path | None, typer.Option(
    "--advisory-feed", help="The offline advisory feed (estate-advisories/1) service versions are judged against. "
                            "Default: the estate's (organisation.advisory_feed); with none, versions are not judged "
                            "(reported as not assessed).")]


def _done(outcome: Any, format: Format, extra: dict[str, object], fail_on: FailOn) -> NoReturn:
    """Print what the run stored (read back from the store) and exit by --fail-on."""
    run, briefs = outcome.run, outcome.briefs
    if format is Format.JSON:
        emit_json({"run": run.id, "kind": run.kind, **extra, "steps": run.steps, "rap": outcome.rap,
                   "findings": [f.model_dump(mode="json") for f in outcome.findings]})
    else:
        # The summary reads the stored findings' briefs: an ITHC import's 20,000 are not decoded to print 15 lines.
        print_steps(run.steps)
        print_failing(briefs)
        show.print(f"run [bold]{run.id}[/]: {len(briefs)} findings stored, {sum(b.failing for b in briefs)} failing"
                   + (f"; RAP: {', '.join(f'{n} {k}' for k, n in outcome.rap.items() if n)}"
                     if any(outcome.rap.values()) else ""))
    raise typer.Exit(exit_for(briefs, fail_on))


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
         fail_on: FailOnOpt = FailOn.HIGH, wait: WaitOpt = 0.0, advisory_feed: FeedOpt = None) -> None:
    """Scan a scope (or targets in it) and compare what answers with the estate, service versions
    with the offline advisory feed."""
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
    known = knowledge(loaded, advisory_feed)
    outcome = run_job(SCAN_SCOPE, loaded, home, options={"authorisation": auth, "targets": target or None,
                                                         "knowledge": known},
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


def knowledge(loaded: Any, advisory_feed: Path | None) -> Any:
    """The offline vulnerability data for the version matcher: the feed, end-of-support data, vendor order.
    A broken feed is bad input: exit 2 before any run opens."""
    from datetime import date
    from functools import partial

    from ..compliance import vendorver
    from ..compliance.advisories import FeedError, load_feed
    from ..compliance.eol import load_eol, product_eol
    from ..scan.versions import Knowledge

    declared = loaded.estate.organisation.advisory_feed
    path = advisory_feed or (loaded.root / declared if declared else None)
    feed = None
    if path is not None:
        try:
            feed = load_feed(path)
        except FeedError as exc:
            usage_error(f"{'--advisory-feed' if advisory_feed else 'organisation.advisory_feed'}: {exc}")
    return Knowledge(feed=feed, feed_label=f"{path.name} of {feed.feed_date.isoformat()}" if feed and path else "",
                     product_eol=partial(product_eol, load_eol()), version_key=vendorver.key, today=date.today())


@app.command("import", epilog="Examples:\n\n  estate scan import ithc-internal.xml\n\n"
             "  estate scan import ithc-2026.nessus --format json | jq '.findings | length'\n\n"
             "  estate scan import greenbone-report.xml --from-zone corporate\n\n"
             "  ssh scanner cat scan.xml | estate scan import -")
def import_(file: Annotated[Path, typer.Argument(help="nmap XML (-oX), Nessus v2 (.nessus) or OpenVAS/Greenbone "
                                                      "report XML; - reads standard input.")],
            from_zone: Annotated[str | None, typer.Option(
                "--from-zone", help="The zone the scanner stood in (zones in the estate): management interfaces "
                                    "it reached on hosts in other zones are exposures, rated by this zone. Default: "
                                    "the zone of the scanner's own address where nmap recorded it "
                                    "(localhost-response).")] = None,
            advisory_feed: FeedOpt = None,
            estate: EstateOpt = DEMO_ESTATE, home: HomeOpt = DEFAULT_HOME, format: FormatOpt = Format.TEXT,
            fail_on: FailOnOpt = FailOn.HIGH, wait: WaitOpt = 0.0) -> None:
    """Import a scan file from an ITHC tester or a site scanner into a run of kind scan-import.

    The format is told from the file's root element. nmap XML is judged as a live scan is (drift,
    TLS/SSH/SMB/HTTP, service versions against the advisory feed, management exposure); Nessus and
    OpenVAS results become scan.ithc_result findings with their plugin/NVT id, CVEs, CVSS v3 vector
    and the start of the plugin output; the whole output (secrets removed) is in the run's evidence.
    Every finding names the file's SHA-256, and hosts outside
    every scan scope are reported (scan.host_out_of_scope), never dropped.

    Every finding printed is stored (`estate findings --run <id>`), and its failing findings open
    Remediation Action Plan items (`estate check psn`). Hostile or broken files (DTDs, entities,
    external references, truncated, over 64 MiB, also from a pipe) are refused with one line and
    exit 2, and nothing is stored. An import never closes a RAP item: it is not a full-scope run.
    """
    from ..jobs import SCAN_IMPORT
    from ..runner import collections_deferred
    from ..scan.imports import parse_file
    from ..scan.intake import open_scan, read_capped, read_file
    from ..scan.nmapxml import BadScanXml

    loaded = load_or_exit(estate)
    if from_zone is not None and from_zone not in {z.name for z in loaded.estate.zones}:
        usage_error(f"--from-zone {from_zone!r}: no such zone in the estate "
                    f"(zones: {', '.join(z.name for z in loaded.estate.zones)})")
    source = "standard input" if str(file) == "-" else str(file)
    try:
        with collections_deferred():   # tens of thousands of results: see runner.collections_deferred
            # bad input: refused before a run opens
            parsed = parse_file(open_scan(read_capped(sys.stdin.buffer, source) if str(file) == "-"
                                          else read_file(file), source))
    except OSError as exc:
        usage_error(f"{file}: cannot read ({exc.strerror or exc})")
    except BadScanXml as exc:
        usage_error(str(exc))
    known = knowledge(loaded, advisory_feed)
    extra = {"file": source, "format": parsed.file.kind, "sha256": parsed.file.sha256, "hosts": parsed.hosts}
    outcome = run_job(SCAN_IMPORT, loaded, home, options={"parsed": parsed, "source": source, "knowledge": known,
                                                          "source_zone": from_zone}, wait=wait,
                      quiet=format is Format.JSON)
    del parsed   # a tester's 20,000 results, stored now: not held, nor rescanned by the collector, while printing
    _done(outcome, format, extra, fail_on)


VERDICT_COLUMNS = ("declared", "applied", "observed", "disagrees")


def _flow_rows(flows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each flow with its three verdicts (declared policy, applied ruleset, observed probe) and the odd one out."""
    keys = ("src_zone", "src_site", "src", "dst_name", "dst", "dst_zone", "protocol", "port", "declared",
            "declared_rule", "declared_where", "applied", "applied_firewall", "applied_rule", "observed", "reply",
            "disagrees", "disagreement")
    return [{k: f.get(k) for k in keys} for f in flows]


def _print_flows(flows: list[dict[str, Any]], everything: bool) -> None:
    shown = [f for f in flows if everything or f.get("disagrees")]
    if not shown:
        show.print("declared, applied and observed agree on every flow")
        return
    show.print(("every flow" if everything else "flows where declared, applied and observed disagree")
               + ": declared | applied | observed | disagrees", soft_wrap=True, markup=False)
    for f in shown:
        line = (f"  {f['src_zone']}@{f['src_site']} -> {f['dst_name']} ({f['dst']}) {f['protocol']}/{f['port']}: "
                f"{f['declared']} | {f['applied'] or '-'} | {f['observed']} | {f['disagrees'] or 'none'}")
        if f.get("disagrees"):
            line += (f"\n      {f['disagreement']}\n      declared: {f['declared_rule']}"
                     + (f" ({f['declared_where']})" if f.get("declared_where") else "")
                     + f"; router {f['applied_firewall'] or '-'}: {f['applied_rule'] or '-'}")
        show.print(line, soft_wrap=True, markup=False)


@app.command(epilog="Examples:\n\n  sudo estate scan matrix\n\n  sudo estate scan matrix --all-flows\n\n"
                    "  sudo estate scan matrix --format json | jq .breaches\n\n"
                    "  sudo estate scan matrix --format json | jq '.flows[] | select(.disagrees != \"\")'")
def matrix(estate: EstateOpt = DEMO_ESTATE, home: HomeOpt = DEFAULT_HOME, format: FormatOpt = Format.TEXT,
           fail_on: FailOnOpt = FailOn.HIGH, wait: WaitOpt = 0.0,
           all_flows: Annotated[bool, typer.Option("--all-flows", help="List every flow with its three verdicts, "
                                                                       "not only those that disagree.")] = False,
           ) -> None:
    """Segregation matrix of the lab: scapy probes from every zone to every other, each flow judged three ways.

    declared: the estate's firewall policy; applied: the ruleset each router on the path holds, read
    back (nft -j list ruleset) and evaluated; observed: the probe. `disagrees` names the odd one out.
    """
    from ..jobs import SCAN_MATRIX

    loaded = load_or_exit(estate)
    harness = _lab_in_use(loaded, home)
    outcome = run_job(SCAN_MATRIX, loaded, home, harness=harness, wait=wait, quiet=format is Format.JSON)
    m = outcome.data.get("segregation", {}).get("matrix")
    if m is None:
        print_steps(outcome.run.steps)
        raise typer.Exit(2)
    if format is Format.TEXT:
        show.print("from \\ to: reachable/probes (breaches) [declared allow, applied accept, disagreements]",
                   soft_wrap=True, markup=False)
        for src, row in m["zones"].items():
            cells = ", ".join(f"{dst} {c['reachable']}/{c['probes']}"
                              + (f" ({c['breaches']}!)" if c["breaches"] else "")
                              + f" [{c['declared_allow']}, {c['applied_accept']}"
                              + (f", {c['disagreements']}!]" if c["disagreements"] else "]") for dst, c in row.items())
            show.print(f"  {src}: {cells}", soft_wrap=True, markup=False)
        for name, r in m.get("rulesets", {}).items():
            if not r["read"]:
                show.print(f"  {name}: applied ruleset not read ({r['why']})", soft_wrap=True, markup=False)
        _print_flows(m["flows"], all_flows)
    _done(outcome, format, {"breaches": m["breaches"], "zones": m["zones"], "disagreements": m["disagreements"],
                            "rulesets": m.get("rulesets", {}), "flows": _flow_rows(m["flows"])}, fail_on)


@app.command(epilog="Examples:\n\n  sudo estate scan site central-library")
def site(name: Annotated[str, typer.Argument(help="The site whose scanner runs the scan.")],
         profile: ProfileOpt = "standard", estate: EstateOpt = DEMO_ESTATE, home: HomeOpt = DEFAULT_HOME,
         format: FormatOpt = Format.TEXT, fail_on: FailOnOpt = FailOn.HIGH, wait: WaitOpt = 0.0,
         advisory_feed: FeedOpt = None) -> None:
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
    known = knowledge(loaded, advisory_feed)
    outcome = run_job(SCAN_SITE, loaded, home, options={"site": name, "profile": profile, "knowledge": known},
                      harness=harness,
                      wait=wait, quiet=format is Format.JSON)
    _done(outcome, format, {"site": name}, fail_on)
