"""Observed beats declared: the Cyber Essentials firewall checks judge a firewall read back in the run from
the device, and the others from the estate, saying which."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from security_checks.checks import make_finding
from security_checks.compliance.ce import config_findings
from security_checks.compliance.firewall_evidence import observed_over_declared
from security_checks.findings import EvidenceKind, Status
from security_checks.model.loader import load_estate

DEMO = Path(__file__).resolve().parents[2] / "inventory" / "demo"


def test_a_firewall_read_back_is_judged_from_the_device_the_others_stay_declared() -> None:
    estate = load_estate(DEMO).estate
    declared = config_findings(estate, date(2026, 12, 2))
    earlier = [
        make_finding("firewalls.read", "firewall:fw-civic", Status.PASS, observed="15 rule(s) read back",
                     details={"firewall": "fw-civic"}),
        make_finding("firewalls.admin_exposed", "firewall:fw-civic", Status.FAIL, key="interface:corporate",
                     observed="interface corporate answers http, https", details={"firewall": "fw-civic"}),
        make_finding("firewalls.default_not_deny", "firewall:fw-civic", Status.PASS, details={"firewall": "fw-civic"}),
    ]
    judged = {(f.check_id, f.asset): f for f in observed_over_declared(declared, earlier)}
    admin = judged[("ce.firewall_admin_interface", "firewall:fw-civic")]
    assert admin.status is Status.FAIL and admin.evidence_kind is EvidenceKind.OBSERVED
    assert "interface corporate answers http" in admin.observed and admin.details["declared_status"] == "pass"
    deny = judged[("ce.firewall_default_deny", "firewall:fw-civic")]
    assert deny.status is Status.PASS and deny.evidence_kind is EvidenceKind.OBSERVED
    other = judged[("ce.firewall_default_deny", "firewall:fw-north-depot")]
    assert other.evidence_kind is EvidenceKind.DECLARED and "was not read back" in other.observed
    # The rule-review check is about the estate's own records: untouched.
    assert len(judged) == len({(f.check_id, f.asset) for f in declared})
