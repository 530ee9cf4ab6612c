"""`estate lab down` removes everything the lab made even after a crash (no state file)."""

from __future__ import annotations

import subprocess
import time

import pytest

from security_checks.lab import build

pytestmark = pytest.mark.root


def test_down_without_state_finds_leftovers_by_prefix(tmp_path):
    # `down` removes every lab namespace on the machine, by prefix: with any there (this session's
    # lab, healthy or not, or another session's), the test would pull it from under its users.
    present = build.lab_namespaces()
    if present:
        pytest.skip(f"lab namespaces exist on this machine ({len(present)}); not pulling them down")
    # What a crash mid-build leaves: a namespace with a process in it, and no state file.
    subprocess.run(["ip", "netns", "add", "est-crashtest"], check=True)
    proc = subprocess.Popen(["ip", "netns", "exec", "est-crashtest", "sleep", "300"])
    time.sleep(0.2)
    assert "est-crashtest" in build.lab_namespaces()
    out = build.down(tmp_path)
    assert "est-crashtest" in out["removed_namespaces"]
    assert "est-crashtest" not in build.lab_namespaces()
    # `sleep 300` ended within seconds: down killed it (ip netns exec may report 0 for its child).
    proc.wait(timeout=10)
