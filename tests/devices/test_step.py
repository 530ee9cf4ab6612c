"""The `devices` step of estate assess, and the endpoint command, where they do not need root."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from rich.console import Console
from typer.testing import CliRunner

from security_checks.assess import STEPS, StepContext
from security_checks.cli.app import app
from security_checks.devices.step import devices_step
from security_checks.model.loader import load_estate
from security_checks.store import Store

from .conftest import DEMO


def test_step_is_registered_before_the_compliance_steps() -> None:
    names = [s.name for s in STEPS]
    assert "devices" in names
    assert all(names.index("devices") < names.index(n) for n in ("patch", "ce", "psn") if n in names)


def test_step_skips_with_a_reason_when_not_root(tmp_path: Path) -> None:
    store = Store(tmp_path)
    loaded = load_estate(DEMO)
    with store.run("assess", estate_dir=str(DEMO), estate_digest=loaded.digest) as run:
        ctx = StepContext(loaded=loaded, run=run, store=store, console=Console(stderr=True), is_root=False,
                          today=date.today())
        result = devices_step(ctx)
    assert result.skipped and "root" in result.skipped
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
    assert "estate devices endpoint up" in finding["observed"]
    assert not (tmp_path / "lab").exists()  # an audit never builds anything


def test_bad_limit_is_a_usage_error_and_stores_nothing(tmp_path: Path) -> None:
    (tmp_path / "lab" / "chroots" / "debian-01" / "usr" / "bin").mkdir(parents=True)
    runner = CliRunner()
    out = runner.invoke(app, ["devices", "audit", "--home", str(tmp_path), "--limit", "no-such-host"])
    assert out.exit_code == 2
    assert Store(tmp_path).runs() == []
