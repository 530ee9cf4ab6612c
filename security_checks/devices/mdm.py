"""Evidence for the devices Ansible does not reach, from the MDM's own export (Intune).

Councils manage Windows laptops, iPads, Android phones and Macs through Intune: the device reports
to Intune, and Intune's record of it (Microsoft Graph `deviceManagement/managedDevices`, or the
admin centre's "Export" CSV of All devices) is what can be observed. Each device in the export is
judged on what Intune last observed of it (evidence kind *observed*, as of its last check-in):

- mdm.os_supported   Windows by its build (the same release table as the device audit, with the
                     group's ESU years); other platforms against the group's minimum_os_version;
- mdm.check_in       last check-in within 14 days (older evidence cannot show a fix installed
                     within the Cyber Essentials 14-day window);
- mdm.encryption     isEncrypted;
- mdm.compliance     complianceState compliant (Intune's own compliance policies);
- mdm.jailbreak      jailBroken False on iOS/iPadOS and Android (the only platforms that report it).

A device the estate names in an MDM-managed group (endpoint_groups[].hosts, by name or
serial_number) that is not in the export is named: mdm.device_missing.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from ..checks import make_finding
from ..findings import EvidenceRef, Finding, Status
from ..model.schema import EndpointGroup, Estate
from .windows import release_end

CHECK_IN_DAYS = 14
MAX_BYTES = 64 * 1024 * 1024

# The admin centre's CSV headings for the Graph properties we read (Devices > All devices > Export).
CSV_COLUMNS = {
    "Device name": "deviceName", "OS": "operatingSystem", "OS version": "osVersion",
    "Last check-in": "lastSyncDateTime", "Encrypted": "isEncrypted", "Compliance": "complianceState",
    "Jailbroken": "jailBroken", "Serial number": "serialNumber", "Managed by": "managementAgent",
    "SKU Family": "skuFamily",
}
FIELDS = ("deviceName", "operatingSystem", "osVersion", "lastSyncDateTime", "isEncrypted", "complianceState",
          "jailBroken", "serialNumber", "managementAgent", "skuFamily")
# Graph operatingSystem values -> the estate's OS families (EndpointOs.family).
FAMILY = {"windows": "windows", "ios": "ios", "ipados": "ios", "android": "android", "macos": "macos",
          "mac os x": "macos", "macmdm": "macos", "chromeos": "chromeos", "chrome os": "chromeos"}


class MdmExportError(ValueError):
    """The export cannot be read: one line naming the file and what is wrong."""


@dataclass
class MdmDevice:
    name: str
    os: str
    os_version: str
    last_sync: datetime | None
    encrypted: bool | None
    compliance: str
    jailbroken: str
    serial: str
    agent: str
    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def family(self) -> str:
        return FAMILY.get(self.os.strip().lower(), self.os.strip().lower())


def _bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    text = str(value or "").strip().lower()
    return True if text in ("true", "yes", "1") else False if text in ("false", "no", "0") else None


def _when(value: Any, where: str) -> datetime | None:
    text = str(value or "").strip()
    if not text or text.startswith("0001-01-01"):
        return None   # Graph's "never" value
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        for fmt in ("%d/%m/%Y %H:%M:%S", "%d/%m/%Y %H:%M", "%m/%d/%Y %I:%M:%S %p", "%Y-%m-%d %H:%M:%S"):
            try:
                return datetime.strptime(text, fmt)
            except ValueError:
                continue
    raise MdmExportError(f"{where}: lastSyncDateTime {text!r} is not a date and time")


def _device(row: dict[str, Any], where: str) -> MdmDevice:
    missing = [f for f in ("deviceName", "operatingSystem", "osVersion") if not str(row.get(f) or "").strip()]
    if missing:
        raise MdmExportError(f"{where}: missing {', '.join(missing)}")
    return MdmDevice(name=str(row["deviceName"]).strip(), os=str(row["operatingSystem"]).strip(),
                     os_version=str(row["osVersion"]).strip(), last_sync=_when(row.get("lastSyncDateTime"), where),
                     encrypted=_bool(row.get("isEncrypted")), compliance=str(row.get("complianceState") or "unknown"),
                     jailbroken=str(row.get("jailBroken") or "Unknown"), serial=str(row.get("serialNumber") or ""),
                     agent=str(row.get("managementAgent") or ""), raw={k: row.get(k) for k in FIELDS})


def parse_export(path: Path) -> tuple[list[MdmDevice], bytes]:
    """Devices from a Graph managedDevices JSON (a page `{"value": [...]}` or a list of pages/devices)
    or the admin centre's CSV. Returns the bytes judged too (the evidence)."""
    if not path.is_file():
        raise MdmExportError(f"{path}: no such file (the Intune managed-devices export)")
    if path.stat().st_size > MAX_BYTES:
        raise MdmExportError(f"{path}: larger than {MAX_BYTES // (1024 * 1024)} MiB")
    data = path.read_bytes()
    text = data.decode("utf-8-sig", errors="replace")
    if path.suffix.lower() == ".csv":
        reader = csv.DictReader(io.StringIO(text))
        headings = set(reader.fieldnames or [])
        if not headings & {"deviceName", "Device name"}:
            raise MdmExportError(f"{path}:1: no 'Device name' (or deviceName) column: not an Intune devices export")
        rows = [{CSV_COLUMNS.get(k, k): v for k, v in r.items()} for r in reader]
        return [_device(r, f"{path}:{i + 2}") for i, r in enumerate(rows)], data
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise MdmExportError(f"{path}:{exc.lineno}: not JSON ({exc.msg})") from None
    pages = doc if isinstance(doc, list) and all(isinstance(p, dict) and "value" in p for p in doc) else [doc]
    devices: list[MdmDevice] = []
    for page in pages:
        items = page.get("value") if isinstance(page, dict) else page
        if not isinstance(items, list):
            raise MdmExportError(f"{path}: expected the managedDevices response ({{\"value\": [...]}}) or a list")
        for i, item in enumerate(items):
            if not isinstance(item, dict):
                raise MdmExportError(f"{path}: value[{i}] is not an object")
            devices.append(_device(item, f"{path}: value[{i}] ({item.get('deviceName') or 'unnamed'})"))
    return devices, data


