"""Outputs for tools: findings JSON, SARIF 2.1.0, and the remediation plan as CSV and XLSX."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from ..checks import registry
from ..findings import Finding, Status
from .context import ReportData, acceptance, remediation_status, risk_order

SARIF_SCHEMA = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
_LEVEL = {"critical": "error", "high": "error", "medium": "warning", "low": "note", "info": "note"}
_KIND = {Status.FAIL: "fail", Status.ERROR: "fail", Status.PASS: "pass", Status.MANUAL: "review",
         Status.NOT_ASSESSED: "notApplicable"}
# GitHub and others read properties["security-severity"] as a CVSS-like number.
_SECURITY_SEVERITY = {"critical": "9.5", "high": "8.0", "medium": "5.5", "low": "3.0", "info": "0.0"}


def findings_json(data: ReportData) -> dict[str, Any]:
    return {
        "run": {"id": data.run.id, "kind": data.run.kind, "operator": data.run.operator,
                "started_at": data.run.started_at.isoformat(), "finished_at": data.run.finished_at.isoformat(),
                "estate_digest": data.run.estate_digest, "full_scope": data.run.full_scope,
                "tool_versions": data.run.tool_versions, "steps": data.run.steps, "job": data.run.job,
                "selection": data.run.selection, "assessed_on": data.assessed_on.isoformat()},
        "summary": {"status": data.status_counts(), "open_by_severity": data.severity_counts(),
                    "remediation": data.remediation_counts(), "rap": data.rap_counts()},
        "verdicts": [{"framework": m.framework, "version": m.version, "verdict": m.verdict,
                      "assessed_on": m.assessed_on, "reasons": m.reasons, "counts": m.counts} for m in data.matrices],
        "delta": {"previous_run": data.delta.previous, "new": [f.id for f in data.delta.new],
                  "fixed": [f["id"] for f in data.delta.fixed], "still_open": [f.id for f in data.delta.still_open]},
        "findings": [{**f.model_dump(mode="json"), "remediation_status": remediation_status(f)}
                     for f in data.findings],
    }


def sarif(data: ReportData) -> dict[str, Any]:
    meta = registry()
    new_ids = {f.id for f in data.delta.new}
    rule_ids = sorted({f.check_id for f in data.findings})
    rules = []
    for cid in rule_ids:
        m = meta.get(cid)
        sample = next(f for f in data.findings if f.check_id == cid)
        rule: dict[str, Any] = {
            "id": cid,
            "name": "".join(p.capitalize() for p in cid.replace(".", "_").split("_")),
            "shortDescription": {"text": m.title if m else sample.title},
            "fullDescription": {"text": (m.description.strip() if m and m.description else sample.title)},
            "help": {"text": (m.remediation.strip() if m and m.remediation else sample.remediation) or sample.title},
            "defaultConfiguration": {"level": _LEVEL[(m.severity.value if m else sample.severity.value)]},
            "properties": {"tags": ["security", *sample.controls],
                           "security-severity": _SECURITY_SEVERITY[m.severity.value if m else sample.severity.value]},
        }
        rules.append(rule)
    index = {cid: i for i, cid in enumerate(rule_ids)}
    results = []
    for f in sorted(data.findings, key=lambda x: x.id):
        r: dict[str, Any] = {
            "ruleId": f.check_id,
            "ruleIndex": index[f.check_id],
            "kind": _KIND[f.status],
            "level": _LEVEL[f.severity.value] if f.failing else "none",
            "message": {"text": _message(f)},
            "locations": [{"logicalLocations": [{"fullyQualifiedName": f.asset, "kind": "resource"}]}],
            "partialFingerprints": {"estateFindingId/v1": f.id},
            "properties": {"findingId": f.id, "severity": f.severity.value, "status": f.status.value,
                           "controls": f.controls, "remediationStatus": remediation_status(f),
                           **({"site": f.site} if f.site else {}),
                           **({"cvssScore": f.cvss_score, "cvssVector": f.cvss_vector} if f.cvss_score else {})},
        }
        if f.failing:
            r["baselineState"] = "new" if f.id in new_ids else "unchanged"
        if f.evidence:
            r["attachments"] = [{"artifactLocation": {"uri": "evidence/" + e.path, "uriBaseId": "REPORTROOT"},
                                 **({"description": {"text": e.description}} if e.description else {})}
                                for e in f.evidence]
        acc = acceptance(f)
        if acc:
            r["suppressions"] = [{"kind": "external", "status": "accepted",
                                  "justification": f"{acc['justification']} (approved by {acc['approved_by']} on "
                                                   f"{acc['approved_on']}, until {acc['expires']})"}]
        results.append(r)
    return {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": "estate", "version": data.run.tool_versions.get("estate", "0"),
                                "informationUri": "https://example.invalid/estate", "rules": rules}},
            "automationDetails": {"id": f"{data.run.kind}/{data.run.id}"},
            "originalUriBaseIds": {"REPORTROOT": {"description": {"text": "the report site or evidence bundle"}}},
            "invocations": [{"executionSuccessful": all(s.get("status") != "error" for s in data.run.steps),
                             "startTimeUtc": data.run.started_at.isoformat().replace("+00:00", "Z"),
                             "endTimeUtc": data.run.finished_at.isoformat().replace("+00:00", "Z")}],
            "results": results,
        }],
    }


def _message(f: Finding) -> str:
    parts = [f.title + (f" ({f.key})" if f.key else "") + f" on {f.asset}."]
    if f.observed:
        parts.append(f"Observed: {f.observed}.")
    if f.expected:
        parts.append(f"Expected: {f.expected}.")
    if f.failing and f.remediation:
        parts.append(f"Remediation: {f.remediation.strip()}")
    return " ".join(parts)


_WRAPPED = {"title", "remediation", "acceptance_justification", "asset"}
PLAN_COLUMNS = ["priority", "finding_id", "severity", "cvss", "title", "asset", "site", "controls", "status",
                "first_seen", "fix_by", "remediation", "accepted_by", "accepted_until", "acceptance_justification",
                "evidence"]


def plan_rows(data: ReportData) -> list[dict[str, Any]]:
    """Every failing finding, worst first; accepted risks last, with who accepted them and until when."""
    rows = []
    for i, f in enumerate(sorted(data.failing, key=risk_order), start=1):
        acc = acceptance(f) or {}
        rows.append({
            "priority": i, "finding_id": f.id, "severity": f.severity.value,
            "cvss": f.cvss_score if f.cvss_score is not None else "", "title": f.title, "asset": f.asset,
            "site": f.site or "", "controls": " ".join(f.controls), "status": remediation_status(f),
            "first_seen": f.first_seen.date().isoformat() if f.first_seen else "",
            "fix_by": "" if acc or f.fix_by is None else f.fix_by.isoformat(),
            "remediation": " ".join(f.remediation.split()),
            "accepted_by": acc.get("approved_by", ""), "accepted_until": acc.get("expires", ""),
            "acceptance_justification": acc.get("justification", ""),
            "evidence": " ".join(e.path for e in f.evidence),
        })
    return rows


def plan_csv(rows: list[dict[str, Any]]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=PLAN_COLUMNS, lineterminator="\r\n")
    w.writeheader()
    for row in rows:
        # A cell starting with = + - @ would be a formula in a spreadsheet: never let finding text run as one.
        w.writerow({k: (f"'{v}" if isinstance(v, str) and v[:1] in ("=", "+", "-", "@") else v)
                    for k, v in row.items()})
    return buf.getvalue()


def plan_xlsx(rows: list[dict[str, Any]], path: Path, title: str) -> None:
    # Write-only mode streams rows: the normal mode recomputes sheet dimensions per row (quadratic).
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Alignment, Font, PatternFill
    from openpyxl.utils import get_column_letter

    wb = Workbook(write_only=True)
    ws = wb.create_sheet("Remediation plan")
    widths = {"title": 40, "remediation": 60, "asset": 28, "acceptance_justification": 40, "evidence": 30}
    for i, col in enumerate(PLAN_COLUMNS, start=1):
        ws.column_dimensions[get_column_letter(i)].width = widths.get(col, 14)
    ws.freeze_panes = "A2"
    ws.auto_filter.ref = f"A1:{get_column_letter(len(PLAN_COLUMNS))}{len(rows) + 1}"
    head_font, head_fill = Font(bold=True, color="FFFFFF"), PatternFill("solid", fgColor="1F2937")
    wrap = Alignment(wrap_text=True, vertical="top")
    header = []
    for col in PLAN_COLUMNS:
        cell = WriteOnlyCell(ws, value=col)
        cell.font, cell.fill = head_font, head_fill
        header.append(cell)
    ws.append(header)
    for row in rows:
        cells = []
        for col in PLAN_COLUMNS:
            cell = WriteOnlyCell(ws, value=row[col])
            if isinstance(row[col], str) and row[col][:1] == "=":
                cell.data_type = "s"  # text, never a formula
            if col in _WRAPPED:
                cell.alignment = wrap
            cells.append(cell)
        ws.append(cells)
    wb.properties.title = title
    wb.save(path)


def write_machine(data: ReportData, out: Path) -> dict[str, Path]:
    from .oscal import assessment_results, poam

    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "findings_json": out / "findings.json",
        "sarif": out / "findings.sarif",
        "oscal_assessment_results": out / "oscal-assessment-results.json",
        "oscal_poam": out / "oscal-poam.json",
        "remediation_csv": out / "remediation-plan.csv",
        "remediation_xlsx": out / "remediation-plan.xlsx",
    }
    paths["findings_json"].write_text(json.dumps(findings_json(data), indent=1, default=str))
    paths["sarif"].write_text(json.dumps(sarif(data), indent=1))
    paths["oscal_assessment_results"].write_text(assessment_results(data))
    paths["oscal_poam"].write_text(poam(data))
    rows = plan_rows(data)
    paths["remediation_csv"].write_text(plan_csv(rows), encoding="utf-8")
    plan_xlsx(rows, paths["remediation_xlsx"], f"Remediation plan, run {data.run.id}")
    return paths
