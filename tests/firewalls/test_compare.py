"""The audit's comparison on configurations read back, without Ansible: FortiOS answers as the stand-in (and
FortiOS 7.2) gives them, and nftables rulesets as `nft -j list ruleset` prints them."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from security_checks.firewalls.compare import compare
from security_checks.firewalls.declared import declared_firewall, policy_id, token_env
from security_checks.firewalls.running import from_fortios, from_nft
from security_checks.lab.nftables import render
from security_checks.lab.topology import load_faults
from security_checks.model.loader import load_estate
from tests.firewalls.fortios_standin import FortiGate
from tests.firewalls.planted import PLANTED, converged, plant_drift

REPO = Path(__file__).resolve().parents[2]
TODAY = date(2026, 12, 2)


@pytest.fixture(scope="module")
def loaded() -> Any:
    return load_estate(REPO / "inventory" / "demo")


def _read(gate: FortiGate) -> Any:
    config = [gate._cmdb("GET", t, {}, None)[1] for t in
              ("firewall/address", "firewall/addrgrp", "firewall.service/custom", "firewall/policy",
               "system/interface", "system/admin", "system/global")]
    status = gate.handle("GET", "/api/v2/monitor/system/status", None)[1]
    hits = gate.handle("GET", "/api/v2/monitor/firewall/policy", None)[1]
    gate.requests.clear()
    return from_fortios("fw-civic", status, config, hits)


def test_a_converged_fortigate_passes_every_check(loaded: Any) -> None:
    decl = declared_firewall(loaded, loaded.estate.firewall("fw-civic"))
    gate = FortiGate(token="t")
    converged(gate, decl)
    findings = compare(decl, _read(gate), TODAY, [])
    assert [f for f in findings if f.status.value != "pass"] == []
    assert {f.check_id for f in findings} >= {"firewalls.default_not_deny", "firewalls.any_any", "firewalls.rule_extra"}


def test_each_planted_drift_is_found_with_its_estate_line(loaded: Any) -> None:
    decl = declared_firewall(loaded, loaded.estate.firewall("fw-civic"))
    gate = FortiGate(token="t")
    converged(gate, decl)
    plant_drift(gate, decl)
    findings = compare(decl, _read(gate), TODAY, [])
    failing = {(f.check_id, f.key): f for f in findings if f.status.value == "fail"}
    for what, key in PLANTED.items():
        if key[0].startswith("firewalls."):
            assert key in failing, what
    shadowed = failing[("firewalls.rule_shadowed", "CIV-003")]
    # Relative to the estate directory, whatever path it was loaded from
    # (tests/foundation/test_estate_relative_locations.py).
    assert shadowed.details["where"] == "firewalls.yaml:50"
    assert "policy:91" in shadowed.details["shadowed_by"]
    assert failing[("firewalls.logging_off", "CIV-005")].details["where"] == "firewalls.yaml:52"


def test_order_disabled_review_and_unused_are_judged(loaded: Any) -> None:
    decl = declared_firewall(loaded, loaded.estate.firewall("fw-civic"))
    gate = FortiGate(token="t")
    converged(gate, decl)
    rules = gate.tables["firewall/policy"]
    rules[0], rules[1] = rules[1], rules[0]
    rules[6]["status"] = "disable"
    gate.hits[rules[8]["policyid"]] = 0
    findings = compare(decl, _read(gate), date(2027, 4, 1), [])
    failing = {(f.check_id, f.key) for f in findings if f.status.value == "fail"}
    assert ("firewalls.rule_order", "CIV-001") in failing
    assert ("firewalls.rule_disabled", "CIV-007") in failing
    assert ("firewalls.rule_unused", rules[8]["name"]) in failing
    assert ("firewalls.rule_review_overdue", "CIV-001") in failing   # due 2027-03-31, live on 2027-04-01


def test_admin_from_anywhere_and_without_mfa(loaded: Any) -> None:
    decl = declared_firewall(loaded, loaded.estate.firewall("fw-civic"))
    gate = FortiGate(token="t")
    converged(gate, decl)
    admin = gate.tables["system/admin"][0]
    admin.update({f"trusthost{i}": "0.0.0.0 0.0.0.0" for i in range(1, 11)})
    admin["two-factor"] = "disable"
    failing = {(f.check_id, f.key) for f in compare(decl, _read(gate), TODAY, []) if f.status.value == "fail"}
    assert {("firewalls.admin_exposed", "admin:admin"), ("firewalls.admin_mfa", "admin:admin")} <= failing


def test_policy_ids_follow_the_rule_ids_and_never_collide() -> None:
    taken: set[int] = set()
    ids = [policy_id(i, n, taken) for n, i in enumerate(["CIV-001", "CIV-998", "X", "CIV-001"])]
    assert ids == [1, 998, 1002, 1001]
    assert token_env("fw-civic") == "ESTATE_FORTIOS_TOKEN_FW_CIVIC"


def test_the_role_filter_writes_only_what_differs() -> None:
    spec = importlib.util.spec_from_file_location(
        "fortigate_filters", REPO / "playbooks/roles/fortigate_policy/filter_plugins/fortigate.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    running = [{"name": "corporate", "allowaccess": "ping https http"},
               {"name": "management", "allowaccess": "https ssh ping"}]
    wanted = [{"name": "corporate", "allowaccess": ["ping"]},
              {"name": "management", "allowaccess": ["ping", "https", "ssh"]},
              {"name": "voice", "allowaccess": ["ping"]}]
    assert [w["name"] for w in mod.fortios_drifted(wanted, running)] == ["corporate", "voice"]
    assert mod.fortios_drifted_settings({"admin_sport": 8443}, [{"admin-sport": 8443}]) == []


@pytest.mark.root
@pytest.mark.skipif(shutil.which("nft") is None, reason="nft not installed")
def test_nft_ruleset_read_back_finds_the_lab_s_planted_rules(loaded: Any, tmp_path: Path) -> None:
    """The role's template with the lab's planted faults, loaded into a scratch namespace and read back as JSON."""
    import json

    fw = loaded.estate.firewall("fw-civic")
    path = tmp_path / "fw.nft"
    path.write_text(render(loaded.estate, fw, load_faults()["lab"]))
    ns = f"est-fwtest-{abs(hash(tmp_path)) % 10000}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        subprocess.run(["ip", "netns", "exec", ns, "nft", "-f", str(path)], check=True)
        out = subprocess.run(["ip", "netns", "exec", ns, "nft", "-j", "list", "ruleset"], check=True,
                             capture_output=True, text=True).stdout
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=False)
    running = from_nft("fw-civic", json.loads(out))
    decl = {**declared_firewall(loaded, fw), "vendor": "nftables"}
    findings = compare(decl, running, TODAY, [])
    failing = {(f.check_id, f.observed.split(":")[1].strip() if f.check_id == "firewalls.rule_extra" else f.key)
               for f in findings if f.status.value == "fail"}
    assert ("firewalls.rule_extra", "PLANTED FAULT guest-to-file-shares") in failing
    assert ("firewalls.rule_extra", "PLANTED FAULT mgmt-from-corporate") in failing
    assert not any(c in ("firewalls.rule_missing", "firewalls.default_not_deny") for c, _ in failing)
