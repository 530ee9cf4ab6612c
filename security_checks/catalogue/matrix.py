"""Per-requirement results: the control matrix auditors read.

The rules are deliberately conservative:
- a requirement whose checks produced findings is met only if every one of them passed;
- a failing finding covered by an unexpired waiver makes the requirement `risk_accepted`, not met;
- a requirement whose checks produced nothing this run is `not_assessed`, and so is one whose
  checks say some asset could not be assessed (a pass elsewhere does not cover it);
- a manual requirement is `manual`: attested (with who, when and the evidence) or awaiting
  attestation. A tool never turns a manual requirement into met.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum

from ..findings import Finding, Status
from ..model.schema import Attestation
from . import Framework, Requirement


class RequirementStatus(StrEnum):
    MET = "met"
    NOT_MET = "not_met"
    RISK_ACCEPTED = "risk_accepted"
    MANUAL = "manual"
    NOT_ASSESSED = "not_assessed"


@dataclass
class RequirementResult:
    ref: str
    requirement: Requirement
    status: RequirementStatus
    reason: str
    findings: list[Finding] = field(default_factory=list)   # every finding that evidences it
    failing: list[Finding] = field(default_factory=list)    # the ones that stop it being met
    attestation: Attestation | None = None


def evaluate(fw: Framework, findings: Iterable[Finding], attestations: Iterable[Attestation],
             today: date) -> list[RequirementResult]:
    by_check: dict[str, list[Finding]] = {}
    for f in findings:
        by_check.setdefault(f.check_id, []).append(f)
    attested = {a.requirement: a for a in attestations if a.expires is None or a.expires >= today}

    results = []
    for req in fw.requirements:
        ref = fw.ref(req)
        evidence = [f for c in req.checks for f in by_check.get(c, [])]
        failing = [f for f in evidence if f.failing]
        open_failing = [f for f in failing if not f.accepted]
        attestation = attested.get(ref)
        if open_failing:
            status = RequirementStatus.NOT_MET
            reason = f"{len(open_failing)} failing finding(s): {_which(open_failing)}"
        elif failing:
            status, reason = (RequirementStatus.RISK_ACCEPTED,
                              f"{len(failing)} failing finding(s), risk accepted: {_which(failing)}")
        elif any(f.status is Status.NOT_ASSESSED for f in evidence) and not req.manual:
            unread = [f for f in evidence if f.status is Status.NOT_ASSESSED]
            status = RequirementStatus.NOT_ASSESSED
            reason = f"{len(unread)} of {len(evidence)} check result(s) could not assess their asset: {_which(unread)}"
        elif evidence and any(f.status is Status.PASS for f in evidence) and not req.manual:
            status, reason = RequirementStatus.MET, f"{len(evidence)} passing check result(s)"
        elif req.manual or (not req.checks):
            if attestation:
                status = RequirementStatus.MANUAL
                reason = f"attested by {attestation.attested_by} on {attestation.attested_on.isoformat()}"
            elif req.manual:
                status, reason = RequirementStatus.MANUAL, "awaiting attestation"
            else:
                status, reason = RequirementStatus.NOT_ASSESSED, "no check covers this requirement"
        else:
            status, reason = RequirementStatus.NOT_ASSESSED, "its checks did not run in this assessment"
        results.append(RequirementResult(ref, req, status, reason, evidence, failing, attestation))
    return results


def _which(findings: list[Finding], limit: int = 3) -> str:
    """The first few failing findings, so a reader sees what failed without opening the evidence."""
    names = [f"{f.check_id} on {f.asset}" + (f" ({f.key})" if f.key else "") for f in findings[:limit]]
    more = len(findings) - limit
    return "; ".join(names) + (f"; and {more} more" if more > 0 else "")
