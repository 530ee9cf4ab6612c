"""The Cyber Essentials and PSN documents, as views over what a run stored. Nothing is recomputed.

`estate check ce|psn`, the report site and the machine outputs all use these, so the CLI, the
HTML, the board PDF and the JSON say the same thing about the same run.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict
from typing import Any

from ..findings import Finding, Severity, Status
from ..remediation import RapItem
from ..store import RunInfo
from ..verdicts import FrameworkVerdict

RAP_CSV_COLUMNS = ("finding_id", "title", "asset", "severity", "cvss_score", "cvss_vector", "owner", "action",
                   "target_date", "status", "acceptance", "opened_on", "retest_run", "retest_evidence", "history")


def requirement_rows(v: FrameworkVerdict, by_id: dict[str, Finding]) -> list[dict[str, Any]]:
    rows = []
    for r in v.requirements:
        d = r.model_dump(mode="json")
        d["evidence"] = [_evidence(by_id[fid]) for fid in r.evidence if fid in by_id]
        rows.append(d)
    return rows


def _evidence(f: Finding) -> dict[str, Any]:
    return {"finding": f.id, "check_id": f.check_id, "asset": f.asset, "key": f.key, "status": f.status.value,
            "severity": f.severity.value, "observed": f.observed, "evidence_kind": f.evidence_kind.value,
            "accepted": f.accepted, "evidence": [e.path for e in f.evidence]}


def ce_document(run: RunInfo, v: FrameworkVerdict, findings: list[Finding]) -> dict[str, Any]:
    by_id = {f.id: f for f in findings}
    feed = next((f.details for f in findings if f.check_id == "patch.advisory_feed_stale"), None)
    return {"framework": v.framework, "version": v.version, "title": v.title, "run": run.id,
            "assessed_on": v.assessed_on, "verdict": v.verdict, "reasons": v.reasons, "counts": v.counts,
            "scope": run.context.get("scope", {}), "advisory_feed": feed,
            "requirements": requirement_rows(v, by_id)}


def ithc_findings(findings: Iterable[Finding]) -> list[dict[str, Any]]:
    """Failing findings and pending security fixes, scored: what a tester would list."""
    out = []
    for f in findings:
        pending = f.status is Status.PASS and f.details.get("pending")
        if f.status is not Status.FAIL and not pending:
            continue
        severity = Severity.from_cvss(f.cvss_score) if f.cvss_score is not None else f.severity
        out.append({"finding": f.id, "check_id": f.check_id, "title": f.title, "asset": f.asset, "key": f.key,
                    "area": [c for c in f.controls if c.startswith("PSN:")], "cvss_vector": f.cvss_vector,
                    "cvss_score": f.cvss_score, "severity": severity.value,
                    "status": "pending" if pending else f.status.value, "observed": f.observed,
                    "evidence_kind": f.evidence_kind.value, "remediation": f.remediation.strip(),
                    "evidence": [e.path for e in f.evidence],
                    "accepted": f.acceptance.model_dump(mode="json") if f.acceptance else None})
    rank = {s.value: s.rank for s in Severity}
    return sorted(out, key=lambda d: (-rank[d["severity"]], -(d["cvss_score"] or 0), d["asset"], d["key"]))


def rap_json(items: list[RapItem], policy: dict[str, Any]) -> list[dict[str, Any]]:
    return [{**asdict(it), "target_source": policy.get("source", "")} for it in items]


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


def psn_document(run: RunInfo, v: FrameworkVerdict | None, findings: list[Finding], items: list[RapItem]
                 ) -> dict[str, Any]:
    ithc = ithc_findings(findings)
    sev = Counter(d["severity"] for d in ithc)
    policy = run.context.get("remediation_policy", {})
    return {
        "network": run.context.get("network", "PSN"), "run": run.id, "full_scope": run.full_scope,
        "assessed_on": run.assessed_on.isoformat() if run.assessed_on else None,
        "verdict": v.verdict if v else None, "reasons": v.reasons if v else [],
        "summary": {"ithc_findings": {s: sev.get(s, 0) for s in ("critical", "high", "medium", "low", "info")},
                    "rap": dict(Counter(i.status for i in items)), "rap_update": run.rap_update},
        "ithc_findings": ithc,
        "rap": rap_json(items, policy),
        "rap_policy": policy,
        "conditions": [{"ref": r.ref, "title": r.title, "status": r.status, "reason": r.reason, "manual": r.manual}
                       for r in (v.requirements if v else [])],
        "contacts": run.context.get("contacts", []),
    }


def in_force(verdicts: list[FrameworkVerdict], framework: str, version: str | None = None) -> FrameworkVerdict | None:
    for v in verdicts:
        if v.framework == framework and (v.version == version if version else v.in_force):
            return v
    return None
