"""The expected side of the segregation matrix comes from the estate's firewall policy alone."""

from __future__ import annotations

import os

import pytest

from security_checks.lab.nftables import check, render
from security_checks.lab.topology import build_lab, load_faults
from security_checks.network.policy import Policy
from security_checks.scan.segregation import plan


@pytest.mark.parametrize(("firewalls", "src", "dst", "proto", "port", "allowed", "rule"), [
    (["fw-civic"], "10.10.10.10", "10.10.30.20", "tcp", 445, True, "CIV-001"),
    (["fw-civic"], "10.10.11.10", "10.10.30.20", "tcp", 445, True, "CIV-001"),
    (["fw-civic"], "10.10.40.10", "10.10.30.20", "tcp", 445, False, "default-deny"),
    (["fw-civic"], "10.10.50.10", "10.10.30.20", "tcp", 445, False, "CIV-998"),
    (["fw-civic"], "10.10.10.10", "10.10.70.10", "tcp", 443, True, "CIV-004"),
    (["fw-civic"], "10.10.11.10", "10.10.70.10", "tcp", 443, False, "default-deny"),  # outside revs-psn-users
    (["fw-civic"], "10.200.1.10", "10.10.70.10", "tcp", 443, True, "CIV-011"),
    (["fw-central-library", "fw-civic"], "10.14.10.10", "10.10.30.20", "tcp", 445, True, "CIV-001"),
    (["fw-central-library", "fw-civic"], "10.14.10.10", "10.10.30.60", "tcp", 443, False, "default-deny"),
    (["fw-central-library", "fw-civic"], "10.14.50.10", "10.100.1.200", "tcp", 443, True, "CIV-006"),
])
def test_forward_decisions(loaded, firewalls, src, dst, proto, port, allowed, rule):
    d = Policy(loaded.estate).path(firewalls, src, dst, proto, port)
    assert (d.allowed, d.rule) == (allowed, rule)


def test_firewall_admin_only_from_its_allow_list(loaded):
    p = Policy(loaded.estate)
    fw = loaded.estate.firewall("fw-civic")
    assert p.to_firewall(fw, "10.10.99.10", "tcp", 8443).allowed
    assert not p.to_firewall(fw, "10.10.10.10", "tcp", 8443).allowed
    assert not p.to_firewall(fw, "10.10.99.10", "tcp", 3389).allowed


def test_untrusted_wifi_is_expected_to_reach_only_the_breakout(loaded):
    for flow in plan(loaded, build_lab(loaded.estate)):
        if flow.src_zone in ("guest-wifi", "public-wifi") and flow.expected:
            assert flow.dst_zone == "internet", flow


def test_psn_reachable_only_from_zones_the_policy_names(loaded):
    zones = {f.src_zone for f in plan(loaded, build_lab(loaded.estate)) if f.dst_zone == "psn" and f.expected}
    assert zones == {"corporate", "azure"}


def test_rendered_ruleset_is_default_deny_with_planted_faults_labelled(loaded, tmp_path):
    text = render(loaded.estate, loaded.estate.firewall("fw-civic"), load_faults()["lab"])
    assert "policy drop;" in text and text.count("policy drop;") == 2
    assert 'comment "CIV-001 corporate to file and print"' in text
    planted = [line for line in text.splitlines() if "PLANTED FAULT" in line]
    assert len(planted) == 2 and all("accept" in line for line in planted)
    clean = render(loaded.estate, loaded.estate.firewall("fw-civic"), [])
    assert "PLANTED FAULT" not in clean
    if os.geteuid() == 0:
        check(clean, tmp_path / "fw.nft")
