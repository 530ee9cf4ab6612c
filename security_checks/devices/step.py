"""The `devices` step: the end-user device baseline through Ansible, audit (check mode) or apply.

Every endpoint the estate lists by name is judged or accounted for: hosts Ansible reaches get a
finding per control; a host it cannot reach is an error finding (devices.unreachable); a chroot
endpoint when not root (entering a chroot needs it) is a not-assessed finding.
"""

from __future__ import annotations

from pathlib import Path

from ..step import InputRefused, StepContext, StepResult


def _hosts(ctx: StepContext) -> list[tuple[str, str, str | None]]:
    out: list[tuple[str, str, str | None]] = []
    for eg in ctx.loaded.estate.endpoint_groups:
        if eg.managed_by in ("intune", "google-admin"):
            continue   # MDM only: the mdm step judges these hosts from the export
        for h in eg.hosts:
            kind = (h.connection or eg.connection).kind
            out.append((h.name, kind, h.address))
    return out


def devices_step(ctx: StepContext) -> StepResult:
    from .audit import DevicesError, run_devices

    hosts = _hosts(ctx)
    if not hosts:
        return StepResult(skipped="the estate lists no endpoint hosts for Ansible (endpoint_groups[].hosts)")
    exclude = {} if ctx.is_root else {
        name: "a chroot endpoint: entering it needs root (run as root)" for name, kind, _ in hosts if kind == "chroot"}
    if len(exclude) == len(hosts):
        # Nothing Ansible could reach here: say so per host, without starting ansible-runner.
        from ..checks import make_finding
        from ..findings import Status

        return StepResult([make_finding("devices.unreachable", f"host:{name}", Status.NOT_ASSESSED, observed=why,
                                        expected="Ansible connects and runs the baseline")
                           for name, why in sorted(exclude.items())],
                          f"{len(exclude)} host(s) not assessed: chroot endpoints need root")
    apply = bool(ctx.options.get("apply"))
    try:
        result = run_devices(ctx.loaded, Path(ctx.home), ctx.run, apply=apply, limit=ctx.options.get("limit"),
                             on_event=ctx.options.get("on_event"), exclude=exclude)
    except DevicesError as exc:
        if ctx.options.get("refuse_bad_input"):   # `estate devices`: a bad --limit is bad input, exit 2
            raise InputRefused(str(exc)) from None
        raise
    return StepResult(findings=result.findings, summary=result.summary())
