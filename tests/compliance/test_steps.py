"""The compliance steps inside `estate assess`, driven directly with a real store run."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

from rich.console import Console

from security_checks.assess import STEPS, StepContext, run_steps
from security_checks.checks import make_finding
from security_checks.compliance.rap import Rap
from security_checks.findings import Status
from security_checks.model.loader import load_estate
from security_checks.store import Store

DEMO = Path(__file__).resolve().parents[2] / "inventory" / "demo"


def test_compliance_steps_are_last_in_order() -> None:
    assert [s.name for s in STEPS][-3:] == ["patch", "ce", "psn"]


def test_steps_without_root_still_judge_windows_updates_and_unsupported_os(tmp_path: Path) -> None:
    """Not root: the chroot endpoint is skipped with the reason; the rest needs no privileges.
    The Windows update result is a stand-in for what the device audit records from a Windows host."""
    loaded = load_estate(DEMO)
    store = Store(tmp_path / "home")
    today = date.today()
    win = make_finding("devices.win.updates", "host:pc-0042", Status.FAIL, details={"missing_updates": [
        {"kb": "KB5060001", "title": "Cumulative update", "released": (today - timedelta(days=21)).isoformat(),
         "severity": "Critical"}]})
    steps = [s for s in STEPS if s.name in ("patch", "ce", "psn")]
    with store.run("assess", estate_dir=str(DEMO), estate_digest=loaded.digest, full_scope=True) as run:
        run.add([win])
        ctx = StepContext(loaded=loaded, run=run, store=store, console=Console(stderr=True), is_root=False,
                          today=today)
        run_steps(ctx, steps)
        recorded = {s["name"]: s for s in run.steps}
        findings = {(f.check_id, f.asset, f.key): f for f in run.findings}
    assert {s["status"] for s in recorded.values()} == {"ran"}, recorded
    assert "lab-debian-01: skipped, reading a chroot endpoint needs root" in recorded["patch"]["summary"]
    assert findings[("patch.security_update_overdue", "host:pc-0042", "KB5060001")].status is Status.FAIL
    assert findings[("patch.unsupported_os", "endpoint-group:windows-10-legacy", "windows-10")].failing
    evidence = store.evidence_dir(run.id)
    ce_doc = json.loads((evidence / "compliance" / "ce.json").read_text())
    assert ce_doc["verdict"] == "not ready: auto-fail" and ce_doc["run"] == run.id
    sum4 = next(r for r in ce_doc["requirements"] if r["id"] == "SUM-4")
    assert sum4["status"] == "not_met" and sum4["auto_fail"]
    assert ce_doc["advisory_feed"]["feed_date"] == "2026-11-20"
    psn_doc = json.loads((evidence / "compliance" / "psn.json").read_text())
    assert {i["asset"] for i in psn_doc["rap"]} >= {"host:pc-0042", "endpoint-group:windows-10-legacy"}
    assert Rap(store).applied_runs() == [run.id]
    assert (evidence / "compliance" / "rap.csv").is_file()
