"""The `devices` step of estate assess, and the endpoint command, where they do not need root."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from typer.testing import CliRunner

from security_checks.cli.app import app
from security_checks.devices.step import devices_step
from security_checks.findings import Status
from security_checks.jobs import ASSESS
from security_checks.model.loader import load_estate
from security_checks.step import StepContext
from security_checks.store import Store

from .conftest import DEMO


def test_step_is_registered_before_the_compliance_steps() -> None:
    names = [s.name for s in ASSESS.steps]
    assert "devices" in names
    assert all(names.index("devices") < names.index(n) for n in ("patch", "ce-config") if n in names)


def test_a_chroot_endpoint_when_not_root_is_not_assessed_per_host_never_silence(tmp_path: Path) -> None:
    loaded = load_estate(DEMO)
    ctx = StepContext(loaded=loaded, run=None, home=tmp_path, is_root=False,  # type: ignore[arg-type]
                      today=date.today())
    result = devices_step(ctx)
    assert not result.skipped
    assert [(f.check_id, f.asset, f.status) for f in result.findings] == [
        ("devices.unreachable", "host:lab-debian-01", Status.NOT_ASSESSED)]
    assert "needs root" in result.findings[0].observed
    assert not (tmp_path / "lab").exists()


def test_endpoint_status_and_bad_action(tmp_path: Path) -> None:
    runner = CliRunner()
    out = runner.invoke(app, ["devices", "endpoint", "status", "--home", str(tmp_path), "--format", "json"])
    assert out.exit_code == 0 and '"state": "absent"' in out.stdout
    bad = runner.invoke(app, ["devices", "endpoint", "sideways", "--home", str(tmp_path)])
    assert bad.exit_code == 2


def test_a_missing_chroot_is_an_unreachable_finding_with_the_fix(tmp_path: Path) -> None:
    import json

    runner = CliRunner()
    out = runner.invoke(app, ["devices", "audit", "--home", str(tmp_path), "--format", "json"])
    assert out.exit_code == 1, out.output
    (finding,) = json.loads(out.stdout)["findings"]
    assert finding["check_id"] == "devices.unreachable" and finding["asset"] == "host:lab-debian-01"
    assert "does not exist" in finding["observed"]
    assert "estate devices endpoint up" in out.stderr   # the demo's way to build it, as a hint
    assert not (tmp_path / "lab").exists()  # an audit never builds anything


def test_bad_limit_is_a_usage_error_and_stores_nothing(tmp_path: Path) -> None:
    (tmp_path / "lab" / "chroots" / "debian-01" / "usr" / "bin").mkdir(parents=True)
    runner = CliRunner()
    out = runner.invoke(app, ["devices", "audit", "--home", str(tmp_path), "--limit", "no-such-host"])
    assert out.exit_code == 2, out.output
    with Store(tmp_path) as store:
        assert store.runs() == []
    assert [p.name for p in (tmp_path / "runs").iterdir()] == []
