"""The estate model: the demo loads, and every kind of broken estate is reported with file and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from security_checks.model.loader import EstateError, load_estate
from tests.conftest import DEMO


def problems_of(path: Path, **kw: bool) -> list[str]:
    with pytest.raises(EstateError) as info:
        load_estate(path, **kw)
    return [str(p) for p in info.value.problems]


def replace(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"test setup: {old!r} not in {path.name}"
    path.write_text(text.replace(old, new, 1))


def line_of(path: Path, needle: str) -> int:
    for i, line in enumerate(path.read_text().splitlines(), 1):
        if needle in line:
            return i
    raise AssertionError(f"{needle!r} not in {path}")


def test_demo_estate_is_complete_enough_for_every_capability() -> None:
    e = load_estate(DEMO).estate
    assert len(e.sites) >= 12
    assert len(e.lob_systems) == 27
    assert {lob.hosting.value for lob in e.lob_systems} == {"saas", "paas", "iaas"}
    assert any(lob.os and lob.os.value.startswith("rhel") and lob.name == "revs-benefits" for lob in e.lob_systems)
    assert {s.purpose.value for s in e.ssids} >= {"corporate", "public", "guest"}
    assert {f.vendor for f in e.firewalls} >= {"fortinet", "nftables"}
    assert e.organisation.public_sector_network == "PSN"
    assert any(z.kind.value == "psn" for z in e.zones)
    assert {g.os.family for g in e.endpoint_groups} >= {"windows", "linux"}
    assert e.scan_scopes and all(s.authorised_by for s in e.scan_scopes)


def test_every_value_knows_its_file_and_line() -> None:
    loaded = load_estate(DEMO)
    file, line = loaded.where(("firewalls", 0, "rules", 3, "to_zone"))
    assert file == "firewalls.yaml"   # relative to the estate directory: what findings cite
    assert line == line_of(DEMO / "firewalls.yaml", "CIV-004")


def test_broken_copy_names_every_problem_with_file_and_line(demo_copy: Path) -> None:
    fw = demo_copy / "firewalls.yaml"
    replace(fw, "from_zone: corporate, to_zone: psn", "from_zone: corporate, to_zone: psn-typo")
    sites = demo_copy / "sites.yaml"
    replace(sites, "ranges: [10.21.0.0/16]", "ranges: [10.21.0.0/16, 10.20.128.0/17]")  # overlaps schools-admin
    wifi = demo_copy / "wifi.yaml"
    replace(wifi, "vlan: guest\n", "vlan: visitors\n")                       # SSID on a missing VLAN
    scopes = demo_copy / "scan_scopes.yaml"
    replace(scopes, "cidrs: [10.10.0.0/16]\n", "cidrs: [192.168.0.0/16]\n")  # scope outside the estate
    lobs = demo_copy / "lob_systems.yaml"
    replace(lobs, "{name: planning,", "{name: revs-benefits,")                # duplicate name
    replace(lobs, "tier: tier-3, cost_centre: PLACE-GIS", "tier: tier-9, cost_centre: PLACE-GIS")  # schema error

    found = problems_of(demo_copy)
    # Schema errors stop before cross-references: fix the schema error and look again.
    assert len(found) == 1
    assert found[0].startswith(f"{lobs}:{line_of(lobs, 'tier-9')}: lob_systems[")
    assert "tier" in found[0]

    replace(lobs, "tier: tier-9", "tier: tier-3")
    found = problems_of(demo_copy)
    text = "\n".join(found)
    assert f"{fw}:{line_of(fw, 'psn-typo')}: firewalls[0].rules[3].to_zone: unknown zone 'psn-typo'" in text
    overlap = "sites[11].ranges[1]: 10.20.128.0/17 overlaps site schools-admin"
    assert f"{sites}:{line_of(sites, '10.20.128.0/17')}: {overlap}" in text
    assert any(p.startswith(f"{wifi}:") and "no site has a VLAN named 'visitors'" in p for p in found)
    assert f"{scopes}:{line_of(scopes, '192.168.0.0/16')}: scan_scopes[2].cidrs[0]: 192.168.0.0/16 is outside" in text
    assert any("duplicate LOB system 'revs-benefits'" in p and p.startswith(f"{lobs}:") for p in found)


def test_unknown_field_is_named_not_ignored(demo_copy: Path) -> None:
    zones = demo_copy / "zones.yaml"
    replace(zones, "{name: voice, kind: voice,", "{name: voice, knd: voice,")
    found = problems_of(demo_copy)
    assert any(f"{zones}:{line_of(zones, 'knd')}: zones[1].knd: unknown field" in p for p in found)


@pytest.mark.parametrize("content, expected", [
    ("sites: [unclosed\n", "not valid YAML"),
    ("sites:\n  - name: a\n   bad-indent: 1\n", "not valid YAML"),
    ("just a string\n", "the top level must be a mapping"),
    ("zones:\n  - {name: a, kind: user, name: b}\n", "duplicate key"),
    ("sitez: []\n", "unknown section"),
    ("sitez: [1]\n", "unknown section"),
    ('zones: &a ["x", "x"]\nsites: &b [*a, *a, *a]\n', "YAML aliases (*name) are not supported"),
])
def test_yaml_that_is_not_an_estate_is_one_clear_line(demo_copy: Path, content: str, expected: str) -> None:
    bad = demo_copy / "zz-bad.yaml"
    bad.write_text(content)
    found = problems_of(demo_copy)
    assert any(p.startswith(f"{bad}:") and expected in p for p in found), found


def test_yaml_bomb_is_refused_before_it_expands(demo_copy: Path) -> None:
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 10)]
    (demo_copy / "zz-bomb.yaml").write_text("\n".join(lines) + "\n")
    assert any("aliases" in p for p in problems_of(demo_copy))


def test_binary_file_is_refused_clearly(demo_copy: Path) -> None:
    (demo_copy / "zz.yaml").write_bytes(b"\xff\xfe\x00garbage")
    assert any("not UTF-8" in p for p in problems_of(demo_copy))


def test_overlaps_can_be_left_to_the_policy_pack(demo_copy: Path) -> None:
    replace(demo_copy / "sites.yaml", "ranges: [10.21.0.0/16]", "ranges: [10.21.0.0/16, 10.20.128.0/17]")
    assert any("overlaps" in p for p in problems_of(demo_copy))
    load_estate(demo_copy, policy=False)  # the infrastructure plan reports it as a violation instead


def test_secrets_cannot_be_written_into_the_estate(demo_copy: Path) -> None:
    replace(demo_copy / "endpoints.yaml", "password_env: ESTATE_WINRM_PASSWORD}", "password_env: 'hunter2!'}")
    assert any("environment variable NAME" in p for p in problems_of(demo_copy))


def test_schema_reference_is_current() -> None:
    """inventory/SCHEMA.md is generated from the models; regenerate it when the schema changes."""
    from security_checks.model.docs import render

    committed = (DEMO.parent / "SCHEMA.md").read_text()
    regenerate = "run: .venv/bin/python -m security_checks.model.docs > inventory/SCHEMA.md"
    assert committed.strip() == render().strip(), regenerate
