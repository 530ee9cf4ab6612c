"""The vectorised patch evaluation: the 14-day rule, agreement with a plain per-row reference,
Windows update results, unsupported OS and software, and the advisory feed."""

from __future__ import annotations

import json
import random
from datetime import date, timedelta
from pathlib import Path

import pytest

from security_checks.checks import make_finding
from security_checks.compliance import debver
from security_checks.compliance.advisories import Advisory, Feed, FeedError, load_feed
from security_checks.compliance.apt_host import HostPackages, Upgrade, parse_simulation
from security_checks.compliance.eol import unsupported_os_findings
from security_checks.compliance.patch import feed_finding, linux_findings, windows_findings
from security_checks.compliance.patch_eval import Fleet, evaluate
from security_checks.findings import Severity, Status
from security_checks.lab.patch_fault import DEMO_FEED
from security_checks.model.loader import load_estate

TODAY = date(2026, 11, 22)
CRIT = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"     # 9.8
MEDIUM = "CVSS:3.1/AV:N/AC:H/PR:N/UI:R/S:U/C:L/I:L/A:N"   # 4.2
HIGH_70 = "CVSS:3.1/AV:N/AC:L/PR:L/UI:N/S:U/C:L/I:L/A:H"  # 7.1


def feed(*advisories: Advisory, feed_date: date = TODAY) -> Feed:
    return Feed(format="estate-advisories/1", feed_date=feed_date, advisories=list(advisories))


def adv(aid: str, package: str, fixed: str, vector: str | None, days_ago: int, ecosystem: str = "debian") -> Advisory:
    return Advisory(id=aid, package=package, fixed_version=fixed, cvss_vector=vector,
                    released=TODAY - timedelta(days=days_ago), ecosystem=ecosystem)


@pytest.mark.parametrize("vector, days_ago, overdue", [
    (CRIT, 14, False), (CRIT, 15, True), (HIGH_70, 15, True), (MEDIUM, 400, False), (None, 15, True), (None, 3, False),
])
def test_fourteen_day_rule(vector: str | None, days_ago: int, overdue: bool) -> None:
    fleet = Fleet.from_hosts([("h1", "debian-12", {"openssl": "3.0.11-1~deb12u2"})])
    m = evaluate(fleet, feed(adv("A", "openssl", "3.0.15-1~deb12u1", vector, days_ago)), TODAY)
    assert len(m) == 1
    assert m.overdue_count == int(overdue)
    assert m.per_host()["overdue"].tolist() == [int(overdue)]


def test_fixed_or_newer_versions_and_other_releases_are_not_flagged() -> None:
    fleet = Fleet.from_hosts([("new", "debian-12", {"openssl": "3.0.15-1~deb12u1"}),
                              ("newer", "debian-12", {"openssl": "3.0.16-1~deb12u1"}),
                              ("ubuntu", "ubuntu-22.04", {"openssl": "1.0"}),
                              ("old", "debian-12", {"openssl": "3.0.15-1~deb12u1~rc1"})])
    m = evaluate(fleet, feed(adv("A", "openssl", "3.0.15-1~deb12u1", CRIT, 30, ecosystem="debian-12")), TODAY)
    assert m.triples() == {("old", "openssl", "A")}


def test_vectorised_evaluation_agrees_with_a_plain_reference() -> None:
    rng = random.Random(11)
    pkgs = [f"p{i}" for i in range(40)]
    vers = ["1.0", "1.0-1", "1.0-1+deb12u1", "1.1~rc1", "1.1", "2:0.9", "1.0.1"]
    hosts = [(f"h{i}", rng.choice(["debian-12", "ubuntu-22.04"]), {p: rng.choice(vers) for p in rng.sample(pkgs, 25)})
             for i in range(60)]
    advisories = [adv(f"A{i}", rng.choice(pkgs), rng.choice(vers), rng.choice([CRIT, MEDIUM, HIGH_70, None]),
                      rng.randint(0, 40), rng.choice(["debian", "debian-12", "ubuntu-22.04"])) for i in range(80)]
    m = evaluate(Fleet.from_hosts(hosts), feed(*advisories), TODAY)
    expected, overdue = set(), 0
    for name, os_name, installed in hosts:
        for a in advisories:
            if a.package in installed and a.applies_to(os_name) and debver.compare(installed[a.package],
                                                                                    a.fixed_version) < 0:
                expected.add((name, a.package, a.id))
                days = (TODAY - a.released).days
                overdue += int((a.score is None or a.score >= 7.0) and days > 14)
    assert m.triples() == expected
    assert len(m) == len(expected) and m.overdue_count == overdue
    assert expected  # the data exercises the join


def _estate():  # type: ignore[no-untyped-def]
    return load_estate(Path(__file__).resolve().parents[2] / "inventory" / "demo").estate


