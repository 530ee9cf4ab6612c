"""Waiver hygiene as findings of the `estate-hygiene` step: a council can still run with such
waivers, but an auditor sees a waiver that accepts everything, one that runs past the estate's
maximum period, and one approved by nobody the estate names."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from security_checks.compliance.hygiene import (
    APPROVER,
    MATCHES_EVERYTHING,
    TOO_LONG,
    add_months,
    approver_contact,
    hygiene_findings,
)
from security_checks.findings import EvidenceKind, Status
from security_checks.jobs import ASSESS, describe_checks
from security_checks.model.loader import load_estate
from security_checks.model.schema import Contact
from tests.conftest import DEMO
from tests.estate_copy import copy_demo

TODAY = date(2026, 12, 2)

BAD_WAIVERS = """
  - check: "*"
    justification: Everything is fine, the auditors were told so.
    approved_by: Gareth Lloyd (Head of ICT)
    approved_on: 2026-11-01
    expires: 2027-01-31
    reference: RISK-0200
  - check: scan.weak_tls
    asset: host:10.10.30.20
    justification: The appliance's TLS stack is replaced in the 2028 refresh.
    approved_by: Aisha Okafor (Security Lead)
    approved_on: 2026-11-01
    expires: 2028-06-30
    reference: RISK-0201
  - check: devices.linux.firewall
    asset: host:lab-debian-01
    justification: The chroot shares the host's firewall, reviewed monthly.
    approved_by: Dave from Networks
    approved_on: 2026-11-01
    expires: 2027-02-28
  - check: scan.plaintext_protocol
    asset: host:10.10.30.21
    justification: Lapsed (long, unknown approver), so no longer in force.
    approved_by: Someone Else
    approved_on: 2023-01-01
    expires: 2026-11-30
