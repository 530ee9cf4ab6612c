"""The findings store: history across runs, migrations, and runs that commit whole or not at all."""

from __future__ import annotations

import time
from datetime import date
from pathlib import Path

import pytest

from security_checks.checks import make_finding
from security_checks.findings import Finding, Severity, Status, finding_id
from security_checks.model.loader import LoadedEstate, load_estate
from security_checks.runner import Job, Runner
from security_checks.step import Step, StepContext, StepResult
from security_checks.store import EvidenceMismatch, Store
from tests.runs import given, run_with

# Every test here runs on both back-ends: SQLite in the home, and a real PostgreSQL server (conftest.py).
pytestmark = pytest.mark.usefixtures("backend")

DEMO = Path(__file__).resolve().parents[2] / "inventory" / "demo"
TODAY = date(2026, 11, 22)


@pytest.fixture(scope="module")
def loaded() -> LoadedEstate:
    return load_estate(DEMO)


def finding(asset: str, status: Status = Status.FAIL, key: str = "tcp/23") -> Finding:
    return make_finding("scan.plaintext_protocol", asset, status, key=key, severity=Severity.HIGH)


def test_finding_id_is_stable_and_specific() -> None:
    a, b = finding("host:10.10.30.20"), finding("host:10.10.30.20", status=Status.PASS)
    assert a.id == b.id == finding_id("scan.plaintext_protocol", "host:10.10.30.20", "tcp/23")
    assert finding("host:10.10.30.21").id != a.id
    assert finding("host:10.10.30.20", key="tcp/2323").id != a.id


def test_runs_keep_history_and_first_seen(tmp_path: Path, loaded: LoadedEstate) -> None:
    first = run_with(tmp_path, loaded, [finding("host:a")], today=TODAY).run.id
    time.sleep(1.1)  # run ids and timestamps have one-second resolution
    second = run_with(tmp_path, loaded, [finding("host:a"), finding("host:b")], today=TODAY).run.id
    with Store(tmp_path) as store:
        got = {f.asset: f for f in store.findings(second)}
        assert got["host:a"].first_seen is not None and got["host:a"].first_seen < got["host:a"].last_seen  # type: ignore[operator]
        assert got["host:b"].first_seen == got["host:b"].last_seen
        assert [r.id for r in store.runs()] == [second, first]
        prev = store.previous_run(store.get_run(second))  # type: ignore[arg-type]
        assert prev is not None and prev.id == first
        assert [s for _, s in store.history(got["host:a"].id)] == ["fail", "fail"]


def test_a_run_records_what_it_was(tmp_path: Path, loaded: LoadedEstate) -> None:
    out = run_with(tmp_path, loaded, [finding("host:a")], today=TODAY, evidence={"scan/a.xml": "<nmaprun/>"})
    run = out.run
    assert run.estate_digest == loaded.digest and run.estate_dir == str(loaded.root)
    assert run.job == "assess" and run.assessed_on == TODAY
    assert [(s["name"], s["status"]) for s in run.steps] == [("given", "ran")]
    assert run.context["organisation"] == loaded.estate.organisation.name
    assert run.context["network"] == "PSN" and run.context["scope"]["sites"]
    with Store(tmp_path) as store:
        [ev] = store.evidence_files(run.id)
        assert ev.path == "scan/a.xml" and store.verify_evidence(run.id) == []
        assert {v.framework for v in store.verdicts(run.id)} >= {"cyber-essentials", "psn"}


def test_a_run_interrupted_before_commit_stores_nothing_and_keeps_its_evidence_aside(
        tmp_path: Path, loaded: LoadedEstate) -> None:
    def interrupted(ctx: StepContext) -> StepResult:
        ctx.run.write_evidence("scan/a.xml", "<nmaprun/>")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        Runner(loaded, tmp_path, today=TODAY).run(Job("assess", (Step("x", interrupted, "x", ("*",)),), "t"))
    with Store(tmp_path) as store:
        assert store.runs() == [] and store.rap_items() == []
        [q] = store.quarantined()
        assert "KeyboardInterrupt" in q["reason"]
    assert [p.name for p in (tmp_path / "runs").iterdir()] == []
    assert (tmp_path / "quarantine" / q["name"] / "scan" / "a.xml").read_text() == "<nmaprun/>"


def test_a_step_that_fails_is_recorded_and_the_others_findings_kept(tmp_path: Path, loaded: LoadedEstate) -> None:
    def broken(ctx: StepContext) -> StepResult:
        raise RuntimeError("nmap exploded")

    job = Job("assess", (Step("broken", broken, "b", ("scan.*",)),
                         given([finding("host:a")], checks=("scan.plaintext_protocol",))), "t", full_scope=True)
    out = Runner(loaded, tmp_path, today=TODAY).run(job)
    steps = {s["name"]: s for s in out.run.steps}
    assert steps["broken"]["status"] == "error" and "nmap exploded" in steps["broken"]["summary"]
    failed = next(f for f in out.findings if f.check_id == "assess.step_failed")
    assert failed.status is Status.ERROR and failed.evidence[0].path == "errors/broken.txt"
    assert any(f.asset == "host:a" for f in out.findings)
    # The failed step's checks did not run, so nothing only it reports can close a RAP item.
    assert "scan.undeclared_port" not in out.run.checks_run and "scan.plaintext_protocol" in out.run.checks_run


