"""MDM evidence for devices Ansible does not reach: an Intune managed-devices export (Microsoft Graph
`deviceManagement/managedDevices` JSON, or the admin centre CSV) judged in a real run, its findings stored
with observed evidence and reaching the Cyber Essentials matrix; on the demo and on Glenmoray."""

from __future__ import annotations

import csv
import json
import shutil
from datetime import date
from pathlib import Path
from typing import Any

from security_checks.checks import registry
from security_checks.findings import EvidenceKind, Status
from security_checks.jobs import ASSESS, MDM
from security_checks.model.loader import load_estate
from security_checks.runner import Job, Runner, RunOutcome
from security_checks.store import Store
from tests.estate_copy import REPO, copy_demo

TODAY = date(2026, 12, 2)
JOB = Job("assess", (MDM,), "the MDM step alone", full_scope=True)


def device(name: str, os: str, version: str, synced: str, *, encrypted: bool = True, state: str = "compliant",
           jailbroken: str = "False", serial: str = "", sku: str | None = None) -> dict[str, Any]:
    """One managedDevice as Graph v1.0 returns it (a subset of its properties, same names and shapes)."""
    d: dict[str, Any] = {
        "@odata.type": "#microsoft.graph.managedDevice",
        "id": f"{sum(name.encode()):08d}-0000-4000-8000-000000000000",
        "deviceName": name, "managedDeviceOwnerType": "company", "enrolledDateTime": "2025-03-01T09:12:44Z",
        "lastSyncDateTime": synced, "operatingSystem": os, "complianceState": state, "jailBroken": jailbroken,
        "managementAgent": "mdm", "osVersion": version, "isEncrypted": encrypted, "serialNumber": serial,
        "model": "iPad (10th generation)" if os == "iPadOS" else "",
        "userPrincipalName": f"{name.lower()}@example.gov.uk"}
    if sku:
        d["skuFamily"] = sku
    return d


