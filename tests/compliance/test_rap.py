"""The Remediation Action Plan across runs: opening, owners and target dates, accepted risk and its
expiry, closing on absence from a full-scope run, reopening, and consistency after a killed run."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest

from security_checks.checks import make_finding
from security_checks.compliance.rap import Rap, owner_for
from security_checks.findings import Finding, Status
from security_checks.model.loader import load_estate
from security_checks.model.schema import Estate, Waiver
from security_checks.store import Store
from security_checks.waivers import apply_waivers

DEMO = Path(__file__).resolve().parents[2] / "inventory" / "demo"
DAY0 = date(2026, 11, 22)


@pytest.fixture
def estate() -> Estate:
    return load_estate(DEMO).estate


def overdue() -> Finding:
    return make_finding("patch.security_update_overdue", "host:lab-debian-01", Status.FAIL, key="openssl",
                        cvss_vector="CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H")


def rule() -> Finding:
    return make_finding("ce.firewall_rule_review", "firewall:fw-civic", Status.FAIL, key="CIV-004",
                        details={"rule": "CIV-004"})


def mfa_ok() -> Finding:
    return make_finding("ce.cloud_mfa", "lob:finance", Status.PASS)


def apply(store: Store, estate: Estate, findings: list[Finding], today: date, full_scope: bool = True,
          waivers: list[Waiver] | None = None) -> tuple[str, dict[str, int]]:
    apply_waivers(findings, waivers or [], today)
    with store.run("assess", estate_dir="demo", estate_digest="x", full_scope=full_scope) as w:
        w.add(findings)
    return w.id, Rap(store).update(w.id, findings, estate, today, full_scope=full_scope)


def test_items_open_with_owner_action_and_target_by_severity(tmp_path: Path, estate: Estate) -> None:
    store = Store(tmp_path)
    run, counts = apply(store, estate, [overdue(), rule(), mfa_ok()], DAY0)
    assert counts["opened"] == 2
    items = {i.check_id: i for i in Rap(store).items()}
    patch = items["patch.security_update_overdue"]
    assert patch.severity == "critical" and patch.cvss_score == 9.8
    assert patch.target_date == (DAY0 + timedelta(days=14)).isoformat()
    assert patch.owner.startswith("Aisha Okafor") and patch.owner_source.startswith("security lead")
    assert "Install the update" in patch.action and patch.status == "open" and patch.first_run == run
    fw = items["ce.firewall_rule_review"]
    assert fw.owner == "Head of Revenues and Benefits" and fw.owner_source == "firewall rule fw-civic/CIV-004"
    assert fw.target_date == (DAY0 + timedelta(days=90)).isoformat()   # low
    assert "ce.cloud_mfa" not in items   # passing findings are not remediation items


def test_owner_from_declared_host_and_lob(estate: Estate) -> None:
    host = next(h for h in estate.declared_hosts if h.owner or h.lob)
    f = make_finding("scan.undeclared_port", f"host:{host.address}", Status.FAIL, key="tcp/23")
    owner, source = owner_for(f, estate)
    assert source.startswith(("declared host", "LOB system"))
    assert owner in {host.owner, *(lob.owner for lob in estate.lob_systems if lob.name == host.lob)}
    lob = estate.lob_systems[0]
    assert owner_for(make_finding("ce.cloud_mfa", f"lob:{lob.name}", Status.FAIL), estate)[0] == lob.owner


def test_accepted_risk_returns_to_open_after_expiry_and_the_plan_survives(tmp_path: Path, estate: Estate) -> None:
    waiver = Waiver(check="patch.security_update_overdue", asset="host:lab-*",
                    justification="Kiosk vendor fix is being tested; kiosks are isolated.",
                    approved_by="Priya Natarajan (SIRO)", approved_on=DAY0, expires=DAY0 + timedelta(days=10))
    store = Store(tmp_path)
    apply(store, estate, [overdue()], DAY0)
    _, counts = apply(store, estate, [overdue()], DAY0 + timedelta(days=1), waivers=[waiver])
    assert counts["accepted"] == 1
    store.close()
    store = Store(tmp_path)   # the plan is in the store, not in memory
    item = Rap(store).items()[0]
    assert item.status == "accepted" and item.acceptance and item.acceptance["approved_by"].startswith("Priya")
    # The waiver is still in the estate but past its expiry: the finding is open again.
    _, counts = apply(store, estate, [overdue()], DAY0 + timedelta(days=11), waivers=[waiver])
    item = Rap(store).items()[0]
    assert item.status == "open" and item.acceptance is None
    assert item.history[-1]["reason"] == f"acceptance expired on {(DAY0 + timedelta(days=10)).isoformat()}: open again"
    assert [h["to_status"] for h in item.history] == ["open", "accepted", "open"]


def test_stored_acceptance_past_expiry_reopens_even_when_the_finding_is_not_reported(tmp_path: Path,
                                                                                      estate: Estate) -> None:
    waiver = Waiver(check="ce.firewall_rule_review", justification="Review meeting booked for January.",
                    approved_by="SIRO", approved_on=DAY0, expires=DAY0 + timedelta(days=5))
    store = Store(tmp_path)
    apply(store, estate, [rule()], DAY0, waivers=[waiver])
    assert Rap(store).items()[0].status == "accepted"
    apply(store, estate, [mfa_ok()], DAY0 + timedelta(days=6), full_scope=False)   # partial run without it
    assert Rap(store).items()[0].status == "open"


def test_closes_on_absence_from_full_scope_run_and_reopens(tmp_path: Path, estate: Estate) -> None:
    store = Store(tmp_path)
    apply(store, estate, [overdue(), rule()], DAY0)
    # Partial run without them: nothing closes.
    apply(store, estate, [mfa_ok()], DAY0 + timedelta(days=1), full_scope=False)
    assert {i.status for i in Rap(store).items()} == {"open"}
    # Full-scope run in which the patch engine ran but did not report the overdue fix: closed,
    # with that run as evidence. The rule item stays open: the ce engine reported it again.
    up = make_finding("patch.up_to_date", "host:lab-debian-01", Status.PASS)
    run3, counts = apply(store, estate, [up, rule()], DAY0 + timedelta(days=2))
    items = {i.check_id: i for i in Rap(store).items()}
    assert counts["closed"] == 1
    closed = items["patch.security_update_overdue"]
    assert closed.status == "closed" and closed.retest_run == run3
    assert closed.history[-1]["reason"] == f"absent from full-scope run {run3}"
    assert items["ce.firewall_rule_review"].status == "open"
    # It comes back: reopened, with a new target date from today.
    run4, counts = apply(store, estate, [overdue(), rule()], DAY0 + timedelta(days=30))
    item = next(i for i in Rap(store).items() if i.check_id == "patch.security_update_overdue")
    assert counts["reopened"] == 1 and item.status == "open" and item.last_seen_run == run4
    assert item.target_date == (DAY0 + timedelta(days=44)).isoformat()
    assert [h["to_status"] for h in item.history] == ["open", "closed", "open"]


def test_full_scope_run_without_the_engine_does_not_close(tmp_path: Path, estate: Estate) -> None:
    store = Store(tmp_path)
    apply(store, estate, [overdue()], DAY0)
    apply(store, estate, [mfa_ok()], DAY0 + timedelta(days=1))   # the patch step was skipped entirely
    assert Rap(store).items()[0].status == "open"


def test_passing_retest_in_partial_run_is_mitigated(tmp_path: Path, estate: Estate) -> None:
    store = Store(tmp_path)
    apply(store, estate, [rule()], DAY0)
    fixed = make_finding("ce.firewall_rule_review", "firewall:fw-civic", Status.PASS, key="CIV-004")
    run, _ = apply(store, estate, [fixed], DAY0 + timedelta(days=1), full_scope=False)
    item = Rap(store).items()[0]
    assert item.status == "mitigated" and item.retest_run == run


def test_each_run_applies_once(tmp_path: Path, estate: Estate) -> None:
    store = Store(tmp_path)
    run, _ = apply(store, estate, [overdue()], DAY0)
    assert Rap(store).update(run, [overdue()], estate, DAY0, full_scope=True) == {"skipped": 1}
    assert len(Rap(store).items()[0].history) == 1


def test_update_from_a_run_that_never_committed_is_undone(tmp_path: Path, estate: Estate) -> None:
    store = Store(tmp_path)
    apply(store, estate, [overdue()], DAY0)
    before = [(i.finding_id, i.status, len(i.history)) for i in Rap(store).items()]
    # An assess run updates the plan from inside the run, then is killed before it commits.
    with pytest.raises(KeyboardInterrupt), store.run("assess", estate_dir="demo", estate_digest="x",
                                                     full_scope=True) as w:
        up = make_finding("patch.up_to_date", "host:lab-debian-01", Status.PASS)
        w.add([up, rule()])
        Rap(store).update(w.id, [up, rule()], estate, DAY0 + timedelta(days=1), full_scope=True)
        assert len(Rap(store).items()) == 2
        raise KeyboardInterrupt
    rap = Rap(store)
    assert rap.reconcile() == [w.id]
    assert [(i.finding_id, i.status, len(i.history)) for i in rap.items()] == before
    assert rap.applied_runs() == [r.id for r in store.runs()]
