"""Endpoints as councils record them: MDM platforms, unsupported releases the estate must be able to
state, and Extended Security Updates by the years bought, each flagged or passed by patch.unsupported_os."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
import yaml

from security_checks.compliance.eol import unsupported_os_findings
from security_checks.findings import Status
from security_checks.model.loader import EstateError, load_estate

from .conftest import copy_estate

TODAY = date(2026, 12, 2)


def _estate(tmp_path: Path, groups: list[dict[str, object]], lob: list[dict[str, object]] | None = None) -> Path:
    estate = copy_estate(tmp_path / "estate")
    path = estate / "endpoints.yaml"
    data = yaml.safe_load(path.read_text())
    data["endpoint_groups"].extend(groups)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    if lob:
        lob_path = estate / "lob_systems.yaml"
        lob_data = yaml.safe_load(lob_path.read_text())
        lob_data["lob_systems"].extend(lob)
        lob_path.write_text(yaml.safe_dump(lob_data, sort_keys=False))
    return estate


LEGACY = [
    {"name": "chromebooks", "os": "chromeos", "count": 300, "managed_by": "google-admin"},
    {"name": "ipads", "os": "ipados", "count": 120, "managed_by": "intune"},
    {"name": "macs", "os": "macos-15", "count": 12, "managed_by": "intune"},
    {"name": "android-phones", "os": "android", "count": 800, "managed_by": "intune"},
    {"name": "old-ubuntu", "os": "ubuntu-20.04", "count": 4, "managed_by": "ansible"},
    {"name": "old-centos", "os": "centos-7", "count": 2, "managed_by": "ansible"},
    {"name": "win10-no-esu", "os": "windows-10", "count": 40, "managed_by": "intune"},
    {"name": "win10-esu-year1", "os": "windows-10", "count": 30, "managed_by": "intune",
     "extended_security_updates": [{"year": 1, "ends": "2026-10-13"}]},
    {"name": "win10-esu-year2", "os": "windows-10", "count": 20, "managed_by": "intune",
     "extended_security_updates": [{"year": 1, "ends": "2026-10-13"}, {"year": 2, "ends": "2027-10-12"}]},
]
LEGACY_LOB = [{"name": "old-planning", "title": "Planning (legacy server)", "supplier": "Idox", "hosting": "iaas",
               "os": "windows-server-2012-r2", "vm_count": 1, "classification": "OFFICIAL", "owner": "Head of Planning",
               "tier": "tier-3", "cost_centre": "PL100", "address_space": "10.250.99.0/24"}]


def test_mdm_platforms_and_unsupported_releases_are_recordable_and_flagged(tmp_path: Path) -> None:
    loaded = load_estate(_estate(tmp_path, LEGACY, LEGACY_LOB))
    f = {x.asset: x for x in unsupported_os_findings(loaded.estate, TODAY)}
    assert f["endpoint-group:old-ubuntu"].status is Status.FAIL
    assert "2025-05-31" in f["endpoint-group:old-ubuntu"].observed
    assert f["endpoint-group:old-centos"].status is Status.FAIL
    assert f["lob:old-planning"].status is Status.FAIL and "Windows Server 2012 R2" in f["lob:old-planning"].observed
    assert f["endpoint-group:win10-no-esu"].status is Status.FAIL
    assert "not bought" in f["endpoint-group:win10-no-esu"].observed
    # ESU by the years bought: year 1 ended in October 2026, year 2 covers to October 2027
    assert f["endpoint-group:win10-esu-year1"].status is Status.FAIL
    assert "bought ended 2026-10-13" in f["endpoint-group:win10-esu-year1"].observed
    assert f["endpoint-group:win10-esu-year2"].status is Status.PASS
    assert "until 2027-10-12" in f["endpoint-group:win10-esu-year2"].observed
    for platform in ("chromebooks", "ipads", "macs", "android-phones"):
        assert f[f"endpoint-group:{platform}"].status is Status.PASS  # no dates published: per device (MDM step)
    group = next(g for g in loaded.estate.endpoint_groups if g.name == "chromebooks")
    assert group.mdm_managed and group.os.family == "chromeos"


def test_an_esu_year_out_of_range_is_one_clear_line(tmp_path: Path) -> None:
    bad = [{"name": "win10-bad", "os": "windows-10", "count": 1, "managed_by": "intune",
            "extended_security_updates": [{"year": 4, "ends": "2029-10-09"}]}]
    with pytest.raises(EstateError) as err:
        load_estate(_estate(tmp_path, bad))
    assert "endpoints.yaml" in str(err.value) and "year" in str(err.value)
