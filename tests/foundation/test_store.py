"""The findings store: history across runs, migrations, and runs that commit whole or not at all."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from security_checks.findings import Finding, Severity, Status, finding_id
from security_checks.store import Store


def finding(asset: str, status: Status = Status.FAIL, key: str = "tcp/23") -> Finding:
    return Finding(check_id="scan.plaintext_protocol", asset=asset, key=key, title="telnet open",
                   status=status, severity=Severity.HIGH, source="scan")


def test_finding_id_is_stable_and_specific() -> None:
    a, b = finding("host:10.10.30.20"), finding("host:10.10.30.20", status=Status.PASS)
    assert a.id == b.id == finding_id("scan.plaintext_protocol", "host:10.10.30.20", "tcp/23")
    assert finding("host:10.10.30.21").id != a.id
    assert finding("host:10.10.30.20", key="tcp/2323").id != a.id


def test_runs_keep_history_and_first_seen(tmp_path: Path) -> None:
    store = Store(tmp_path)
    with store.run("assess", estate_dir="d", estate_digest="x") as run:
        run.add([finding("host:a")])
        first = run.id
    time.sleep(1.1)  # run ids and timestamps have one-second resolution
    with store.run("assess", estate_dir="d", estate_digest="x") as run:
        run.add([finding("host:a"), finding("host:b")])
        second = run.id
    got = {f.asset: f for f in store.findings(second)}
    assert got["host:a"].first_seen is not None and got["host:a"].first_seen < got["host:a"].last_seen  # type: ignore[operator]
    assert got["host:b"].first_seen == got["host:b"].last_seen
    assert [r.id for r in store.runs()] == [second, first]
    prev = store.previous_run(store.get_run(second))  # type: ignore[arg-type]
    assert prev is not None and prev.id == first
    assert [s for _, s in store.history(got["host:a"].id)] == ["fail", "fail"]


def test_a_run_that_raises_leaves_nothing(tmp_path: Path) -> None:
    store = Store(tmp_path)
    with pytest.raises(RuntimeError), store.run("assess", estate_dir="d", estate_digest="x") as run:
        run.add([finding("host:a")])
        run.write_evidence("scan/a.xml", "<nmaprun/>")
        raise RuntimeError("engine failed")
    assert store.runs() == []
    assert list((tmp_path / "runs").iterdir()) == []


def test_duplicate_findings_in_one_run_are_a_bug_not_silently_merged(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="reported twice"), Store(tmp_path).run(
            "assess", estate_dir="d", estate_digest="x") as run:
        run.add([finding("host:a"), finding("host:a")])


def test_evidence_cannot_escape_the_run_directory(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="leaves the run directory"), Store(tmp_path).run(
            "assess", estate_dir="d", estate_digest="x") as run:
        run.write_evidence("../../etc/passwd", "x")


def test_migrations_apply_once_and_are_recorded(tmp_path: Path) -> None:
    first = Store(tmp_path).schema_version
    assert first and first[0] == "001_runs_and_findings"
    assert Store(tmp_path).schema_version == first


CHILD = r"""
import sys, time
from pathlib import Path
from security_checks.store import Store
from security_checks.findings import Finding, Severity, Status
store = Store(Path(sys.argv[1]))
with store.run("assess", estate_dir="d", estate_digest="x") as run:
    run.add([Finding(check_id="c", asset=f"host:{i}", title="t", status=Status.FAIL,
                     severity=Severity.LOW, source="s") for i in range(1000)])
    run.write_evidence("scan/big.xml", "<x/>" * 100000)
    print("ready", flush=True)
    time.sleep(60)
"""


def test_sigkill_mid_run_leaves_no_partial_run_and_the_next_run_works(tmp_path: Path) -> None:
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(tmp_path)], stdout=subprocess.PIPE, text=True,
                             cwd=Path(__file__).resolve().parents[2])
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "ready"
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    assert any(p.name.startswith(".staging-") for p in (tmp_path / "runs").iterdir())  # it was mid-run

    store = Store(tmp_path)  # opening recovers: the staging directory is gone, no run is visible
    assert store.runs() == []
    assert list((tmp_path / "runs").iterdir()) == []
    with store.run("assess", estate_dir="d", estate_digest="x") as run:
        run.add([finding("host:a")])
    assert len(store.runs()) == 1


def test_a_run_directory_without_its_row_is_removed(tmp_path: Path) -> None:
    """Killed between moving the evidence into place and committing the row: not a run."""
    store = Store(tmp_path)
    orphan = tmp_path / "runs" / "20261122T000000Z-dead"
    (orphan / "scan").mkdir(parents=True)
    (orphan / "scan" / "a.xml").write_text("<x/>")
    store.close()
    assert Store(tmp_path).runs() == []
    assert not orphan.exists()
