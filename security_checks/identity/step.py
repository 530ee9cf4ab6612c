"""The identity step: cloud MFA judged from the tenant's Entra ID export.

The export is `--entra-export DIR` (ctx.options["entra_export"]) or the directory the estate
declares (azure.entra_export, relative to the estate). Without one, or with one that cannot be
read, the step says so in one finding on the tenant (not assessed, or error) and reports itself as
skipped, so the run neither passes cloud MFA nor closes a remediation item it did not look at again.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..checks import make_finding
from ..findings import EvidenceRef, Finding, Status
from ..step import StepContext, StepResult
from .conditional_access import MFA_ALL_USERS, REPORT_ONLY, legacy_findings, mfa_baseline, mfa_findings
from .directory import Directory
from .export import GROUPS, POLICIES, REGISTRATION, EntraExport, ExportError, load_export
from .lob_sign_in import lob_findings
from .registration import admin_findings, unregistered_members, user_findings

HOW = ("save the Microsoft Graph exports (conditionalAccessPolicies.json, userRegistrationDetails.json, "
       "groups.json, organization.json: see security_checks/identity/README.md) in a directory and declare it "
       "(azure.entra_export) or pass --entra-export DIR")


def export_path(ctx: StepContext) -> tuple[Path | None, str]:
    """The export directory and where it was named: --entra-export, else the estate's declaration, else none."""
    given = ctx.options.get("entra_export")
    if given:
        return Path(given), "--entra-export"
    declared = ctx.loaded.estate.azure.entra_export
    return (ctx.loaded.root / declared, "azure.entra_export") if declared else (None, "")


def identity_step(ctx: StepContext) -> StepResult:
    estate = ctx.loaded.estate
    tenant = f"tenant:{estate.azure.tenant_id}"
    path, source = export_path(ctx)
    expected = "MFA for every user and administrator, read back from the tenant's conditional access"
    if path is None:
        return StepResult([make_finding(
            MFA_ALL_USERS, tenant, Status.NOT_ASSESSED, observed=f"no Entra ID export, so cloud MFA was not read "
            f"from the tenant: {HOW}", expected=expected, details={"reason": "no export"})],
            skipped="no Entra ID export (azure.entra_export or --entra-export): cloud MFA not read from the tenant")
    try:
        export = load_export(path, estate.azure.tenant_id)
    except ExportError as exc:
        return StepResult([make_finding(
            MFA_ALL_USERS, tenant, Status.ERROR, observed=f"the Entra ID export ({source}) could not be read: {exc}",
            expected=expected, details={"reason": str(exc)})],
            skipped=f"Entra ID export ({source}) unreadable: {exc}")
    ctx.say(f"identity: judging {path}")
    return StepResult(*judge(ctx, export, source, tenant))


def judge(ctx: StepContext, export: EntraExport, source: str, tenant: str) -> tuple[list[Finding], str]:
    estate = ctx.loaded.estate
    # The bytes judged are the evidence, not a second read of files that may have changed since.
    refs = {name: ctx.run.write_evidence(f"identity/{name}", data, f"Entra ID export ({source}): {name}")
            for name, data in sorted(export.raw.items())}

    def of(*stems: str) -> list[EvidenceRef]:
        return [refs[n] for stem in stems for n in export.files_of(stem)]

    directory = Directory(export, list(estate.azure.break_glass_accounts), list(estate.lob_systems))
    baseline = mfa_baseline(export.policies, directory)
    members, guests = unregistered_members(export.users)
    listing = ctx.run.write_evidence("identity/unregistered-users.json", json.dumps({
        "members": [{"id": u.id, "userPrincipalName": u.upn, "userDisplayName": u.user_display_name} for u in members],
        "guests": [{"id": u.id, "userPrincipalName": u.upn, "userDisplayName": u.user_display_name} for u in guests],
    }, indent=2), "member and guest accounts not registered for MFA")
    findings: list[Finding] = [
        *mfa_findings(baseline, directory, tenant, of(POLICIES, GROUPS)),
        *legacy_findings(export.policies, directory, tenant, of(POLICIES, GROUPS)),
        *admin_findings(export.users, directory, of(REGISTRATION)),
        *user_findings(export.users, tenant, [*of(REGISTRATION), listing]),
        *lob_findings(list(estate.lob_systems), baseline, of(POLICIES)),
    ]
    states: list[str] = [p.state for p in export.policies]
    failing = sum(1 for f in findings if f.failing)
    ctx.run.write_evidence("identity/summary.json", json.dumps({
        "source": source, "directory": ctx.loaded.cited(export.directory),
        "tenant": export.organization.model_dump(by_alias=True) if export.organization else None,
        "policies": [{"id": p.id, "displayName": p.display_name, "state": p.state,
                      "mfa_baseline": p in baseline.baselines} for p in export.policies],
        "users": len(export.users), "administrators": sum(1 for u in export.users if u.is_admin),
        "break_glass_declared_but_not_found": directory.unresolved, "failing": failing}, indent=2),
        "what the identity step read and judged")
    summary = (f"{len(states)} conditional access policies ({states.count('enabled')} enabled, "
               f"{states.count(REPORT_ONLY)} report-only), {len(export.users)} users "
               f"({sum(1 for u in export.users if u.is_admin)} administrators) from {source}; {failing} failing")
    return findings, summary
