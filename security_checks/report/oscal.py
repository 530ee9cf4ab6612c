"""OSCAL assessment-results and POA&M, as compliance-trestle's models write them (its OSCAL version).

Mapping: each finding is an OSCAL observation; each control requirement evaluated is an OSCAL finding
whose target is the requirement, satisfied or not; each open failing finding is a risk and a POA&M
item (the PSN remediation action plan maps onto the POA&M). UUIDs are derived from the run and the
finding id, so the same run always gives the same documents.

The documents are built as plain dicts, not trestle models. At 10,000 findings, a model per
observation and risk, trestle's serialisation and one validation of each whole document took 10-12 s,
most of all the machine outputs' time (validation about 5 s, serialisation about 4 s, building and
UUIDs the rest); the dicts and the C JSON encoder take under a second. So the dicts are what trestle
writes: the same keys in the same order (the models' field order), datetimes as trestle writes them
(UTC, +00:00), no nulls or empty lists, JSON as trestle's orjson encodes it (compact, UTF-8 as is).
tests/report/test_machine_scale.py reads both documents into trestle's models and checks that
trestle writes back exactly these bytes. What a finding supplies is made valid here (titles on one
line and never empty), not left to a validator that would refuse the whole report.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from trestle.oscal import OSCAL_VERSION

from ..findings import Finding, Status
from .context import ReportData, acceptance, risk_order

_NS = bytes.fromhex("6b3f3a4e5c1d4f0e9a572c3e1f0d7a11")   # the UUID namespace of every estate document
_PROP_NS = "https://estate.invalid/ns"
# uuid5's version (5) and variant (RFC 4122) bits, applied to the first 16 bytes of the SHA-1.
_UUID_CLEAR = ~((0xF000 << 64) | (0xC000 << 48)) & ((1 << 128) - 1)
_UUID_SET = (0x5000 << 64) | (0x8000 << 48)


def _uuid(*parts: str) -> str:
    """uuid.uuid5(namespace, "\\0".join(parts)), without building UUID objects (tens of thousands per report)."""
    digest = hashlib.sha1(_NS + "\0".join(parts).encode(), usedforsecurity=False).digest()
    n = int.from_bytes(digest[:16]) & _UUID_CLEAR | _UUID_SET
    h = f"{n:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


@lru_cache(maxsize=1024)   # most findings of a run share a few timestamps (when the run saw them)
def _dt(value: datetime) -> str:
    # As trestle writes a datetime (robust_datetime_serialization): UTC, +00:00, milliseconds only if any.
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"OSCAL datetimes need a timezone: {value!r}")
    utc = value.astimezone(UTC)
    return utc.isoformat(timespec="seconds" if utc.microsecond == 0 else "milliseconds")


def _line(text: str, fallback: str) -> str:
    # OSCAL titles are one non-empty line (pattern ^[^\n]+$).
    if text and "\n" not in text:
        return text
    return " ".join(text.split()) or fallback


def _props(fid: str, severity: str) -> list[dict[str, str]]:
    return [{"name": "finding-id", "ns": _PROP_NS, "value": fid},
            {"name": "severity", "ns": _PROP_NS, "value": severity}]


class _Parts:
    """Observations, risks and UUIDs, each built once and shared by both documents.

    A finding's id is a hash of its check, asset and key (a property, computed on every access), so
    it is computed once here too.
    """

    def __init__(self, data: ReportData) -> None:
        self.data, self.run = data, data.run.id
        self.findings = [(f.id, f) for f in data.findings]
        self.failing = sorted((p for p in self.findings if p[1].failing), key=lambda p: risk_order(p[1]))
        self._uuids: dict[tuple[str, str], str] = {}
        self._observations: dict[str, dict[str, Any]] = {}
        self._risks: dict[str, dict[str, Any]] = {}

    def uuid(self, kind: str, fid: str) -> str:
        u = self._uuids.get((kind, fid))
        if u is None:
            u = self._uuids[kind, fid] = _uuid(self.run, kind, fid)
        return u

    def observation_ref(self, fid: str) -> dict[str, str]:
        return {"observation-uuid": self.uuid("obs", fid)}

    def risk_ref(self, fid: str) -> dict[str, str]:
        return {"risk-uuid": self.uuid("risk", fid)}

    def observation(self, fid: str, f: Finding) -> dict[str, Any]:
        obs = self._observations.get(fid)
        if obs is not None:
            return obs
        desc = f.title + (f" ({f.key})" if f.key else "") + f" on {f.asset}: {f.status.value}"
        if f.observed:
            desc += f". Observed: {f.observed}"
        if f.expected:
            desc += f". Expected: {f.expected}"
        obs = {"uuid": self.uuid("obs", fid), "title": _line(f"{fid} {f.check_id}", fid), "description": desc,
               "props": _props(fid, f.severity.value),
               "methods": ["EXAMINE" if f.status is Status.MANUAL else "TEST"]}
        if f.failing:
            obs["types"] = ["finding"]
        if f.evidence:
            obs["relevant-evidence"] = [{"href": "evidence/" + e.path, "description": e.description or e.path}
                                        for e in f.evidence]
        obs["collected"] = _dt(f.last_seen or self.data.run.started_at)
        self._observations[fid] = obs
        return obs

    def risk(self, fid: str, f: Finding) -> dict[str, Any]:
        risk = self._risks.get(fid)
        if risk is not None:
            return risk
        acc = acceptance(f)
        accepted_note = (f" Risk accepted by {acc['approved_by']} on {acc['approved_on']} until {acc['expires']}: "
                         f"{acc['justification']}") if acc else ""
        risk = {"uuid": self.uuid("risk", fid), "title": _line(f.title, f.check_id),
                "description": f"{f.title} on {f.asset}.{accepted_note}",
                "statement": " ".join((f.remediation or "No remediation recorded.").split()),
                "props": _props(fid, f.severity.value), "status": "risk-accepted" if acc else "open"}
        due = self.data.due(f)
        if not acc and f.fix_by and due is not None:
            # 23:59 on the fix-by date.
            risk["deadline"] = _dt(datetime(due.year, due.month, due.day, 23, 59, tzinfo=self.data.generated_at.tzinfo))
        risk["related-observations"] = [self.observation_ref(fid)]
        self._risks[fid] = risk
        return risk


def _metadata(data: ReportData, title: str) -> dict[str, Any]:
    return {"title": _line(title, "estate"), "last-modified": _dt(data.generated_at), "version": data.run.id,
            "oscal-version": OSCAL_VERSION,
            "remarks": f"Generated by estate from run {data.run.id} ({data.run.kind}) of "
                       f"{data.organisation or 'the estate'}."}


def assessment_results(data: ReportData, parts: _Parts | None = None) -> str:
    p = parts or _Parts(data)
    run = data.run.id
    oscal_findings = []
    for m in data.matrices:
        for row in m.rows:
            target: dict[str, Any] = {"type": "objective-id", "target-id": _token(row.ref)}
            if row.title:
                target["title"] = _line(row.title, row.ref)
            # OSCAL knows satisfied or not; the prop keeps estate's own status ("declared": met only on
            # the estate's declarations, not verified) for tools that read it. Keys in trestle's order.
            target["props"] = [{"name": "estate-status", "ns": _PROP_NS, "value": row.status}]
            target["status"] = {"state": "satisfied" if row.status == "met" else "not-satisfied",
                                "reason": _reason(row.status)}
            finding: dict[str, Any] = {
                "uuid": _uuid(run, "req", row.ref), "title": _line(f"{row.ref} {row.title}", row.ref),
                "description": f"{row.status.replace('_', ' ')}: {row.reason}", "target": target}
            if row.evidence_findings:
                finding["related-observations"] = [p.observation_ref(fid) for fid in row.evidence_findings]
            if row.failing:
                finding["related-risks"] = [p.risk_ref(fid) for fid in row.failing]
            remarks = _attestation_remark(row.attestation)
            if remarks is not None:
                finding["remarks"] = remarks
            oscal_findings.append(finding)
    result: dict[str, Any] = {
        "uuid": _uuid(run, "result"), "title": f"Assessment run {run}",
        "description": f"{data.run.kind} run by {data.run.operator}; estate digest {data.run.estate_digest}",
        "start": _dt(data.run.started_at)}
    if data.run.finished_at is not None:
        result["end"] = _dt(data.run.finished_at)
    result["reviewed-controls"] = {"control-selections": [{
        "description": "Every requirement of the control catalogue in force", "include-all": {}}]}
    observations = [p.observation(fid, f) for fid, f in sorted(p.findings, key=lambda x: x[0])]
    risks = [p.risk(fid, f) for fid, f in p.failing]
    if observations:
        result["observations"] = observations
    if risks:
        result["risks"] = risks
    if oscal_findings:
        result["findings"] = oscal_findings
    doc = {
        "uuid": _uuid(run, "assessment-results"),
        "metadata": _metadata(data, f"Security assessment results: {data.organisation or 'estate'}"),
        "import-ap": {"href": "#assessment-plan", "remarks": "The assessment plan is the estate model's "
                      "scan scopes and the control catalogue, recorded in the run's evidence."},
        "results": [result],
    }
    return _serialise({"assessment-results": doc})


def poam(data: ReportData, parts: _Parts | None = None) -> str:
    p = parts or _Parts(data)
    run = data.run.id
    items = []
    for fid, f in p.failing:
        items.append({
            "uuid": p.uuid("poam", fid), "title": _line(f"{f.title} on {f.asset}", fid),
            "description": " ".join((f.remediation or "No remediation recorded.").split()),
            "props": _props(fid, f.severity.value),
            "related-observations": [p.observation_ref(fid)], "related-risks": [p.risk_ref(fid)]})
    doc: dict[str, Any] = {
        "uuid": _uuid(run, "poam"),
        "metadata": _metadata(data, f"Plan of action and milestones: {data.organisation or 'estate'}"),
        "system-id": {"identifier-type": "https://ietf.org/rfc/rfc4122", "id": _uuid("system", data.organisation)},
    }
    if p.failing:
        doc["observations"] = [p.observation(fid, f) for fid, f in p.failing]
        doc["risks"] = [p.risk(fid, f) for fid, f in p.failing]
    doc["poam-items"] = items or [{"uuid": _uuid(run, "poam", "none"), "title": "No open items",
                                   "description": "The run found no failing findings."}]
    return _serialise({"plan-of-action-and-milestones": doc})


def documents(data: ReportData) -> tuple[str, str]:
    """(assessment results, POA&M): the two share their observations and risks, built once."""
    parts = _Parts(data)
    return assessment_results(data, parts), poam(data, parts)


def _serialise(wrapped: dict[str, Any]) -> str:
    # Byte for byte what trestle's oscal_serialize_json (orjson, compact) writes for the same document.
    return json.dumps(wrapped, ensure_ascii=False, separators=(",", ":"))


def _token(ref: str) -> str:
    # OSCAL tokens allow no colon: CE3.3:FW-1 becomes CE3.3_FW-1.
    return ref.replace(":", "_")


def _reason(status: str) -> str:
    return {"met": "pass", "not_met": "fail"}.get(status, "other")


def _attestation_remark(att: dict[str, Any] | None) -> str | None:
    if not att:
        return None
    return f"Attested by {att['attested_by']} on {att['attested_on']}: {att['statement']}"
