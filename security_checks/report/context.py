"""Everything a report shows about one run, gathered once from the store, the catalogue and the estate.

The HTML site, the PDF and the machine outputs all render from this one `ReportData`, so they can
never disagree about what a run found. Nothing here formats for people: that is the templates' job.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from ..compliance.rap import target_days
from ..evidence.scrub import withheld_reason
from ..findings import Finding, Severity, Status
from ..model.loader import LoadedEstate
from ..store import RunInfo, Store
from ..waivers import accepted

SEVERITIES = ["critical", "high", "medium", "low", "info"]
TREND_RUNS = 12


@dataclass
class EvidenceFile:
    path: str             # relative to the run's evidence directory (and to the site's evidence/)
    size: int
    sha256: str
    withheld: str | None  # why it is not copied into reports and bundles (secrets), or None


@dataclass
class Delta:
    previous: str | None
    new: list[Finding] = field(default_factory=list)
    fixed: list[dict[str, Any]] = field(default_factory=list)   # {id, check_id, asset, title, severity, now}
    still_open: list[Finding] = field(default_factory=list)


@dataclass
class TrendPoint:
    run_id: str
    started_at: str
    counts: dict[str, int]   # failing findings by severity


@dataclass
class MatrixRow:
    ref: str
    framework: str
    control: str
    title: str
    requirement: str
    clause: str
    auto_fail: bool
    manual: bool
    status: str
    reason: str
    checks: list[str]
    failing: list[str]          # finding ids
    evidence_findings: list[str]
    attestation: dict[str, Any] | None


@dataclass
class MatrixTable:
    framework: str
    version: str
    prefix: str
    title: str
    source: str
    rows: list[MatrixRow]

    @property
    def counts(self) -> dict[str, int]:
        c = Counter(r.status for r in self.rows)
        return {s: c.get(s, 0) for s in ("met", "not_met", "risk_accepted", "manual", "not_assessed")}


@dataclass
class ReportData:
    run: RunInfo
    organisation: str
    generated_at: datetime
    today: date
    findings: list[Finding]
    delta: Delta
    trend: list[TrendPoint]
    matrices: list[MatrixTable]
    evidence: list[EvidenceFile]
    scope: dict[str, Any]
    waivers: list[dict[str, Any]]
    compliance: dict[str, Any]        # ce.json / psn.json written by the compliance step, when present
    notes: list[str]

    # -- views the templates use -----------------------------------------------------------------

    @property
    def failing(self) -> list[Finding]:
        return sorted((f for f in self.findings if f.failing), key=risk_order)

    @property
    def open_failing(self) -> list[Finding]:
        return [f for f in self.failing if not f.details.get("accepted")]

    @property
    def accepted(self) -> list[Finding]:
        return [f for f in self.failing if f.details.get("accepted")]

    def severity_counts(self, only_open: bool = True) -> dict[str, int]:
        pool = self.open_failing if only_open else self.failing
        c = Counter(f.severity.value for f in pool)
        return {s: c.get(s, 0) for s in SEVERITIES}

    def status_counts(self) -> dict[str, int]:
        c = Counter(f.status.value for f in self.findings)
        return {s.value: c.get(s.value, 0) for s in Status}

    def remediation_counts(self) -> dict[str, int]:
        c = Counter(remediation_status(f) for f in self.failing)
        return {"open": c.get("open", 0), "reopened": c.get("reopened", 0), "accepted": c.get("accepted", 0),
                "fixed since last run": len(self.delta.fixed)}

    def area_counts(self) -> list[tuple[str, dict[str, int]]]:
        """Open failing findings by control area (of the estate's Cyber Essentials version) and severity."""
        area_of = self._area_index()
        table: dict[str, Counter[str]] = {}
        for f in self.open_failing:
            areas = sorted({area_of[c] for c in f.controls if c in area_of}) or ["not mapped to a control"]
            for a in areas:
                table.setdefault(a, Counter())[f.severity.value] += 1
        return [(a, {s: table[a].get(s, 0) for s in SEVERITIES}) for a in sorted(table)]

    def _area_index(self) -> dict[str, str]:
        # Cyber Essentials' five control areas when it is there (one vocabulary, the one the board knows).
        ce = [m for m in self.matrices if m.framework == "cyber-essentials"]
        return {r.ref: r.control for m in (ce or self.matrices) for r in m.rows}

    def finding(self, fid: str) -> Finding | None:
        return self._by_id().get(fid)

    def _by_id(self) -> dict[str, Finding]:
        cache: dict[str, Finding] | None = getattr(self, "_id_cache", None)
        if cache is None:
            cache = {f.id: f for f in self.findings}
            object.__setattr__(self, "_id_cache", cache)
        return cache

    def due(self, f: Finding) -> date:
        seen = (f.first_seen or self.run.started_at).date()
        # The same timescales as the Remediation Action Plan: one policy file, one set of dates.
        return seen + timedelta(days=target_days(f.severity))

    @property
    def filter_values(self) -> dict[str, list[str]]:
        pool = self.failing
        return {
            "site": sorted({f.site for f in pool if f.site}),
            "asset": sorted({f.asset for f in pool}),
            "severity": [s for s in SEVERITIES if any(f.severity.value == s for f in pool)],
            "control": sorted({c for f in pool for c in f.controls}),
        }


def risk_order(f: Finding) -> tuple[int, int, float, str]:
    """Worst first: open before accepted, then severity, then CVSS, then id (stable)."""
    return (1 if f.details.get("accepted") else 0, -f.severity.rank, -(f.cvss_score or 0.0), f.id)


def remediation_status(f: Finding) -> str:
    if not f.failing:
        return "passing"
    if f.details.get("accepted"):
        return "accepted"
    if f.details.get("acceptance_expired"):
        return "reopened"
    return "open"


def acceptance(f: Finding) -> dict[str, Any] | None:
    a = accepted(f)
    return a.model_dump(mode="json") if a else None


# -- building ---------------------------------------------------------------------------------------


def build(store: Store, run_id: str, loaded: LoadedEstate | None, today: date | None = None) -> ReportData:
    run = store.get_run(run_id)
    if run is None:
        raise KeyError(f"no run {run_id!r} in {store.home}")
    findings = store.findings(run.id)
    notes: list[str] = []
    if loaded is not None and loaded.digest != run.estate_digest:
        notes.append("The estate model has changed since this run: the scope statement, waivers and attestations "
                     "shown are the current ones, not necessarily those the run assessed.")
    if loaded is None:
        notes.append("The estate model was not available: scope statement, waivers and attestations are not shown.")
    feed = next((f.details for f in findings if f.check_id == "patch.advisory_feed_stale"), None)
    if feed:
        # Patch results are only as current as the offline advisory feed: say which one they used.
        notes.append(f"Patch compliance used the offline advisory feed dated {feed.get('feed_date')} "
                     f"({feed.get('age_days')} day(s) old at this run, {feed.get('advisories')} advisories).")
    today = today or date.today()
    return ReportData(
        run=run,
        organisation=loaded.estate.organisation.name if loaded else "",
        generated_at=datetime.now(UTC).replace(microsecond=0),
        today=today,
        findings=findings,
        delta=_delta(store, run, findings),
        trend=_trend(store, run),
        matrices=_matrices(findings, loaded, today),
        evidence=evidence_files(store.evidence_dir(run.id)),
        scope=_scope(loaded),
        waivers=_waivers(loaded, today),
        compliance=_compliance(store.evidence_dir(run.id)),
        notes=notes,
    )


def _delta(store: Store, run: RunInfo, findings: list[Finding]) -> Delta:
    prev = store.previous_run(run)
    if prev is None:
        return Delta(previous=None, new=[f for f in findings if f.failing])
    before = {r[0]: (r[1], r[2], r[3], r[4], r[5]) for r in store.db.execute(
        "SELECT id, status, check_id, asset, severity, data FROM findings WHERE run_id = ?", (prev.id,))}
    was_failing = {fid for fid, row in before.items() if row[0] in ("fail", "error")}
    now = {f.id: f for f in findings}
    delta = Delta(previous=prev.id)
    for f in sorted(findings, key=risk_order):
        if f.failing:
            (delta.still_open if f.id in was_failing else delta.new).append(f)
    for fid in sorted(was_failing):
        current = now.get(fid)
        if current is not None and current.failing:
            continue
        _status, check_id, asset, severity, data = before[fid]
        delta.fixed.append({"id": fid, "check_id": check_id, "asset": asset, "severity": severity,
                            "title": json.loads(data).get("title", ""),
                            "now": current.status.value if current else "not reported this run"})
    return delta


def _trend(store: Store, run: RunInfo) -> list[TrendPoint]:
    runs = [r for r in store.runs(kind=run.kind) if r.id <= run.id][:TREND_RUNS]
    runs.reverse()
    if not runs:
        return []
    marks = ",".join("?" * len(runs))
    counts: dict[str, Counter[str]] = {r.id: Counter() for r in runs}
    for run_id, severity, n in store.db.execute(
            f"SELECT run_id, severity, COUNT(*) FROM findings WHERE run_id IN ({marks})"  # noqa: S608
            " AND status IN ('fail', 'error') GROUP BY run_id, severity", [r.id for r in runs]):
        counts[run_id][severity] = n
    return [TrendPoint(r.id, r.started_at.isoformat(), {s: counts[r.id].get(s, 0) for s in SEVERITIES})
            for r in runs]


def _matrices(findings: list[Finding], loaded: LoadedEstate | None, today: date) -> list[MatrixTable]:
    from ..catalogue import frameworks
    from ..catalogue.matrix import evaluate

    attestations = loaded.estate.attestations if loaded else []
    try:
        fws = list(frameworks())
    except ValueError:
        return []
    wanted_ce = loaded.estate.organisation.ce_version if loaded else None
    out = []
    for fw in fws:
        # Show the Cyber Essentials version in force for this council (other versions would repeat it).
        if fw.framework == "cyber-essentials" and wanted_ce and fw.version != wanted_ce:
            continue
        rows = []
        for r in evaluate(fw, findings, attestations, today):
            att = r.attestation.model_dump(mode="json") if r.attestation else None
            rows.append(MatrixRow(
                ref=r.ref, framework=fw.framework, control=r.requirement.control, title=r.requirement.title,
                requirement=r.requirement.requirement, clause=r.requirement.clause,
                auto_fail=r.requirement.auto_fail, manual=r.requirement.manual, status=r.status.value,
                reason=r.reason, checks=list(r.requirement.checks),
                failing=[f.id for f in sorted(r.failing, key=risk_order)],
                evidence_findings=[f.id for f in r.findings], attestation=att))
        out.append(MatrixTable(fw.framework, fw.version, fw.prefix, fw.title, fw.source, rows))
    # Cyber Essentials first (the certificate the board asks about), then PSN, then the rest.
    order = {"cyber-essentials": 0, "psn": 1}
    return sorted(out, key=lambda m: (order.get(m.framework, 2), m.framework))


def evidence_files(root: Path) -> list[EvidenceFile]:
    out: list[EvidenceFile] = []
    if not root.is_dir():
        return out
    for path in sorted(p for p in root.rglob("*") if p.is_file() and not p.is_symlink()):
        rel = path.relative_to(root).as_posix()
        out.append(EvidenceFile(rel, path.stat().st_size, sha256_file(path), withheld_reason(rel)))
    return out


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _scope(loaded: LoadedEstate | None) -> dict[str, Any]:
    if loaded is None:
        return {}
    e = loaded.estate
    return {
        "organisation": e.organisation.name,
        "ce_version": e.organisation.ce_version,
        "sites": [{"name": s.name, "title": s.title, "kind": s.kind.value, "ranges": [str(r) for r in s.ranges],
                   "firewall": s.firewall or ""} for s in e.sites],
        "device_groups": [{"name": g.name, "os": g.os.value, "count": g.count, "managed_by": g.managed_by,
                           "sites": g.sites if isinstance(g.sites, str) else ", ".join(g.sites)}
                          for g in e.endpoint_groups],
        "cloud_services": [{"name": lob.name, "title": lob.title, "hosting": lob.hosting.value,
                            "supplier": lob.supplier, "owner": lob.owner, "mfa_enforced": lob.mfa_enforced}
                           for lob in e.lob_systems],
        "firewalls": [{"name": f.name, "vendor": f.vendor, "site": f.site, "rules": len(f.rules)} for f in e.firewalls],
        "scan_scopes": [{"name": s.name, "cidrs": [str(c) for c in s.cidrs], "exclusions": list(s.exclusions),
                         "authorised_by": s.authorised_by, "authorised_on": s.authorised_on.isoformat(),
                         "expires": s.expires.isoformat() if s.expires else "", "purpose": s.purpose,
                         "max_profile": s.max_profile} for s in e.scan_scopes],
    }


def _waivers(loaded: LoadedEstate | None, today: date) -> list[dict[str, Any]]:
    if loaded is None:
        return []
    out = []
    for w in loaded.estate.waivers:
        d = w.model_dump(mode="json")
        d["state"] = "active" if w.expires >= today else "expired"
        d["target"] = w.finding or " on ".join(x for x in (w.check, w.asset) if x)
        out.append(d)
    return out


def _compliance(root: Path) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in ("ce", "psn"):
        path = root / "compliance" / f"{name}.json"
        if path.is_file():
            try:
                out[name] = json.loads(path.read_text())
            except (OSError, ValueError) as exc:
                out[name] = {"error": f"{path.name} could not be read: {exc}"}
    return out


def is_failing_status(status: str) -> bool:
    return status in (Status.FAIL.value, Status.ERROR.value)


def severity_rank(value: str) -> int:
    return Severity(value).rank
