"""The compliance steps inside a real run: patch and the estate's configuration checks, with the
verdicts and the RAP the runner stores at commit."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest

from security_checks.checks import make_finding
from security_checks.compliance.steps import patch_step
from security_checks.findings import Status
from security_checks.jobs import ASSESS, CE_CONFIG, PATCH
from security_checks.model.loader import load_estate
from security_checks.runner import Job, Runner
from security_checks.step import StepContext
from security_checks.store import Store
from tests.runs import given

DEMO = Path(__file__).resolve().parents[2] / "inventory" / "demo"


def test_patch_reads_what_the_device_audit_found_so_it_runs_after_it() -> None:
    names = [s.name for s in ASSESS.steps]
    assert names.index("patch") > names.index("devices")


def test_steps_without_root_still_judge_windows_updates_and_unsupported_os(tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """Not root: the chroot endpoint is not assessed, with the reason; the rest needs no privileges.
    The Windows update result is a stand-in for what the device audit records from a Windows host."""
    monkeypatch.setattr("security_checks.runner.is_root", lambda: False)
    loaded = load_estate(DEMO)
    today = date.today()
    win = make_finding("devices.win.updates", "host:pc-0042", Status.FAIL, details={"missing_updates": [
        {"kb": "KB5060001", "title": "Cumulative update", "released": (today - timedelta(days=21)).isoformat(),
         "severity": "Critical"}]})
    job = Job("assess", (given([win], checks=("devices.*",), name="devices"), CE_CONFIG, PATCH), "test",
              full_scope=True)
    out = Runner(loaded, tmp_path / "home", today=today).run(job)
    recorded = {s["name"]: s for s in out.run.steps}
    assert {s["status"] for s in recorded.values()} == {"ran"}, recorded
    findings = {(f.check_id, f.asset, f.key): f for f in out.findings}
    unread = findings[("patch.security_update_overdue", "host:lab-debian-01", "patch-state")]
    assert unread.status is Status.NOT_ASSESSED and "needs root" in unread.observed
    assert findings[("patch.security_update_overdue", "host:pc-0042", "KB5060001")].status is Status.FAIL
    assert findings[("patch.unsupported_os", "endpoint-group:windows-10-legacy", "windows-10")].failing
    with Store(tmp_path / "home") as store:
        ce = next(v for v in store.verdicts(out.run.id) if v.framework == "cyber-essentials" and v.in_force)
        assert ce.verdict == "not ready: auto-fail" and ce.assessed_on == today.isoformat()
        sum4 = next(r for r in ce.requirements if r.id == "SUM-4")
        assert sum4.status == "not_met" and sum4.auto_fail
        assert {i.asset for i in store.rap_items()} >= {"host:pc-0042", "endpoint-group:windows-10-legacy"}
        assert store.rap_applied_runs() == [out.run.id]
        assert any(e.path == "patch/summary.json" for e in store.evidence_files(out.run.id))


def test_an_endpoint_whose_packages_cannot_be_read_is_an_error_never_a_pass(tmp_path: Path) -> None:
    """apt failing on the endpoint (here: not a Debian tree at all, as after a full disk wiped dpkg's
    status) must not make the host look patched: an error finding per host, which fails SUM-4."""
    loaded = load_estate(DEMO)
    broken = tmp_path / "home" / "lab" / "chroots" / "debian-01"
    (broken / "usr" / "bin").mkdir(parents=True)

    class Sink:
        id = "test"
        evidence_dir = tmp_path / "ev"

        def write_evidence(self, relpath: str, data: bytes | str, description: str = "") -> object:
            from security_checks.findings import EvidenceRef

            return EvidenceRef(path=relpath)

        def copy_evidence(self, src: Path, relpath: str, description: str = "") -> object:
            raise AssertionError

    ctx = StepContext(loaded=loaded, run=Sink(), home=tmp_path / "home", is_root=True,  # type: ignore[arg-type]
                      today=date.today())
    result = patch_step(ctx)
    unread = [f for f in result.findings if f.key == "patch-state"]
    assert [(f.asset, f.status) for f in unread] == [("host:lab-debian-01", Status.ERROR)]
    assert "not a Debian system" in unread[0].observed
    assert not any(f.check_id == "patch.up_to_date" and f.asset == "host:lab-debian-01" for f in result.findings)
