"""Everything a report shows about one run, read once from the store (and nothing else).

The HTML site, the PDF and the machine outputs all render from this one `ReportData`, and every
figure in it is a stored row: the run's findings (waivers applied by the runner), the verdicts
computed when the run committed, its evidence index, the scope and waivers as they were then,
the Remediation Action Plan. Nothing here recomputes a verdict, reads evidence JSON for a figure,
or reads the estate: so the board PDF, the HTML and `estate check` can never disagree, and a report
written next year says what the run found, as it found it.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from ..findings import Finding, Severity, Status
from ..remediation import RapItem
from ..store import EvidenceFile, RunInfo, Store
from ..verdicts import REQUIREMENT_STATUSES, FrameworkVerdict
from .grouping import Group, group_by_check

SEVERITIES = ["critical", "high", "medium", "low", "info"]
TREND_RUNS = 12


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
    coverage: dict[str, Any] | None = None


@dataclass
class MatrixTable:
    framework: str
    version: str
    prefix: str
    title: str
    source: str
    verdict: str
    reasons: list[str]
    assessed_on: str
    rows: list[MatrixRow]

    @property
    def counts(self) -> dict[str, int]:
        c = Counter(r.status for r in self.rows)
        return {s: c.get(s, 0) for s in REQUIREMENT_STATUSES}


@dataclass
class ReportData:
    run: RunInfo
    organisation: str
    generated_at: datetime
    findings: list[Finding]
    delta: Delta
    trend: list[TrendPoint]
    matrices: list[MatrixTable]
    evidence: list[EvidenceFile]
    scope: dict[str, Any]
    waivers: list[dict[str, Any]]
    rap: list[RapItem]
    rap_policy: dict[str, Any]
    network: str
    notes: list[str] = field(default_factory=list)

    @property
    def assessed_on(self) -> date:
        return self.run.assessed_on or self.run.started_at.date()

    # -- views the templates use -----------------------------------------------------------------

    @property
    def failing(self) -> list[Finding]:
        return sorted((f for f in self.findings if f.failing), key=risk_order)

    @property
    def open_failing(self) -> list[Finding]:
        return [f for f in self.failing if f.open]

    @property
    def open_groups(self) -> list[Group[Finding]]:
        """Open failing findings, one group per check and title, worst first (pages for people)."""
        return group_by_check(self.open_failing, lambda f: f.check_id, lambda f: f.title, lambda f: f.asset)

    @property
    def accepted(self) -> list[Finding]:
        return [f for f in self.failing if f.accepted]

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

    def rap_counts(self) -> dict[str, int]:
        c = Counter(i.status for i in self.rap)
        return {s: c.get(s, 0) for s in ("open", "mitigated", "accepted", "closed")}

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

    @property
    def segregation_flows(self) -> list[dict[str, Any]]:
        """The segregation matrix's flows that raised a finding, each with its three verdicts (declared
        policy, applied ruleset, observed probe) and the odd one out, as the findings stored them."""
        rows: dict[tuple[str, ...], dict[str, Any]] = {}
        for f in self.findings:
            flow, verdicts = f.details.get("flow"), f.details.get("verdicts")
            if not isinstance(flow, dict) or not isinstance(verdicts, dict):
                continue
            key = tuple(str(flow.get(k)) for k in ("src_zone", "src_site", "dst", "protocol", "port"))
            # The flow's text as the segregation step wrote it (verdicts["flow"]).
            row = rows.setdefault(key, {"flow": "", **verdicts, "findings": []})
            row["findings"].append(f.id)
        order = {"applied": 0, "observed": 1, "declared": 2, "undetermined": 3, "": 4}
        return sorted(rows.values(), key=lambda r: (order.get(str(r.get("disagrees") or ""), 5), r["flow"]))

    def matrix(self, framework: str) -> MatrixTable | None:
        return next((m for m in self.matrices if m.framework == framework), None)

    def finding(self, fid: str) -> Finding | None:
        return self._by_id().get(fid)

    def _by_id(self) -> dict[str, Finding]:
        cache: dict[str, Finding] | None = getattr(self, "_id_cache", None)
        if cache is None:
            cache = {f.id: f for f in self.findings}
            object.__setattr__(self, "_id_cache", cache)
        return cache

    def due(self, f: Finding) -> date | None:
        """The fix-by date the run stored (its RAP item's target date), or None when it has none."""
        return f.fix_by

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
    return (1 if f.accepted else 0, -f.severity.rank, -(f.cvss_score or 0.0), f.id)


def remediation_status(f: Finding) -> str:
    if not f.failing:
        return "passing"
    if f.accepted:
        return "accepted"
    if f.acceptance_lapsed:
        return "reopened"
    return "open"


def acceptance(f: Finding) -> dict[str, Any] | None:
    return f.acceptance.model_dump(mode="json") if f.acceptance else None


# -- building ---------------------------------------------------------------------------------------


def build(store: Store, run_id: str) -> ReportData:
    run = store.get_run(run_id)
    if run is None:
        raise KeyError(f"no run {run_id!r} in {store.home}")
    findings = store.findings(run.id)
    notes: list[str] = []
    ctx = run.context
    if not ctx:
        notes.append("This run was stored before runs recorded their scope and waivers: they are not shown.")
    feed = next((f.details for f in findings if f.check_id == "patch.advisory_feed_stale"), None)
    if feed:
        # Patch results are only as current as the offline advisory feed: say which one they used.
        notes.append(f"Patch compliance used the offline advisory feed dated {feed.get('feed_date')} "
                     f"({feed.get('age_days')} day(s) old at this run, {feed.get('advisories')} advisories).")
    skipped = [s for s in run.steps if s.get("status") != "ran" and not s.get("harness")]
    if skipped:
        notes.append("Not everything was examined in this run: " + "; ".join(
            f"{s['name']} {s['status']} ({s.get('summary', '')})" for s in skipped) + ".")
    return ReportData(
        run=run,
        organisation=str(ctx.get("organisation", "")),
        generated_at=datetime.now(UTC).replace(microsecond=0),
        findings=findings,
        delta=_delta(store, run, findings),
        trend=_trend(store, run),
        matrices=_matrices(store.verdicts(run.id)),
        evidence=store.evidence_files(run.id),
        scope=ctx.get("scope", {}),
        waivers=ctx.get("waivers", []),
        rap=store.rap_items(),
        rap_policy=ctx.get("remediation_policy", {}),
        network=str(ctx.get("network", "PSN")),
        notes=notes,
    )


def _delta(store: Store, run: RunInfo, findings: list[Finding]) -> Delta:
    prev = store.previous_run(run)
    if prev is None:
        return Delta(previous=None, new=[f for f in findings if f.failing])
    before = store.finding_statuses(prev.id)
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
        _status, check_id, asset, severity, title = before[fid]
        delta.fixed.append({"id": fid, "check_id": check_id, "asset": asset, "severity": severity, "title": title,
                            "now": current.status.value if current else "not reported this run"})
    return delta


def _trend(store: Store, run: RunInfo) -> list[TrendPoint]:
    runs = [r for r in store.runs(kind=run.kind) if r.id <= run.id][:TREND_RUNS]
    runs.reverse()
    counts = store.failing_by_severity(r.id for r in runs)
    return [TrendPoint(r.id, r.started_at.isoformat(), {s: counts[r.id].get(s, 0) for s in SEVERITIES})
            for r in runs]


def _matrices(verdicts: list[FrameworkVerdict]) -> list[MatrixTable]:
    out = []
    for v in verdicts:
        if not v.in_force:   # other Cyber Essentials versions: in the machine outputs, not the pages
            continue
        rows = [MatrixRow(ref=r.ref, framework=v.framework, control=r.control, title=r.title,
                          requirement=r.requirement, clause=r.clause, auto_fail=r.auto_fail, manual=r.manual,
                          status=r.status, reason=r.reason, checks=list(r.checks), failing=list(r.failing),
                          evidence_findings=list(r.evidence), attestation=r.attestation, coverage=r.coverage)
                for r in v.requirements]
        out.append(MatrixTable(v.framework, v.version, v.prefix, v.title, v.source, v.verdict, v.reasons,
                               v.assessed_on, rows))
    # Cyber Essentials first (the certificate the board asks about), then PSN, then the rest.
    order = {"cyber-essentials": 0, "psn": 1}
    return sorted(out, key=lambda m: (order.get(m.framework, 2), m.framework))


def is_failing_status(status: str) -> bool:
    return status in (Status.FAIL.value, Status.ERROR.value)


def severity_rank(value: str) -> int:
    return Severity(value).rank
