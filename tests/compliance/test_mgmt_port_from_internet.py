"""Issue 14 'Also': an on-premises firewall rule opening a management port (SSH, telnet, SMB, RDP,
WinRM) from the internet to any zone is a failing Cyber Essentials finding (declared evidence), with
the file and line of the rule. Run through the real ce-config step and read back from the store."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from security_checks.findings import EvidenceKind, Finding, Status
from security_checks.jobs import CE_CONFIG
from security_checks.model.loader import load_estate
from security_checks.network.policy import internet_management_breaches
from security_checks.runner import Job, Runner
from security_checks.store import Store
from tests.estate_copy import copy_demo

REPO = Path(__file__).resolve().parents[2]
CHECK = "ce.firewall_mgmt_port_from_internet"
TODAY = date(2026, 11, 22)
RULE = ('      - {id: CIV-998, name: block untrusted Wi-Fi',
        '      - {id: CIV-012, name: supplier remote support, from_zone: internet, to_zone: servers, '
        'source: mgmt-jump, services: [https, rdp, smb], action: allow, owner: Infrastructure Team, '
        'justification: "Supplier support", review_by: 2027-03-31}\n'
        '      - {id: CIV-998, name: block untrusted Wi-Fi')


def stored(estate_dir: Path, home: Path) -> list[Finding]:
    loaded = load_estate(estate_dir)
    out = Runner(loaded, home, today=TODAY).run(Job("assess", (CE_CONFIG,), "a test's run", full_scope=False))
    with Store(home) as store:
        return [f for f in store.findings(out.run.id) if f.check_id == CHECK]


def line_of(path: Path, text: str) -> int:
    (hit,) = [i for i, line in enumerate(path.read_text().splitlines(), 1) if text in line]
    return hit


def test_a_rule_opening_rdp_and_smb_from_the_internet_fails_with_its_line(tmp_path: Path) -> None:
    estate = copy_demo(tmp_path / "estate", {"firewalls.yaml": [RULE]})
    findings = {f.asset: f for f in stored(estate, tmp_path / "home")}
    civic = findings.pop("firewall:fw-civic")
    assert civic.status is Status.FAIL and civic.evidence_kind is EvidenceKind.DECLARED
    line = line_of(estate / "firewalls.yaml", "id: CIV-012")
    assert f"firewalls.yaml:{line}" in civic.observed
    assert "RDP (tcp/3389)" in civic.observed and "SMB (tcp/445)" in civic.observed
    assert "https" not in civic.observed.lower().split("allows", 1)[1].split("from", 1)[0]
    assert civic.details["rules"] == ["CIV-012"] and civic.details["estate_line"] == line
    # Every other firewall is judged too, and passes.
    assert findings and all(f.status is Status.PASS for f in findings.values())


@pytest.mark.parametrize("services", ["any", "[ssh]", "[telnet]", "[winrm]"])
def test_each_management_service_or_any_service_from_the_internet_is_caught(tmp_path: Path, services: str) -> None:
    estate = copy_demo(tmp_path / "estate", {"firewalls.yaml": [
        (RULE[0], RULE[1].replace("services: [https, rdp, smb]", f"services: {services}")),
        ("      - {name: fortigate-admin, protocol: tcp, ports: [8443]}",
         "      - {name: fortigate-admin, protocol: tcp, ports: [8443]}\n"
         "      - {name: telnet, protocol: tcp, ports: [23]}\n"
         "      - {name: winrm, protocol: tcp, ports: [5985, 5986]}")]})
    breaches = internet_management_breaches(load_estate(estate).estate)
    assert [b.message.split(" allows ")[0] for b in breaches] == ["fw-civic rule CIV-012 (supplier remote support)"]


def test_the_demo_and_the_second_estate_open_no_management_port_to_the_internet(tmp_path: Path) -> None:
    for name, estate in (("demo", REPO / "inventory" / "demo"),
                         ("glenmoray", REPO / "tests" / "estates" / "glenmoray")):
        findings = stored(estate, tmp_path / name)
        assert findings and all(f.status is Status.PASS for f in findings), name
        assert len(findings) == len(load_estate(estate).estate.firewalls)
