"""What the report says about its own inputs: the advisory feed's date and the fix-by timescales."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from security_checks.compliance.rap import target_days
from security_checks.findings import Severity, Status
from security_checks.report.context import build
from security_checks.store import Store

from .builders import TODAY, finding


def _run_with(store: Store, fs: list) -> str:
    with store.run("assess", estate_dir="x", estate_digest="d", operator="tester") as run:
        run.add(fs)
    return run.id


def test_the_report_names_the_advisory_feed_date_and_age(tmp_path: Path) -> None:
    store = Store(tmp_path)
    feed = finding("patch.advisory_feed_stale", "advisory-feed", Status.PASS)
    feed.details = {"feed_date": "2026-11-20", "age_days": 2, "advisories": 41}
    data = build(store, _run_with(store, [feed]), None, TODAY)
    assert any("advisory feed dated 2026-11-20 (2 day(s) old at this run, 41 advisories)" in n for n in data.notes)

    store2 = Store(tmp_path / "other")
    data = build(store2, _run_with(store2, [finding("t.x", "host:a", Status.FAIL)]), None, TODAY)
    assert not any("advisory feed" in n for n in data.notes)


def test_fix_by_dates_follow_the_remediation_plan_policy(tmp_path: Path) -> None:
    store = Store(tmp_path)
    fs = [finding("t.a", "host:a", Status.FAIL, Severity.HIGH), finding("t.b", "host:b", Status.FAIL, Severity.LOW)]
    data = build(store, _run_with(store, fs), None, TODAY)
    for f in data.findings:
        start = (f.first_seen or data.run.started_at).date()
        assert data.due(f) == start + timedelta(days=target_days(f.severity))
    # Cyber Essentials v3.3: high and critical fixes within 14 days, in the report and the RAP alike.
    assert target_days(Severity.HIGH) == target_days(Severity.CRITICAL) == 14
