"""Each line-of-business system's sign-in: covered by the tenant's MFA policy, or its own and only declared.

A system whose users sign in through Entra ID is covered when the tenant's enforced MFA baseline
applies to every cloud app and does not leave this one out. A system with its own accounts
(`sign_in: own`) is outside what the export shows: the estate must say how the service enforces
MFA (`sign_in_mfa`), and even then the result is not assessed, never a pass: the supplier's
settings are not in the export, so the assessor must see the supplier's own evidence.
"""

from __future__ import annotations

from ..checks import make_finding
from ..findings import EvidenceKind, EvidenceRef, Finding, Status
from ..model.schema import LobSystem
from .conditional_access import MFA_EXCLUSION, MfaBaseline

LOB_SIGN_IN = "identity.lob_sign_in"


def lob_findings(lob_systems: list[LobSystem], baseline: MfaBaseline, evidence: list[EvidenceRef]) -> list[Finding]:
    return [_own(lob) if lob.sign_in == "own" else _entra(lob, baseline, evidence) for lob in lob_systems]


def _finding(lob: LobSystem, status: Status, observed: str, *, evidence: list[EvidenceRef] | None = None,
             kind: EvidenceKind | None = None) -> Finding:
    return make_finding(
        LOB_SIGN_IN, f"lob:{lob.name}", status, observed=f"{lob.title} ({lob.supplier}): {observed}",
        expected="MFA for every user: through Entra ID conditional access, or the service's own MFA shown by "
                 "evidence", evidence=evidence, evidence_kind=kind,
        details={"lob": lob.name, "hosting": lob.hosting.value, "sign_in": lob.sign_in,
                 "entra_app_id": lob.entra_app_id, "sign_in_mfa": lob.sign_in_mfa})


def _own(lob: LobSystem) -> Finding:
    if not lob.mfa_enforced:
        return _finding(lob, Status.FAIL, "its own sign-in, and the estate says MFA is not enforced "
                                          "(mfa_enforced: false)", kind=EvidenceKind.DECLARED)
    if not lob.sign_in_mfa.strip():
        return _finding(lob, Status.FAIL, "its own sign-in (not through Entra ID), and the estate does not say how "
                                          "the service enforces MFA (lob_systems[].sign_in_mfa)",
                        kind=EvidenceKind.DECLARED)
    return _finding(lob, Status.NOT_ASSESSED,
                    f"its own sign-in (not through Entra ID); declared: {lob.sign_in_mfa.strip()}. The supplier's "
                    "settings cannot be read from the tenant export: keep the supplier's evidence for the assessor",
                    kind=EvidenceKind.DECLARED)


def _entra(lob: LobSystem, baseline: MfaBaseline, evidence: list[EvidenceRef]) -> Finding:
    if not baseline.enforced:
        return _finding(lob, Status.FAIL, "signs in through Entra ID, where no enabled policy requires MFA for all "
                                          "users on all cloud apps", evidence=evidence)
    names = ", ".join(repr(b.name) for b in baseline.baselines)
    others = [g for g in baseline.failing_gaps() if g.principal.kind != "app"]
    tail = f" (people it leaves out: see {MFA_EXCLUSION})" if others else ""
    excluded = baseline.uncovered_apps()
    if not excluded:
        return _finding(lob, Status.PASS, f"signs in through Entra ID; {names} (enabled) requires MFA on every cloud "
                                          f"app{tail}", evidence=evidence)
    if lob.entra_app_id is None:
        return _finding(lob, Status.NOT_ASSESSED,
                        f"signs in through Entra ID, but {names} leaves out {len(excluded)} application(s) and the "
                        "estate does not give this system's entra_app_id, so whether it is one of them cannot be told",
                        evidence=evidence)
    if lob.entra_app_id.lower() in excluded:
        return _finding(lob, Status.FAIL, f"its Entra application {lob.entra_app_id} is excluded from {names} and "
                                          "no other enabled policy requires MFA on it", evidence=evidence)
    return _finding(lob, Status.PASS, f"signs in through Entra ID as application {lob.entra_app_id}; {names} "
                                      f"(enabled) requires MFA on it{tail}", evidence=evidence)
