"""Fixtures: the FortiOS REST API stand-in (a stand-in for a FortiGate) on loopback, and an estate that points at it."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from security_checks.firewalls.declared import declared_firewall
from security_checks.model.loader import load_estate
from tests.estate_copy import copy_demo
from tests.firewalls.fortios_standin import FortiGate, serve
from tests.firewalls.planted import certificate, converged, plant_drift

REPO = Path(__file__).resolve().parents[2]
ESTATE_BIN = REPO / ".venv" / "bin" / "estate"
TOKEN = "fortigate-standin-api-token-7f3a9c"
# Fortinet PSIRT FG-IR-24-015 (CVE-2024-21762, out-of-bounds write in sslvpnd), as the feed carries it.
PSIRT = {"id": "FG-IR-24-015", "cve": ["CVE-2024-21762"], "ecosystem": "cpe", "package": "fortinet:fortios",
         "introduced": "7.2.0", "fixed_version": "7.2.7", "released": "2024-02-08",
         "cvss_vector": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
         "title": "FortiOS out-of-bounds write in sslvpnd"}


@dataclass
class StandIn:
    gate: FortiGate
    port: int
    estate: Path
    home: Path
    env: dict[str, str]
    declared: dict[str, Any]

    def estate_cmd(self, *argv: str, timeout: float = 1200) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(ESTATE_BIN), *argv, "--estate", str(self.estate), "--home", str(self.home)],
                              env=self.env, capture_output=True, text=True, timeout=timeout, check=False)


def fortigate_estate(dest: Path, port: int) -> Path:
    """The demo estate with fw-civic's management address on loopback, its admin port the stand-in's,
    and the Fortinet advisory in its feed."""
    est = copy_demo(dest, {
        "firewalls.yaml": [("management_address: 10.10.99.1", "management_address: 127.0.0.1")],
        "hosts.yaml": [("{port: 8443, service: https, tls: true, management: true}",
                        f"{{port: {port}, service: https, tls: true, management: true}}")]})
    feed = json.loads((est / "advisories.json").read_text())
    feed["advisories"].append(PSIRT)
    (est / "advisories.json").write_text(json.dumps(feed, indent=1))
    return est


@pytest.fixture
def standin(tmp_path: Path) -> Iterator[StandIn]:
    cert, key = certificate(tmp_path)
    gate = FortiGate(token=TOKEN)
    server, port = serve(gate, cert, key)
    est = fortigate_estate(tmp_path / "estate", port)
    loaded = load_estate(est)
    declared = declared_firewall(loaded, loaded.estate.firewall("fw-civic"))
    converged(gate, declared)
    plant_drift(gate, declared)
    env = {**os.environ, "ESTATE_FORTIOS_TOKEN_FW_CIVIC": TOKEN, "ESTATE_FIREWALL_CA": str(cert),
           "ESTATE_HOME": str(tmp_path / "home")}
    env.pop("ESTATE_MANAGEMENT_HOST", None)
    try:
        yield StandIn(gate, port, est, tmp_path / "home", env, declared)
    finally:
        server.shutdown()
        server.server_close()
