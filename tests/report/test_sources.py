"""What the report says about its own inputs: the advisory feed's date and the fix-by timescales."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from security_checks.findings import Severity, Status
from security_checks.model.loader import LoadedEstate
from security_checks.report.context import build
from security_checks.store import Store
from tests.runs import run_with

from .builders import TODAY, demo_loaded, finding


def test_the_report_names_the_advisory_feed_date_and_age(tmp_path: Path) -> None:
    loaded = demo_loaded()
    feed = finding("patch.advisory_feed_stale", "advisory-feed", Status.PASS)
    feed.details = {"feed_date": "2026-11-20", "age_days": 2, "advisories": 41}
    run = run_with(tmp_path, loaded, [feed], today=TODAY).run.id
    with Store(tmp_path) as store:
        data = build(store, run)
    assert any("advisory feed dated 2026-11-20 (2 day(s) old at this run, 41 advisories)" in n for n in data.notes)

    run = run_with(tmp_path / "other", loaded, [finding("t.x", "host:a", Status.FAIL)], today=TODAY).run.id
    with Store(tmp_path / "other") as store:
        data = build(store, run)
    assert not any("advisory feed" in n for n in data.notes)


def test_fix_by_dates_are_the_remediation_plans(tmp_path: Path) -> None:
    loaded: LoadedEstate = demo_loaded()
    fs = [finding("t.a", "host:a", Status.FAIL, Severity.HIGH), finding("t.b", "host:b", Status.FAIL, Severity.LOW)]
    run = run_with(tmp_path, loaded, fs, today=TODAY).run.id
    policy = loaded.estate.organisation.remediation_timescales
    assert policy is not None
    with Store(tmp_path) as store:
        data = build(store, run)
        targets = {i.finding_id: i.target_date for i in store.rap_items()}
    for f in data.findings:
        # One date per finding, the RAP item's: the report, the PDF and the plan cannot disagree.
        assert data.due(f) is not None and data.due(f).isoformat() == targets[f.id]  # type: ignore[union-attr]
        assert data.due(f) == TODAY + timedelta(days=getattr(policy, f.severity.value))
    # Cyber Essentials v3.3: high and critical fixes within 14 days.
    assert policy.high == policy.critical == 14
    assert data.rap_policy["source"] == policy.source
