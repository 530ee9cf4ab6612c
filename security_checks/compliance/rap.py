"""How one run changes the Remediation Action Plan (RAP) for the PSN submission. No SQL here.

The store calls `transition` inside the run's commit transaction, with the plan as it stands
there, and writes the changes it returns in that same transaction (security_checks/store/rap.py):
a run that does not commit changes nothing, and two runs apply one after the other, each seeing
the other's result.

For each failing finding (id stable across runs: check, asset, key):
- a new one opens an item (owner from the estate, action from the check's remediation, target
  date from the severity's timescale); covered by a waiver, it is `accepted` instead;
- an `accepted` item whose waiver expired, or whose acceptance is past its date, is `open` again;
- a `closed` or `mitigated` item that fails again is reopened.

An item is only ever closed by evidence that its check looked again and did not fail:
- its finding now passes: `closed` in a full-scope run, `mitigated` in a partial one;
- its finding is absent from a full-scope run in which its check ran, and nothing in the run says
  the asset could not be read (an error or not-assessed finding on it): `closed`.
A host that was unreachable, a step that was skipped or failed, a check left out with --check:
none of these closes anything.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, timedelta
from typing import Any

from ..findings import Finding, Severity, Status
from ..model.schema import Estate
from ..remediation import RapChange, RapItem, RapUpdate
from .timescales import target_days


def owner_for(finding: Finding, estate: Estate) -> tuple[str, str]:
    """(owner, where it came from): the declared host, LOB system or firewall rule, else the security lead."""
    kind, _, ident = finding.asset.partition(":")
    details = finding.details
    rule_id = details.get("rule") or (finding.key if kind == "firewall" else None)
    if kind == "firewall" or rule_id:
        for fw in estate.firewalls:
            if kind == "firewall" and fw.name != ident:
                continue
            for rule in fw.rules:
                if rule.id == rule_id:
                    return rule.owner, f"firewall rule {fw.name}/{rule.id}"
    lob_name = details.get("lob") or (ident if kind == "lob" else None)
    if kind == "host" or details.get("address"):
        address = details.get("address") or ident
        for h in estate.declared_hosts:
            if h.address == address or h.name == ident:
                if h.owner:
                    return h.owner, f"declared host {h.name}"
                lob_name = lob_name or h.lob
    if lob_name:
        for lob in estate.lob_systems:
            if lob.name == lob_name:
                return lob.owner, f"LOB system {lob.name} (information asset owner)"
    for c in estate.organisation.contacts:
        if c.role == "security-lead":
            return f"{c.name} <{c.email}>", "security lead (no owner declared for the asset)"
    return "unassigned", "no owner in the estate and no security-lead contact"


def _acceptance(f: Finding) -> dict[str, Any] | None:
    return f.acceptance.model_dump(mode="json") if f.acceptance else None


def _target(today: date, severity: Severity, estate: Estate) -> str:
    return (today + timedelta(days=target_days(severity, estate))).isoformat()


def transition(items: dict[str, RapItem], findings: Iterable[Finding], estate: Estate, today: date, *,
               run_id: str, full_scope: bool, checks_run: Iterable[str], stamp: str) -> RapUpdate:
    findings = list(findings)
    by_id = {f.id: f for f in findings}
    ran = set(checks_run)
    # Assets the run says it could not read: nothing about them may close.
    unread = {f.asset for f in findings if f.status in (Status.ERROR, Status.NOT_ASSESSED)}
    counts = {"opened": 0, "reopened": 0, "accepted": 0, "closed": 0, "mitigated": 0, "unchanged": 0}
    changes: list[RapChange] = []
    targets: dict[Severity, str] = {}

    def target(severity: Severity) -> str:
        # One date per severity for the whole run (an ITHC import asks 20,000 times).
        if severity not in targets:
            targets[severity] = _target(today, severity, estate)
        return targets[severity]

    owners: dict[tuple[Any, ...], tuple[str, str]] = {}
    opened_on = today.isoformat()

    def owner(f: Finding) -> tuple[str, str]:
        # Once per asset (what owner_for reads of it), not per finding: an ITHC import's 20,000
        # findings are on 2,000 hosts, and each look-up walks the estate's hosts and rules.
        d = f.details
        memo = (f.asset, f.key if f.asset.startswith("firewall:") else "", d.get("rule"), d.get("lob"),
                d.get("address"))
        try:
            return owners[memo]
        except KeyError:
            found = owners[memo] = owner_for(f, estate)
            return found
        except TypeError:   # a detail that is not a plain value: asked directly
            return owner_for(f, estate)

    def record(item: RapItem, was: str | None, reason: str | None, *, created: bool = False) -> None:
        item.updated_at = stamp
        changes.append(RapChange(item=item, created=created, from_status=was, reason=reason))

    for f in findings:
        if f.status is not Status.FAIL:
            continue
        item = items.get(f.id)
        acceptance = _acceptance(f)
        status = "accepted" if acceptance else "open"
        if item is None:
            who, source = owner(f)
            new = RapItem(
                finding_id=f.id, check_id=f.check_id, asset=f.asset, key=f.key, title=f.title,
                severity=f.severity.value, cvss_vector=f.cvss_vector, cvss_score=f.cvss_score, owner=who,
                owner_source=source, action=f.remediation or "See the finding.",
                target_date=target(f.severity), status=status, acceptance=acceptance,
                opened_on=opened_on, first_run=run_id, last_seen_run=run_id,
                retest_evidence=[e.path for e in f.evidence])
            record(new, None, "first reported" + (" (risk accepted by waiver)" if acceptance else ""), created=True)
            counts["accepted" if acceptance else "opened"] += 1
            continue
        was = item.status
        item.last_seen_run = run_id
        item.severity, item.cvss_vector, item.cvss_score = f.severity.value, f.cvss_vector, f.cvss_score
        item.title, item.action = f.title, f.remediation or item.action
        if was in ("closed", "mitigated"):
            item.status, item.acceptance = status, acceptance
            item.opened_on = opened_on
            item.target_date = target(f.severity)
            item.retest_run, item.retest_evidence = run_id, [e.path for e in f.evidence]
            record(item, was, f"reopened: fails again in run {run_id}")
            counts["reopened"] += 1
        elif acceptance and was != "accepted":
            item.status, item.acceptance = "accepted", acceptance
            record(item, was, f"risk accepted by {acceptance['approved_by']} until {acceptance['expires']}: "
                              f"{acceptance['justification']}")
            counts["accepted"] += 1
        elif not acceptance and was == "accepted":
            expired = f.acceptance_lapsed.isoformat() if f.acceptance_lapsed else (item.acceptance or {}).get("expires")
            item.status, item.acceptance = "open", None
            record(item, was, f"acceptance expired on {expired}: open again" if expired else "no longer accepted")
            counts["reopened"] += 1
        else:
            if acceptance:
                item.acceptance = acceptance
            record(item, was, None)   # seen again, nothing to say: no history line
            counts["unchanged"] += 1

    for fid, item in items.items():
        seen = by_id.get(fid)
        if item.status == "closed" or (seen is not None and seen.status is Status.FAIL):
            continue
        was = item.status
        evidence = list(item.retest_evidence)
        if seen is not None and seen.status is Status.PASS:
            new_status = "closed" if full_scope else "mitigated"
            if new_status == was:
                continue
            reason = f"re-test passed in run {run_id}" + ("" if full_scope else " (partial run: not closed)")
            evidence = [e.path for e in seen.evidence]
        elif (seen is None and full_scope and item.check_id in ran and item.asset not in unread):
            new_status, reason, evidence = "closed", f"absent from full-scope run {run_id}", []
        elif was == "accepted" and item.acceptance and date.fromisoformat(str(item.acceptance["expires"])) < today:
            new_status, reason = "open", f"acceptance expired on {item.acceptance['expires']}: open again"
            item.acceptance = None
        else:
            continue
        item.status, item.retest_run, item.retest_evidence = new_status, run_id, evidence
        record(item, was, reason)
        counts["closed" if new_status == "closed" else "mitigated" if new_status == "mitigated" else "reopened"] += 1
    return RapUpdate(changes=changes, counts=counts)