def _version_key(v: str) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", v)[:4])


def _group_for(device: MdmDevice, groups: list[EndpointGroup], named: dict[str, EndpointGroup]) -> EndpointGroup | None:
    by_name = named.get(device.name.lower()) or (named.get(device.serial.lower()) if device.serial else None)
    if by_name:
        return by_name
    return next((g for g in groups if g.os.family == device.family), None)


def os_finding(device: MdmDevice, group: EndpointGroup | None, today: date, common: dict[str, Any]) -> Finding:
    asset = common.pop("asset")
    expected = "an OS release still receiving security updates (Windows by build; others at least the " \
               "group's minimum_os_version)"
    if device.family == "windows":
        parts = _version_key(device.os_version)
        build = parts[2] if len(parts) >= 3 else 0
        # Enterprise and Education releases are supported longer; without the SKU in the export the
        # shorter Home/Pro date is used, so a device is never passed on a guess.
        found = release_end(build, str(device.raw.get("skuFamily") or ""))
        if found is None:
            return make_finding("mdm.os_supported", asset, Status.NOT_ASSESSED, expected=expected, **common,
                                observed=f"Windows {device.os_version}: build {build} not in the release table")
        name, end = found
        esu = group.esu_until if group else None
        ok = today <= end or (esu is not None and today <= esu)
        observed = (f"{name} ({device.os_version}): security updates until {end.isoformat()}" if today <= end else
                    f"{name} ({device.os_version}): end of support {end.isoformat()}"
                    + (f"; ESU bought until {esu.isoformat()}" if esu else "; no ESU recorded"))
        return make_finding("mdm.os_supported", asset, Status.PASS if ok else Status.FAIL, observed=observed,
                            expected=expected, **common)
    minimum = group.minimum_os_version if group else None
    if not minimum:
        return make_finding("mdm.os_supported", asset, Status.NOT_ASSESSED, expected=expected, **common,
                            observed=f"{device.os} {device.os_version}: the estate declares no minimum_os_version for "
                                     f"{group.name if group else 'any group of this platform'}")
    ok = _version_key(device.os_version) >= _version_key(minimum)
    return make_finding("mdm.os_supported", asset, Status.PASS if ok else Status.FAIL, expected=expected, **common,
                        observed=f"{device.os} {device.os_version} (minimum {minimum} for "
                                 f"{group.name if group else 'its platform'})")


