"""The fortigate_policy role through `estate firewalls audit|apply`, against the FortiOS REST API stand-in
(a stand-in for a FortiGate: see tests/firewalls/README.md for what it does not prove)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.firewalls.conftest import TOKEN, StandIn
from tests.firewalls.planted import PLANTED

pytestmark = pytest.mark.slow

# What the role reads, in check mode and apply alike: login check, firmware, configuration, hit counts.
READS = {("GET", "/api/v2/monitor/system/status"), ("GET", "/api/v2/cmdb/firewall/address"),
         ("GET", "/api/v2/cmdb/firewall/addrgrp"), ("GET", "/api/v2/cmdb/firewall.service/custom"),
         ("GET", "/api/v2/cmdb/firewall/policy"), ("GET", "/api/v2/cmdb/system/interface"),
         ("GET", "/api/v2/cmdb/system/admin"), ("GET", "/api/v2/cmdb/system/global"),
         ("GET", "/api/v2/monitor/firewall/policy")}


def _config_writes(s: StandIn) -> list[tuple[str, str]]:
    """Requests that change the device (logging out of a session is not a configuration write)."""
    return [(r.method, r.path) for r in s.gate.writes() if r.path.startswith("/api/v2/cmdb/")]


def _findings(proc_stdout: str) -> list[dict[str, object]]:
    out: list[dict[str, object]] = json.loads(proc_stdout)["findings"]
    return out


def _failing(findings: list[dict[str, object]]) -> set[tuple[object, object]]:
    return {(f["check_id"], f["key"]) for f in findings if f["status"] == "fail"}


def test_audit_sends_no_write_and_finds_every_planted_drift_with_file_line(standin: StandIn) -> None:
    p = standin.estate_cmd("firewalls", "audit", "--limit", "fw-civic", "--format", "json")
    assert p.returncode == 1, p.stderr[-3000:]
    findings = _findings(p.stdout)
    assert _config_writes(standin) == [], "check mode wrote to the device"
    assert {(r.method, r.path) for r in standin.gate.requests if r.method == "GET"} >= READS
    # Check mode asked about exactly the objects that drifted, one GET each.
    assert {r.path for r in standin.gate.requests if r.method == "GET" and r.path.count("/") == 6} == {
        "/api/v2/cmdb/firewall/policy/5", "/api/v2/cmdb/firewall/policy/90", "/api/v2/cmdb/firewall/policy/91",
        "/api/v2/cmdb/system/interface/corporate"}
    failing = _failing(findings)
    for what, (check, key) in PLANTED.items():
        assert (check, key) in failing, f"planted {what}: no failing {check} {key}"
    rules = {f["key"]: f for f in findings if f["status"] == "fail" and str(f["key"]).startswith("CIV-")}
    estate_lines = (standin.estate / "firewalls.yaml").read_text().splitlines()
    for rid, f in rules.items():
        where = f["details"]["where"]  # type: ignore[index]
        file, line = str(where).rsplit(":", 1)
        assert file.endswith("firewalls.yaml") and f"id: {rid}," in estate_lines[int(line) - 1], where
    # Nothing planted, nothing found: the declared rules that match are not reported.
    assert ("firewalls.rule_missing", "CIV-001") not in failing and ("firewalls.logging_off", "CIV-006") not in failing
    firmware = next(f for f in findings if f["check_id"] == "patch.firmware_update_overdue")
    assert "v7.2.5" in str(firmware["observed"]) and firmware["details"]["fixed_version"] == "7.2.7"  # type: ignore[index]
    # The running configuration is evidence, with the token and the admin's password hash scrubbed.
    run = json.loads(p.stdout)["run"]
    running = next((standin.home / "runs").glob(f"{run}*/firewalls/fw-civic-running.json"))
    text = running.read_text()
    assert "temp-any" in text and "ENC SH2a" not in text and "********" in text
    for f in standin.home.rglob("*"):
        if f.is_file():
            assert TOKEN.encode() not in f.read_bytes(), f


def test_apply_converges_and_a_second_apply_changes_nothing(standin: StandIn) -> None:
    p = standin.estate_cmd("firewalls", "apply", "--limit", "fw-civic", "--format", "json")
    assert p.returncode == 0, p.stderr[-3000:]
    assert sorted(_config_writes(standin)) == sorted([
        ("PUT", "/api/v2/cmdb/firewall/policy/5"),             # logging back on
        ("DELETE", "/api/v2/cmdb/firewall/policy/91"),         # the shadowing legacy rule
        ("DELETE", "/api/v2/cmdb/firewall/policy/90"),         # the any-any rule
        ("PUT", "/api/v2/cmdb/system/interface/corporate")])   # admin HTTP/HTTPS off a user interface
    applied = _findings(p.stdout)
    read = next(f for f in applied if f["check_id"] == "firewalls.read")
    assert len(read["details"]["changes"]) == 4  # type: ignore[index]
    # What apply read back afterwards: only the firmware remains (firmware is an upgrade, not a policy).
    assert {c for c, _ in _failing(applied)} == {"patch.firmware_update_overdue"}
    names = [r["name"] for r in standin.gate.tables["firewall/policy"]]
    assert names == [r["id"] for r in standin.declared["rules"]]

    before, revision = len(standin.gate.requests), standin.gate.revision
    again = standin.estate_cmd("firewalls", "apply", "--limit", "fw-civic", "--format", "json")
    assert again.returncode == 0, again.stderr[-3000:]
    assert [r for r in standin.gate.requests[before:] if r.write and r.path.startswith("/api/v2/cmdb/")] == []
    assert standin.gate.revision == revision
    assert "0 object(s) changed" in json.loads(again.stdout)["summary"]

    audit = standin.estate_cmd("firewalls", "audit", "--limit", "fw-civic", "--format", "json")
    assert {c for c, _ in _failing(_findings(audit.stdout))} == {"patch.firmware_update_overdue"}


def test_a_wrong_token_is_an_unreachable_firewall_not_a_pass(standin: StandIn, tmp_path: Path) -> None:
    standin.env["ESTATE_FORTIOS_TOKEN_FW_CIVIC"] = "not-the-token"
    p = standin.estate_cmd("firewalls", "audit", "--limit", "fw-civic", "--format", "json")
    findings = _findings(p.stdout)
    civic = [f for f in findings if f["asset"] == "firewall:fw-civic"]
    assert [(f["check_id"], f["status"]) for f in civic] == [("firewalls.unreachable", "error")]
    assert "not-the-token" not in p.stdout + p.stderr
