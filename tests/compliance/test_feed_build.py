"""`estate advisories build`: the council's advisory feed from saved copies of real sources.

The inputs under feeds/ are small fragments in the sources' own formats: the Debian Security
Tracker JSON export, the tracker's DSA list, an NVD CVE API 2.0 response, a Debian Sources index,
a package list from dpkg-query, two CSAF 2.0 documents (a Microsoft-style cumulative update over
several Windows products, a Fortinet-style FortiOS advisory) and the council's product mapping.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from security_checks.compliance import feed_build
from security_checks.compliance.advisories import load_feed
from security_checks.compliance.apt_host import HostPackages
from security_checks.compliance.feed_build import BuildError, Inputs, build, estate_ecosystems, write_feed
from security_checks.compliance.patch import linux_findings
from security_checks.compliance.patch_eval import Fleet, evaluate
from security_checks.findings import Severity, Status
from security_checks.model.loader import load_estate

FEEDS = Path(__file__).resolve().parent / "feeds"
REPO = Path(__file__).resolve().parents[2]
ESTATE = REPO / ".venv" / "bin" / "estate"
FEED_DATE = date(2024, 12, 1)
EVERYTHING = {"bookworm", "bullseye", "windows-11", "windows-10", "fortios"}


def inputs(**changes: Any) -> Inputs:
    base = Inputs(debian_tracker=FEEDS / "debian-tracker.json", dsa_lists=[FEEDS / "DSA-list"],
                  nvd=[FEEDS / "nvd-cves.json"], csaf=[FEEDS / "csaf"], csaf_map=FEEDS / "csaf-map.yaml")
    for k, v in changes.items():
        setattr(base, k, v)
    return base


def advisories(result: feed_build.Build, **match: str) -> list[dict[str, Any]]:
    return [a for a in result.feed["advisories"] if all(a.get(k) == v for k, v in match.items())]


@pytest.fixture(scope="module")
def full() -> feed_build.Build:
    return build(inputs(), ecosystems=EVERYTHING, feed_date=FEED_DATE)


def test_the_built_feed_loads_is_deterministic_and_shared(full: feed_build.Build, tmp_path: Path) -> None:
    out = tmp_path / "advisories.json"
    feed = write_feed(full.feed, out)
    assert feed.feed_date == FEED_DATE and len(feed.advisories) == len(full.feed["advisories"]) > 0
    assert load_feed(out).advisories == feed.advisories
    assert out.stat().st_mode & 0o777 == 0o644    # a feed is not secret
    again = tmp_path / "again.json"
    write_feed(build(inputs(), ecosystems=EVERYTHING, feed_date=FEED_DATE).feed, again)
    assert again.read_bytes() == out.read_bytes()
    keys = [(a["ecosystem"], a["package"], a["released"], a["id"]) for a in full.feed["advisories"]]
    assert keys == sorted(keys)
    source = full.feed["source"]
    assert "debian-tracker.json" in source and "DSA-list (latest advisory 2024-11-28)" in source
    assert "2024-12-01T09:12:44.871" in source and "2 document(s)" in source


def test_debian_fixes_are_dated_by_the_advisory_that_shipped_their_version(full: feed_build.Build) -> None:
    curl12 = advisories(full, ecosystem="debian-12", package="curl")
    assert {a["id"] for a in curl12} == {"DSA-5523-1"} and {a["released"] for a in curl12} == {"2023-10-11"}
    assert {c for a in curl12 for c in a["cve"]} == {"CVE-2023-38545", "CVE-2023-38546"}
    assert {a["fixed_version"] for a in curl12} == {"7.88.1-10+deb12u4"}
    curl11 = advisories(full, ecosystem="debian-11", package="curl")
    assert {a["fixed_version"] for a in curl11} == {"7.74.0-1.3+deb11u10"}
    ssl = advisories(full, ecosystem="debian-12", package="openssl")
    assert {(a["id"], a["released"]) for a in ssl} == {("DSA-5764-1", "2024-09-03")}
    assert advisories(full, package="php8.2")[0]["title"] == "php8.2 - security update"


def test_unresolved_unimportant_and_never_vulnerable_entries_are_left_out(full: feed_build.Build) -> None:
    cves = {c for a in full.feed["advisories"] for c in a["cve"]}
    assert "CVE-2024-13176" not in cves      # open in bookworm (postponed), undetermined in bullseye
    assert "CVE-2023-28486" not in cves      # sudo: unimportant
    assert "CVE-2024-2379" not in cves       # fixed_version "0": never vulnerable
    assert "CVE-2023-28320" not in cves      # fixed before bookworm shipped: no stable update
    assert not advisories(full, package="tiff")  # TEMP- ids have no CVE
    assert full.left_out["Debian: open, no fix yet"] == 2
    assert full.left_out["Debian: undetermined, no fix yet"] == 1
    assert full.left_out["Debian: unimportant"] == 1
    assert full.left_out["Debian: release never vulnerable"] == 2
    assert full.left_out["Debian: not a CVE (TEMP- id)"] == 1


def test_a_fix_no_advisory_dates_is_left_out_and_listed_never_guessed(full: feed_build.Build) -> None:
    assert full.undated == [
        {"release": "bookworm", "package": "openssl", "fixed_version": "3.0.14-1~deb12u1", "cve": "CVE-2024-2511"},
        {"release": "bullseye", "package": "openssl", "fixed_version": "1.1.1w-0+deb11u2", "cve": "CVE-2024-5535"},
    ]
    assert not advisories(full, fixed_version="3.0.14-1~deb12u1")
    assert not advisories(full, ecosystem="debian-11", package="openssl")
    no_lists = build(inputs(dsa_lists=[]), ecosystems={"bookworm"}, feed_date=FEED_DATE)
    assert not no_lists.feed["advisories"] and len(no_lists.undated) == 7


def test_vectors_from_nvd_for_debian_and_from_csaf_scores(full: feed_build.Build) -> None:
    def vector(cve: str, **match: str) -> str | None:
        return next(a for a in advisories(full, **match) if cve in a["cve"]).get("cvss_vector")

    # NVD's own (Primary) metric wins over the CNA's; a Secondary alone is used when it is all there is.
    assert vector("CVE-2023-38545", ecosystem="debian-12") == "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"
    assert vector("CVE-2024-5535", ecosystem="debian-12") == "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:H"
    assert vector("CVE-2024-6119", ecosystem="debian-12") is None           # unrated: no NVD entry
    assert vector("CVE-2024-11233", ecosystem="debian-12") is None
    assert vector("CVE-2024-43572", package="windows-11-23h2-x64") == "CVSS:3.1/AV:L/AC:L/PR:N/UI:R/S:U/C:H/I:H/A:H"
    assert vector("CVE-2024-21762", package="fortios-7.4") == "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"
    # CVEs rated differently stay separate entries: merging would hide the unrated one.
    ssl = advisories(full, ecosystem="debian-12", package="openssl")
    assert sorted((a["cve"], a.get("cvss_vector") is None) for a in ssl) == [
        (["CVE-2024-5535"], False), (["CVE-2024-6119"], True)]
    assert full.summary()["unrated"] == 2


def test_csaf_products_through_the_councils_mapping(full: feed_build.Build) -> None:
    w23 = advisories(full, package="windows-11-23h2-x64")
    assert {(a["ecosystem"], a["fixed_version"], a["released"], a["id"]) for a in w23} == {
        ("windows-11", "10.0.22631.4317", "2024-10-08", "MSRC-2024-Oct-Windows")}
    assert {c for a in w23 for c in a["cve"]} == {"CVE-2024-43572", "CVE-2024-43573"}
    assert all("KB5044285" in a["title"] for a in w23)
    assert {a["fixed_version"] for a in advisories(full, package="windows-11-24h2-x64")} == {"10.0.26100.2033"}
    w10 = advisories(full, package="windows-10-22h2-x64")
    assert [(a["ecosystem"], a["cve"]) for a in w10] == [("windows-10", ["CVE-2024-43572"])]
    # Fortinet: each FortiOS branch is its own package; no remediation date, so the document's release date.
    assert {(a["package"], a["fixed_version"], a["released"]) for a in advisories(full, ecosystem="fortios")} == {
        ("fortios-7.4", "7.4.3", "2024-02-08"), ("fortios-7.2", "7.2.7", "2024-02-08")}
    unmapped = {u["product"]: u for u in full.summary()["unmapped_products"]}
    assert set(unmapped) == {"Microsoft: Windows Server 2022", "Fortinet: FortiOS", "Fortinet: FortiProxy"}
    assert unmapped["Fortinet: FortiOS"]["versions"] == ["7.0.14", "vers:generic/>=7.0.0|<=7.0.13"]
    assert unmapped["Microsoft: Windows Server 2022"]["documents"] == ["msrc-2024-oct-cumulative.json"]
    assert not advisories(full, package="Windows Server 2022")


def test_a_range_alone_gives_the_fix_and_a_later_revision_replaces_an_earlier(tmp_path: Path) -> None:
    doc = json.loads((FEEDS / "csaf" / "fortinet-FG-IR-24-015.json").read_text())
    vuln = doc["vulnerabilities"][0]
    vuln["product_status"] = {"known_affected": ["FOS-7.4-AFFECTED"]}
    doc["product_tree"]["branches"][0]["branches"][0]["branches"][0]["name"] = "vers:fortios/>=7.4.0|<7.4.3"
    older = json.loads(json.dumps(doc))
    older["document"]["tracking"]["current_release_date"] = "2024-02-08T16:00:00.000Z"
    older["vulnerabilities"][0]["cve"] = "CVE-2024-00001"
    (tmp_path / "a-new.json").write_text(json.dumps(doc))
    (tmp_path / "b-old.json").write_text(json.dumps(older))
    r = build(inputs(csaf=[tmp_path]), ecosystems={"fortios"}, feed_date=FEED_DATE)
    assert [(a["package"], a["fixed_version"], a["cve"]) for a in r.feed["advisories"]] == [
        ("fortios-7.4", "7.4.3", ["CVE-2024-21762"])]
    assert r.left_out["CSAF: earlier revision of a document also given"] == 1
    vuln["product_status"] = {"known_affected": ["FOS-7.2-AFFECTED"]}     # "<=7.2.6" says no version
    (tmp_path / "a-new.json").write_text(json.dumps(doc))
    (tmp_path / "b-old.json").unlink()
    r = build(inputs(csaf=[tmp_path]), ecosystems={"fortios"}, feed_date=FEED_DATE)
    assert not r.feed["advisories"]
    assert [n["reason"] for n in r.no_fixed_version] == ["affected, and no fixed version stated"]


def test_ecosystems_default_to_what_the_estate_runs_and_packages_to_what_it_has() -> None:
    estate = load_estate(REPO / "inventory" / "demo").estate
    chosen = estate_ecosystems(estate)
    assert {"debian-12", "windows-11", "windows-10", "fortios", "windows-server-2022"} <= chosen
    assert "debian-11" not in chosen
    r = build(inputs(debian_sources=[FEEDS / "Sources"], packages=FEEDS / "packages.txt"), ecosystems=chosen,
              feed_date=FEED_DATE)
    assert not advisories(r, ecosystem="debian-11")
    assert r.left_out["outside the selected ecosystems"] == 0
    names = {a["package"] for a in r.feed["advisories"] if a["ecosystem"] == "debian-12"}
    # Binary names as dpkg reports them, and only those the estate's hosts have.
    assert names == {"curl", "libcurl4", "openssl", "libssl3", "php8.2-cli", "php8.2-common"}
    only_bookworm = build(inputs(), ecosystems={"debian-12"}, feed_date=FEED_DATE)
    assert only_bookworm.left_out["outside the selected ecosystems"] == 7
    assert {a["ecosystem"] for a in only_bookworm.feed["advisories"]} == {"debian-12"}
    assert {a["package"] for a in only_bookworm.feed["advisories"]} == {"curl", "openssl", "php8.2"}
    every_debian = build(inputs(csaf=[], csaf_map=None), ecosystems={"debian"}, feed_date=FEED_DATE)
    assert {a["ecosystem"] for a in every_debian.feed["advisories"]} == {"debian-11", "debian-12"}


# -- bad input: one line naming the file and where, exit 2, nothing written ----------------------


def _copy_feeds(tmp_path: Path) -> Path:
    dest = tmp_path / "feeds"
    shutil.copytree(FEEDS, dest)
    return dest


def _edit_json(path: Path, change: Any) -> None:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def _set(*keys: str | int, value: Any) -> Any:
    def change(data: Any) -> None:
        for k in keys[:-1]:
            data = data[k]
        data[keys[-1]] = value
    return change


BAD = [
    ("debian-tracker.json", lambda p: p.write_text('{"curl": {\n  "CVE-2023-38545": }\n}'),
     "debian-tracker.json: line 2: not JSON"),
    ("debian-tracker.json", lambda p: _edit_json(p, _set("curl", "CVE-2023-38545", "releases", value=[])),
     'debian-tracker.json: $.curl["CVE-2023-38545"].releases: expected an object, found an array'),
    ("debian-tracker.json", lambda p: _edit_json(p, _set("openssl", "CVE-2024-5535", "releases", "bookworm",
                                                        "fixed_version", value="3.0 beta")),
     'debian-tracker.json: $.openssl["CVE-2024-5535"].releases.bookworm.fixed_version: \'3.0 beta\' is not a version'),
    ("DSA-list", lambda p: p.write_text(p.read_text().replace("[03 Sep 2024]", "[31 Sep 2024]")),
     "DSA-list: line 4: [31 Sep 2024] is not a date"),
    ("nvd-cves.json", lambda p: _edit_json(p, _set("vulnerabilities", 0, "cve", "metrics", "cvssMetricV31", 1,
                                                  "cvssData", "vectorString", value="AV:N/AC:L")),
     "nvd-cves.json: $.vulnerabilities[0].cve.metrics.cvssMetricV31[1].cvssData.vectorString: 'AV:N/AC:L' is not "
     "a CVSS v3 vector"),
    ("csaf/msrc-2024-oct-cumulative.json",
     lambda p: _edit_json(p, _set("vulnerabilities", 1, "product_status", "fixed", 1, value="99999")),
     "msrc-2024-oct-cumulative.json: $.vulnerabilities[1].product_status.fixed[1]: product id '99999' is not "
     "defined in product_tree"),
    ("csaf/fortinet-FG-IR-24-015.json", lambda p: _edit_json(p, _set("document", "csaf_version", value="1.2")),
     'fortinet-FG-IR-24-015.json: $.document.csaf_version: expected "2.0", found "1.2"'),
    ("csaf/fortinet-FG-IR-24-015.json",
     lambda p: _edit_json(p, _set("document", "tracking", "initial_release_date", value="8 Feb 2024")),
     "fortinet-FG-IR-24-015.json: $.document.tracking.initial_release_date: '8 Feb 2024' is not an ISO 8601"),
    ("csaf-map.yaml", lambda p: p.write_text(p.read_text().replace(", ecosystem: windows-11", "", 1)),
     "csaf-map.yaml: $.products[0].ecosystem: Field required"),
]


@pytest.mark.parametrize("name, damage, message", BAD, ids=[f"{b[0]}-{i}" for i, b in enumerate(BAD)])
def test_malformed_inputs_are_refused_with_one_line(tmp_path: Path, name: str, damage: Any, message: str) -> None:
    feeds = _copy_feeds(tmp_path)
    damage(feeds / name)
    with pytest.raises(BuildError) as caught:
        build(inputs(debian_tracker=feeds / "debian-tracker.json", dsa_lists=[feeds / "DSA-list"],
                     nvd=[feeds / "nvd-cves.json"], csaf=[feeds / "csaf"], csaf_map=feeds / "csaf-map.yaml"),
              ecosystems=EVERYTHING, feed_date=FEED_DATE)
    assert message in str(caught.value) and "\n" not in str(caught.value)
    out = tmp_path / "out.json"
    r = _estate_cli("--debian-tracker", feeds / "debian-tracker.json", "--dsa-list", feeds / "DSA-list",
                    "--nvd", feeds / "nvd-cves.json", "--csaf", feeds / "csaf", "--csaf-map", feeds / "csaf-map.yaml",
                    "--ecosystem", "bookworm", "--out", out)
    assert r.returncode == 2 and r.stdout == "" and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and message in r.stderr
    assert not out.exists()


def _estate_cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(ESTATE), "advisories", "build", *map(str, args)], capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin", "COLUMNS": "200"})


def test_the_command_prints_what_it_built_and_left_out(tmp_path: Path) -> None:
    out = tmp_path / "advisories.json"
    common = ["--debian-tracker", FEEDS / "debian-tracker.json", "--dsa-list", FEEDS / "DSA-list",
              "--nvd", FEEDS / "nvd-cves.json", "--csaf", FEEDS / "csaf", "--csaf-map", FEEDS / "csaf-map.yaml",
              "--feed-date", "2024-12-01", "--out", out]
    r = _estate_cli(*common)
    assert r.returncode == 0, r.stderr
    assert "debian-12 6" in r.stderr and "fortios 2" in r.stderr
    assert "bookworm openssl 3.0.14-1~deb12u1 (CVE-2024-2511)" in r.stderr
    assert "Microsoft: Windows Server 2022" in r.stderr and "not in the mapping" in r.stderr
    assert load_feed(out).feed_date == FEED_DATE
    r = _estate_cli(*common, "--format", "json", "--ecosystem", "bullseye", "--source", "Harrowdale DC, J. Smith")
    doc = json.loads(r.stdout)
    assert doc["by_ecosystem"] == {"debian-11": 2} and doc["written"] == str(out)
    assert doc["undated_fixes"][0]["cve"] == "CVE-2024-5535"
    assert load_feed(out).source.startswith("Harrowdale DC, J. Smith; Debian Security Tracker JSON")
    for bad, says in ((["--feed-date", "2024-13-01"], "--feed-date"), (["--csaf", FEEDS / "csaf"], "--csaf-map")):
        r = _estate_cli("--debian-tracker", FEEDS / "debian-tracker.json", "--out", tmp_path / "x.json", *bad)
        assert r.returncode == 2 and says in r.stderr and len(r.stderr.strip().splitlines()) == 1
    r = subprocess.run([str(ESTATE), "advisories", "build", "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and "security-tracker.debian.org/tracker/data/json" in r.stdout and "Examples" in r.stdout


# -- end to end: the built feed judges hosts in the patch engine ---------------------------------


def test_a_built_feed_judges_hosts_in_the_patch_engine(tmp_path: Path) -> None:
    out = tmp_path / "advisories.json"
    result = build(inputs(debian_sources=[FEEDS / "Sources"], packages=FEEDS / "packages.txt"),
                   ecosystems=EVERYTHING, feed_date=FEED_DATE)
    feed = write_feed(result.feed, out)
    estate = load_estate(REPO / "inventory" / "demo").estate
    hosts = [
        HostPackages("gis-01", "debian-12", {"libssl3": "3.0.11-1~deb12u2", "openssl": "3.0.11-1~deb12u2",
                                             "libcurl4": "7.88.1-10+deb12u4", "php8.2-cli": "8.2.24-1~deb12u1"}),
        HostPackages("dev-02", "debian-12", {"libssl3": "3.0.14-1~deb12u2", "curl": "7.88.1-10+deb12u5",
                                             "php8.2-cli": "8.2.26-1~deb12u1"}),
    ]
    today = date(2024, 12, 1)
    got = {(f.check_id, f.asset, f.key): f for f in linux_findings(hosts, feed, today, estate)}
    ssl = got[("patch.security_update_overdue", "host:gis-01", "libssl3")]
    assert ssl.status is Status.FAIL and ssl.severity is Severity.CRITICAL      # CVE-2024-5535, 9.1, 89 days
    assert {a["id"] for a in ssl.details["advisories"]} == {"DSA-5764-1"}
    assert ssl.details["days_available"] == 89
    php = got[("patch.security_update_pending", "host:gis-01", "php8.2-cli")]   # 3 days: not yet overdue
    assert php.status is Status.PASS and php.details["due"] == "2024-12-12"
    assert ("patch.security_update_overdue", "host:gis-01", "libcurl4") not in got   # has the fix
    assert got[("patch.up_to_date", "host:dev-02", "")].status is Status.PASS

    # Vendor ecosystems go through the same evaluation: a FortiGate on each branch, Windows on each release.
    fleet = Fleet.from_hosts([("fw-civic", "fortios", {"fortios-7.4": "7.4.2"}),
                              ("fw-depot", "fortios", {"fortios-7.2": "7.2.7"}),
                              ("pc-0001", "windows-11", {"windows-11-23h2-x64": "10.0.22631.4169"}),
                              ("pc-0002", "windows-11", {"windows-11-24h2-x64": "10.0.26100.2033"}),
                              ("pc-0003", "windows-10", {"windows-11-23h2-x64": "10.0.22631.4169"})])
    missing = evaluate(fleet, feed, today)
    assert missing.triples() == {("fw-civic", "fortios-7.4", "FG-IR-24-015"),
                                 ("pc-0001", "windows-11-23h2-x64", "MSRC-2024-Oct-Windows")}
    # pc-0001 lacks both October fixes; only the high one (7.8) is overdue, the medium one (6.5) is not.
    assert missing.per_host()["missing"].tolist() == [1, 0, 2, 0, 0]
    assert missing.per_host()["overdue"].tolist() == [1, 0, 1, 0, 0]
