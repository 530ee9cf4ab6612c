"""The `mdm` step: devices Ansible does not reach, judged from the Intune managed-devices export.

The export is ctx.options["intune_export"] or the file the estate declares (azure.intune_export,
relative to the estate). Without one the step says so and is skipped: MDM-managed groups are then
not assessed, never passed. An export that cannot be read is one error finding naming the file
and what is wrong, and the step is skipped.
"""

from __future__ import annotations

from pathlib import Path

from ..checks import make_finding
from ..findings import Status
from ..step import StepContext, StepResult
from .mdm import MdmExportError, judge_export, parse_export


def export_path(ctx: StepContext) -> tuple[Path | None, str]:
    given = ctx.options.get("intune_export")
    if given:
        return Path(given), "--intune-export"
    declared = ctx.loaded.estate.azure.intune_export
    return (ctx.loaded.root / declared, "azure.intune_export") if declared else (None, "")


def mdm_step(ctx: StepContext) -> StepResult:
    estate = ctx.loaded.estate
    groups = [g for g in estate.endpoint_groups if g.mdm_managed]
    path, source = export_path(ctx)
    if path is None:
        why = "no Intune export declared (azure.intune_export): MDM-managed devices not assessed from the MDM"
        return StepResult([make_finding("mdm.device_missing", f"endpoint-group:{g.name}", Status.NOT_ASSESSED,
                                        observed=why, expected="the MDM's record of every device in the group")
                           for g in groups], skipped=why)
    try:
        devices, raw = parse_export(path)
    except MdmExportError as exc:
        return StepResult([make_finding("mdm.device_missing", "mdm:intune", Status.ERROR,
                                        observed=f"the Intune export ({source}) could not be read: {exc}",
                                        expected="a Microsoft Graph managedDevices JSON or admin centre CSV export")],
                          skipped=f"Intune export ({source}) unreadable: {exc}")
    ctx.say(f"mdm: judging {len(devices)} device(s) from {path.name}")
    ref = ctx.run.write_evidence(f"mdm/{path.name}", raw.decode("utf-8", errors="replace"),
                                 f"Intune managed-devices export as judged ({source})")
    findings = judge_export(estate, devices, ctx.today, [ref], path.name)
    failing = sum(1 for f in findings if f.failing)
    missing = sum(1 for f in findings if f.check_id == "mdm.device_missing")
    return StepResult(findings, f"{len(devices)} device(s) in the Intune export, {failing} failing result(s), "
                                f"{missing} estate device(s) not enrolled")
