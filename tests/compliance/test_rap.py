"""The Remediation Action Plan across runs, each applied by the runner at commit: opening, owners
and target dates, accepted risk and its expiry, closing only on evidence, reopening."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest

from security_checks.checks import make_finding
from security_checks.compliance.rap import owner_for
from security_checks.findings import Finding, Status
from security_checks.model.loader import LoadedEstate, load_estate
from security_checks.model.schema import Estate, Waiver
from security_checks.remediation import RapItem
from security_checks.store import Store
from tests.runs import run_with

DEMO = Path(__file__).resolve().parents[2] / "inventory" / "demo"
DAY0 = date(2026, 11, 22)


@pytest.fixture
def loaded() -> LoadedEstate:
    return load_estate(DEMO)


@pytest.fixture
def estate(loaded: LoadedEstate) -> Estate:
    return loaded.estate


def overdue() -> Finding:
    return make_finding("patch.security_update_overdue", "host:lab-debian-01", Status.FAIL, key="openssl",
                        cvss_vector="CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H")


def rule() -> Finding:
    return make_finding("ce.firewall_rule_review", "firewall:fw-civic", Status.FAIL, key="CIV-004",
                        details={"rule": "CIV-004"})


def mfa_ok() -> Finding:
    return make_finding("ce.cloud_mfa", "lob:finance", Status.PASS)


def items(home: Path) -> list[RapItem]:
    with Store(home) as store:
        return store.rap_items()


def test_items_open_with_owner_action_and_target_by_severity(tmp_path: Path, loaded: LoadedEstate) -> None:
    out = run_with(tmp_path, loaded, [overdue(), rule(), mfa_ok()], today=DAY0)
    assert out.rap["opened"] == 2
    got = {i.check_id: i for i in items(tmp_path)}
    patch = got["patch.security_update_overdue"]
    assert patch.severity == "critical" and patch.cvss_score == 9.8
    assert patch.target_date == (DAY0 + timedelta(days=14)).isoformat()
    assert patch.owner.startswith("Aisha Okafor") and patch.owner_source.startswith("security lead")
    assert "Install the update" in patch.action and patch.status == "open" and patch.first_run == out.run.id
    fw = got["ce.firewall_rule_review"]
    assert fw.owner == "Head of Revenues and Benefits" and fw.owner_source == "firewall rule fw-civic/CIV-004"
    assert fw.target_date == (DAY0 + timedelta(days=90)).isoformat()   # low, by the demo council's policy
    assert "ce.cloud_mfa" not in got   # passing findings are not remediation items
    # The finding as stored carries its item's target date: the report's "fix by" is the RAP's.
    stored = {f.check_id: f for f in out.findings}
    assert stored["patch.security_update_overdue"].fix_by == DAY0 + timedelta(days=14)


def test_target_dates_follow_the_estates_own_policy_or_say_they_are_the_default(tmp_path: Path,
                                                                              loaded: LoadedEstate) -> None:
    estate = loaded.estate
    assert estate.organisation.remediation_timescales is not None
    estate.organisation.remediation_timescales = None   # a council that declared none
    out = run_with(tmp_path, loaded, [rule()], today=DAY0)
    assert out.run.context["remediation_policy"]["source"].startswith("estate default")
    assert "Harrowdale" not in out.run.context["remediation_policy"]["source"]


def test_owner_from_declared_host_and_lob(estate: Estate) -> None:
    host = next(h for h in estate.declared_hosts if h.owner or h.lob)
    f = make_finding("scan.undeclared_port", f"host:{host.address}", Status.FAIL, key="tcp/23")
    owner, source = owner_for(f, estate)
    assert source.startswith(("declared host", "LOB system"))
    assert owner in {host.owner, *(lob.owner for lob in estate.lob_systems if lob.name == host.lob)}
    lob = estate.lob_systems[0]
    assert owner_for(make_finding("ce.cloud_mfa", f"lob:{lob.name}", Status.FAIL), estate)[0] == lob.owner


def test_accepted_risk_returns_to_open_after_expiry(tmp_path: Path, loaded: LoadedEstate) -> None:
    waiver = Waiver(check="patch.security_update_overdue", asset="host:lab-*",
                    justification="Kiosk vendor fix is being tested; kiosks are isolated.",
                    approved_by="Priya Natarajan (SIRO)", approved_on=DAY0, expires=DAY0 + timedelta(days=10))
    run_with(tmp_path, loaded, [overdue()], today=DAY0)
    loaded.estate.waivers = [waiver]
    out = run_with(tmp_path, loaded, [overdue()], today=DAY0 + timedelta(days=1))
    assert out.rap["accepted"] == 1
    # The runner applied the waiver once, into the finding's typed field, and stored it so.
    stored = next(f for f in out.findings if f.check_id == "patch.security_update_overdue")
    assert stored.accepted and stored.acceptance is not None and stored.acceptance.approved_by.startswith("Priya")
    item = items(tmp_path)[0]
    assert item.status == "accepted" and item.acceptance and item.acceptance["approved_by"].startswith("Priya")
    # The waiver is still in the estate but past its expiry: the finding is open again.
    out = run_with(tmp_path, loaded, [overdue()], today=DAY0 + timedelta(days=11))
    stored = next(f for f in out.findings if f.check_id == "patch.security_update_overdue")
    assert not stored.accepted and stored.acceptance_lapsed == DAY0 + timedelta(days=10)
    item = items(tmp_path)[0]
    assert item.status == "open" and item.acceptance is None
    assert item.history[-1]["reason"] == f"acceptance expired on {(DAY0 + timedelta(days=10)).isoformat()}: open again"
    assert [h["to_status"] for h in item.history] == ["open", "accepted", "open"]


def test_stored_acceptance_past_expiry_reopens_even_when_the_finding_is_not_reported(
        tmp_path: Path, loaded: LoadedEstate) -> None:
    loaded.estate.waivers = [Waiver(check="ce.firewall_rule_review", justification="Review meeting booked for January.",
                                    approved_by="SIRO", approved_on=DAY0, expires=DAY0 + timedelta(days=5))]
    run_with(tmp_path, loaded, [rule()], today=DAY0)
    assert items(tmp_path)[0].status == "accepted"
    run_with(tmp_path, loaded, [mfa_ok()], today=DAY0 + timedelta(days=6), full_scope=False)
    assert items(tmp_path)[0].status == "open"


def test_closes_on_absence_from_full_scope_run_and_reopens(tmp_path: Path, loaded: LoadedEstate) -> None:
    run_with(tmp_path, loaded, [overdue(), rule()], today=DAY0)
    # Partial run without them: nothing closes.
    run_with(tmp_path, loaded, [mfa_ok()], today=DAY0 + timedelta(days=1), full_scope=False)
    assert {i.status for i in items(tmp_path)} == {"open"}
    # Full-scope run whose patch step ran and did not report the overdue fix: closed, with that run
    # as evidence. The rule item stays open: it was reported again.
    up = make_finding("patch.up_to_date", "host:lab-debian-01", Status.PASS)
    out = run_with(tmp_path, loaded, [up, rule()], today=DAY0 + timedelta(days=2))
    got = {i.check_id: i for i in items(tmp_path)}
    assert out.rap["closed"] == 1
    closed = got["patch.security_update_overdue"]
    assert closed.status == "closed" and closed.retest_run == out.run.id
    assert closed.history[-1]["reason"] == f"absent from full-scope run {out.run.id}"
    assert got["ce.firewall_rule_review"].status == "open"
    # It comes back: reopened, with a new target date from that day.
    out = run_with(tmp_path, loaded, [overdue(), rule()], today=DAY0 + timedelta(days=30))
    item = next(i for i in items(tmp_path) if i.check_id == "patch.security_update_overdue")
    assert out.rap["reopened"] == 1 and item.status == "open" and item.last_seen_run == out.run.id
    assert item.target_date == (DAY0 + timedelta(days=44)).isoformat()
    assert [h["to_status"] for h in item.history] == ["open", "closed", "open"]


def test_full_scope_run_whose_step_does_not_run_the_check_does_not_close(tmp_path: Path,
                                                                         loaded: LoadedEstate) -> None:
    run_with(tmp_path, loaded, [overdue()], today=DAY0)
    # A full-scope run whose only step emits ce.* checks: the patch check did not run.
    run_with(tmp_path, loaded, [mfa_ok()], today=DAY0 + timedelta(days=1), checks=("ce.*",))
    assert items(tmp_path)[0].status == "open"


def test_an_unreadable_asset_never_closes_its_items(tmp_path: Path, loaded: LoadedEstate) -> None:
    run_with(tmp_path, loaded, [overdue()], today=DAY0)
    # Full scope, the patch check ran, the finding is absent, but the run says the host could not be
    # read: absence is not evidence of a fix.
    unread = make_finding("patch.security_update_overdue", "host:lab-debian-01", Status.ERROR, key="patch-state",
                          observed="patch state not read: apt-get exited 100 (disk full)")
    out = run_with(tmp_path, loaded, [unread], today=DAY0 + timedelta(days=1))
    assert items(tmp_path)[0].status == "open"
    assert out.rap["closed"] == 0
    not_assessed = make_finding("devices.unreachable", "host:lab-debian-01", Status.NOT_ASSESSED,
                                observed="a chroot endpoint: entering it needs root")
    run_with(tmp_path, loaded, [not_assessed], today=DAY0 + timedelta(days=2))
    assert items(tmp_path)[0].status == "open"


def test_passing_retest_in_partial_run_is_mitigated(tmp_path: Path, loaded: LoadedEstate) -> None:
    run_with(tmp_path, loaded, [rule()], today=DAY0)
    fixed = make_finding("ce.firewall_rule_review", "firewall:fw-civic", Status.PASS, key="CIV-004")
    out = run_with(tmp_path, loaded, [fixed], today=DAY0 + timedelta(days=1), full_scope=False)
    item = items(tmp_path)[0]
    assert item.status == "mitigated" and item.retest_run == out.run.id


def test_the_plan_refers_only_to_committed_runs(tmp_path: Path, loaded: LoadedEstate) -> None:
    for day in range(3):
        run_with(tmp_path, loaded, [overdue(), rule()] if day != 1 else [rule()], today=DAY0 + timedelta(days=day))
    with Store(tmp_path) as store:
        committed = {r.id for r in store.runs()}
        assert set(store.rap_applied_runs()) == committed
        for item in store.rap_items():
            assert {item.first_run, item.last_seen_run} <= committed
            assert {h["run_id"] for h in item.history} <= committed
