"""Findings cite the estate relative to its directory, whatever path it was loaded from.

The same estate loaded as `inventory/demo`, as `/…/inventory/demo`, or copied elsewhere gives the same
file:line in every finding, and no finding, verdict or stored run context carries the directory the
operator ran from (it would otherwise reach reports and signed evidence). What an operator reads in a
terminal (load problems, `estate validate`) still names the file as they gave the estate, so that it
opens from where they are.
"""

from __future__ import annotations

import json
import os
import shutil
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from security_checks.compliance.ce import firewall_mgmt_port_from_internet
from security_checks.compliance.hygiene import hygiene_findings
from security_checks.compliance.verdict import run_verdicts
from security_checks.findings import Finding
from security_checks.firewalls.compare import compare
from security_checks.firewalls.declared import declared_firewall
from security_checks.firewalls.running import from_fortios
from security_checks.jobs import CE_CONFIG, HYGIENE, IDENTITY, PATCH
from security_checks.model.loader import EstateError, LoadedEstate, load_estate
from security_checks.runner import Job, Runner
from security_checks.store import Store
from tests.firewalls.fortios_standin import FortiGate
from tests.firewalls.planted import converged, plant_drift

REPO = Path(__file__).resolve().parents[2]
ESTATES = {"demo": Path("inventory/demo"), "glenmoray": Path("tests/estates/glenmoray")}
TODAY = date(2026, 12, 2)


def _loads(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, LoadedEstate]:
    """The estate loaded four ways: relative and absolute, in the repository and as a copy elsewhere."""
    rel = ESTATES[name]
    copy = tmp_path / "elsewhere" / name
    shutil.copytree(REPO / rel, copy)
    monkeypatch.chdir(REPO)
    out = {"relative": load_estate(rel), "absolute": load_estate(REPO / rel), "copy": load_estate(copy)}
    monkeypatch.chdir(copy.parent)
    out["copy, relative"] = load_estate(name)
    monkeypatch.chdir(REPO)
    return out


def _citing(loaded: LoadedEstate) -> list[Finding]:
    """Real checks whose findings name estate file:line: the estate's hygiene (address plan, waivers,
    device zones), Cyber Essentials' management ports from the internet, and the declared firewalls."""
    return [*hygiene_findings(loaded, TODAY), *firewall_mgmt_port_from_internet(loaded)]


def _json(findings: list[Finding]) -> list[dict[str, Any]]:
    return sorted((f.model_dump(mode="json", exclude={"first_seen", "last_seen"}) for f in findings),
                  key=lambda d: d["id"])


def _places(found: list[dict[str, Any]]) -> list[str]:
    """Every file:line the findings' details cite."""
    cited = [f"{d['details']['estate_file']}:{d['details']['estate_line']}" for d in found
             if "estate_file" in d["details"]]
    return cited + [str(d["details"]["where"]) for d in found if "where" in d["details"]]


