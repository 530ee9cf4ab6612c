"""`estate devices`: the end-user device baseline through Ansible (ansible-runner)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..findings import Finding, Status
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
    show,
    usage_error,
)

app = typer.Typer(
    help=("End-user device baseline (Cyber Essentials controls) with Ansible, from the estate model.\n\n"
          "audit runs the roles in check and diff mode and changes nothing; apply remediates. Hosts come "
          "from the estate (endpoint_groups[].hosts), through the inventory plugin in playbooks/."),
    rich_markup_mode="rich", no_args_is_help=True,
)

LimitOpt = Annotated[str | None, typer.Option(
    "--limit", help="Ansible host pattern, e.g. lab-debian-01 or site_civic_centre.")]


def _run(apply: bool, estate: Path, home: Path, limit: str | None, format: Format, fail_on: FailOn,
         wait: float) -> None:
    from ..devices.progress import DeviceProgress
    from ..jobs import DEVICES_APPLY, DEVICES_AUDIT

    loaded = load_or_exit(estate)
    job = DEVICES_APPLY if apply else DEVICES_AUDIT
    with DeviceProgress(err) as progress:
        outcome = run_job(job, loaded, home, options={"apply": apply, "limit": limit, "on_event": progress,
                                                     "refuse_bad_input": True}, wait=wait, quiet=True)
    run, findings = outcome.run, outcome.findings
    summary = run.steps[-1]["summary"] if run.steps else ""
    if format is Format.JSON:
        emit_json({"run": run.id, "kind": run.kind, "summary": summary, "steps": run.steps, "rap": outcome.rap,
                   "findings": [f.model_dump(mode="json") for f in findings]})
    else:
        _print(findings, apply)
        show.print(f"run [bold]{run.id}[/] ({run.kind}): {summary}")
    if any(f.check_id == "devices.unreachable" and "chroot" in f.observed and "does not exist" in f.observed
           for f in findings):
        err.print("hint: the demo's lab endpoint is built with `estate devices endpoint up` (root)")
    if any(s["status"] == "error" for s in run.steps):
        print_steps(run.steps)
    if apply:
        raise typer.Exit(1 if any(f.status is Status.ERROR for f in findings) else 0)
    raise typer.Exit(exit_for(findings, fail_on))


def _print(findings: list[Finding], apply: bool) -> None:
    colour = {"pass": "green", "fail": "red", "error": "magenta"}
    for f in sorted(findings, key=lambda f: (f.asset, f.status != Status.FAIL, f.check_id)):
        label = "fixed" if apply and f.details.get("remediated") else f.status.value
        show.print(f"[{colour.get(f.status.value, 'white')}]{label:>5}[/] {f.asset.removeprefix('host:')}  "
                   f"[bold]{f.check_id}[/]  {f.title}", soft_wrap=True, highlight=False)
        if f.status is not Status.PASS or f.details.get("remediated"):
            show.print(f"        observed: {f.observed}", soft_wrap=True, markup=False, highlight=False, emoji=False)
            if f.expected:
                show.print(f"        expected: {f.expected}", soft_wrap=True, markup=False, highlight=False,
                           emoji=False)


@app.command(epilog=("Examples:\n\n  estate devices audit\n\n"
                     "  estate devices audit --limit lab-debian-01 --format json\n\n"
                     "  estate devices audit --estate ../our-estate --limit site_civic_centre --fail-on critical"))
def audit(estate: EstateOpt = DEMO_ESTATE, home: HomeOpt = DEFAULT_HOME, limit: LimitOpt = None,
          format: FormatOpt = Format.TEXT, fail_on: FailOnOpt = FailOn.HIGH, wait: WaitOpt = 0.0) -> None:
    """Audit endpoints against the baseline (ansible --check --diff): nothing is changed.

    Each control on each host becomes a finding (pass, fail with observed and expected from the diff,
    or error), stored as a run of kind devices-audit with the runner's events (secrets scrubbed) as
    evidence. Unreachable hosts are findings (devices.unreachable), not failures of the command.
    Exit 1 when a failing finding is at or above --fail-on.
    """
    _run(False, estate, home, limit, format, fail_on, wait)


@app.command(epilog="Examples:\n\n  estate devices apply --limit lab-debian-01\n\n  estate devices apply --format json")
def apply(estate: EstateOpt = DEMO_ESTATE, home: HomeOpt = DEFAULT_HOME, limit: LimitOpt = None,
          format: FormatOpt = Format.TEXT, wait: WaitOpt = 0.0) -> None:
    """Remediate endpoints to the baseline and report what changed (run kind devices-apply).

    Lock-out safe by default: the SSH/WinRM port in use and the management allowlist stay open,
    sshd's configuration is validated with `sshd -t` before it is written, the account Ansible
    uses stays an administrator. Report-only controls (disk encryption, anti-malware, LAPS,
    BitLocker) are reported, not changed. Exit 1 when a host could not be reached or a task failed.
    """
    _run(True, estate, home, limit, format, FailOn.NONE, wait)


@app.command(epilog=("Examples:\n\n  estate devices endpoint up\n\n  estate devices endpoint status --format json\n\n"
                     "  estate devices endpoint down"))
def endpoint(action: Annotated[str, typer.Argument(help="up | down | status")],
             home: HomeOpt = DEFAULT_HOME, format: FormatOpt = Format.TEXT) -> None:
    """The demo's Linux endpoint, lab-debian-01: a Debian chroot under <home>/lab/chroots/debian-01.

    up builds it (root; debootstrap once per machine, cached under ~/.cache/estate) with planted
    non-compliance: root SSH log-in, no unattended-upgrades, telnet installed, an extra sudoer.
    down removes it; status says whether it exists.
    """
    from ..lab.endpoint import LAB_ENDPOINT, EndpointError, ensure_lab_endpoint, remove_lab_endpoint

    path = home / LAB_ENDPOINT
    if action == "up":
        try:
            with err.status("building the lab endpoint (debootstrap the first time, about 2 minutes)"):
                path = ensure_lab_endpoint(home)
        except EndpointError as exc:
            usage_error(str(exc))
        state = "up"
    elif action == "down":
        state = "removed" if remove_lab_endpoint(home) else "absent"
    elif action == "status":
        state = "up" if (path / "usr" / "bin" / "python3").exists() else "absent"
    else:
        usage_error(f"endpoint: unknown action {action!r} (use up, down or status)")
    if format is Format.JSON:
        emit_json({"endpoint": "lab-debian-01", "path": str(path), "state": state})
    else:
        err.print(f"lab-debian-01: {state} ({path})")
