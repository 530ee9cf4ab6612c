"""Estate problems that are findings do not block the assessment: two sites' overlapping ranges are
refused by `estate validate` (its job), but `estate assess` records them as a finding of its run
(`estate.address_overlap`, from the estate-hygiene step), and `estate check`, `report` and
`evidence seal` read that run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from security_checks.cli.app import app
from security_checks.compliance.hygiene import OVERLAP, overlap_findings
from security_checks.findings import EvidenceKind, Status
from security_checks.model.crossref import cross_reference
from security_checks.model.loader import EstateError, load_estate
from security_checks.store import Store
from tests.estate_copy import copy_demo

runner = CliRunner()
# register-office also claims half of schools-admin's range.
OVERLAPPING = {"sites.yaml": [("    ranges: [10.21.0.0/16]", "    ranges: [10.21.0.0/16, 10.20.128.0/17]")]}


def _line_of(path: Path, text: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if text in line)


@pytest.fixture
def estate(tmp_path: Path) -> Path:
    return copy_demo(tmp_path / "estate", OVERLAPPING)


def test_every_policy_problem_of_the_model_is_an_overlap_finding(estate: Path) -> None:
    sites = estate / "sites.yaml"
    # Two VLANs of one site overlapping as well: a policy problem too.
    text = sites.read_text()
    sites.write_text(text.replace("cidr: 10.10.20.0/24, zone: voice}", "cidr: 10.10.10.0/24, zone: voice}", 1))
    with pytest.raises(EstateError):
        load_estate(estate)
    loaded = load_estate(estate, policy=False)
    policy = sorted((p.file, p.line, p.message) for p in cross_reference(loaded) if p.policy)
    findings = overlap_findings(loaded)
    assert len(policy) == len(findings) == 2
    # The same places: a Problem names the file as the estate was given, a finding relative to it.
    assert sorted((loaded.shown(f.details["estate_file"]), f.details["estate_line"], f.key) for f in findings) == policy
    assert all(f.details["estate_file"] == "sites.yaml" for f in findings)
    assert all(f.evidence_kind is EvidenceKind.DECLARED and f.status is Status.FAIL for f in findings)


def test_an_overlap_is_a_finding_of_the_run_and_the_run_is_read_by_check_report_and_seal(
        estate: Path, tmp_path: Path) -> None:
    home, sites = tmp_path / "home", estate / "sites.yaml"
    common = ["--estate", str(estate), "--home", str(home)]

    validate = runner.invoke(app, ["validate", "--estate", str(estate)])
    assert validate.exit_code == 2
    line = _line_of(sites, "10.20.128.0/17")
    assert f"{sites}:{line}: sites[11].ranges[1]: 10.20.128.0/17 overlaps site schools-admin" in validate.stderr

    assess = runner.invoke(app, ["assess", "--only", "estate-hygiene", "--no-report", *common])
    assert assess.exit_code == 1, assess.output        # a high finding is open: --fail-on high
    lenient = runner.invoke(app, ["assess", "--only", "estate-hygiene", "--no-report", "--fail-on", "critical",
                                  *common])
    assert lenient.exit_code == 0, lenient.output

    with Store(home) as store:
        run = store.get_run(kind="assess")
        assert run is not None
        (overlap,) = [f for f in store.findings(run.id) if f.check_id == OVERLAP and f.failing]
        items = [i for i in store.rap_items() if i.check_id == OVERLAP]
    other = _line_of(sites, "ranges: [10.20.0.0/16]")
    assert overlap.asset == "site:register-office" and overlap.site == "register-office"
    # `estate validate` names the file as given (above); the stored finding, relative to the estate.
    assert overlap.observed == (f"site register-office 10.20.128.0/17 (sites.yaml:{line}) overlaps site schools-admin "
                                f"10.20.0.0/16 (sites.yaml:{other})")
    assert [r["asset"] for r in overlap.details["ranges"]] == ["site:register-office", "site:schools-admin"]
    assert [(i.finding_id, i.status) for i in items] == [(overlap.id, "open")]

    ce = runner.invoke(app, ["check", "ce", *common])
    assert ce.exit_code == 1 and "problem(s)" not in ce.stderr, ce.output   # not ready, but read
    psn = runner.invoke(app, ["check", "psn", "--format", "json", *common])
    assert psn.exit_code == 0, psn.output
    assert overlap.id in {i["finding_id"] for i in json.loads(psn.stdout)["rap"]}
    out = tmp_path / "report"
    report = runner.invoke(app, ["report", "--no-pdf", "--out", str(out), *common])
    assert report.exit_code == 0, report.output
    stored = json.loads((out / "machine" / "findings.json").read_text())
    rows = stored["findings"] if isinstance(stored, dict) else stored
    assert overlap.id in {f["id"] for f in rows}
    seal = runner.invoke(app, ["evidence", "seal", "--format", "json", *common])
    assert seal.exit_code == 0, seal.output


def test_other_reference_problems_still_stop_the_assessment(estate: Path, tmp_path: Path) -> None:
    sites = estate / "sites.yaml"
    sites.write_text(sites.read_text().replace("cidr: 10.10.20.0/24, zone: voice}", "cidr: 10.10.20.0/24, "
                                               "zone: nosuch}", 1))
    result = runner.invoke(app, ["assess", "--only", "estate-hygiene", "--no-report", "--estate", str(estate),
                                 "--home", str(tmp_path / "home")])
    assert result.exit_code == 2
    assert "unknown zone 'nosuch'" in result.stderr and "overlaps" not in result.stderr
    assert not (tmp_path / "home" / "estate.db").exists()
