"""The Remediation Action Plan (RAP) for the PSN submission, kept in the store across runs.

One item per failing finding id (the id is stable across runs: check, asset, key). Updating the
plan from a run:

- a failing finding opens an item (owner from the estate, action from the check's remediation,
  target date from the severity's timescale in data/rap_policy.yaml);
- a failing finding covered by an unexpired waiver is `accepted` (justification, approver and
  expiry copied from the waiver); when the waiver has expired, or a stored acceptance is past its
  expiry, the item returns to `open`;
- a finding that now passes is `mitigated` (re-tested in a partial run) or `closed` (full-scope
  run), with the run and its evidence as re-test evidence;
- a finding absent from a full-scope run is `closed` with that run as evidence (absent from a
  partial run, or from a run in which its engine (scan, devices, infra, patch, ce) reported
  nothing at all: unchanged, since the check may simply not have run);
- a closed or mitigated item whose finding fails again is reopened.

Every change adds a rap_history row holding the item as it was, so an update made inside an
`estate assess` run that is killed before it commits is undone the next time the plan is opened
(`reconcile`): the plan never refers to a run the store does not have.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from ..findings import Finding, Severity, Status
from ..model.schema import Estate
from ..store import Store, now

POLICY_FILE = Path(__file__).resolve().parent / "data" / "rap_policy.yaml"
STATUSES = ("open", "mitigated", "accepted", "closed")


@cache
def policy() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(POLICY_FILE.read_text())
    return data


def target_days(severity: Severity) -> int:
    return int(policy()["target_days"][severity.value])


@dataclass
class RapItem:
    finding_id: str
    check_id: str
    asset: str
    key: str
    title: str
    severity: str
    cvss_vector: str | None
    cvss_score: float | None
    owner: str
    owner_source: str
    action: str
    target_date: str
    status: str
    acceptance: dict[str, Any] | None
    opened_on: str
    first_run: str
    last_seen_run: str
    retest_run: str | None = None
    retest_evidence: list[str] = field(default_factory=list)
    updated_at: str = ""
    history: list[dict[str, Any]] = field(default_factory=list)

    def row(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("history")
        d["acceptance"] = json.dumps(self.acceptance) if self.acceptance else None
        d["retest_evidence"] = json.dumps(self.retest_evidence)
        return d

    @classmethod
    def from_row(cls, row: Any) -> RapItem:
        d = dict(row)
        d["acceptance"] = json.loads(d["acceptance"]) if d["acceptance"] else None
        d["retest_evidence"] = json.loads(d["retest_evidence"] or "[]")
        return cls(**d)


def _engine(check_id: str) -> str:
    return check_id.split(".", 1)[0]


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


class Rap:
    def __init__(self, store: Store):
        self.store = store
        self.db = store.db

    # -- reading ---------------------------------------------------------------------------------

    def items(self, with_history: bool = True) -> list[RapItem]:
        items = [RapItem.from_row(r) for r in self.db.execute(
            "SELECT * FROM rap_items ORDER BY status, target_date, finding_id")]
        if with_history:
            hist: dict[str, list[dict[str, Any]]] = {}
            for r in self.db.execute("SELECT finding_id, seq, run_id, at, from_status, to_status, reason"
                                     " FROM rap_history ORDER BY finding_id, seq"):
                hist.setdefault(r["finding_id"], []).append(
                    {k: r[k] for k in ("seq", "run_id", "at", "from_status", "to_status", "reason")})
            for it in items:
                it.history = hist.get(it.finding_id, [])
        order = {s: i for i, s in enumerate(STATUSES)}
        sev = {s.value: s.rank for s in Severity}
        return sorted(items, key=lambda i: (order.get(i.status, 9), -sev.get(i.severity, 0), i.target_date))

    def applied_runs(self) -> list[str]:
        return [r[0] for r in self.db.execute("SELECT run_id FROM rap_runs ORDER BY run_id")]

    def _older_than_applied(self, run_id: str) -> bool:
        """A run that started before one already applied would rewind the plan: leave it out."""
        row = self.db.execute("SELECT started_at FROM runs WHERE id = ?", (run_id,)).fetchone()
        if row is None:   # the run in progress (estate assess): the newest there is
            return False
        latest = self.db.execute("SELECT MAX(r.started_at) FROM rap_runs a JOIN runs r ON r.id = a.run_id").fetchone()
        return bool(latest and latest[0] and row[0] < latest[0])

    # -- consistency -----------------------------------------------------------------------------

    def reconcile(self, current_run: str | None = None) -> list[str]:
        """Undo plan updates made by runs that never committed (killed mid-assessment)."""
        committed = {r[0] for r in self.db.execute("SELECT id FROM runs")}
        orphans = [r for r in self.applied_runs()
                   if r not in committed and r != current_run
                   and not (self.store.runs_dir / f".staging-{r}").exists()]
        if not orphans:
            return []
        cur = self.db.cursor()
        cur.execute("BEGIN IMMEDIATE")
        try:
            for run_id in sorted(orphans, reverse=True):
                rows = cur.execute("SELECT finding_id, seq, before FROM rap_history WHERE run_id = ?"
                                   " ORDER BY seq DESC", (run_id,)).fetchall()
                for r in rows:
                    cur.execute("DELETE FROM rap_items WHERE finding_id = ?", (r["finding_id"],))
                    if r["before"]:
                        self._insert(cur, json.loads(r["before"]))
                cur.execute("DELETE FROM rap_history WHERE run_id = ?", (run_id,))
                cur.execute("DELETE FROM rap_runs WHERE run_id = ?", (run_id,))
            cur.execute("COMMIT")
        except BaseException:
            cur.execute("ROLLBACK")
            raise
        return orphans

    # -- updating --------------------------------------------------------------------------------

    def update(self, run_id: str, findings: Iterable[Finding], estate: Estate, today: date,
               full_scope: bool) -> dict[str, int]:
        """Apply one run's findings (waivers already applied). Each run applies once, in order."""
        self.reconcile(current_run=run_id)
        if run_id in self.applied_runs() or self._older_than_applied(run_id):
            return {"skipped": 1}
        findings = list(findings)
        by_id = {f.id: f for f in findings}
        # A full-scope run whose scans were skipped (not root, say) proves nothing about scan items:
        # absence closes an item only when the engine that reports it produced findings in this run.
        engines = {_engine(f.check_id) for f in findings}
        stamp = now().isoformat()
        counts = {"opened": 0, "reopened": 0, "accepted": 0, "closed": 0, "mitigated": 0, "unchanged": 0}
        cur = self.db.cursor()
        cur.execute("BEGIN IMMEDIATE")
        try:
            existing = {r["finding_id"]: RapItem.from_row(r) for r in cur.execute("SELECT * FROM rap_items")}
            for f in findings:
                if f.status is not Status.FAIL:
                    continue
                item = existing.get(f.id)
                acceptance = f.details.get("accepted")
                status = "accepted" if acceptance else "open"
                if item is None:
                    new = self._new_item(f, estate, today, run_id, status, acceptance, stamp)
                    self._change(cur, None, new, run_id, stamp,
                                 "first reported" + (" (risk accepted by waiver)" if acceptance else ""))
                    counts["accepted" if acceptance else "opened"] += 1
                    continue
                before = item.row()
                was = item.status
                item.last_seen_run = run_id
                item.severity, item.cvss_vector, item.cvss_score = f.severity.value, f.cvss_vector, f.cvss_score
                item.title, item.action = f.title, f.remediation or item.action
                if was in ("closed", "mitigated"):
                    item.status, item.acceptance = status, acceptance
                    item.opened_on = today.isoformat()
                    item.target_date = (today + timedelta(days=target_days(f.severity))).isoformat()
                    item.retest_run, item.retest_evidence = run_id, [e.path for e in f.evidence]
                    reason = f"reopened: fails again in run {run_id}"
                    counts["reopened"] += 1
                elif acceptance and was != "accepted":
                    item.status, item.acceptance = "accepted", acceptance
                    reason = (f"risk accepted by {acceptance.get('approved_by')} until {acceptance.get('expires')}: "
                              f"{acceptance.get('justification')}")
                    counts["accepted"] += 1
                elif not acceptance and was == "accepted":
                    expired = f.details.get("acceptance_expired") or (item.acceptance or {}).get("expires")
                    item.status, item.acceptance = "open", None
                    reason = f"acceptance expired on {expired}: open again" if expired else "no longer accepted"
                    counts["reopened"] += 1
                else:
                    if acceptance:
                        item.acceptance = acceptance
                    item.updated_at = stamp
                    self._update(cur, item)
                    counts["unchanged"] += 1
                    continue
                item.updated_at = stamp
                self._change(cur, before, item, run_id, stamp, reason, was)
            for fid, item in existing.items():
                if fid in by_id and by_id[fid].status is Status.FAIL:
                    continue
                before = item.row()
                seen = by_id.get(fid)
                if item.status == "closed":
                    continue
                if seen is not None and seen.status is Status.PASS:
                    new_status = "closed" if full_scope else "mitigated"
                    if new_status == item.status:
                        continue
                    reason = f"re-test passed in run {run_id}" + ("" if full_scope else " (partial run: not closed)")
                    evidence = [e.path for e in seen.evidence]
                elif seen is None and full_scope and _engine(item.check_id) in engines:
                    new_status, reason, evidence = "closed", f"absent from full-scope run {run_id}", []
                elif item.status == "accepted" and item.acceptance and \
                        date.fromisoformat(str(item.acceptance.get("expires"))) < today:
                    new_status = "open"
                    reason = f"acceptance expired on {item.acceptance.get('expires')}: open again"
                    evidence = list(item.retest_evidence)
                    item.acceptance = None
                else:
                    continue
                was = item.status
                item.status, item.retest_run, item.retest_evidence = new_status, run_id, evidence
                item.updated_at = stamp
                self._change(cur, before, item, run_id, stamp, reason, was)
                counts["closed" if new_status == "closed" else "mitigated" if new_status == "mitigated"
                       else "reopened"] += 1
            cur.execute("INSERT INTO rap_runs (run_id, applied_at, full_scope) VALUES (?,?,?)",
                        (run_id, stamp, int(full_scope)))
            cur.execute("COMMIT")
        except BaseException:
            cur.execute("ROLLBACK")
            raise
        return counts

    def _new_item(self, f: Finding, estate: Estate, today: date, run_id: str, status: str,
                  acceptance: dict[str, Any] | None, stamp: str) -> RapItem:
        owner, source = owner_for(f, estate)
        return RapItem(
            finding_id=f.id, check_id=f.check_id, asset=f.asset, key=f.key, title=f.title,
            severity=f.severity.value, cvss_vector=f.cvss_vector, cvss_score=f.cvss_score, owner=owner,
            owner_source=source, action=f.remediation or "See the finding.",
            target_date=(today + timedelta(days=target_days(f.severity))).isoformat(), status=status,
            acceptance=acceptance, opened_on=today.isoformat(), first_run=run_id, last_seen_run=run_id,
            retest_run=None, retest_evidence=[e.path for e in f.evidence], updated_at=stamp)

    def _change(self, cur: Any, before: dict[str, Any] | None, item: RapItem, run_id: str, stamp: str,
                reason: str, was: str | None = None) -> None:
        if before is None:
            self._insert(cur, item.row())
        else:
            self._update(cur, item)
        seq = cur.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM rap_history WHERE finding_id = ?",
                          (item.finding_id,)).fetchone()[0]
        cur.execute("INSERT INTO rap_history (finding_id, seq, run_id, at, from_status, to_status, reason, before)"
                    " VALUES (?,?,?,?,?,?,?,?)",
                    (item.finding_id, seq, run_id, stamp, was, item.status, reason,
                     json.dumps(before) if before else None))

    @staticmethod
    def _insert(cur: Any, row: dict[str, Any]) -> None:
        cols = list(row)
        cur.execute(f"INSERT INTO rap_items ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",  # noqa: S608
                    [row[c] for c in cols])

    def _update(self, cur: Any, item: RapItem) -> None:
        row = item.row()
        cols = [c for c in row if c != "finding_id"]
        cur.execute(f"UPDATE rap_items SET {', '.join(c + ' = ?' for c in cols)} WHERE finding_id = ?",  # noqa: S608
                    [*(row[c] for c in cols), item.finding_id])


def rap_json(items: list[RapItem]) -> list[dict[str, Any]]:
    out = []
    for it in items:
        d = asdict(it)
        d["target_source"] = policy()["source"]
        out.append(d)
    return out


CSV_COLUMNS = ("finding_id", "title", "asset", "severity", "cvss_score", "cvss_vector", "owner", "action",
               "target_date", "status", "acceptance", "opened_on", "retest_run", "retest_evidence", "history")


def rap_csv_rows(items: list[RapItem]) -> list[list[str]]:
    rows = []
    for it in items:
        acc = it.acceptance or {}
        acceptance = (f"{acc.get('justification')} (approved by {acc.get('approved_by')}, expires {acc.get('expires')})"
                      if acc else "")
        history = "; ".join(f"{h['at'][:10]} {h['from_status'] or 'new'}->{h['to_status']}: {h['reason']}"
                            for h in it.history)
        rows.append([it.finding_id, it.title, it.asset, it.severity,
                     "" if it.cvss_score is None else f"{it.cvss_score:.1f}", it.cvss_vector or "", it.owner,
                     it.action.strip(), it.target_date, it.status, acceptance, it.opened_on, it.retest_run or "",
                     " ".join(it.retest_evidence), history])
    return rows
