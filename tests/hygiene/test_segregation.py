"""Segregation the estate's purposes demand, judged on its declarations (step estate-hygiene):
pupils' networks never reach the council's zones; device networks reach only their controllers.

Run on the Welsh council (tests/estates/cwm-tawel), whose schools' pupil networks the council runs:
it has one planted rule of each kind, and each finding must name the file and line declaring it.
"""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import pytest

from security_checks.compliance.hygiene import hygiene_findings
from security_checks.compliance.segregation import DEVICES, PUPILS
from security_checks.findings import EvidenceKind, Finding, Status
from security_checks.model.loader import load_estate
from tests.estates import CWM_TAWEL

TODAY = date(2026, 12, 1)


@pytest.fixture
def welsh(tmp_path: Path) -> Path:
    dest = tmp_path / "cwm-tawel"
    shutil.copytree(CWM_TAWEL.directory, dest)
    return dest


def line_of(path: Path, needle: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if needle in line)


def seg(estate: Path) -> list[Finding]:
    return [f for f in hygiene_findings(load_estate(estate), TODAY) if f.check_id in (PUPILS, DEVICES)]


def test_the_planted_rules_are_the_findings_each_with_file_and_line() -> None:
    found = seg(CWM_TAWEL.directory)
    failing = {(f.check_id, f.asset): f for f in found if f.failing}
    assert set(failing) == {(PUPILS, "firewall:fw-sch-03"), (DEVICES, "firewall:fw-care-bryn-heulog")}
    fws = CWM_TAWEL.directory / "firewalls-sites.yaml"
    pupils = failing[(PUPILS, "firewall:fw-sch-03")]
    line = line_of(fws, "pupils to MIS (results pilot)")
    # file:line relative to the estate directory (what a finding cites, wherever the estate was loaded from)
    assert f"(firewalls-sites.yaml:{line})" in pupils.observed and pupils.details["estate_line"] == line
    assert "pupil zone pupils" in pupils.observed and "azure-spokes (cloud)" in pupils.observed
    assert pupils.zone == "pupils" and pupils.evidence_kind is EvidenceKind.DECLARED
    devices = failing[(DEVICES, "firewall:fw-care-bryn-heulog")]
    assert f"(firewalls-sites.yaml:{line_of(fws, 'falls sensors to supplier cloud')})" in devices.observed
    assert "any address in internet" in devices.observed and "nursecall-hq-01" in devices.observed
    # The rules to each zone's own controllers (one per site, and fw-hq's) are not findings.
    assert not [f for f in found if f.failing and "nurse call" in f.key]


def test_a_pupils_vlan_in_a_staff_zone_and_a_pupils_ssid_on_a_staff_vlan_are_findings(welsh: Path) -> None:
    schools = welsh / "sites" / "03-schools.yaml"
    text = schools.read_text()
    schools.write_text(text.replace("cidr: 10.80.4.0/22, zone: pupils}", "cidr: 10.80.4.0/22, zone: staff}", 1))
    wifi = welsh / "wifi.yaml"
    ssid_line = line_of(wifi, "vlan: pupils")
    wifi.write_text(wifi.read_text().replace("    vlan: pupils\n", "    vlan: staff\n", 1))
    failing = [f for f in seg(welsh) if f.failing and f.check_id == PUPILS]
    vlan = next(f for f in failing if f.asset == "site:ysgol-gyfun-cwm-tawel")
    assert f"(sites/03-schools.yaml:{line_of(schools, '10.80.4.0/22, zone: staff')})" in vlan.observed
    assert "pupils VLAN pupils at ysgol-gyfun-cwm-tawel is in zone staff (user)" in vlan.observed
    ssid = [f for f in failing if f.asset == "ssid:Ysgolion-Disgyblion"]
    # One finding for the SSID, however many schools broadcast it.
    [one] = ssid
    assert f"(wifi.yaml:{ssid_line})" in one.observed
    assert "bridged to VLAN staff, whose purpose is corporate, not pupils, at 34 site(s): hq-pontawel," in one.observed


def test_a_device_zone_rule_to_an_address_that_is_not_its_controller_is_a_finding(welsh: Path) -> None:
    fw = welsh / "firewalls.yaml"
    fw.write_text(fw.read_text().replace(
        "from_zone: cctv, to_zone: servers, destination: video-recorder,",
        "from_zone: cctv, to_zone: servers, destination: file-print,"))
    failing = [f for f in seg(welsh) if f.failing and f.check_id == DEVICES and f.asset == "firewall:fw-hq"]
    [f] = failing
    assert "HQ-009" in f.observed and "reach file-print in servers" in f.observed and "nvr-hq-01" in f.observed


def test_no_pupil_zone_and_no_breach_is_a_pass_that_says_what_it_examined(welsh: Path) -> None:
    fws = welsh / "firewalls-sites.yaml"
    text = fws.read_text()
    drop = [line for line in text.splitlines(keepends=True)
            if "pupils to MIS (results pilot)" in line or "falls sensors to supplier cloud" in line]
    for line in drop:
        text = text.replace(line, "")
    fws.write_text(text)
    found = {f.check_id: f for f in seg(welsh)}
    assert found[PUPILS].status is Status.PASS and found[DEVICES].status is Status.PASS
    assert "1 pupil zone(s) (pupils)" in found[PUPILS].observed
    assert "3 device zone(s) (building, cctv, care-devices)" in found[DEVICES].observed
