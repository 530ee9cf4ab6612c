"""Real apt metadata on the lab's Debian chroot endpoint: the planted security update, pending in
a local file:// repository for more than 14 days, fails Cyber Essentials SUM-4 as an auto-fail."""

from __future__ import annotations

import subprocess
from datetime import date
from pathlib import Path

import pytest

from security_checks.catalogue import framework
from security_checks.compliance.advisories import load_feed
from security_checks.compliance.apt_host import collect
from security_checks.compliance.patch import linux_findings
from security_checks.compliance.verdict import AUTO_FAIL, framework_verdict
from security_checks.findings import Severity, Status
from security_checks.lab.patch_fault import DEMO_FEED, FIXED, PACKAGE, plant
from security_checks.model.loader import load_estate

pytestmark = [pytest.mark.root, pytest.mark.slow]
DEMO = Path(__file__).resolve().parents[2] / "inventory" / "demo"


def test_apt_in_the_chroot_shows_the_planted_update_pending(lab_endpoint: Path) -> None:
    out = subprocess.run(["chroot", str(lab_endpoint), "apt", "list", "--upgradable"], capture_output=True,
                         text=True, check=True).stdout
    assert f"{PACKAGE}/stable-security {FIXED} all [upgradable from: 1.0.0]" in out
    again = plant(lab_endpoint)          # idempotent
    assert not again.changed and again.installed == "1.0.0"


def test_overdue_security_update_fails_the_patch_requirement_as_auto_fail(lab_endpoint: Path) -> None:
    loaded = load_estate(DEMO)
    feed = load_feed(DEMO_FEED)
    today = date(2026, 11, 22)   # fix released 2026-10-20 (the feed): 33 days available
    host = collect("lab-debian-01", "debian-12", lab_endpoint)
    assert host.packages[PACKAGE] == "1.0.0" and len(host.packages) > 80
    upgrade = next(u for u in host.upgrades if u.package == PACKAGE)
    assert upgrade.security and upgrade.published == date(2026, 10, 20)   # the repository's Release date
    findings = linux_findings([host], feed, today, loaded.estate)
    overdue = [f for f in findings if f.check_id == "patch.security_update_overdue"]
    assert [(f.key, f.status, f.severity, f.cvss_score) for f in overdue] == [
        (PACKAGE, Status.FAIL, Severity.CRITICAL, 9.8)]
    assert overdue[0].details["days_available"] == 33 and overdue[0].details["candidate"] == FIXED
    v = framework_verdict(framework("cyber-essentials", "3.3"), findings, loaded.estate, today,
                          in_force=True, estate_dir=None)
    assert v.verdict == AUTO_FAIL
    first = v.requirements[0]
    assert first.ref == "CE3.3:SUM-4" and first.status == "not_met" and first.auto_fail
    assert overdue[0].id in first.evidence and overdue[0].id in first.failing
    assert any("CE3.3:SUM-4 (auto-fail) not met" in r for r in v.reasons)
    # Within the window the same fix is pending, not failing.
    early = linux_findings([host], feed, date(2026, 11, 2), loaded.estate)
    assert {f.check_id for f in early if f.key == PACKAGE} == {"patch.security_update_pending"}
