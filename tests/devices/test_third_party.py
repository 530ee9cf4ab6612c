"""Third-party applications on endpoints: the programs the device audit read (recorded Windows outputs,
standing in for a Windows host) and dpkg packages from vendors' repositories, judged against the
council's advisory feed (cpe ecosystem) and the end-of-life data, in a real run reaching the matrix."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

from security_checks.compliance.eol import load_eol
from security_checks.compliance.third_party import debian_programs, program_findings, windows_program
from security_checks.devices.results import findings_from_events
from security_checks.findings import Status
from security_checks.jobs import PATCH
from security_checks.model.loader import load_estate
from security_checks.runner import Job, Runner
from security_checks.store import Store
from tests.estate_copy import REPO
from tests.runs import given

FIXTURE = Path(__file__).parent / "fixtures" / "windows11_recorded_cases.json"
TODAY = date(2026, 12, 2)
HIGH = "CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:U/C:H/I:H/A:H"      # 8.8
LOW = "CVSS:3.1/AV:L/AC:H/PR:H/UI:R/S:U/C:L/I:N/A:N"       # 1.8


def advisory(id_: str, product: str, fixed: str, released: str, vector: str | None, *,
             introduced: str | None = None, cve: str = "") -> dict[str, Any]:
    a: dict[str, Any] = {"id": id_, "cve": [cve] if cve else [], "ecosystem": "cpe", "package": product,
                         "fixed_version": fixed, "released": released, "title": f"{product} {fixed}"}
    if vector:
        a["cvss_vector"] = vector
    if introduced:
        a["introduced"] = introduced
    return a


FEED = {"format": "estate-advisories/1", "feed_date": "2026-12-01", "source": "test feed (vendor bulletins)",
        "advisories": [
            advisory("CHROME-2026-10-20", "google:chrome", "130.0.6723.58", "2026-10-20", HIGH, cve="CVE-2026-9001"),
            advisory("MFSA-2026-51", "mozilla:firefox", "133.0.4", "2026-11-26", HIGH, cve="CVE-2026-9002"),
            advisory("APSB26-90", "adobe:acrobat_reader_dc", "24.005.20307", "2026-10-08", None),
            advisory("CPU-2026-OCT", "oracle:jre", "8u471", "2026-10-21", LOW, introduced="8u0"),
            advisory("ZSB-26001", "zoom:zoom", "6.2.5", "2026-09-10", HIGH),
        ]}


def recorded_device_findings() -> list[Any]:
    events = json.loads(FIXTURE.read_text())["audit"]
    return [f for f in findings_from_events(events, apply=False, today=TODAY)
            if f.check_id == "devices.win.software_inventory"]


def test_display_names_map_to_products_with_vendor_versions() -> None:
    java = windows_program("Java 8 Update 351", "8.0.3510.10")
    assert java is not None and (java.cpe, java.version) == ("oracle:jre", "8u351")
    office = windows_program("Microsoft Office Professional Plus 2016 - en-us", "16.0.4266.1001")
    assert office is not None and (office.cpe, office.version) == ("microsoft:office", "2016")
    assert windows_program("Microsoft 365 Apps for enterprise - en-gb", "16.0.17928.20156") is None
    (zoom,) = debian_programs({"zoom": "6.1.11.1545", "firefox-esr": "128.5.0esr-1~deb12u1"})
    assert (zoom.cpe, zoom.version) == ("zoom:zoom", "6.1.11.1545")


def test_programs_are_judged_by_the_14_day_rule_and_end_of_life(tmp_path: Path) -> None:
    feed_path = tmp_path / "feed.json"
    feed_path.write_text(json.dumps(FEED))
    estate = load_estate(REPO / "inventory" / "demo")
    inventory = recorded_device_findings()
    office = inventory[0].model_copy(deep=True)
    office.details["software"] = [{"name": "Microsoft Office Professional Plus 2016", "version": "16.0.4266.1001"}]
    office.asset = "host:win-ws-0211"
    job = Job("assess", (given([*inventory, office], checks=("devices.*",), name="devices"), PATCH),
              "device audit (recorded) then patch", full_scope=True)
    home = tmp_path / "home"
    out = Runner(estate, home, today=TODAY).run(job, options={"advisory_feed": str(feed_path)})
    tp = {(f.asset, f.key): f for f in out.findings if f.details.get("third_party")}
    chrome = tp[("host:win-ws-0210", "google:chrome:CHROME-2026-10-20")]
    assert chrome.check_id == "patch.security_update_overdue" and chrome.status is Status.FAIL   # 43 days, 8.8
    firefox = tp[("host:win-ws-0210", "mozilla:firefox:MFSA-2026-51")]
    assert firefox.check_id == "patch.security_update_pending"                                   # 6 days
    reader = tp[("host:win-ws-0210", "adobe:acrobat_reader_dc:APSB26-90")]
    assert reader.check_id == "patch.security_update_overdue" and not reader.details["rated"]   # unrated: high
    java = tp[("host:win-ws-0210", "oracle:jre:CPU-2026-OCT")]
    assert java.check_id == "patch.security_update_pending"            # low severity: not under the 14-day rule
    old_office = tp[("host:win-ws-0211", "microsoft:office")]
    assert old_office.check_id == "patch.unsupported_software" and "2025-10-14" in old_office.observed
    with Store(home) as store:
        stored = {(f.asset, f.key) for f in store.findings(out.run.id) if f.details.get("third_party")}
        assert stored == set(tp)
        ce = next(v for v in store.verdicts(out.run.id) if v.framework == "cyber-essentials" and v.in_force)
        rows = {r.id: r for r in ce.requirements}
    assert rows["SUM-4"].status == "not_met"
    assert "patch.security_update_overdue on host:win-ws-0210" in rows["SUM-4"].reason
    assert rows["SUM-1"].status == "not_met" and "host:win-ws-0211" in rows["SUM-1"].reason


def test_linux_vendor_packages_are_judged_too() -> None:
    from security_checks.compliance.advisories import Feed

    feed = Feed.model_validate(FEED)
    out = program_findings("lab-debian-01", debian_programs({"zoom": "6.1.11.1545", "bash": "5.2.15-2+b7"}),
                           feed, load_eol(), TODAY)
    (zoom,) = out
    assert zoom.check_id == "patch.security_update_overdue" and zoom.key == "zoom:zoom:ZSB-26001"
    assert "zoom 6.1.11.1545 installed" in zoom.observed
