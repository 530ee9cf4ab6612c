"""`estate firewalls`: the estate's firewall policy applied by Ansible, read back and compared."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

import typer

from ..findings import Finding, Status
from ..model.loader import LoadedEstate
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
    print_steps,
    run_job,
)

app = typer.Typer(
    help=("Firewalls managed by Ansible: the estate's declared policy on FortiGates (FortiOS REST API) and "
          "nftables gateways, read back and compared.\n\n"
          "audit runs the roles (playbooks/firewalls.yml) in check and diff mode, changes nothing, and compares "
          "the configuration read back with the estate: rules missing, extra, different or out of order, "
          "any-any, shadowed, logging off, disabled, past review, unused; default deny; administrative "
          "access; firmware against the advisory feed. apply pushes the declared policy and reports what "
          "changed.\n\n"
          "Credentials: a FortiGate's API token is read from ESTATE_FORTIOS_TOKEN_<NAME> (fw-civic: "
          "ESTATE_FORTIOS_TOKEN_FW_CIVIC), never from a file; ESTATE_FIREWALL_CA names the CA bundle of the "
          "firewalls' admin certificates. nftables routers are reached over SSH only from a management host "
          "(ESTATE_MANAGEMENT_HOST set); the demo's lab routers through their network namespaces (root)."),
    rich_markup_mode="rich", no_args_is_help=True,
)

LimitOpt = Annotated[str | None, typer.Option(
    "--limit", help="Ansible host pattern: a firewall (fw-civic), a vendor group (firewalls_fortinet) or a site "
                    "(site_civic_centre).")]
FeedOpt = Annotated[Path | None, typer.Option(
    "--advisory-feed", help="Advisory feed for the firmware check (default: the one the estate declares).")]


def _harness(loaded: LoadedEstate, home: Path) -> Any:
    """The demo lab's routers when the lab is up and we are root; None otherwise (a real estate)."""
    e = loaded.estate
    if not any(s.lab for s in e.scan_scopes) or os.geteuid() != 0:
        return None
    from ..lab import build
    from ..lab.harness import LabHarness

    st = build.status(home)
    state = build.read_state(Path(st["home"])) if st["up"] else None
    if not state or state.get("estate_digest") != loaded.digest:
        return None   # no lab, or one built from another estate: its routers are not this estate's
    return LabHarness(selftest=False, namespaces="use", endpoint=False)


def _run(apply: bool, estate: Path, home: Path, limit: str | None, format: Format, fail_on: FailOn,
         wait: float, feed: Path | None) -> None:
    from ..devices.progress import DeviceProgress
    from ..jobs import FIREWALLS_APPLY, FIREWALLS_AUDIT

    loaded = load_or_exit(estate)
    job = FIREWALLS_APPLY if apply else FIREWALLS_AUDIT
    with DeviceProgress(err) as progress:
        outcome = run_job(job, loaded, home, options={"apply": apply, "limit": limit, "on_event": progress,
                                                     "refuse_bad_input": True, "advisory_feed": feed},
                          harness=_harness(loaded, home), wait=wait, quiet=True)
    run, findings = outcome.run, outcome.findings
    step = next((s for s in run.steps if s["name"] == "firewalls"), None)
    summary = step["summary"] if step else ""
    if format is Format.JSON:
        emit_json({"run": run.id, "kind": run.kind, "summary": summary, "steps": run.steps, "rap": outcome.rap,
                   "findings": [f.model_dump(mode="json") for f in findings]})
    else:
        _print(findings, apply)
        err.print(f"run [bold]{run.id}[/] ({run.kind}): {summary}")
    if format is not Format.JSON and any(s["status"] != "ran" for s in run.steps):
        print_steps(run.steps)
    if apply:
        raise typer.Exit(1 if any(f.status is Status.ERROR for f in findings) else 0)
    raise typer.Exit(exit_for(findings, fail_on))


def _print(findings: list[Finding], apply: bool) -> None:
    colour = {"pass": "green", "fail": "red", "error": "magenta", "not_assessed": "yellow"}
    for f in sorted(findings, key=lambda f: (f.asset, f.status is not Status.FAIL, f.check_id, f.key)):
        if f.status is Status.PASS and f.check_id != "firewalls.read":
            continue
        where = f.details.get("where", "")
        err.print(f"[{colour.get(f.status.value, 'white')}]{f.status.value:>12}[/] {f.asset.removeprefix('firewall:')}"
                  f"  [bold]{f.check_id}[/] {f.key}  {where}", soft_wrap=True, highlight=False)
        if f.status is not Status.PASS:
            err.print(f"              observed: {f.observed}", soft_wrap=True, markup=False, highlight=False)
            if f.expected:
                err.print(f"              expected: {f.expected}", soft_wrap=True, markup=False, highlight=False)
        elif apply and f.details.get("changes"):
            for change in f.details["changes"]:
                err.print(f"              changed: {change}", soft_wrap=True, markup=False, highlight=False)


@app.command(epilog=("Examples:\n\n  ESTATE_FORTIOS_TOKEN_FW_CIVIC=... estate firewalls audit --limit fw-civic\n\n"
                     "  sudo estate firewalls audit --format json     # the demo lab's routers (lab up)\n\n"
                     "  estate firewalls audit --estate ../our-estate --limit firewalls_fortinet --fail-on critical"))
def audit(estate: EstateOpt = DEMO_ESTATE, home: HomeOpt = DEFAULT_HOME, limit: LimitOpt = None,
          format: FormatOpt = Format.TEXT, fail_on: FailOnOpt = FailOn.HIGH, wait: WaitOpt = 0.0,
          advisory_feed: FeedOpt = None) -> None:
    """Compare each firewall's running configuration with the estate (ansible --check --diff): nothing is changed.

    Every difference is a finding with the rule's estate file:line, the device's own words as observed and
    the declaration as expected; the configuration read back is kept as evidence with secrets scrubbed
    (runs/<run>/firewalls/<firewall>-running.json). Firewalls that cannot be read are not assessed, with
    the reason. Exit 1 when a failing finding is at or above --fail-on.
    """
    _run(False, estate, home, limit, format, fail_on, wait, advisory_feed)


@app.command(epilog=("Examples:\n\n  ESTATE_FORTIOS_TOKEN_FW_CIVIC=... estate firewalls apply --limit fw-civic\n\n"
                     "  sudo estate firewalls apply --limit fw-central-library"))
def apply(estate: EstateOpt = DEMO_ESTATE, home: HomeOpt = DEFAULT_HOME, limit: LimitOpt = None,
          format: FormatOpt = Format.TEXT, wait: WaitOpt = 0.0, advisory_feed: FeedOpt = None) -> None:
    """Push the declared policy and report what changed (run kind firewalls-apply); a second apply changes nothing.

    FortiGate: objects, services, policies in declared order with logging on, undeclared policies
    removed, administration on management interfaces only, from the allow-list. nftables: the ruleset
    rendered from the policy, checked with `nft -c`, loaded atomically with `nft -f`, the management
    session kept open. Then the configuration is read back and compared, as audit does.
    Exit 1 when a firewall could not be reached or a task failed.
    """
    _run(True, estate, home, limit, format, FailOn.NONE, wait, advisory_feed)
