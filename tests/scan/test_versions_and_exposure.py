"""The issue's scan, imported: an OpenSSH 7.4 banner judged against an offline feed built from NVD
data, RDP/SSH/telnet on a server-zone host exposed to a user zone, and the scanner itself never an
undeclared host. On both councils."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from security_checks.cli.app import app
from security_checks.compliance import feed_build
from security_checks.scan import versions
from tests.scan import ithc_files

REPO = Path(__file__).resolve().parents[2]
FEEDS = REPO / "tests" / "compliance" / "feeds"
GLENMORAY = REPO / "tests" / "estates" / "glenmoray"
# (estate args, server-zone host, its asset, a user-zone scanner address, a management-zone address,
#  a guest Wi-Fi address)
COUNCILS = {
    "demo": ([], "10.10.30.60", "host:intranet-cache", "10.10.10.250", "10.10.99.250", "10.10.40.250"),
    "glenmoray": (["--estate", str(GLENMORAY)], "10.64.5.40", "host:callmgr-01", "10.64.0.250", "10.64.15.250",
                  "10.64.6.250"),
}


@pytest.fixture(scope="module")
def feed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The council's feed as `estate advisories build` makes it from saved NVD responses."""
    d = tmp_path_factory.mktemp("feed")
    cves, match = ithc_files.nvd_files(d)
    built = feed_build.build(feed_build.Inputs(debian_tracker=FEEDS / "debian-tracker.json", nvd=[cves],
                                               nvd_cpe_match=[match]), ecosystems={"cpe"}, feed_date=date(2026, 11, 20))
    out = d / "advisories.json"
    feed_build.write_feed(built.feed, out)
    return out


def _import(tmp_path: Path, council: str, xml: bytes, *extra: str) -> dict[str, Any]:
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "scan.xml"
    path.write_bytes(xml)
    result = CliRunner().invoke(app, ["scan", "import", str(path), "--home", str(tmp_path / "h"), "--format", "json",
                                      "--fail-on", "none", *COUNCILS[council][0], *extra])
    assert result.exit_code == 0, result.output
    data: dict[str, Any] = json.loads(result.stdout[result.stdout.index("{"):])
    return data


def _by(data: dict[str, Any]) -> dict[tuple[str, str, str], dict[str, Any]]:
    return {(f["check_id"], f["asset"], f["key"]): f for f in data["findings"]}


@pytest.mark.parametrize("council", sorted(COUNCILS))
def test_an_openssh_7_4_banner_is_a_version_finding_naming_cves(council: str, feed: Path, tmp_path: Path) -> None:
    _, server, asset, scanner, _, _ = COUNCILS[council]
    data = _import(tmp_path, council, ithc_files.nmap_server(server, scanner), "--advisory-feed", str(feed))
    got = _by(data)
    ssh = got[("scan.vulnerable_version", asset, "tcp/22 openbsd:openssh")]
    assert ssh["status"] == "fail" and ssh["severity"] == "critical"       # CVE-2023-38408, CVSS 9.8
    assert ssh["details"]["cves"] == ["CVE-2021-41617", "CVE-2023-38408"] and ssh["details"]["fixed_version"] == "9.3p2"
    assert ssh["details"]["evidence_basis"] == "banner" and ssh["details"]["confidence"] == "medium"
    assert "CVE-2023-38408" in ssh["observed"] and "banner only" in ssh["observed"]
    # regreSSHion starts at 8.5p1, user enumeration names no fixed version: neither is claimed for 7.4p1.
    assert "CVE-2024-6387" not in json.dumps(ssh) and "CVE-2018-15473" not in json.dumps(ssh)
    # nginx (nmap's old igor_sysoev CPE) matched through the match data; one finding, not one per CPE vendor.
    nginx = [f for k, f in got.items() if k[0] == "scan.vulnerable_version" and k[2].startswith("tcp/80")]
    assert [f["details"]["cves"] for f in nginx] == [["CVE-2021-23017"]]
    # Apache's extrainfo names OpenSSL 1.0.2k: past its end of support, but a CentOS build (low severity).
    eol = got[("scan.eol_product", asset, "tcp/443 openssl:openssl")]
    assert eol["status"] == "fail" and eol["severity"] == "low" and "2019-12-31" in eol["observed"]
    assert eol["details"]["distribution"] == "CentOS" and eol["details"]["confidence"] == "low"
    # ssh2-enum-algos said nothing: not a pass.
    assert got[("scan.weak_ssh", asset, "tcp/22")]["status"] == "not_assessed"
    assert all(f["details"]["file_sha256"] == data["sha256"] for f in data["findings"])


