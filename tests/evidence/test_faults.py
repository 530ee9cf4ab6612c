"""Fault injection with real processes: a seal or a push killed (-9) at named points, two seals at once.

The CLI runs as a child process; ESTATE_TEST_PAUSE_AT=<phase> holds it at that point
(security_checks/testhooks.py) so the test kills it exactly there, or lets it go on after
ESTATE_TEST_PAUSE_SECONDS.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from security_checks.evidence.bundle import verify
from tests.evidence.helpers import ESTATE, cli_env, home_with_bundles, paused
from tests.report.builders import demo_loaded, make_two_runs

pytestmark = pytest.mark.slow


@pytest.fixture
def home(tmp_path: Path) -> tuple[Path, str, str]:
    home = tmp_path / "home"
    store, a, b = make_two_runs(home, demo_loaded())
    store.close()
    return home, a, b


def start(home: Path, log: Path, *args: str, **env: str) -> subprocess.Popen[bytes]:
    with open(log, "wb") as err:
        return subprocess.Popen([*ESTATE, "evidence", *args], env=cli_env(home, **env), stdout=subprocess.PIPE,
                                stderr=err)


def estate(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*ESTATE, "evidence", *args], env=cli_env(home), capture_output=True, text=True,
                          check=False, timeout=300)


@pytest.mark.parametrize("phase", ["seal:rendered", "seal:signed"])
def test_a_seal_killed_half_way_leaves_no_bundle_and_the_next_seal_works(home: tuple[Path, str, str],
                                                                       tmp_path: Path, phase: str) -> None:
    root, a, _b = home
    bundles = root / "bundles"
    log = tmp_path / "seal.log"
    proc = start(root, log, "seal", "--run", a, ESTATE_TEST_PAUSE_AT=phase)
    paused(proc, log, phase)
    assert [p.name for p in bundles.iterdir() if p.name.startswith(".seal-")]   # it was half-way...
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert [p.name for p in bundles.iterdir() if not p.name.startswith(".")] == []   # ...and left no bundle

    done = estate(root, "seal", "--run", a, "--format", "json")   # the lock died with it: no --wait needed
    assert done.returncode == 0, done.stderr
    bundle = Path(json.loads(done.stdout)["bundle"])
    assert [p.name for p in bundles.iterdir()] == [a]    # the abandoned temporary directory is gone
    assert bundle.name == a and verify(bundle).ok
    assert json.loads((bundle / "bundle.json").read_text())["seq"] == 1


def test_two_seals_at_once_wait_or_are_refused_and_never_fork_the_chain(home: tuple[Path, str, str],
                                                                         tmp_path: Path) -> None:
    root, a, b = home
    first = start(root, tmp_path / "first.log", "seal", "--run", a, "--format", "json",
                  ESTATE_TEST_PAUSE_AT="seal:signed", ESTATE_TEST_PAUSE_SECONDS="45")
    # Holds the writer lock, chain link already chosen; long enough for the two processes below to start
    # on a loaded machine (a busy CI runner takes over 10 s to import the CLI).
    paused(first, tmp_path / "first.log", "seal:signed")

    refused = estate(root, "seal", "--run", b)
    assert refused.returncode == 75, refused.stderr
    assert "busy" in refused.stderr and "estate evidence seal" in refused.stderr
    assert [p.name for p in (root / "bundles").iterdir() if not p.name.startswith(".")] == []

    waiter = start(root, tmp_path / "waiter.log", "seal", "--run", b, "--wait", "120", "--format", "json")
    time.sleep(1.5)
    assert waiter.poll() is None   # waiting for the first seal, not sealing beside it
    assert first.wait(timeout=120) == 0, (tmp_path / "first.log").read_text()
    assert waiter.wait(timeout=300) == 0, (tmp_path / "waiter.log").read_text()
    assert first.stdout and waiter.stdout
    sealed_first = Path(json.loads(first.stdout.read())["bundle"])
    sealed_second = Path(json.loads(waiter.stdout.read())["bundle"])

    from security_checks.evidence.bundle import scan_chain

    second_meta = json.loads((sealed_second / "bundle.json").read_text())
    assert second_meta["seq"] == 2 and second_meta["previous"]["bundle"] == sealed_first.name
    scan = scan_chain(root / "bundles")
    assert scan.ok and scan.forks == [] and scan.gaps == []
    assert verify(sealed_second).ok and len(verify(sealed_second).chain) == 2


def test_a_directory_push_killed_before_its_rename_is_redone_and_its_leftovers_removed(sealed: SimpleNamespace,
                                                                                      tmp_path: Path) -> None:
    root = home_with_bundles(sealed.home / "bundles", tmp_path / "home")
    share = tmp_path / "share"
    log = tmp_path / "push.log"
    proc = start(root, log, "push", "--to", str(share), ESTATE_TEST_PAUSE_AT="push:dir-copied")
    paused(proc, log, "push:dir-copied")
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert [p.name for p in share.iterdir() if not p.name.startswith(".incoming-")] == []
    done = estate(root, "push", "--to", str(share), "--format", "json")
    assert done.returncode == 0, done.stderr
    assert [b["state"] for b in json.loads(done.stdout)["bundles"]] == ["pushed", "pushed"]
    assert sorted(p.name for p in share.iterdir()) == sorted([sealed.first.name, sealed.second.name])
    audit = estate(root, "audit-archive", "--to", str(share))
    assert audit.returncode == 0, audit.stderr