def device_findings(device: MdmDevice, group: EndpointGroup | None, today: date, evidence: list[EvidenceRef],
                    site: str | None = None) -> list[Finding]:
    asset = f"host:{device.name}"
    as_of = device.last_sync.date().isoformat() if device.last_sync else "never"
    details = {"mdm": "intune", "last_check_in": as_of, "group": group.name if group else None,
               **{k: v for k, v in device.raw.items() if v not in (None, "")}}
    common: dict[str, Any] = {"evidence": evidence, "site": site, "details": details}
    out = [os_finding(device, group, today, {"asset": asset, **common})]
    if device.last_sync is None:
        out.append(make_finding("mdm.check_in", asset, Status.FAIL, observed="never checked in with Intune",
                                expected=f"a check-in within {CHECK_IN_DAYS} days", **common))
    else:
        days = (today - device.last_sync.date()).days
        out.append(make_finding("mdm.check_in", asset, Status.PASS if days <= CHECK_IN_DAYS else Status.FAIL,
                                observed=f"last check-in {as_of} ({days} day(s) ago)",
                                expected=f"a check-in within {CHECK_IN_DAYS} days", **common))
    enc = device.encrypted
    out.append(make_finding("mdm.encryption", asset,
                            Status.NOT_ASSESSED if enc is None else Status.PASS if enc else Status.FAIL,
                            observed=f"isEncrypted {enc if enc is not None else 'not reported'} (as of {as_of})",
                            expected="storage encrypted", **common))
    state = device.compliance.strip()
    status = (Status.PASS if state.lower() == "compliant" else
              Status.NOT_ASSESSED if state.lower() in ("unknown", "configmanager", "") else Status.FAIL)
    out.append(make_finding("mdm.compliance", asset, status, observed=f"complianceState {state} (as of {as_of})",
                            expected="compliant with the council's Intune compliance policies", **common))
    if device.family in ("ios", "android"):
        jb = device.jailbroken.strip().lower()
        out.append(make_finding("mdm.jailbreak", asset,
                                Status.FAIL if jb == "true" else Status.PASS if jb == "false" else Status.NOT_ASSESSED,
                                observed=f"jailBroken {device.jailbroken} (as of {as_of})",
                                expected="not jailbroken or rooted", **common))
    return out


def judge_export(estate: Estate, devices: Iterable[MdmDevice], today: date, evidence: list[EvidenceRef],
                 source: str) -> list[Finding]:
    groups = [g for g in estate.endpoint_groups if g.mdm_managed]
    named: dict[str, EndpointGroup] = {}
    sites: dict[str, str] = {}
    for g in groups:
        for h in g.hosts:
            named[h.name.lower()] = g
            if h.serial_number:
                named[h.serial_number.lower()] = g
            if h.site:
                sites[h.name.lower()] = h.site
    seen: set[str] = set()
    out: list[Finding] = []
    for d in devices:
        seen.update({d.name.lower(), d.serial.lower()} - {""})
        out += device_findings(d, _group_for(d, groups, named), today, evidence, sites.get(d.name.lower()))
    for g in groups:
        for h in g.hosts:
            if h.name.lower() in seen or (h.serial_number and h.serial_number.lower() in seen):
                continue
            out.append(make_finding("mdm.device_missing", f"host:{h.name}", Status.FAIL, site=h.site,
                                    observed=f"{h.name} ({g.name}, managed by {g.managed_by}) is not in {source}",
                                    expected="every device the estate lists for an MDM-managed group is enrolled",
                                    evidence=evidence, details={"group": g.name}))
    return out
