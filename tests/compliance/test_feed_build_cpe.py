"""Vendor products into the feed's cpe ecosystem: NVD CVE API 2.0 configurations, CPE match data, CSAF."""

from __future__ import annotations

import json
import subprocess
from datetime import date
from pathlib import Path

import pytest

from security_checks.compliance.advisories import load_feed
from security_checks.compliance.feed_build import BuildError, Inputs, build, write_feed
from tests.scan import ithc_files

REPO = Path(__file__).resolve().parents[2]
FEEDS = REPO / "tests" / "compliance" / "feeds"
ESTATE = REPO / ".venv" / "bin" / "estate"


def test_nvd_configurations_become_cpe_ranges_and_nothing_is_guessed(tmp_path: Path) -> None:
    cves, match = ithc_files.nvd_files(tmp_path)
    r = build(Inputs(debian_tracker=FEEDS / "debian-tracker.json", nvd=[cves], nvd_cpe_match=[match]),
              ecosystems={"cpe"}, feed_date=date(2026, 11, 20))
    got = {(a["package"], a["id"], a.get("introduced"), a["fixed_version"]) for a in r.feed["advisories"]}
    assert got == {("openbsd:openssh", "NVD-CVE-2023-38408", None, "9.3p2"),
                   ("openbsd:openssh", "NVD-CVE-2021-41617", "6.2", "8.8"),
                   ("openbsd:openssh", "NVD-CVE-2024-6387", None, "4.4p1"),
                   ("openbsd:openssh", "NVD-CVE-2024-6387", "8.5p1", "9.8p1"),
                   ("f5:nginx", "NVD-CVE-2021-23017", "0.6.18", "1.20.1")}   # bounds from the CPE match file
    assert all(a["ecosystem"] == "cpe" and a["cvss_vector"].startswith("CVSS:3.1/") for a in r.feed["advisories"])
    # An exact version and a "through 7.7" bound name no first fixed version: counted, left out.
    assert r.left_out["NVD: one exact version named (no first fixed version)"] == 1
    assert r.left_out["NVD: no versionEndExcluding (no first fixed version stated)"] == 1
    # The platform a product runs on (vulnerable: false) is not an advisory.
    assert not any("fedora" in a["package"] for a in r.feed["advisories"])
    feed = write_feed(r.feed, tmp_path / "advisories.json")
    assert {a.id for a in feed.affecting("openbsd:openssh", "9.2p1")} == {"NVD-CVE-2023-38408", "NVD-CVE-2024-6387"}
    assert {a.id for a in feed.affecting("openbsd:openssh", "7.4p1")} == {"NVD-CVE-2021-41617", "NVD-CVE-2023-38408"}
    assert feed.affecting("openbsd:openssh", "9.8p1") == []
    # Without the CPE match file the abbreviated nginx entry has no bounds: left out, not guessed.
    bare = build(Inputs(debian_tracker=FEEDS / "debian-tracker.json", nvd=[cves]), ecosystems={"cpe"},
                 feed_date=date(2026, 11, 20))
    assert not [a for a in bare.feed["advisories"] if a["package"] == "f5:nginx"]
    # Debian-only builds are unchanged: the cpe ecosystem is only built when chosen.
    debian = build(Inputs(debian_tracker=FEEDS / "debian-tracker.json", nvd=[cves]), ecosystems={"debian-12"},
                   feed_date=date(2026, 11, 20))
    assert not [a for a in debian.feed["advisories"] if a["ecosystem"] == "cpe"]


def test_a_broken_range_names_the_file_and_the_field(tmp_path: Path) -> None:
    cves, _ = ithc_files.nvd_files(tmp_path)
    doc = json.loads(cves.read_text())
    doc["vulnerabilities"][0]["cve"]["configurations"][0]["nodes"][0]["cpeMatch"][0]["versionEndExcluding"] = "soon"
    cves.write_text(json.dumps(doc))
    says = r"nvd-cves.json: .*cpeMatch\[0\]\.versionEndExcluding: 'soon' is not a version"
    with pytest.raises(BuildError, match=says):
        build(Inputs(debian_tracker=FEEDS / "debian-tracker.json", nvd=[cves]), ecosystems={"cpe"},
              feed_date=date(2026, 11, 20))