"""


@pytest.fixture
def estate(tmp_path: Path) -> Path:
    path = copy_demo(tmp_path / "estate")
    (path / "waivers.yaml").write_text((path / "waivers.yaml").read_text() + BAD_WAIVERS)
    return path


def _line_of(path: Path, text: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if text in line)


def test_the_demo_waivers_are_clean() -> None:
    findings = hygiene_findings(load_estate(DEMO), TODAY)
    assert {f.check_id for f in findings if f.status is Status.PASS} >= {MATCHES_EVERYTHING, TOO_LONG, APPROVER}
    # The demo's depot telematics and pool plant reach their suppliers' clouds on any address: real
    # segregation findings (tests/hygiene/test_segregation.py), not waiver problems.
    assert not [f for f in findings if f.failing and f.check_id in (MATCHES_EVERYTHING, TOO_LONG, APPROVER)]


def test_each_bad_waiver_in_force_is_one_declared_finding_naming_it(estate: Path) -> None:
    loaded = load_estate(estate)    # not a validation error: the estate loads and can be assessed
    failing = [f for f in hygiene_findings(loaded, TODAY) if f.failing and f.check_id.startswith("estate.waiver_")]
    by = {(f.check_id, f.asset): f for f in failing}
    assert set(by) == {(MATCHES_EVERYTHING, "waiver:*"), (TOO_LONG, "waiver:scan.weak_tls@host:10.10.30.20"),
                       (APPROVER, "waiver:devices.linux.firewall@host:lab-debian-01")}
    assert all(f.evidence_kind is EvidenceKind.DECLARED and f.controls == [] for f in failing)
    waivers = estate / "waivers.yaml"
    star = by[(MATCHES_EVERYTHING, "waiver:*")]
    line = _line_of(waivers, 'check: "*"')
    assert f"the waiver at waivers.yaml:{line} " in star.observed and star.details["estate_line"] == line
    assert "any check on every asset" in star.observed
    long = by[(TOO_LONG, "waiver:scan.weak_tls@host:10.10.30.20")]
    assert "19 month(s) and 29 day(s)" in long.observed and "maximum of 12 month(s)" in long.observed
    assert long.details["latest_expiry"] == "2027-11-01"
    dave = by[(APPROVER, "waiver:devices.linux.firewall@host:lab-debian-01")]
    assert "'Dave from Networks'" in dave.observed and "Aisha Okafor (security-lead)" in dave.observed
    # The lapsed waiver accepts nothing any more: it is not judged.
    assert not [f for f in failing if "10.10.30.21" in f.asset]


def test_the_maximum_period_is_the_estates_own(estate: Path) -> None:
    org = estate / "organisation.yaml"
    org.write_text(org.read_text().replace("  advisory_feed:", "  max_waiver_months: 24\n  advisory_feed:", 1))
    loaded = load_estate(estate)
    assert loaded.estate.organisation.max_waiver_months == 24
    assert TOO_LONG not in {f.check_id for f in hygiene_findings(loaded, TODAY) if f.failing}


def test_finding_ids_follow_the_waiver_not_its_position(estate: Path) -> None:
    first = load_estate(estate)
    before = {f.id for f in hygiene_findings(first, TODAY) if f.failing}
    text = (estate / "waivers.yaml").read_text()
    head, _, tail = text.partition("waivers:\n")
    entries = ["  - " + e for e in tail.split("  - ")[1:]]
    (estate / "waivers.yaml").write_text(head + "waivers:\n" + "".join(reversed(entries)))
    reordered = load_estate(estate)
    assert [w.check for w in reordered.estate.waivers] == [w.check for w in reversed(first.estate.waivers)]
    assert {f.id for f in hygiene_findings(reordered, TODAY) if f.failing} == before


@pytest.mark.parametrize(("approved_by", "named"), [
    ("Aisha Okafor", True),
    ("aisha  okafor (Security Lead)", True),
    ("Security Lead", True),                 # a role in the contacts
    ("security-lead", True),
    ("Priya Natarajan (SIRO)", True),        # a title that is no role there: her own description
    ("Gareth Lloyd (Security Lead)", False),  # the contacts give that role to someone else
    ("Dave from Networks", False),
    ("Head of Networks", False),
])
def test_the_approver_rule(approved_by: str, named: bool) -> None:
    contacts = load_estate(DEMO).estate.organisation.contacts
    contact, why = approver_contact(approved_by, contacts)
    assert (contact is not None) is named, why
    if not named:
        assert why


def test_the_approver_rule_with_no_contacts() -> None:
    contact, why = approver_contact("Aisha Okafor", [])
    assert contact is None and "none listed" in why
    assert approver_contact("A B (x)", [Contact(role="x", name="A B", email="a@b")])[0] is not None


def test_months_end_on_the_same_day_or_the_months_last() -> None:
    assert add_months(date(2026, 1, 31), 1) == date(2026, 2, 28)
    assert add_months(date(2026, 11, 1), 12) == date(2027, 11, 1)
    assert add_months(date(2027, 12, 15), 1) == date(2028, 1, 15)


def test_the_step_is_part_of_the_assessment_and_its_checks_are_one_hop_away() -> None:
    assert "estate-hygiene" in [s.name for s in ASSESS.steps]
    described = {d["id"]: d for d in describe_checks("estate.*")}
    segregation = {"estate.pupil_network_reaches_corporate", "estate.device_zone_beyond_controller"}
    assert set(described) == {"estate.address_overlap", MATCHES_EVERYTHING, TOO_LONG, APPROVER, *segregation}
    for d in described.values():
        assert d["metadata"] == "security_checks/compliance/checks.yaml"
        module = "segregation" if d["id"] in segregation else "hygiene"
        assert d["emitted_by"] == [f"security_checks/compliance/{module}.py"]
        assert d["steps"] == ["assess/estate-hygiene"]
        assert d["evidence_kind"] == "declared" and d["requirements"] == []


def test_a_waiver_cannot_accept_the_finding_about_itself() -> None:
    from datetime import date

    from security_checks.checks import make_finding
    from security_checks.findings import Status
    from security_checks.model.schema import Waiver
    from security_checks.waivers import apply_waivers

    everything = Waiver(check="*", justification="Accept everything for the audit week.", approved_by="SIRO",
                        approved_on=date(2026, 11, 1), expires=date(2027, 1, 1))
    own = make_finding("estate.waiver_matches_everything", "waiver:*@*", Status.FAIL)
    other = make_finding("scan.plaintext_protocol", "host:x", Status.FAIL, key="tcp/23")
    apply_waivers([own, other], [everything], date(2026, 12, 1))
    assert other.accepted and not own.accepted