def test_duplicate_findings_in_one_run_are_a_bug_not_silently_merged(tmp_path: Path, loaded: LoadedEstate) -> None:
    with pytest.raises(RuntimeError, match="reported twice"):
        run_with(tmp_path, loaded, [finding("host:a"), finding("host:a")], today=TODAY)
    with Store(tmp_path) as store:
        assert store.runs() == []


def test_evidence_cannot_escape_the_run_directory(tmp_path: Path, loaded: LoadedEstate) -> None:
    def escape(ctx: StepContext) -> StepResult:
        ctx.run.write_evidence("../../etc/passwd", "x")
        return StepResult()

    out = Runner(loaded, tmp_path, today=TODAY).run(Job("assess", (Step("x", escape, "x", ("*",)),), "t"))
    assert out.run.steps[0]["status"] == "error" and "leaves the run directory" in out.run.steps[0]["summary"]


def test_a_finding_whose_evidence_changed_before_commit_is_refused(tmp_path: Path, loaded: LoadedEstate) -> None:
    def tamper(ctx: StepContext) -> StepResult:
        ref = ctx.run.write_evidence("scan/a.xml", "<nmaprun>as scanned</nmaprun>")
        (ctx.run.evidence_dir / "scan" / "a.xml").write_text("<nmaprun>edited</nmaprun>")
        return StepResult([finding("host:a").model_copy(update={"evidence": [ref]})])

    with pytest.raises(EvidenceMismatch, match="changed after the finding was made"):
        Runner(loaded, tmp_path, today=TODAY).run(Job("assess", (Step("x", tamper, "x", ("*",)),), "t"))
    with Store(tmp_path) as store:
        assert store.runs() == []


def test_migrations_apply_once_and_are_recorded(tmp_path: Path) -> None:
    with Store(tmp_path) as store:
        first = store.schema_version
    assert first and first[0] == "001_runs_and_findings" and "060_one_runner" in first
    with Store(tmp_path) as store:
        assert store.schema_version == first


def test_briefs_and_the_manifest_say_what_the_stored_findings_say(tmp_path: Path, loaded: LoadedEstate) -> None:
    """A summary prints briefs read from the store's columns and JSON functions, not decoded findings,
    and `store recover --adopt` rebuilds a run from its manifest: both must match the stored rows,
    including an accepted finding, the fix-by date and first_seen the commit sets."""
    import dataclasses
    import json

    from security_checks.model.schema import Waiver
    from security_checks.store.core import MANIFEST

    waiver = Waiver(check="scan.plaintext_protocol", asset="host:10.10.30.21", justification="Legacy kiosk; isolated.",
                    approved_by="Priya Natarajan (SIRO)", approved_on=TODAY, expires=date(2027, 3, 1))
    waived = dataclasses.replace(loaded, estate=loaded.estate.model_copy(update={"waivers": [waiver]}))
    chosen = [finding("host:10.10.30.20"), finding("host:10.10.30.21"), finding("host:10.10.30.22", Status.PASS),
             make_finding("scan.plaintext_protocol", "host:10.10.30.23", Status.ERROR, key="tcp/23",
                          observed="nmap could not reach it")]
    out = run_with(tmp_path, waived, chosen, today=TODAY)
    stored = out.findings
    assert len(stored) == 4 and [b.id for b in out.briefs] == [f.id for f in stored]
    for b, f in zip(out.briefs, stored, strict=True):
        assert (b.check_id, b.asset, b.key, b.status, b.severity, b.title, b.observed) == \
            (f.check_id, f.asset, f.key, f.status, f.severity, f.title, f.observed)
        assert (b.accepted, b.failing, b.open) == (f.accepted, f.failing, f.open)
    assert [b.accepted for b in out.briefs if b.asset == "host:10.10.30.21"] == [True]
    assert sum(b.open for b in out.briefs) == 2   # .20 failing and .23 in error; .21 is accepted
    with Store(tmp_path) as store:
        manifest = json.loads((store.runs_dir / out.run.id / MANIFEST).read_text())
    assert json.loads(manifest["run"]["rap_update"]) == out.rap
    by_id = {f.id: f.model_dump(mode="json") for f in stored}
    assert {f["id"]: f for f in manifest["findings"]} == by_id
    assert all(f["first_seen"] and f["last_seen"] for f in manifest["findings"])
    assert any(f["fix_by"] for f in manifest["findings"])
