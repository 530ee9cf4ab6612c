"""Compliance verdicts of a run, computed once by the runner at commit (never by a report).

For every framework in the control catalogue (each Cyber Essentials version kept, PSN, ...), the
per-requirement results of the run's findings (waivers already applied) and the estate's
attestations, on the run's own date, and the verdict they add up to:

- "not ready: auto-fail" when an auto-fail requirement is not met;
- "not ready" when any requirement is not met, has an accepted risk (Cyber Essentials certifies no
  exceptions), awaits an attestation, was not assessed, or rests on an attestation whose evidence
  file is missing from the estate repository;
- "ready" otherwise. The reasons list says which, auto-fail items first.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

from ..catalogue import Framework, frameworks
from ..catalogue.matrix import RequirementResult, RequirementStatus, evaluate
from ..checks import input_checks
from ..findings import Finding
from ..model.schema import Estate
from ..verdicts import FrameworkVerdict, RequirementRow

READY = "ready"
NOT_READY = "not ready"
AUTO_FAIL = "not ready: auto-fail"


def _risk(f: Finding) -> tuple[int, int, float, str]:
    return (1 if f.accepted else 0, -f.severity.rank, -(f.cvss_score or 0.0), f.id)


def _ordered(results: list[RequirementResult]) -> list[RequirementResult]:
    return sorted(results, key=lambda r: not r.requirement.auto_fail)   # stable: catalogue order within


def _reasons(results: list[RequirementResult], unverifiable: list[str]) -> tuple[str, list[str]]:
    reasons = []
    auto = False
    for r in results:
        if r.ref in unverifiable:
            # In its place in the list, not after it: an attestation that cannot be checked counts for nothing.
            reasons.append(f"{r.ref}: attestation does not count: its evidence is missing from the estate directory")
        elif r.status is RequirementStatus.NOT_MET:
            auto = auto or r.requirement.auto_fail
            reasons.append(f"{r.ref}{' (auto-fail)' if r.requirement.auto_fail else ''} not met: {r.reason}")
        elif r.status is RequirementStatus.RISK_ACCEPTED:
            reasons.append(f"{r.ref} has accepted risks: accepted non-compliance is not compliance")
        elif r.status is RequirementStatus.MANUAL and r.attestation is None:
            reasons.append(f"{r.ref} needs an attestation (manual)")
        elif r.status is RequirementStatus.DECLARED:
            # Never met on the estate's word alone, least of all an auto-fail item.
            reasons.append(f"{r.ref}{' (auto-fail)' if r.requirement.auto_fail else ''} declared, not verified: "
                           f"{r.reason.removeprefix('declared, not verified: ')}")
        elif r.status is RequirementStatus.NOT_ASSESSED:
            reasons.append(f"{r.ref}{' (auto-fail)' if r.requirement.auto_fail else ''} not assessed: {r.reason}")
    if auto:
        return AUTO_FAIL, reasons
    return (NOT_READY, reasons) if reasons else (READY, ["every requirement is met or attested"])


def framework_verdict(fw: Framework, findings: list[Finding], estate: Estate, on: date, *,
                      in_force: bool, estate_dir: Path | None) -> FrameworkVerdict:
    mine = [a for a in estate.attestations if a.requirement.startswith(fw.prefix + ":")]
    results = _ordered(evaluate(fw, findings, mine, on, estate, input_checks()))
    expired = {a.requirement: a for a in mine if a.expires is not None and a.expires < on}
    rows: list[RequirementRow] = []
    unverifiable = []
    # Relative to the estate directory, as findings cite the estate: a verdict is stored and sealed
    # into evidence, which must not carry the directory the operator happened to run from.
    attest_file = "attestations.yaml"
    for r in results:
        att = None
        if r.attestation:
            a = r.attestation
            missing = [e for e in a.evidence if estate_dir is not None and not (estate_dir / e).is_file()]
            if missing:
                unverifiable.append(r.ref)
            att = {"attested_by": a.attested_by, "attested_on": a.attested_on.isoformat(), "statement": a.statement,
                   "expires": a.expires.isoformat() if a.expires else None, "evidence": list(a.evidence),
                   "missing_evidence": missing}
        reason = r.reason
        if r.status is RequirementStatus.MANUAL and r.attestation is None and r.ref in expired:
            reason = f"attestation expired on {expired[r.ref].expires}; awaiting a new one"
        if att and att["missing_evidence"]:
            reason = (f"attested by {att['attested_by']} on {att['attested_on']}, but it does not count: evidence "
                      f"missing from the estate directory ({', '.join(att['missing_evidence'])})")
        req = r.requirement
        rows.append(RequirementRow(
            ref=r.ref, id=req.id, control=req.control, title=req.title, requirement=req.requirement.strip(),
            clause=req.clause, auto_fail=req.auto_fail, manual=req.manual, checks=list(req.checks),
            maps_to=list(req.maps_to), status=r.status.value, reason=reason,
            evidence=[f.id for f in r.findings], failing=[f.id for f in sorted(r.failing, key=_risk)],
            attestation=att, coverage=r.coverage.as_dict() if r.coverage else None,
            record_evidence_at=f"{attest_file}: attestations[requirement={r.ref}]"
            if req.manual or not req.checks else None))
    verdict, reasons = _reasons(results, unverifiable)
    return FrameworkVerdict(framework=fw.framework, version=fw.version, prefix=fw.prefix, title=fw.title,
                            source=fw.source.strip(), in_force=in_force, verdict=verdict, reasons=reasons,
                            assessed_on=on.isoformat(), requirements=rows)


def run_verdicts(estate: Estate, findings: list[Finding], on: date, estate_dir: Path | None) -> list[FrameworkVerdict]:
    """Every catalogue framework's verdict for one run; the CE version in force is marked so."""
    out = []
    for fw in frameworks():
        in_force = fw.framework != "cyber-essentials" or fw.version == estate.organisation.ce_version
        out.append(framework_verdict(fw, findings, estate, on, in_force=in_force, estate_dir=estate_dir))
    return out