def write_export(directory: Path, devices: list[dict[str, Any]]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    body = {"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#deviceManagement/managedDevices",
            "value": devices}
    (directory / "managedDevices.json").write_text(json.dumps(body, indent=2))


HARROWDALE = [
    device("HDC-IPAD-0001", "iPadOS", "18.1.1", "2026-12-01T07:44:10Z", serial="DMPZK1AAQ1GC"),
    device("HDC-IPAD-0002", "iPadOS", "16.7.10", "2026-11-30T18:02:51Z", state="noncompliant"),
    device("HDC-IPHONE-0417", "iOS", "18.1", "2026-10-02T12:00:00Z", jailbroken="True"),
    device("HDC-LT-2210", "Windows", "10.0.22631.4460", "2026-12-01T08:15:00Z", encrypted=False),
    device("HDC-LT-2211", "Windows", "10.0.26100.2314", "2026-12-02T06:01:00Z", sku="Enterprise"),
]


def demo_with_export(tmp_path: Path, export: list[dict[str, Any]]) -> Path:
    estate = copy_demo(tmp_path / "estate", {
        "endpoints.yaml": [("""  - name: mobile-corporate
    os: ios
    count: 1900
    managed_by: intune
""", """  - name: mobile-corporate
    os: ios
    count: 1900
    managed_by: intune
    minimum_os_version: "17.0"
    hosts:
      - {name: HDC-IPAD-0001}
      - {name: ipad-reception, serial_number: DMPZK1AAQ1GC}
      - {name: HDC-IPAD-0099, site: civic-centre}
""")],
        "organisation.yaml": [("  primary_region: uksouth\n", "  primary_region: uksouth\n"
                               "  intune_export: intune/managedDevices.json\n")]})
    write_export(estate / "intune", export)
    return estate


def run(home: Path, estate: Path, job: Job = JOB) -> RunOutcome:
    return Runner(load_estate(estate), home, today=TODAY).run(job)


def test_mdm_runs_in_the_assessment_after_the_device_audit() -> None:
    names = [s.name for s in ASSESS.steps]
    assert names.index("devices") < names.index("mdm") < names.index("patch")
    assert all(registry()[c].evidence_kind is EvidenceKind.OBSERVED
               for c in registry() if c.startswith("mdm."))


def test_an_intune_export_is_judged_device_by_device_and_reaches_the_matrix(tmp_path: Path) -> None:
    home = tmp_path / "home"
    out = run(home, demo_with_export(tmp_path, HARROWDALE))
    f = {(x.asset.removeprefix("host:"), x.check_id): x for x in out.findings}
    assert f[("HDC-IPAD-0001", "mdm.os_supported")].status is Status.PASS
    old = f[("HDC-IPAD-0002", "mdm.os_supported")]
    assert old.status is Status.FAIL and "16.7.10" in old.observed and "minimum 17.0" in old.observed
    assert f[("HDC-IPAD-0002", "mdm.compliance")].status is Status.FAIL
    assert f[("HDC-IPHONE-0417", "mdm.jailbreak")].status is Status.FAIL
    assert f[("HDC-IPHONE-0417", "mdm.check_in")].status is Status.FAIL            # 61 days since check-in
    assert f[("HDC-LT-2210", "mdm.encryption")].status is Status.FAIL
    # 23H2 without the SKU in the export: Home/Pro's end (2025-11-11) is used, never a guessed Enterprise date
    assert f[("HDC-LT-2210", "mdm.os_supported")].status is Status.FAIL
    assert f[("HDC-LT-2211", "mdm.os_supported")].status is Status.PASS             # 24H2 Enterprise: 2027-10-12
    assert ("HDC-LT-2210", "mdm.jailbreak") not in f                                # Windows does not report it
    # named by the estate, absent from the export (the serial number matched ipad-reception)
    assert [x.asset for x in out.findings if x.check_id == "mdm.device_missing"] == ["host:HDC-IPAD-0099"]
    assert f[("HDC-IPAD-0099", "mdm.device_missing")].site == "civic-centre"
    with Store(home) as store:
        stored = [x for x in store.findings(out.run.id) if x.check_id.startswith("mdm.")]
        assert len(stored) == len([x for x in out.findings if x.check_id.startswith("mdm.")])
        assert {e.path for e in store.evidence_files(out.run.id)} >= {"mdm/managedDevices.json"}
        ce = next(v for v in store.verdicts(out.run.id) if v.framework == "cyber-essentials" and v.in_force)
        sum1 = next(r for r in ce.requirements if r.id == "SUM-1")
        assert sum1.status == "not_met" and "mdm.os_supported on host:HDC-IPAD-0002" in sum1.reason


def test_the_admin_centre_csv_gives_the_same_findings(tmp_path: Path) -> None:
    estate = demo_with_export(tmp_path, HARROWDALE)
    csv_path = estate / "intune" / "devices.csv"
    headings = ["Device name", "Managed by", "Ownership", "Compliance", "OS", "OS version", "Last check-in",
                "Primary user UPN", "Serial number", "Encrypted", "Jailbroken", "SKU Family"]
    with csv_path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(headings)
        for d in HARROWDALE:
            w.writerow([d["deviceName"], "Intune", "Corporate", d["complianceState"], d["operatingSystem"],
                        d["osVersion"], d["lastSyncDateTime"].replace("T", " ").removesuffix("Z"),
                        d["userPrincipalName"], d["serialNumber"], str(d["isEncrypted"]), d["jailBroken"],
                        d.get("skuFamily", "")])
    org = estate / "organisation.yaml"
    org.write_text(org.read_text().replace("intune/managedDevices.json", "intune/devices.csv"))
    a = {(x.asset, x.check_id, x.status) for x in run(tmp_path / "h1", estate).findings}
    org.write_text(org.read_text().replace("intune/devices.csv", "intune/managedDevices.json"))
    b = {(x.asset, x.check_id, x.status) for x in run(tmp_path / "h2", estate).findings}
    assert a == b and len(a) > 20


def test_without_an_export_mdm_groups_are_not_assessed_never_passed(tmp_path: Path) -> None:
    out = run(tmp_path / "home", REPO / "inventory" / "demo")
    mdm = [x for x in out.findings if x.check_id.startswith("mdm.")]
    assert mdm and all(x.status is Status.NOT_ASSESSED for x in mdm)
    assert {s["name"]: s["status"] for s in out.run.steps}["mdm"] == "skipped"


def test_a_broken_export_is_one_error_naming_the_file_and_device(tmp_path: Path) -> None:
    bad = [*HARROWDALE[:1], {**HARROWDALE[1], "lastSyncDateTime": "yesterday"}]
    out = run(tmp_path / "home", demo_with_export(tmp_path, bad))
    (err,) = [x for x in out.findings if x.check_id.startswith("mdm.")]
    assert err.status is Status.ERROR
    assert "managedDevices.json: value[1] (HDC-IPAD-0002): lastSyncDateTime 'yesterday'" in err.observed


def test_glenmoray_export_is_judged_with_its_own_names_only(tmp_path: Path) -> None:
    estate = tmp_path / "glenmoray"
    shutil.copytree(REPO / "tests" / "estates" / "glenmoray", estate)
    org = estate / "organisation.yaml"
    text = org.read_text()
    assert text.count("  primary_region: uksouth\n") == 1
    org.write_text(text.replace("  primary_region: uksouth\n",
                                "  primary_region: uksouth\n  intune_export: intune/managedDevices.json\n"))
    write_export(estate / "intune", [
        device("GMC-RUGGED-0031", "Android", "12", "2026-11-29T10:00:00Z"),
        device("GMC-IPHONE-0112", "iOS", "18.1.1", "2026-12-01T10:00:00Z")])
    out = run(tmp_path / "home", estate)
    f = {(x.asset, x.check_id): x for x in out.findings}
    # no minimum declared for Glenmoray's groups: the OS cannot be judged, so not assessed, not passed
    assert f[("host:GMC-RUGGED-0031", "mdm.os_supported")].status is Status.NOT_ASSESSED
    assert f[("host:GMC-IPHONE-0112", "mdm.compliance")].status is Status.PASS
    text = json.dumps([x.model_dump(mode="json") for x in out.findings])
    assert "Harrowdale" not in text and "HDC-" not in text


def test_estate_assess_refuses_a_broken_intune_export_with_exit_2_and_stores_nothing(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from security_checks.cli.app import app

    export = tmp_path / "devices.csv"
    export.write_text("Name,Platform\nHDC-IPAD-0001,iPadOS\n")
    home = tmp_path / "home"
    r = CliRunner().invoke(app, ["assess", "--intune-export", str(export), "--home", str(home), "--no-report"])
    assert r.exit_code == 2, r.output
    lines = [line for line in r.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: --intune-export: "), r.output
    assert "devices.csv:1: no 'Device name'" in lines[0]
    assert not (home / "runs").exists() or not any((home / "runs").iterdir())
