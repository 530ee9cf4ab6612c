"""Checks as units: a check id leads in one hop to its metadata, its code, its steps and its
requirements, and the catalogue's requirement -> checks mapping is the only one there is."""

from __future__ import annotations

from pathlib import Path

from security_checks.catalogue import controls_for, frameworks
from security_checks.checks import make_finding, registry
from security_checks.findings import Status
from security_checks.jobs import ALL, describe_checks

REPO = Path(__file__).resolve().parents[2]


def test_every_check_the_catalogue_names_exists_and_the_references_agree() -> None:
    ids = set(registry())
    for fw in frameworks():
        for req in fw.requirements:
            for check in req.checks:
                assert check in ids, f"{fw.ref(req)} names {check}, which no checks.yaml defines"
                # check -> requirements is derived from the same lists: they cannot disagree.
                assert fw.ref(req) in controls_for(check)
    for check in ids:
        stamped = make_finding(check, "asset:x", Status.FAIL).controls
        assert stamped == sorted(controls_for(check))
        for ref in stamped:
            prefix, _, rid = ref.partition(":")
            fw = next(f for f in frameworks() if f.prefix == prefix)
            assert check in next(r for r in fw.requirements if r.id == rid).checks


def test_every_check_is_one_hop_from_its_metadata_code_steps_and_requirements() -> None:
    steps = {s.name for job in ALL for s in job.steps}
    for d in describe_checks():
        meta = REPO / d["metadata"]
        assert f"id: {d['id']}" in meta.read_text(), d["id"]
        # The code that emits it names it literally (assess.step_failed: the runner itself).
        assert d["emitted_by"], f"no code emits {d['id']}"
        for path in d["emitted_by"]:
            assert d["id"] in (REPO / path).read_text()
        if d["id"] != "assess.step_failed":
            assert d["steps"], f"{d['id']} is declared by no step, so no run could ever count it as run"
            assert {s.split("/", 1)[1] for s in d["steps"]} <= steps


def test_estate_checks_shows_one_check(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from security_checks.cli.app import app

    r = CliRunner().invoke(app, ["checks", "patch.security_update_overdue"])
    assert r.exit_code == 0, r.output
    for needle in ("security_checks/compliance/checks.yaml", "security_checks/compliance/patch.py",
                   "assess/patch", "CE3.3:SUM-4", "evidence_kind: observed"):
        assert needle in r.output
    assert CliRunner().invoke(app, ["checks", "no.such.*"]).exit_code == 2
