"""The `devices` step of `estate assess`: audit every endpoint the estate lists that can be reached.

In the demo that is the chroot endpoint lab-debian-01, built (cached) on first use. Root only:
building and entering a chroot needs it; without root the step is skipped with the reason.
"""

from __future__ import annotations

from pathlib import Path

from ..assess import StepContext, StepResult
from .endpoint import LAB_ENDPOINT, EndpointError, ensure_lab_endpoint


def _hosts(ctx: StepContext) -> list[tuple[str, str, str | None]]:
    out: list[tuple[str, str, str | None]] = []
    for eg in ctx.loaded.estate.endpoint_groups:
        for h in eg.hosts:
            kind = (h.connection or eg.connection).kind
            out.append((h.name, kind, h.address))
    return out


def devices_step(ctx: StepContext) -> StepResult:
    from .audit import DevicesError, run_devices

    hosts = _hosts(ctx)
    if not hosts:
        return StepResult(skipped="the estate lists no endpoint hosts for Ansible (endpoint_groups[].hosts)")
    if not ctx.is_root:
        return StepResult(skipped="needs root: the lab endpoint is a chroot (run as root, or `estate devices audit`)")
    home = ctx.store.home
    for _name, kind, address in hosts:
        if kind == "chroot" and address and Path(address) == LAB_ENDPOINT:
            try:
                ensure_lab_endpoint(home)
            except EndpointError as exc:
                return StepResult(skipped=f"the lab endpoint could not be built: {exc}")
    try:
        result = run_devices(ctx.loaded, home, ctx.run, apply=False)
    except DevicesError as exc:
        return StepResult(skipped=str(exc))
    # run_devices has added its findings to the run already; the step returns none to add twice.
    return StepResult(findings=[], summary=result.summary())