def test_linux_findings_overdue_pending_unrated_and_up_to_date() -> None:
    hosts = [
        HostPackages("bad", "debian-12", {"openssl": "1.0", "curl": "7.0", "zlib": "1.0", "telnet": "0.17-44"},
                     [Upgrade("zlib", "1.0", "1.1", "Debian-Security:12/stable-security", True,
                              TODAY - timedelta(30))]),
        HostPackages("good", "debian-12", {"openssl": "2.0"}),
    ]
    f = feed(adv("A", "openssl", "2.0", CRIT, 20), adv("B", "curl", "7.1", MEDIUM, 2))
    out = linux_findings(hosts, f, TODAY, _estate())
    got = {(x.check_id, x.asset, x.key): x for x in out}
    over = got[("patch.security_update_overdue", "host:bad", "openssl")]
    assert over.status is Status.FAIL and over.severity is Severity.CRITICAL and over.cvss_score == 9.8
    assert over.details["days_available"] == 20 and "CE3.3:SUM-4" in over.controls
    pend = got[("patch.security_update_pending", "host:bad", "curl")]
    assert pend.status is Status.PASS and pend.severity is Severity.MEDIUM and pend.details["pending"]
    unrated = got[("patch.security_update_overdue", "host:bad", "zlib")]   # security archive, no advisory
    assert unrated.status is Status.FAIL and unrated.details["rated"] is False
    assert got[("patch.unsupported_software", "host:bad", "telnet")].status is Status.FAIL
    assert got[("patch.up_to_date", "host:good", "")].status is Status.PASS
    assert ("patch.up_to_date", "host:bad", "") not in got


def test_windows_update_rule_on_device_audit_results_standing_in_for_windows_hosts() -> None:
    # No Windows host exists here: these are devices.win.updates results as the device audit records them.
    missing = [{"kb": "KB5050001", "title": "Cumulative update", "released": (TODAY - timedelta(20)).isoformat(),
                "severity": "Critical"},
               {"kb": "KB5050002", "title": "Servicing stack", "released": (TODAY - timedelta(5)).isoformat(),
                "severity": "Important"},
               {"kb": "KB5050003", "title": "Defender platform", "released": (TODAY - timedelta(60)).isoformat(),
                "severity": "Moderate"}]
    device = make_finding("devices.win.updates", "host:pc-0001", Status.FAIL, details={"missing_updates": missing})
    out = {f.key: f for f in windows_findings([device], TODAY)}
    assert out["KB5050001"].check_id == "patch.security_update_overdue" and out["KB5050001"].status is Status.FAIL
    assert out["KB5050001"].severity is Severity.CRITICAL
    assert out["KB5050002"].check_id == "patch.security_update_pending" and out["KB5050002"].details["due"] == \
        (TODAY + timedelta(9)).isoformat()
    assert out["KB5050003"].check_id == "patch.security_update_pending" and not out["KB5050003"].failing


def test_unsupported_os_from_endpoint_groups_honours_extended_updates() -> None:
    estate = _estate()
    got = {f.asset: f for f in unsupported_os_findings(estate, TODAY)}
    win10 = got["endpoint-group:windows-10-legacy"]
    assert win10.status is Status.FAIL and "2025-10-14" in win10.observed
    assert got["endpoint-group:windows-11-corporate"].status is Status.PASS
    assert got["lob:housing"].status is Status.PASS   # Windows Server 2019: extended support to 2029
    group = next(g for g in estate.endpoint_groups if g.name == "windows-10-legacy")
    group.extended_security_updates = True
    got = {f.asset: f for f in unsupported_os_findings(estate, TODAY)}
    assert got["endpoint-group:windows-10-legacy"].status is Status.PASS
    assert got["endpoint-group:windows-10-legacy"].status is not Status.FAIL
    assert {f.status for f in unsupported_os_findings(estate, date(2029, 1, 1))} >= {Status.FAIL}


def test_feed_staleness_and_bad_feed_files(tmp_path: Path) -> None:
    shipped = load_feed(DEMO_FEED)
    assert feed_finding(shipped, shipped.feed_date + timedelta(30)).status is Status.PASS
    stale = feed_finding(shipped, shipped.feed_date + timedelta(31))
    assert stale.status is Status.FAIL and stale.details["feed_date"] == shipped.feed_date.isoformat()
    bad = json.loads(Path(shipped.path).read_text())
    bad["advisories"][0]["cvss_vector"] = "CVSS:3.1/AV:Q"
    path = tmp_path / "feed.json"
    path.write_text(json.dumps(bad))
    with pytest.raises(FeedError, match=r"feed\.json: advisories\.0\.cvss_vector: .*CVSS"):
        load_feed(path)
    path.write_text("{not json")
    with pytest.raises(FeedError, match=r"feed\.json: line 1: not JSON"):
        load_feed(path)


def test_apt_simulation_parsing() -> None:
    text = ("Inst libssl3 [3.0.11-1~deb12u2] (3.0.15-1~deb12u1 Debian-Security:12/stable-security [amd64])\n"
            "Inst tzdata [2024a-0+deb12u1] (2025b-0+deb12u1 Debian:12.11/stable [all])\n"
            "Conf libssl3 (3.0.15-1~deb12u1 Debian-Security:12/stable-security [amd64])\n")
    ups = parse_simulation(text, {"stable-security": TODAY - timedelta(3)})
    assert [(u.package, u.candidate, u.security, u.published) for u in ups] == [
        ("libssl3", "3.0.15-1~deb12u1", True, TODAY - timedelta(3)), ("tzdata", "2025b-0+deb12u1", False, None)]
