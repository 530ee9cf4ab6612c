"""`estate firewalls` on the second estate (Glenmoray, a Scottish council on SWAN): its own policy, its own
file:line, nothing of the demo council, and the reasons a firewall was not read."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from security_checks.firewalls.declared import declared_firewall
from security_checks.model.loader import load_estate
from tests.firewalls.conftest import TOKEN
from tests.firewalls.fortios_standin import FortiGate, serve
from tests.firewalls.planted import OLD_FIRMWARE, certificate, converged, policy

REPO = Path(__file__).resolve().parents[2]
GLENMORAY = REPO / "tests" / "estates" / "glenmoray"
ESTATE_BIN = REPO / ".venv" / "bin" / "estate"
# ("PSN:" prefixes control ids in every council's catalogue; the council's own network name is its own.)
DEMO_WORDS = ("Harrowdale", "hdc-", "CIV-", "fw-civic", "PSN ")


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ESTATE_FORTIOS_TOKEN_", "ESTATE_MANAGEMENT"))}
    return {**env, **extra}


def test_nothing_reachable_skips_with_the_reasons(tmp_path: Path) -> None:
    p = subprocess.run([str(ESTATE_BIN), "firewalls", "audit", "--estate", str(GLENMORAY), "--home",
                        str(tmp_path / "home"), "--format", "json"], capture_output=True, text=True, env=_env(),
                       timeout=600, check=False)
    assert p.returncode == 0, p.stderr[-2000:]
    step = next(s for s in json.loads(p.stdout)["steps"] if s["name"] == "firewalls")
    assert step["status"] == "skipped"
    assert "ESTATE_FORTIOS_TOKEN_FW_CSC is not set" in step["summary"]
    assert "no Ansible role for vendor palo-alto" in step["summary"]
    assert not any(w in p.stdout + p.stderr for w in DEMO_WORDS)


@pytest.mark.slow
def test_a_glenmoray_fortigate_is_audited_against_glenmoray_s_policy(tmp_path: Path) -> None:
    cert, key = certificate(tmp_path)
    gate = FortiGate(token=TOKEN, hostname="fw-csc")
    server, port = serve(gate, cert, key)
    try:
        est = tmp_path / "estate"
        shutil.copytree(GLENMORAY, est)
        fws = est / "firewalls.yaml"
        fws.write_text(fws.read_text().replace("management_address: 10.64.23.193", "management_address: 127.0.0.1"))
        hosts = est / "hosts.yaml"
        text = hosts.read_text()
        entry = text.index("{name: fw-csc,")
        head, tail = text[:entry], text[entry:]
        tail = tail.replace("{port: 443, service: https, tls: true, management: true}",
                            f"{{port: {port}, service: https, tls: true, management: true}}", 1)
        hosts.write_text(head + tail)
        loaded = load_estate(est)
        declared = declared_firewall(loaded, loaded.estate.firewall("fw-csc"))
        converged(gate, declared)
        gate.version, gate.build = OLD_FIRMWARE
        gate.tables["firewall/policy"].append({**policy({
            "policyid": 77, "id": "any", "from_zone": "any", "to_zone": "any", "source": "any", "destination": "any",
            "services": ["ALL"], "action": "accept", "log": True, "comments": ""}), "name": "temp-any"})
        p = subprocess.run([str(ESTATE_BIN), "firewalls", "audit", "--limit", "fw-csc", "--estate", str(est),
                            "--home", str(tmp_path / "home"), "--format", "json"], capture_output=True, text=True,
                           env=_env(ESTATE_FORTIOS_TOKEN_FW_CSC=TOKEN, ESTATE_FIREWALL_CA=str(cert)), timeout=1200,
                           check=False)
    finally:
        server.shutdown()
        server.server_close()
    assert p.returncode == 1, p.stderr[-2000:]
    findings = json.loads(p.stdout)["findings"]
    failing = {(f["check_id"], f["key"]) for f in findings if f["status"] == "fail"}
    assert ("firewalls.any_any", "policy:77") in failing and ("firewalls.rule_extra", "policy:77") in failing
    # Glenmoray's own file:line, cited relative to the estate directory (never the operator's directory).
    wheres = [f["details"]["where"] for f in findings if f["asset"] == "firewall:fw-csc" and "where" in f["details"]]
    assert wheres and all((est / w.rsplit(":", 1)[0]).is_file() for w in wheres), wheres
    assert str(tmp_path) not in p.stdout
    # Glenmoray declares no advisory feed: the firmware is not assessed, never judged with the demo's feed.
    firmware = [f for f in findings if f["check_id"].startswith("patch.firmware")]
    assert [f["status"] for f in firmware] == ["not_assessed"]
    assert not any(w in p.stdout + p.stderr for w in DEMO_WORDS)
    assert [r for r in gate.writes() if r.path.startswith("/api/v2/cmdb/")] == []
