"""PSN IT Health Check support: ITHC-style findings scored with CVSS v3.1, the Remediation Action
Plan, per-condition status against the PSN catalogue and the network diagram data (from the WAN
code's infra/diagram.py, so the submission and the drawing agree).

Written as run evidence `compliance/psn.json`, which the report reads. Shape:

    {
      "network": "PSN", "run": "<run id>", "full_scope": true, "assessed_on": "2026-11-22",
      "summary": {"ithc_findings": {"critical": 1, "high": 2, "medium": 0, "low": 3},
                  "rap": {"open": 3, "mitigated": 0, "accepted": 1, "closed": 2}, "rap_update": {...}},
      "ithc_findings": [{"finding", "check_id", "title", "asset", "key", "area": ["PSN:ITHC-INT-PATCH"],
                         "cvss_vector", "cvss_score", "severity", "status", "observed", "remediation",
                         "evidence": [paths], "accepted": {...} | null}],     # worst first
      "rap": [{"finding_id", "title", "asset", "severity", "cvss_score", "cvss_vector", "owner",
               "owner_source", "action", "target_date", "target_source", "status", "acceptance",
               "opened_on", "retest_run", "retest_evidence", "history": [{"seq", "run_id", "at",
               "from_status", "to_status", "reason"}], ...}],
      "rap_policy": {"source", "target_days": {"critical": 14, ...}},
      "conditions": [{"ref": "PSN:COCO-1", "title", "status", "reason"}],
      "contacts": [{"role", "name", "email"}],
      "diagram": infra.diagram.diagram_data(estate): {"schema": "estate.network-diagram/1", "hubs",
                  "firewall", "psn", "spokes", "sites", "links", ...}
    }
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from datetime import date
from typing import Any

from ..catalogue import framework
from ..catalogue.matrix import evaluate
from ..findings import Finding, Severity, Status
from ..model.schema import Estate
from .advisories import cvss_score
from .rap import Rap, policy, rap_json


def ithc_findings(findings: Iterable[Finding]) -> list[dict[str, Any]]:
    """Failing findings and pending security fixes, scored: what a tester would list."""
    out = []
    for f in findings:
        pending = f.status is Status.PASS and f.details.get("pending")
        if f.status is not Status.FAIL and not pending:
            continue
        score = f.cvss_score
        if score is None and f.cvss_vector:
            score = cvss_score(f.cvss_vector)
        severity = Severity.from_cvss(score) if score is not None else f.severity
        out.append({"finding": f.id, "check_id": f.check_id, "title": f.title, "asset": f.asset, "key": f.key,
                    "area": [c for c in f.controls if c.startswith("PSN:")], "cvss_vector": f.cvss_vector,
                    "cvss_score": score, "severity": severity.value,
                    "status": "pending" if pending else f.status.value, "observed": f.observed,
                    "remediation": f.remediation.strip(), "evidence": [e.path for e in f.evidence],
                    "accepted": f.details.get("accepted")})
    rank = {s.value: s.rank for s in Severity}
    return sorted(out, key=lambda d: (-rank[d["severity"]], -(d["cvss_score"] or 0), d["asset"], d["key"]))


def psn_report(estate: Estate, findings: list[Finding], rap: Rap, today: date, *, run_id: str, full_scope: bool,
               rap_update: dict[str, int] | None = None) -> dict[str, Any]:
    ithc = ithc_findings(findings)
    items = rap.items()
    fw = framework("psn")
    conditions = [{"ref": r.ref, "title": r.requirement.title, "status": r.status.value, "reason": r.reason,
                   "manual": r.requirement.manual}
                  for r in evaluate(fw, findings, [a for a in estate.attestations
                                                   if a.requirement.startswith(fw.prefix + ":")], today)]
    sev = Counter(d["severity"] for d in ithc)
    return {
        "network": estate.organisation.public_sector_network, "run": run_id, "full_scope": full_scope,
        "assessed_on": today.isoformat(),
        "summary": {"ithc_findings": {s: sev.get(s, 0) for s in ("critical", "high", "medium", "low", "info")},
                    "rap": dict(Counter(i.status for i in items)), "rap_update": rap_update or {}},
        "ithc_findings": ithc,
        "rap": rap_json(items),
        "rap_policy": {"source": policy()["source"], "target_days": policy()["target_days"]},
        "conditions": conditions,
        "contacts": [c.model_dump() for c in estate.organisation.contacts],
        "diagram": _diagram(estate),
    }


def _diagram(estate: Estate) -> dict[str, Any]:
    # One picture of the network: the WAN code's (infra/diagram.py), which the drawing also uses.
    from ..network.diagram import diagram_data

    return diagram_data(estate)