def test_a_debian_banner_is_reported_low_with_the_backport_caveat(feed: Path, tmp_path: Path) -> None:
    xml = ithc_files.nmap_server("10.10.30.60", None, ssh="7.4p1", ssh_version_suffix="Debian 10+deb9u7",
                                 ssh_extra="protocol 2.0")
    ssh = _by(_import(tmp_path, "demo", xml, "--advisory-feed", str(feed)))[
        ("scan.vulnerable_version", "host:intranet-cache", "tcp/22 openbsd:openssh")]
    assert ssh["status"] == "fail" and ssh["severity"] == "low" and ssh["details"]["confidence"] == "low"
    assert ssh["details"]["backport_possible"] and "backports security fixes" in ssh["observed"]
    assert ssh["details"]["cves"] == ["CVE-2021-41617", "CVE-2023-38408"]


def test_without_a_feed_versions_are_not_assessed_never_passed(tmp_path: Path) -> None:
    data = _import(tmp_path, "glenmoray", ithc_files.nmap_server("10.64.5.40", "10.64.0.250"))
    vv = [f for f in data["findings"] if f["check_id"] == "scan.vulnerable_version"]
    assert vv and {f["status"] for f in vv} == {"not_assessed"}
    assert "no advisory feed" in vv[0]["observed"]


@pytest.mark.parametrize("council", sorted(COUNCILS))
def test_management_services_on_a_server_reached_from_a_user_zone_are_exposures(council: str,
                                                                                 tmp_path: Path) -> None:
    _, server, asset, scanner, _, _ = COUNCILS[council]
    data = _import(tmp_path, council, ithc_files.nmap_server(server, scanner))
    got = _by(data)
    exposed = {k[2]: f for k, f in got.items() if k[0] == "scan.management_exposed"}
    assert set(exposed) == {"tcp/22", "tcp/23", "tcp/3389"} and asset in {f["asset"] for f in exposed.values()}
    assert {(f["severity"], f["status"]) for f in exposed.values()} == {("high", "fail")}
    assert {f["details"]["service"] for f in exposed.values()} == {"SSH", "telnet", "RDP"}
    assert all(f["details"]["source_address"] == scanner for f in exposed.values())
    # The scanner's own address (localhost-response) is not an undeclared host.
    assert not any(f["asset"] == f"host:{scanner}" for f in data["findings"])
    assert "PSN" not in json.dumps([f["observed"] for f in data["findings"]])


@pytest.mark.parametrize("council", sorted(COUNCILS))
def test_severity_follows_the_vantage_and_the_management_zone_is_allowed(council: str, tmp_path: Path) -> None:
    _, server, _, _, mgmt, guest = COUNCILS[council]
    from_guest = _import(tmp_path / "g", council, ithc_files.nmap_server(server, guest))
    assert {f["severity"] for f in from_guest["findings"] if f["check_id"] == "scan.management_exposed"} == {"critical"}
    from_mgmt = _import(tmp_path / "m", council, ithc_files.nmap_server(server, mgmt))
    assert not [f for f in from_mgmt["findings"] if f["check_id"] == "scan.management_exposed"]
    # Without the scanner's address in the file, --from-zone says where it stood.
    zone = "servers" if council == "demo" else "datacentre"
    same_zone = _import(tmp_path / "s", council, ithc_files.nmap_server(server, None), "--from-zone", zone)
    assert not [f for f in same_zone["findings"] if f["check_id"] == "scan.management_exposed"]
    user = "corporate" if council == "demo" else "staff"
    told = _import(tmp_path / "u", council, ithc_files.nmap_server(server, None), "--from-zone", user)
    assert len([f for f in told["findings"] if f["check_id"] == "scan.management_exposed"]) == 3
    bad = CliRunner().invoke(app, ["scan", "import", str(tmp_path / "u" / "scan.xml"), "--from-zone", "nowhere",
                                   "--home", str(tmp_path / "x"), *COUNCILS[council][0]])
    assert bad.exit_code == 2 and "--from-zone" in bad.output


def test_identify_reads_cpes_banners_and_distribution_marks() -> None:
    got = versions.identify("OpenSSH", "7.4p1 Debian 10+deb9u7", "protocol 2.0", ["cpe:/a:openbsd:openssh:7.4p1"])
    assert [(i.vendor_product, i.version, i.basis, i.distro) for i in got] == [
        ("openbsd:openssh", "7.4p1", "cpe", "Debian")]
    got = versions.identify("Apache httpd", "2.4.6", "(CentOS) OpenSSL/1.0.2k-fips PHP/5.4.16", [])
    assert {(i.vendor_product, i.version) for i in got} == {("apache:http_server", "2.4.6"),
                                                             ("openssl:openssl", "1.0.2k-fips")}
    assert versions.identify("Microsoft Terminal Services", "", "", ["cpe:/o:microsoft:windows"]) == []
    # CPE 2.3 puts OpenSSH's portable suffix in the update field.
    assert versions.identify("", "", "", ["cpe:2.3:a:openbsd:openssh:9.3:p1:*:*:*:*:*:*"])[0].version == "9.3p1"