@pytest.mark.parametrize("name", list(ESTATES))
def test_locations_are_relative_to_the_estate_directory_however_it_was_loaded(
        name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    loads = _loads(name, tmp_path, monkeypatch)
    first = loads["relative"]
    for how, loaded in loads.items():
        assert loaded.locations == first.locations, how
        assert loaded.digest == first.digest, how
    files = {file for file, _ in first.locations.values()}
    # POSIX paths under the estate directory, each one of its files.
    assert all(not Path(f).is_absolute() and ".." not in Path(f).parts and (REPO / ESTATES[name] / f).is_file()
               for f in files), files
    assert "firewalls.yaml" in files
    if name == "glenmoray":   # sites split over a subdirectory: cited with it
        assert first.where(("sites", 0))[0].startswith("sites/")


@pytest.mark.parametrize("name", list(ESTATES))
def test_findings_are_identical_whatever_path_the_estate_was_loaded_from(
        name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    loads = _loads(name, tmp_path, monkeypatch)
    found = {how: _json(_citing(loaded)) for how, loaded in loads.items()}
    declared = {how: [declared_firewall(loaded, fw) for fw in loaded.estate.firewalls] for how, loaded in loads.items()}
    for how in loads:
        assert found[how] == found["relative"], how
        assert declared[how] == declared["relative"], how
    # Not vacuous: these findings and every declared firewall and rule do cite the estate.
    places = _places(found["relative"])
    places += [d["where"] for d in declared["relative"]]
    places += [r["where"] for d in declared["relative"] for r in d["rules"]]
    assert len(places) > len(declared["relative"])
    for place in places:
        file, _, line = place.rpartition(":")
        assert (REPO / ESTATES[name] / file).is_file() and int(line) > 0, place
    text = json.dumps([found, declared], default=str)
    for path in (REPO, tmp_path, Path(os.getcwd())):
        assert str(path) not in text


def test_a_firewall_drift_finding_cites_the_same_line_from_any_path(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The FortiGate stand-in with the planted drift, compared with the declared policy (no Ansible)."""
    out = {}
    for how, loaded in _loads("demo", tmp_path, monkeypatch).items():
        decl = declared_firewall(loaded, loaded.estate.firewall("fw-civic"))
        gate = FortiGate(token="t")
        converged(gate, decl)
        plant_drift(gate, decl)
        config = [gate._cmdb("GET", t, {}, None)[1] for t in
                  ("firewall/address", "firewall/addrgrp", "firewall.service/custom", "firewall/policy",
                   "system/interface", "system/admin", "system/global")]
        status = gate.handle("GET", "/api/v2/monitor/system/status", None)[1]
        hits = gate.handle("GET", "/api/v2/monitor/firewall/policy", None)[1]
        out[how] = _json(compare(decl, from_fortios("fw-civic", status, config, hits), TODAY, []))
    for how, found in out.items():
        assert found == out["relative"], how
    shadowed = next(d for d in out["absolute"] if d["check_id"] == "firewalls.rule_shadowed" and d["key"] == "CIV-003")
    assert shadowed["details"]["where"] == "firewalls.yaml:50"


def test_an_overlap_in_a_subdirectory_file_is_cited_with_its_subdirectory(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    copy = tmp_path / "glenmoray"
    shutil.copytree(REPO / ESTATES["glenmoray"], copy)
    loaded = load_estate(copy)
    (_, site), (sj, other) = [(i, s) for i, s in enumerate(loaded.estate.sites) if s.ranges][:2]
    file, _ = loaded.where(("sites", sj, "ranges"))
    assert file.startswith("sites/")
    # The second site also claims the first's range: a policy problem, and a finding of the assessment.
    path = copy / file
    text = path.read_text()
    old = f"ranges: [{', '.join(other.ranges)}]"
    assert text.count(old) == 1, old
    path.write_text(text.replace(old, f"ranges: [{', '.join([*other.ranges, site.ranges[0]])}]"))
    monkeypatch.chdir(tmp_path)
    found = [_json(hygiene_findings(load_estate(p, policy=False), TODAY)) for p in (copy, Path("glenmoray"))]
    assert found[0] == found[1]
    overlap = next(d for d in found[0] if d["check_id"] == "estate.address_overlap")
    assert overlap["details"]["estate_file"] == file
    assert f"({file}:{overlap['details']['estate_line']})" in overlap["observed"]
    assert str(tmp_path) not in json.dumps(found)


def test_load_problems_name_the_file_as_the_operator_gave_the_estate(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A terminal message: `estate/firewalls.yaml:N` from where the operator is, clickable there."""
    copy = tmp_path / "estate"
    shutil.copytree(REPO / ESTATES["demo"], copy)
    fw = copy / "firewalls.yaml"
    fw.write_text(fw.read_text().replace("from_zone: corporate, to_zone: psn", "from_zone: corporate, to_zone: psn-x",
                                         1))
    monkeypatch.chdir(tmp_path)
    for given in (Path("estate"), copy):
        with pytest.raises(EstateError) as exc:
            load_estate(given)
        (problem,) = [p for p in exc.value.problems if "psn-x" in p.message]
        assert problem.file == str(given / "firewalls.yaml") and problem.line > 0, problem


def test_verdicts_and_the_stored_run_carry_no_estate_directory(tmp_path: Path) -> None:
    """A real run (declared configuration, hygiene, the tenant export and the advisory feed the estate
    declares) of a copy: its findings, verdicts, context and evidence are what the same run of the
    original stores."""
    copy = tmp_path / "copy"
    shutil.copytree(REPO / ESTATES["demo"], copy)
    job = Job("assess", (IDENTITY, CE_CONFIG, HYGIENE, PATCH), "declared, without the lab", full_scope=True)
    stored = {}
    for how, root in (("original", REPO / ESTATES["demo"]), ("copy", copy)):
        home = tmp_path / f"home-{how}"
        outcome = Runner(load_estate(root), home, today=TODAY).run(job)
        with Store(home) as store:
            run = store.get_run(outcome.run.id)
            assert run is not None and run.estate_dir == str(root)   # the operator's messages name it
            evidence = store.evidence_dir(run.id)
            stored[how] = {
                "findings": _json(store.findings(run.id)),
                "verdicts": [v.model_dump(mode="json") for v in store.verdicts(run.id)],
                "context": run.context,
                # What the steps wrote about their inputs (the feed, the export), as the bundle carries it.
                "summaries": {name: json.loads((evidence / name).read_text())
                              for name in ("identity/summary.json", "patch/summary.json")}}
    assert any(d["details"].get("estate_file") for d in stored["copy"]["findings"])
    assert any(r["record_evidence_at"] for v in stored["copy"]["verdicts"] for r in v["requirements"])
    feed = next(f for f in stored["copy"]["findings"] if f["check_id"] == "patch.advisory_feed_stale")
    assert feed["details"]["path"] == "advisories.json"
    assert stored["copy"]["summaries"]["identity/summary.json"]["directory"] == "entra-export"
    assert stored["copy"] == stored["original"]
    assert str(copy) not in json.dumps(stored["copy"]) and str(REPO) not in json.dumps(stored["original"])
    # run_verdicts takes the directory to look for attestation evidence, and cites it relative.
    verdicts = run_verdicts(load_estate(copy).estate, [], TODAY, copy)
    assert {r.record_evidence_at.split(":")[0] for v in verdicts for r in v.requirements
            if r.record_evidence_at} == {"attestations.yaml"}
