"""Vendor products in the advisory feed (the cpe ecosystem) and their release lines' end of support."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from security_checks.compliance import vendorver
from security_checks.compliance.advisories import FeedError, load_feed
from security_checks.compliance.eol import EolData, product_eol


@pytest.mark.parametrize(("older", "newer"), [
    ("7.4", "7.4p1"), ("7.4p1", "7.5"), ("7.4p1", "9.6p1"),        # OpenSSH portable releases
    ("1.1.1", "1.1.1k"), ("1.1.1k", "1.1.1l"),                      # OpenSSL letter releases
    ("2.0rc1", "2.0"), ("3.0.0-beta2", "3.0.0"),                    # pre-releases come first
    ("7.2.5", "7.2.10"), ("6.4.15", "7.0.0"),                       # FortiOS: numeric, not text
    ("120.0.6099.109", "121.0.6167.85"),                            # Chrome
    ("8u391", "8u401"), ("1.8.0_391", "1.8.0_401"),                 # Java update numbers
])
def test_vendor_order(older: str, newer: str) -> None:
    assert vendorver.compare(older, newer) == -1
    assert vendorver.compare(newer, older) == 1


@pytest.mark.parametrize(("a", "b"), [("7.2", "7.2.0"), ("v7.2.5,build1517", "7.2.5"), ("2.4.49", "2.4.49 (Unix)")])
def test_same_release_written_differently(a: str, b: str) -> None:
    assert vendorver.compare(a, b) == 0


def test_text_without_a_version_is_refused() -> None:
    with pytest.raises(vendorver.VersionError):
        vendorver.key("unknown")


def _feed(tmp_path: Path, *advisories: dict[str, object]) -> Path:
    path = tmp_path / "feed.json"
    path.write_text(json.dumps({"format": "estate-advisories/1", "feed_date": "2026-11-20",
                                "advisories": list(advisories)}))
    return path


OPENSSH = {"id": "NVD-CVE-2023-38408", "cve": ["CVE-2023-38408"], "ecosystem": "cpe", "package": "openbsd:openssh",
           "fixed_version": "9.3p2", "cvss_vector": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
           "released": "2023-07-19", "title": "ssh-agent PKCS#11 remote code execution"}
FORTIOS_72 = {"id": "FG-IR-24-015", "cve": ["CVE-2024-21762"], "ecosystem": "cpe", "package": "fortinet:fortios",
              "introduced": "7.2.0", "fixed_version": "7.2.7", "released": "2024-02-08",
              "cvss_vector": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", "title": "sslvpnd out-of-bounds write"}
DEBIAN = {"id": "DSA-1", "package": "openssh-server", "fixed_version": "1:9.2p1-2+deb12u3", "released": "2026-01-01"}


def test_affecting_matches_product_and_range(tmp_path: Path) -> None:
    feed = load_feed(_feed(tmp_path, OPENSSH, FORTIOS_72, DEBIAN))
    assert [a.id for a in feed.affecting("openbsd:openssh", "7.4p1")] == ["NVD-CVE-2023-38408"]
    assert feed.affecting("openbsd:openssh", "9.3p2") == []
    assert feed.affecting("OpenBSD:OpenSSH", "9.0") != []            # CPE names are case-free
    # the introduced bound keeps the 7.2 line's advisory off 7.0 and 7.4
    assert [a.id for a in feed.affecting("fortinet:fortios", "v7.2.5,build1517")] == ["FG-IR-24-015"]
    assert feed.affecting("fortinet:fortios", "7.0.12") == []
    assert feed.affecting("fortinet:fortios", "7.4.1") == []
    assert feed.affecting("fortinet:fortios", "") == []              # no version: nothing claimed
    # a Debian advisory is never taken for a vendor product, nor a cpe one for a Debian release
    assert feed.affecting("openssh-server", "1:9.2p1-2") == []
    assert not any(a.applies_to("debian-12") for a in feed.advisories if a.ecosystem == "cpe")


@pytest.mark.parametrize(("bad", "field"), [
    ({**OPENSSH, "package": "openssh"}, "vendor:product"),
    ({**OPENSSH, "fixed_version": "latest"}, "not a version"),
    ({**FORTIOS_72, "introduced": "7.4.0"}, "not before fixed_version"),
])
def test_bad_vendor_advisory_names_the_field(tmp_path: Path, bad: dict[str, object], field: str) -> None:
    with pytest.raises(FeedError, match=field) as exc:
        load_feed(_feed(tmp_path, bad))
    assert str(exc.value).startswith(f"{tmp_path / 'feed.json'}: advisories.0")


def test_release_line_end_of_support() -> None:
    data = EolData.model_validate({"operating_systems": {}, "software": [
        {"name": "FortiOS", "cpe": "fortinet:fortios", "source": "test data",
         "versions": [{"prefix": "6.4", "eol": "2025-03-31"}, {"prefix": "7.0", "eol": "2026-03-31"}]},
        {"name": "Adobe Flash Player", "cpe": "adobe:flash_player", "eol": "2020-12-31"}]})
    assert product_eol(data, "fortinet:fortios", "6.4.15") == ("FortiOS 6.4", date(2025, 3, 31))
    assert product_eol(data, "fortinet:fortios", "7.0") == ("FortiOS 7.0", date(2026, 3, 31))
    assert product_eol(data, "fortinet:fortios", "7.01.1") is None   # 7.01 is not the 7.0 line
    assert product_eol(data, "fortinet:fortios", "7.4.3") is None    # a line with no end recorded
    assert product_eol(data, "adobe:flash_player", "32.0.0.465") == ("Adobe Flash Player", date(2020, 12, 31))
