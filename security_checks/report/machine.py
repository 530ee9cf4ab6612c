"""Outputs for tools: findings JSON, SARIF 2.1.0, and the remediation plan as CSV and XLSX.

A run can hold tens of thousands of findings, and `bench report` holds all six outputs of 10,000
of them to 5 seconds; the comments below say where the time went and what replaced it.
"""

from __future__ import annotations

import csv
import gc
import io
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from json.encoder import INFINITY
from json.encoder import encode_basestring_ascii as _json_str
from pathlib import Path
from typing import Any

from ..checks import name_network, registry
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


def findings_json_text(data: ReportData) -> str:
    return dumps_indented(findings_json(data), default=str)


def sarif(data: ReportData) -> dict[str, Any]:
    meta = registry()
    new_ids = {f.id for f in data.delta.new}
    # The first finding of each check describes a rule the registry does not know (one pass, not one per rule).
    samples: dict[str, Finding] = {}
    for f in data.findings:
        samples.setdefault(f.check_id, f)
    rule_ids = sorted(samples)
    rules = []
    for cid in rule_ids:
        m = meta.get(cid)
        sample = samples[cid]
        rule: dict[str, Any] = {
            "id": cid,
            "name": "".join(p.capitalize() for p in cid.replace(".", "_").split("_")),
            # Metadata says "{network}"; the run's council network goes in (the findings have it already).
            "shortDescription": {"text": name_network(m.title, data.network) if m else sample.title},
            "fullDescription": {"text": name_network(m.description.strip(), data.network) if m and m.description
                                else sample.title},
            "help": {"text": (name_network(m.remediation.strip(), data.network) if m and m.remediation
                              else sample.remediation) or sample.title},
            "defaultConfiguration": {"level": _LEVEL[(m.severity.value if m else sample.severity.value)]},
            "properties": {"tags": ["security", *sample.controls],
                           "security-severity": _SECURITY_SEVERITY[m.severity.value if m else sample.severity.value]},
        }
        rules.append(rule)
    index = {cid: i for i, cid in enumerate(rule_ids)}
    results = []
    for fid, f in sorted((f.id, f) for f in data.findings):   # the id is a hash: computed once per finding
        r: dict[str, Any] = {
            "ruleId": f.check_id,
            "ruleIndex": index[f.check_id],
            "kind": _KIND[f.status],
            "level": _LEVEL[f.severity.value] if f.failing else "none",
            "message": {"text": _message(f)},
            "locations": [{"logicalLocations": [{"fullyQualifiedName": f.asset, "kind": "resource"}]}],
            "partialFingerprints": {"estateFindingId/v1": fid},
            "properties": {"findingId": fid, "severity": f.severity.value, "status": f.status.value,
                           "evidenceKind": f.evidence_kind.value,
                           "controls": f.controls, "remediationStatus": remediation_status(f),
                           **({"site": f.site} if f.site else {}),
                           **({"cvssScore": f.cvss_score, "cvssVector": f.cvss_vector} if f.cvss_score else {})},
        }
        if f.failing:
            r["baselineState"] = "new" if fid in new_ids else "unchanged"
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
            # The requirement statuses the run stored (met, not met, declared, ...), with coverage: SARIF
            # has no place for a control matrix, so it rides in the run's property bag.
            "properties": {"requirements": [
                {"ref": r.ref, "status": r.status, "reason": r.reason,
                 **({"coverage": r.coverage} if r.coverage else {})}
                for m in data.matrices for r in m.rows]},
        }],
    }


def sarif_text(data: ReportData) -> str:
    return dumps_indented(sarif(data))


def dumps_indented(obj: Any, default: Callable[[Any], Any] | None = None) -> str:
    """The same text as json.dumps(obj, indent=1, default=default), several times faster.

    With an indent, the json module encodes in pure Python through a generator per nesting level
    (the C encoder does no indenting before Python 3.14): 0.4-1 s for each of findings.json and the
    SARIF at 10,000 findings. This writes the same bytes (tests/report/test_machine_scale.py compares
    them) from one recursive function, with the C string escaper.
    """
    out: list[str] = []
    put = out.append

    def enc(o: Any, nl: str) -> None:
        if isinstance(o, str):
            put(_json_str(o))
        elif isinstance(o, dict):
            if not o:
                put("{}")
                return
            inner = nl + " "
            sep, next_sep = "{" + inner, "," + inner
            for k, v in o.items():
                head = sep + _json_str(k if isinstance(k, str) else _json_key(k)) + ": "
                sep = next_sep
                # Most values are strings and numbers: written here, without a call per value.
                t = type(v)
                if t is str:
                    put(head + _json_str(v))
                elif v is None:
                    put(head + "null")
                elif t is int:
                    put(head + int.__repr__(v))
                else:
                    put(head)
                    enc(v, inner)
            put(nl + "}")
        elif isinstance(o, list | tuple):
            if not o:
                put("[]")
                return
            inner = nl + " "
            sep, next_sep = "[" + inner, "," + inner
            for v in o:
                if type(v) is str:
                    put(sep + _json_str(v))
                else:
                    put(sep)
                    enc(v, inner)
                sep = next_sep
            put(nl + "]")
        elif o is None:
            put("null")
        elif o is True:
            put("true")
        elif o is False:
            put("false")
        elif isinstance(o, int):
            put(int.__repr__(o))
        elif isinstance(o, float):
            put(_json_float(o))
        elif default is not None:
            enc(default(o), nl)
        else:
            raise TypeError(f"Object of type {o.__class__.__name__} is not JSON serializable")

    enc(obj, "\n")
    text = "".join(out)
    # enc refers to itself through its closure, a cycle that holds `out`: emptied here, or the chunks
    # would stay until the next cyclic collection (none while the outputs are written).
    out.clear()
    return text


