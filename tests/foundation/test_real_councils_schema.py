"""The schema for real councils: schools, care homes, pupils' and device networks, a network name
the estate declares, scan scopes that summarise several ranges, and a reference that says what the
validator demands."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from security_checks.model.docs import render
from security_checks.model.loader import EstateError, load_estate
from security_checks.model.schema import NATION_NETWORK, Organisation
from tests.conftest import DEMO
from tests.estates import CWM_TAWEL, GLENMORAY


def problems_of(path: Path) -> list[str]:
    with pytest.raises(EstateError) as info:
        load_estate(path)
    return [str(p) for p in info.value.problems]


@pytest.fixture
def welsh(tmp_path: Path) -> Path:
    dest = tmp_path / "cwm-tawel"
    shutil.copytree(CWM_TAWEL.directory, dest)
    return dest


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"test setup: {old!r} not in {path.name}"
    path.write_text(text.replace(old, new, 1))


def line_of(path: Path, needle: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if needle in line)


def test_the_welsh_council_declares_schools_care_homes_pupils_and_psba() -> None:
    e = load_estate(CWM_TAWEL.directory).estate
    kinds = [s.kind.value for s in e.sites]
    assert len(e.sites) == CWM_TAWEL.sites >= 30
    assert kinds.count("school") == 16 and kinds.count("care-home") == 4 and kinds.count("hq") == 1
    assert {"depot", "library", "leisure-centre", "community-hub", "contact-centre", "office"} <= set(kinds)
    purposes = {v.purpose.value for s in e.sites for v in s.vlans}
    assert {"pupils", "building-management", "cctv", "iot", "voice"} <= purposes
    assert {s.purpose.value for s in e.ssids} >= {"pupils", "iot", "corporate", "guest", "public"}
    assert {z.kind.value for z in e.zones} >= {"pupil", "building-management", "cctv", "iot"}
    assert e.organisation.nation.value == "wales"
    assert e.organisation.public_sector_network == CWM_TAWEL.network == "PSBA"


@pytest.mark.parametrize("nation", list(NATION_NETWORK))
def test_the_network_name_is_the_nations_unless_the_estate_declares_its_own(nation: str) -> None:
    base = {"name": "A Council", "short_name": "ac", "nation": nation, "domain": "a.gov.uk"}
    assert Organisation.model_validate(base).public_sector_network == NATION_NETWORK[nation]
    declared = Organisation.model_validate({**base, "public_network": {"name": "PSBA"}})
    assert declared.public_sector_network == "PSBA"
    assert load_estate(DEMO).estate.organisation.public_sector_network == "PSN"
    assert load_estate(GLENMORAY.directory).estate.organisation.public_sector_network == "SWAN"


def test_a_network_name_that_is_not_a_short_name_is_refused(welsh: Path) -> None:
    org = welsh / "organisation.yaml"
    edit(org, "public_network: {name: PSBA,", "public_network: {name: 'PSBA <script>',")
    found = problems_of(welsh)
    assert any(p.startswith(f"{org}:{line_of(org, 'public_network: {')}: organisation.public_network.name")
               for p in found), found


def test_a_scope_summarising_the_schools_ranges_is_accepted_and_one_spanning_more_names_the_part_outside(
        welsh: Path) -> None:
    e = load_estate(welsh).estate
    assert e.scope("schools").cidrs == ["10.80.0.0/16"]   # sixteen /20s, one per school, cover it

    scopes = welsh / "scan_scopes.yaml"
    edit(scopes, "cidrs: [10.80.0.0/16]", "cidrs: [10.80.0.0/15]")
    found = problems_of(welsh)
    line = line_of(scopes, "10.80.0.0/15")
    # 10.81.0.0/16 is only partly the council's: HQ, the contact centre and the offices hold 10.81.0.0/19.
    [problem] = [p for p in found if "scan_scopes[1].cidrs[0]" in p]
    assert problem.startswith(f"{scopes}:{line}: scan_scopes[1].cidrs[0]: 10.80.0.0/15 spans addresses outside")
    assert "10.81.64.0/18" in problem and "10.81.128.0/17" in problem and "10.80." not in problem.split("outside")[1]

    # A school whose range is taken away leaves a hole in the summary, named exactly.
    sites = welsh / "sites" / "03-schools.yaml"
    edit(scopes, "cidrs: [10.80.0.0/15]", "cidrs: [10.80.0.0/16]")
    text = sites.read_text()
    start = text.index("  - name: canolfan-ddysgu-tawel")
    sites.write_text(text[:start])
    edit(welsh / "endpoints.yaml", ", canolfan-ddysgu-tawel]", "]")
    edit(welsh / "firewalls-sites.yaml", "site: canolfan-ddysgu-tawel", "site: brynteg-juniors")
    edit(welsh / "hosts-sites.yaml", "site: canolfan-ddysgu-tawel", "site: brynteg-juniors")
    found = [p for p in problems_of(welsh) if "scan_scopes" in p]
    assert any("10.80.0.0/16 spans addresses outside the estate's ranges: 10.80.240.0/20" in p for p in found), found


def test_device_zones_name_declared_hosts_as_controllers(welsh: Path) -> None:
    zones = welsh / "zones.yaml"
    edit(zones, "controllers: [nvr-hq-01]", "controllers: [nvr-missing]")
    edit(zones, '{name: staff, kind: user, description: "council and school staff devices"}',
         '{name: staff, kind: user, description: "council and school staff devices", controllers: [fs-hq-01]}')
    found = problems_of(welsh)
    assert f"{zones}:{line_of(zones, 'nvr-missing')}: zones[8].controllers[0]: unknown declared host 'nvr-missing'" \
        in found
    assert any(p.startswith(f"{zones}:{line_of(zones, 'fs-hq-01')}: zones[0].controllers: controllers are for iot")
               for p in found)


@pytest.mark.parametrize("hosting, drop, expected", [
    ("paas", "address_space", "address_space is required when hosting is paas or iaas"),
    ("iaas", "os", "os is required when hosting is iaas"),
])
def test_conditional_requirements_are_one_rule_for_the_validator_and_the_reference(
        welsh: Path, hosting: str, drop: str, expected: str) -> None:
    lobs = welsh / "lob_systems.yaml"
    name = {"paas": "school-mis", "iaas": "revenues"}[hosting]
    value = {"address_space": "address_space: 10.94.6.0/24, ", "os": "os: windows-server-2022, "}[drop]
    edit(lobs, value, "")
    found = problems_of(welsh)
    assert any(p.startswith(f"{lobs}:{line_of(lobs, f'name: {name},')}:") and expected in p for p in found), found
    reference = render()
    row = next(line for line in reference.splitlines() if line.startswith(f"| `{drop}` |")
               and "required** when hosting" in line)
    assert f"**required** when {expected.split(' when ')[1]}" in row and "(optional)" not in row


def test_saas_with_a_spoke_is_refused_by_the_same_rule(welsh: Path) -> None:
    lobs = welsh / "lob_systems.yaml"
    edit(lobs, "hosting: saas, classification: OFFICIAL-SENSITIVE,\n     owner: Head of People Services",
         "hosting: saas, address_space: 10.94.9.0/24, classification: OFFICIAL-SENSITIVE,\n"
         "     owner: Head of People Services")
    assert any("address_space is only for when hosting is paas or iaas (here hosting is saas)" in p
               for p in problems_of(welsh))


def test_the_schema_reference_states_the_secondary_hub_rule() -> None:
    row = next(line for line in render().splitlines() if line.startswith("| `secondary_hub_address_space` |"))
    assert "**required** when secondary_hub is true" in row
