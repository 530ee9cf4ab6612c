"""Per-requirement results: the control matrix auditors read.

The rules are deliberately conservative, and no evidence is ever read as compliance:
- a failing (or unreadable: error) finding of its checks makes a requirement `not_met`;
- a failing finding covered by an unexpired waiver makes it `risk_accepted`, not met;
- a manual requirement is `manual`: attested (with who, when and the evidence) or awaiting
  attestation. A tool never turns a manual requirement into met;
- otherwise it is `met` only when passing *observed* findings cover every member of what it
  applies to (every device, site, firewall, cloud service: coverage.py); covered only by what the
  estate declares, it is `declared` (declared, not verified); partly covered, or not at all, it is
  `not_assessed`, saying how much was examined ("examined 2 of 12 sites");
- findings about the tool's own inputs (the advisory feed's age) never count towards met; when
  they fail, a requirement that would be met is `not_assessed` instead.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum

from ..findings import Finding, Status
from ..model.schema import Attestation, Estate
from . import Framework, Requirement
from .coverage import Coverage, Populations, coverage


class RequirementStatus(StrEnum):
    MET = "met"
    NOT_MET = "not_met"
    RISK_ACCEPTED = "risk_accepted"
    DECLARED = "declared"          # covered only by the estate's own declarations (or attestations)
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
    coverage: Coverage | None = None


def evaluate(fw: Framework, findings: Iterable[Finding], attestations: Iterable[Attestation], today: date,
             estate: Estate, inputs: frozenset[str] = frozenset()) -> list[RequirementResult]:
    """`inputs`: the check ids about the tool's own inputs (CheckMeta.about_inputs)."""
    by_check: dict[str, list[Finding]] = {}
    for f in findings:
        by_check.setdefault(f.check_id, []).append(f)
    attested = {a.requirement: a for a in attestations if a.expires is None or a.expires >= today}
    pops = Populations(estate)

    results = []
    for req in fw.requirements:
        ref = fw.ref(req)
        every = [f for c in req.checks for f in by_check.get(c, [])]
        evidence = [f for f in every if f.check_id not in inputs]
        stale = [f for f in every if f.check_id in inputs and f.status is not Status.PASS]
        failing = [f for f in evidence if f.failing]
        open_failing = [f for f in failing if not f.accepted]
        attestation = attested.get(ref)
        cov = coverage(req.applies_to or fw.applies_to, evidence, pops) if req.checks else None
        if open_failing:
            status = RequirementStatus.NOT_MET
            reason = f"{len(open_failing)} failing finding(s): {_which(open_failing)}"
        elif failing:
            status, reason = (RequirementStatus.RISK_ACCEPTED,
                              f"{len(failing)} failing finding(s), risk accepted: {_which(failing)}")
        elif req.manual or not req.checks:
            if attestation:
                status = RequirementStatus.MANUAL
                reason = f"attested by {attestation.attested_by} on {attestation.attested_on.isoformat()}"
            elif req.manual:
                status, reason = RequirementStatus.MANUAL, "awaiting attestation"
            else:
                status, reason = RequirementStatus.NOT_ASSESSED, "no check covers this requirement"
        else:
            assert cov is not None
            status, reason = _by_coverage(cov, evidence, stale)
        results.append(RequirementResult(ref, req, status, reason, every, failing, attestation, cov))
    return results


def _by_coverage(cov: Coverage, evidence: list[Finding], stale: list[Finding]) -> tuple[RequirementStatus, str]:
    passing = sum(1 for f in evidence if f.status is Status.PASS)
    inputs = f"; its inputs are not current: {stale[0].observed}" if stale else ""
    if cov.total == 0:
        return RequirementStatus.NOT_ASSESSED, f"the estate declares no {cov.label}"
    if cov.examined == 0:
        why = "its checks did not run in this assessment" if not evidence else \
            f"its checks examined none of the {cov.counted()}"
        return RequirementStatus.NOT_ASSESSED, why + (f" ({_unread(cov)})" if cov.unread else "") + inputs
    if cov.examined < cov.total:
        return RequirementStatus.NOT_ASSESSED, (f"examined {cov.examined:,} of {cov.counted()}; "
                                                f"{cov.total - cov.examined:,} not examined" +
                                                (f" ({_unread(cov)})" if cov.unread else "") + inputs)
    if stale:
        return RequirementStatus.NOT_ASSESSED, inputs.removeprefix("; ")
    if not cov.complete:
        return RequirementStatus.DECLARED, (f"declared, not verified: {cov.declared:,} of {cov.counted()} rest only "
                                            f"on the estate's declarations ({', '.join(cov.checks)})")
    every = "" if cov.total == 1 and cov.applies_to not in ("devices", "sites", "firewalls", "cloud_services") \
        else "every one of "
    return RequirementStatus.MET, f"{every}{cov.counted()} examined: {passing} passing result(s)"


def _unread(cov: Coverage) -> str:
    return f"{cov.unread:,} could not be read"


def _which(findings: list[Finding], limit: int = 3) -> str:
    """The first few failing findings, so a reader sees what failed without opening the evidence."""
    names = [f"{f.check_id} on {f.asset}" + (f" ({f.key})" if f.key else "") for f in findings[:limit]]
    more = len(findings) - limit
    return "; ".join(names) + (f"; and {more} more" if more > 0 else "")
