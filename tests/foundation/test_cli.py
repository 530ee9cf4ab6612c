"""The `estate` command's conventions: exit statuses, JSON on stdout, one line on bad input."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

from tests.conftest import ESTATE_BIN, REPO


def estate(*args: str, env: dict[str, str] | None = None, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(ESTATE_BIN), *args], capture_output=True, text=True, cwd=cwd,
                          env={**os.environ, **(env or {})}, timeout=300)


def test_validate_demo_json() -> None:
    r = estate("validate", "--format", "json")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["valid"] is True and data["counts"]["lob_systems"] == 27


def test_validate_broken_copy_exits_2_without_traceback(demo_copy: Path) -> None:
    fw = demo_copy / "firewalls.yaml"
    fw.write_text(fw.read_text().replace("to_zone: psn,", "to_zone: nowhere,", 1))
    (demo_copy / "broken.yaml").write_text("sites: [\n")
    r = estate("validate", "--estate", str(demo_copy))
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    assert f"{demo_copy}/broken.yaml:2: (file): not valid YAML" in r.stderr
    # the YAML error stops loading before cross-references; fix it and the reference error shows
    (demo_copy / "broken.yaml").unlink()
    r = estate("validate", "--estate", str(demo_copy), "--format", "json")
    assert r.returncode == 2
    problems = json.loads(r.stdout)["problems"]
    assert [p["field"] for p in problems] == ["firewalls[0].rules[3].to_zone"]
    assert problems[0]["file"].endswith("firewalls.yaml") and problems[0]["line"] > 0


def test_estate_dir_from_environment(demo_copy: Path) -> None:
    (demo_copy / "zones.yaml").unlink()
    r = estate("validate", env={"ESTATE_DIR": str(demo_copy)})
    assert r.returncode == 2 and "zones: missing section" in r.stderr


def test_missing_estate_directory_is_bad_input(tmp_path: Path) -> None:
    r = estate("validate", "--estate", str(tmp_path / "nope"))
    assert r.returncode == 2 and "not a directory" in r.stderr and "Traceback" not in r.stderr


def test_usage_errors_exit_2() -> None:
    assert estate("validate", "--format", "yaml").returncode == 2
    assert estate("no-such-command").returncode == 2


def test_every_command_has_help_with_examples() -> None:
    r = estate("--help")
    assert r.returncode == 0 and "estate validate" in r.stdout
    for cmd in ("validate", "assess"):
        r = estate(cmd, "--help")
        assert r.returncode == 0 and "Examples" in r.stdout


def test_assess_stores_a_run_and_reports_json(tmp_path: Path) -> None:
    r = estate("assess", "--home", str(tmp_path / "home"), "--out", str(tmp_path / "out"),
               "--format", "json", "--fail-on", "none")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["run"] and set(data["summary"]) == {"fail", "error", "manual", "not_assessed", "pass", "accepted"}
    assert (tmp_path / "home" / "runs" / data["run"]).is_dir()


def test_sigkill_during_assess_leaves_no_partial_run(tmp_path: Path) -> None:
    home = tmp_path / "home"
    proc = subprocess.Popen([str(ESTATE_BIN), "assess", "--home", str(home), "--out", str(tmp_path / "out"),
                             "--fail-on", "none", "--only", "selftest-scan"], cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    runs = home / "runs"
    staged = False
    while time.monotonic() < deadline and proc.poll() is None:
        # Wait until the step has written evidence into the run's staging directory.
        if runs.is_dir() and any(p.name.startswith(".staging-") and any(p.rglob("*.xml")) for p in runs.iterdir()):
            staged = True
            break
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert staged, "assess finished before it could be killed: the test proved nothing"
    r = estate("assess", "--home", str(home), "--out", str(tmp_path / "out"), "--format", "json", "--fail-on", "none",
               "--only", "ce-config")
    assert r.returncode == 0, r.stderr
    from security_checks.store import Store

    with Store(home) as store:
        # Only the second, complete run is visible; the killed one's evidence was kept aside, not deleted.
        assert [x.id for x in store.runs()] == [json.loads(r.stdout)["run"]]
        [q] = store.quarantined()
        assert "never committed" in q["reason"]
    assert not any(p.name.startswith(".staging-") for p in (home / "runs").iterdir())
    assert list((home / "quarantine" / q["name"]).rglob("*.xml"))
