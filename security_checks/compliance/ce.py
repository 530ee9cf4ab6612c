"""Cyber Essentials readiness: configuration checks on the estate model, and the assessment of a
run's findings against a catalogue version (3.3 by default, 3.2 kept).

Verdict: "not ready: auto-fail" when an auto-fail requirement is not met; "not ready" when any
requirement is not met, has an accepted risk (Cyber Essentials certifies no exceptions), awaits an
attestation, was not assessed, or rests on an attestation whose evidence file is missing;
otherwise "ready". The reasons list says which, auto-fail items first.

The assessment is written as run evidence `compliance/ce.json`, which the report reads. Shape:

    {
      "framework": "cyber-essentials", "version": "3.3", "title": "...", "run": "<run id>",
      "assessed_on": "2026-11-22",
      "verdict": "ready" | "not ready" | "not ready: auto-fail",
      "reasons": ["CE3.3:SUM-4 (auto-fail) not met: 1 failing finding(s)", ...],
      "counts": {"met": 9, "not_met": 3, "risk_accepted": 0, "manual": 14, "not_assessed": 5},
      "scope": {"organisation", "sites": [...], "device_groups": [...], "devices_total",
                "cloud_services": {"saas": [...], "paas": [...], "iaas": [...]}, "firewalls": [...]},
      "advisory_feed": {"path", "feed_date", "age_days", "source", "advisories"} | null,
      "attestations_file": "<estate>/attestations.yaml",
      "requirements": [          # auto-fail first, then in catalogue order
        {"ref": "CE3.3:SUM-4", "id", "control", "title", "requirement", "clause", "auto_fail",
         "manual", "checks", "maps_to", "status": "met|not_met|risk_accepted|manual|not_assessed",
         "reason", "evidence": [{"finding", "check_id", "asset", "key", "status", "severity",
         "observed", "accepted", "evidence": [paths]}], "failing": [finding ids],
         "attestation": {"attested_by", "attested_on", "statement", "expires", "evidence",
                         "missing_evidence"} | null,
         "record_evidence_at": "where a person records the attestation"}
      ]
    }
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from datetime import date
from pathlib import Path
from typing import Any

from ..catalogue import Framework, framework
from ..catalogue.matrix import RequirementResult, RequirementStatus, evaluate
from ..checks import make_finding
from ..findings import Finding, Status
from ..model.schema import Estate, Hosting, ZoneKind

FRAMEWORK = "cyber-essentials"
READY = "ready"
NOT_READY = "not ready"
AUTO_FAIL = "not ready: auto-fail"


# -- configuration checks on the estate model ---------------------------------------------------

def config_findings(estate: Estate, today: date) -> list[Finding]:
    return [*cloud_mfa(estate), *firewall_default_deny(estate), *firewall_admin_interface(estate),
            *firewall_rule_review(estate, today)]


def cloud_mfa(estate: Estate) -> list[Finding]:
    out = []
    for lob in estate.lob_systems:
        ok = lob.mfa_enforced
        out.append(make_finding(
            "ce.cloud_mfa", f"lob:{lob.name}", Status.PASS if ok else Status.FAIL,
            observed=f"{lob.title} ({lob.hosting.value}, {lob.supplier}): MFA "
                     f"{'enforced for every user' if ok else 'not enforced for every user'}",
            expected="multi-factor authentication for every user and administrator",
            details={"lob": lob.name, "hosting": lob.hosting.value, "supplier": lob.supplier}))
    return out


def _internet_zones(estate: Estate) -> set[str]:
    return {z.name for z in estate.zones if z.kind is ZoneKind.INTERNET}


def _management_zones(estate: Estate) -> set[str]:
    return {z.name for z in estate.zones if z.kind is ZoneKind.MANAGEMENT}


def firewall_default_deny(estate: Estate) -> list[Finding]:
    internet = _internet_zones(estate)
    out = []
    for fw in estate.firewalls:
        problems = []
        if fw.default_inbound != "deny":
            problems.append(f"default inbound action is {fw.default_inbound}")
        for r in fw.rules:
            if r.action == "allow" and r.from_zone in internet and r.source == "any" and r.destination == "any" \
                    and r.services == "any":
                problems.append(f"rule {r.id} allows anything from the internet")
        out.append(make_finding(
            "ce.firewall_default_deny", f"firewall:{fw.name}", Status.FAIL if problems else Status.PASS,
            observed="; ".join(problems) or f"default inbound {fw.default_inbound}; no any-any rule from the internet",
            expected="inbound denied unless a rule allows it", site=fw.site,
            details={"firewall": fw.name, "vendor": fw.vendor}))
    return out


def firewall_admin_interface(estate: Estate) -> list[Finding]:
    internet = _internet_zones(estate)
    mgmt = _management_zones(estate)
    out = []
    for fw in estate.firewalls:
        problems = []
        public = False
        if fw.management_address:
            try:
                public = ipaddress.ip_address(fw.management_address).is_global
            except ValueError:
                public = False
        if not fw.management_mfa and not fw.management_allowlist:
            problems.append("administration has neither MFA nor an address allow-list")
        if public and not fw.management_mfa and not fw.management_allowlist:
            problems.append(f"management address {fw.management_address} is internet-routable")
        for r in fw.rules:
            if r.action == "allow" and r.from_zone in internet and r.to_zone in mgmt:
                problems.append(f"rule {r.id} allows the internet into the management zone {r.to_zone}")
        protection = ", ".join(p for p in (
            "MFA" if fw.management_mfa else "",
            f"allow-list {', '.join(fw.management_allowlist)}" if fw.management_allowlist else "") if p)
        out.append(make_finding(
            "ce.firewall_admin_interface", f"firewall:{fw.name}", Status.FAIL if problems else Status.PASS,
            observed="; ".join(problems) or f"administration protected by {protection}",
            expected="no administration from the internet unless MFA or an allow-list protects it", site=fw.site,
            details={"firewall": fw.name, "management_address": fw.management_address,
                     "management_mfa": fw.management_mfa, "management_allowlist": fw.management_allowlist}))
    return out


def firewall_rule_review(estate: Estate, today: date) -> list[Finding]:
    out = []
    for fw in estate.firewalls:
        for r in fw.rules:
            if r.action != "allow":
                continue
            problems = []
            if not r.owner.strip():
                problems.append("no owner")
            if len(r.justification.strip()) < 3:
                problems.append("no justification")
            if r.review_by < today:
                problems.append(f"review was due {r.review_by.isoformat()}")
            out.append(make_finding(
                "ce.firewall_rule_review", f"firewall:{fw.name}", Status.FAIL if problems else Status.PASS, key=r.id,
                observed=f"rule {r.id} ({r.name}): " + ("; ".join(problems) or
                                                        f"owner {r.owner}, review by {r.review_by.isoformat()}"),
                expected="an owner, a justification and a review date not in the past", site=fw.site,
                details={"firewall": fw.name, "rule": r.id, "owner": r.owner, "review_by": r.review_by.isoformat()}))
    return out


# -- the assessment -----------------------------------------------------------------------------

def scope_statement(estate: Estate) -> dict[str, Any]:
    services: dict[str, list[dict[str, Any]]] = {h.value: [] for h in Hosting}
    for lob in estate.lob_systems:
        services[lob.hosting.value].append({"name": lob.name, "title": lob.title, "supplier": lob.supplier,
                                            "owner": lob.owner, "mfa_enforced": lob.mfa_enforced,
                                            **({"os": lob.os.value, "vms": lob.vm_count} if lob.os else {})})
    groups = [{"name": g.name, "os": g.os.value, "count": g.count, "managed_by": g.managed_by,
               "sites": g.sites if isinstance(g.sites, str) else list(g.sites),
               "extended_security_updates": g.extended_security_updates} for g in estate.endpoint_groups]
    return {
        "organisation": estate.organisation.name,
        "boundary": "whole organisation",
        "sites": [{"name": s.name, "title": s.title, "kind": s.kind.value, "staff": s.staff} for s in estate.sites],
        "device_groups": groups,
        "devices_total": sum(g.count for g in estate.endpoint_groups),
        "cloud_services": services,
        "firewalls": [{"name": f.name, "vendor": f.vendor, "site": f.site} for f in estate.firewalls],
    }


def _ordered(results: list[RequirementResult]) -> list[RequirementResult]:
    return sorted(results, key=lambda r: not r.requirement.auto_fail)   # stable: catalogue order within


def verdict(results: list[RequirementResult]) -> tuple[str, list[str]]:
    reasons = []
    auto = False
    for r in _ordered(results):
        if r.status is RequirementStatus.NOT_MET:
            auto = auto or r.requirement.auto_fail
            reasons.append(f"{r.ref}{' (auto-fail)' if r.requirement.auto_fail else ''} not met: {r.reason}")
        elif r.status is RequirementStatus.RISK_ACCEPTED:
            reasons.append(f"{r.ref} has accepted risks: Cyber Essentials does not certify accepted non-compliance")
        elif r.status is RequirementStatus.MANUAL and r.attestation is None:
            reasons.append(f"{r.ref} needs an attestation (manual)")
        elif r.status is RequirementStatus.NOT_ASSESSED:
            reasons.append(f"{r.ref} not assessed: {r.reason}")
    if auto:
        return AUTO_FAIL, reasons
    return (NOT_READY, reasons) if reasons else (READY, ["every requirement is met or attested"])


def assess(estate: Estate, findings: Iterable[Finding], today: date, *, version: str | None = None,
           run_id: str = "", estate_dir: Path | None = None) -> dict[str, Any]:
    fw: Framework = framework(FRAMEWORK, version or estate.organisation.ce_version)
    findings = list(findings)
    attestations = [a for a in estate.attestations if a.requirement.startswith(fw.prefix + ":")]
    results = _ordered(evaluate(fw, findings, attestations, today))
    expired = {a.requirement: a for a in attestations if a.expires is not None and a.expires < today}
    v, reasons = verdict(results)
    counts = {s.value: 0 for s in RequirementStatus}
    rows: list[dict[str, Any]] = []
    attest_file = str((estate_dir / "attestations.yaml") if estate_dir else "attestations.yaml")
    for r in results:
        counts[r.status.value] += 1
        att = None
        if r.attestation:
            a = r.attestation
            missing = [e for e in a.evidence if estate_dir is not None and not (estate_dir / e).is_file()]
            att = {"attested_by": a.attested_by, "attested_on": a.attested_on.isoformat(), "statement": a.statement,
                   "expires": a.expires.isoformat() if a.expires else None, "evidence": a.evidence,
                   "missing_evidence": missing}
        reason = r.reason
        if r.status is RequirementStatus.MANUAL and r.attestation is None and r.ref in expired:
            reason = f"attestation expired on {expired[r.ref].expires}; awaiting a new one"
        rows.append({
            "ref": r.ref, "id": r.requirement.id, "control": r.requirement.control, "title": r.requirement.title,
            "requirement": r.requirement.requirement.strip(), "clause": r.requirement.clause,
            "auto_fail": r.requirement.auto_fail, "manual": r.requirement.manual, "checks": r.requirement.checks,
            "maps_to": r.requirement.maps_to, "status": r.status.value, "reason": reason,
            "evidence": [{"finding": f.id, "check_id": f.check_id, "asset": f.asset, "key": f.key,
                          "status": f.status.value, "severity": f.severity.value, "observed": f.observed,
                          "accepted": bool(f.details.get("accepted")), "evidence": [e.path for e in f.evidence]}
                         for f in r.findings],
            "failing": [f.id for f in r.failing],
            "attestation": att,
            "record_evidence_at": f"{attest_file}: attestations[requirement={r.ref}]"
                                  if r.requirement.manual or not r.requirement.checks else None,
        })
    # An attestation whose evidence file is not in the estate repository cannot be verified.
    unverifiable = [r["ref"] for r in rows if r["attestation"] and r["attestation"]["missing_evidence"]]
    if unverifiable:
        reasons += [f"{ref}: attestation cites evidence missing from the estate directory" for ref in unverifiable]
        if v == READY:
            v, reasons = NOT_READY, reasons[1:]
    feed = next((f.details for f in findings if f.check_id == "patch.advisory_feed_stale"), None)
    return {"framework": fw.framework, "version": fw.version, "title": fw.title, "run": run_id,
            "assessed_on": today.isoformat(), "verdict": v, "reasons": reasons, "counts": counts,
            "scope": scope_statement(estate), "advisory_feed": feed, "attestations_file": attest_file,
            "requirements": rows}