def _json_float(o: float) -> str:
    if o != o:
        return "NaN"
    if o == INFINITY:
        return "Infinity"
    if o == -INFINITY:
        return "-Infinity"
    return float.__repr__(o)


def _json_key(k: Any) -> str:
    if k is True:
        return "true"
    if k is False:
        return "false"
    if k is None:
        return "null"
    if isinstance(k, int):
        return int.__repr__(k)
    if isinstance(k, float):
        return _json_float(k)
    raise TypeError(f"keys must be str, int, float, bool or None, not {k.__class__.__name__}")


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
    for i, f in enumerate(sorted((f for f in data.findings if f.failing), key=risk_order), start=1):
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
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(PLAN_COLUMNS)
    for row in rows:
        # A cell starting with = + - @ would be a formula in a spreadsheet: never let finding text run as one.
        w.writerow([f"'{v}" if isinstance(v, str) and v[:1] in ("=", "+", "-", "@") else v
                    for v in (row[k] for k in PLAN_COLUMNS)])
    return buf.getvalue()


def plan_xlsx(rows: list[dict[str, Any]], path: Path, title: str) -> None:
    # Write-only mode streams rows: the normal mode recomputes sheet dimensions per row (quadratic).
    # openpyxl's cost is per cell, more for a cell object than a plain value, and more again for each
    # style set on one (hashed into the workbook's style tables): one of each per cell took 1-1.6 s
    # at 10,000 findings. So unstyled cells go in as plain values, an empty one as no cell at all (it
    # reads back the same, empty), and each wrapped column has one styled cell, given a new value per
    # row: safe, because a write-only sheet writes a row's cells out when the row is appended.
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
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

    def wrapped_cell() -> WriteOnlyCell:
        cell = WriteOnlyCell(ws)
        cell.alignment = wrap
        return cell

    styled = {col: wrapped_cell() for col in PLAN_COLUMNS if col in _WRAPPED}
    for row in rows:
        values: list[Any] = []
        for col in PLAN_COLUMNS:
            v = row[col]
            if isinstance(v, str) and ILLEGAL_CHARACTERS_RE.search(v):
                # Control characters (a device banner, say) cannot be in a worksheet: openpyxl would refuse
                # the whole plan. The CSV keeps them.
                v = ILLEGAL_CHARACTERS_RE.sub("", v)
            if isinstance(v, str) and v[:1] == "=":
                cell = wrapped_cell() if col in styled else WriteOnlyCell(ws)
                cell.value = v
                cell.data_type = "s"  # text, never a formula
                values.append(cell)
            elif col in styled:
                styled[col].value = v
                values.append(styled[col])
            else:
                values.append(None if v == "" else v)
        ws.append(values)
    wb.properties.title = title
    wb.save(path)


MACHINE_FILES = {
    "findings_json": "findings.json",
    "sarif": "findings.sarif",
    "oscal_assessment_results": "oscal-assessment-results.json",
    "oscal_poam": "oscal-poam.json",
    "remediation_csv": "remediation-plan.csv",
    "remediation_xlsx": "remediation-plan.xlsx",
}


@contextmanager
def without_cyclic_gc() -> Iterator[None]:
    """No cyclic garbage collection while the outputs are built.

    They allocate hundreds of thousands of small dicts and lists, which start a full collection
    every so often, and each one walks every object alive (the run's findings, the report data):
    about 0.8 s of the machine outputs at 10,000 findings. What they build is freed by reference
    counting; any cycles left are collected once collection is back on. (The switch is for the whole
    process, so for these seconds another thread's cycles wait too.)
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def write_machine(data: ReportData, out: Path, only: Collection[str] | None = None) -> dict[str, Path]:
    """Every machine output (or those named in `only`, keys of MACHINE_FILES) into `out`."""
    from . import oscal

    unknown = set(only or ()) - MACHINE_FILES.keys()
    if unknown:
        raise ValueError(f"no machine output {', '.join(sorted(unknown))} (outputs: {', '.join(MACHINE_FILES)})")
    out.mkdir(parents=True, exist_ok=True)
    paths = {name: out / file for name, file in MACHINE_FILES.items() if only is None or name in only}
    with without_cyclic_gc():
        if "findings_json" in paths:
            paths["findings_json"].write_text(findings_json_text(data))
        if "sarif" in paths:
            paths["sarif"].write_text(sarif_text(data))
        if "oscal_assessment_results" in paths and "oscal_poam" in paths:
            ar, pm = oscal.documents(data)
            paths["oscal_assessment_results"].write_text(ar)
            paths["oscal_poam"].write_text(pm)
        elif "oscal_assessment_results" in paths:
            paths["oscal_assessment_results"].write_text(oscal.assessment_results(data))
        elif "oscal_poam" in paths:
            paths["oscal_poam"].write_text(oscal.poam(data))
        if "remediation_csv" in paths or "remediation_xlsx" in paths:
            rows = plan_rows(data)
            if "remediation_csv" in paths:
                paths["remediation_csv"].write_text(plan_csv(rows), encoding="utf-8")
            if "remediation_xlsx" in paths:
                plan_xlsx(rows, paths["remediation_xlsx"], f"Remediation plan, run {data.run.id}")
    return paths