def test_csaf_products_mapped_to_cpe_use_the_vendor_order(tmp_path: Path) -> None:
    doc = {"document": {"category": "csaf_security_advisory", "csaf_version": "2.0", "title": "OpenSSH advisory",
                        "publisher": {"category": "vendor", "name": "Example", "namespace": "https://example.invalid"},
                        "tracking": {"id": "EX-2024-001", "status": "final", "version": "1",
                                     "initial_release_date": "2024-07-01T00:00:00Z",
                                     "current_release_date": "2024-07-01T00:00:00Z",
                                     "revision_history": [{"number": "1", "date": "2024-07-01T00:00:00Z",
                                                           "summary": "first"}]}},
           "product_tree": {"branches": [{"category": "vendor", "name": "OpenBSD", "branches": [
               {"category": "product_name", "name": "OpenSSH", "branches": [
                   {"category": "product_version", "name": "9.8p1",
                    "product": {"product_id": "SSH-9.8P1", "name": "OpenSSH 9.8p1"}},
                   {"category": "product_version", "name": "10.0p1",
                    "product": {"product_id": "SSH-10.0P1", "name": "OpenSSH 10.0p1"}}]}]}]},
           "vulnerabilities": [{"cve": "CVE-2024-6387", "title": "regreSSHion",
                                "product_status": {"first_fixed": ["SSH-9.8P1", "SSH-10.0P1"]},
                                "scores": [{"products": ["SSH-9.8P1"], "cvss_v3": {
                                    "version": "3.1", "baseScore": 8.1, "baseSeverity": "HIGH",
                                    "vectorString": "CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:H/I:H/A:H"}}],
                                "remediations": [{"category": "vendor_fix", "details": "Update",
                                                  "product_ids": ["SSH-9.8P1"], "date": "2024-07-01T00:00:00Z"}]}]}
    (tmp_path / "csaf").mkdir()
    (tmp_path / "csaf" / "ex-2024-001.json").write_text(json.dumps(doc))
    mapping = tmp_path / "map.yaml"
    mapping.write_text("format: estate-csaf-map/1\nproducts:\n"
                       "  - {vendor: OpenBSD, product: OpenSSH, ecosystem: cpe, package: 'openbsd:openssh'}\n")
    r = build(Inputs(debian_tracker=FEEDS / "debian-tracker.json", csaf=[tmp_path / "csaf"], csaf_map=mapping),
              ecosystems={"cpe"}, feed_date=date(2026, 11, 20))
    [a] = r.feed["advisories"]
    # dpkg order would call 10.0p1 older than 9.8p1 ("1" < "9"); the vendor order knows better.
    assert (a["package"], a["fixed_version"], a["cve"]) == ("openbsd:openssh", "9.8p1", ["CVE-2024-6387"])


def test_the_command_builds_vendor_advisories_from_saved_nvd_files(tmp_path: Path) -> None:
    cves, match = ithc_files.nvd_files(tmp_path)
    out = tmp_path / "advisories.json"
    r = subprocess.run([str(ESTATE), "advisories", "build", "--debian-tracker", str(FEEDS / "debian-tracker.json"),
                        "--nvd", str(cves), "--nvd-cpe-match", str(match), "--ecosystem", "cpe", "--feed-date",
                        "2026-11-20", "--out", str(out), "--format", "json"], capture_output=True, text=True,
                       check=False)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["by_ecosystem"] == {"cpe": 5}
    assert len(load_feed(out).affecting("f5:nginx", "1.18.0")) == 1
