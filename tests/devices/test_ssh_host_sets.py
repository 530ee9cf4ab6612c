"""SSH lab host sets side by side on one machine: each belongs to the run that built it, a second set
takes other namespaces and address blocks, removing one leaves the other answering, and a set whose
owner was killed is removed by the next run that builds one (security_checks/lab/ssh_host.py)."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from security_checks.procs import pid_alive

from .conftest import REPO

pytestmark = [pytest.mark.root, pytest.mark.slow]

# Another process owning a set: it prints its hosts, then holds them until a line on stdin (or a kill).
OWNER = """
import json, sys
from dataclasses import asdict
from pathlib import Path
from security_checks.lab.ssh_host import ssh_hosts
with ssh_hosts(Path(sys.argv[1]), int(sys.argv[2])) as hosts:
    print(json.dumps([asdict(h) for h in hosts]), flush=True)
    sys.stdin.readline()
"""


@pytest.fixture(autouse=True)
def _root() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root: network namespaces, mounts and sshd")


class Owner:
    def __init__(self, home: Path, count: int) -> None:
        self.proc = subprocess.Popen([sys.executable, "-c", OWNER, str(home), str(count)], cwd=REPO, text=True,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     env={**os.environ, "PYTHONPATH": str(REPO)})
        assert self.proc.stdout and self.proc.stdin
        line = self.proc.stdout.readline()
        assert line, self.proc.stderr.read() if self.proc.stderr else ""
        self.hosts: list[dict[str, str]] = json.loads(line)

    def release(self) -> None:
        """The owner's block ends: it removes its own set."""
        _, err = self.proc.communicate("\n", timeout=120)
        assert self.proc.returncode == 0, err

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.communicate(timeout=30)


def answers(address: str) -> bool:
    """Whether an sshd sends its banner on address:22 now."""
    try:
        with socket.create_connection((address, 22), timeout=3) as s:
            return s.recv(64).startswith(b"SSH-")
    except OSError:
        return False


def namespaces() -> set[str]:
    out = subprocess.run(["ip", "-j", "netns", "list"], capture_output=True, text=True, check=True).stdout
    return {ns["name"] for ns in json.loads(out or "[]")}


def links() -> set[str]:
    out = subprocess.run(["ip", "-j", "link", "show"], capture_output=True, text=True, check=True).stdout
    return {li["ifname"] for li in json.loads(out)}


def mounted(path: str) -> bool:
    with open("/proc/self/mounts") as fh:
        return any(line.split()[1] == path for line in fh)


def recorded(home: Path) -> bool:
    from security_checks.lab.ssh_host import REGISTRY

    return any(str(home.resolve()) in p.read_text() for p in REGISTRY.glob("*.json"))


def test_a_second_set_takes_its_own_slots_and_removing_it_leaves_the_first(tmp_path: Path) -> None:
    from security_checks.lab.ssh_host import ssh_hosts

    with ssh_hosts(tmp_path / "a", 1) as (a,):
        assert answers(a.address) and recorded(tmp_path / "a")
        b = Owner(tmp_path / "b", 2)   # built while A is up, its clean-up run while A's owner lives
        b_netns = {h["netns"] for h in b.hosts}
        assert a.netns not in b_netns and len(b_netns) == 2
        assert a.address not in {h["address"] for h in b.hosts}
        assert a.controller not in {h["controller"] for h in b.hosts}
        assert all(answers(h["address"]) for h in b.hosts)
        assert answers(a.address)

        b.release()
        assert not b_netns & namespaces()
        assert not {f"essh{n.removeprefix('essh-')}r" for n in b_netns} & links()
        assert not any(mounted(h["root"]) for h in b.hosts)
        assert not (tmp_path / "b" / "lab" / "ssh").exists() and not recorded(tmp_path / "b")
        assert a.netns in namespaces() and mounted(a.root)
        assert answers(a.address)
    assert a.netns not in namespaces() and not mounted(a.root) and not recorded(tmp_path / "a")


def test_a_set_whose_owner_was_killed_is_removed_by_the_next_run(tmp_path: Path) -> None:
    from security_checks.lab.ssh_host import ssh_hosts

    dead = Owner(tmp_path / "dead", 1)
    (gone,) = dead.hosts
    dead.kill()
    # What the killed run left: its namespace, its sshd, its mounted root.
    assert gone["netns"] in namespaces() and mounted(gone["root"]) and pid_alive(int(gone["pid"]))

    with ssh_hosts(tmp_path / "next", 1) as (nxt,):
        # Its slot is free again, so the new set may have taken the same number: never the same sshd.
        assert gone["netns"] not in namespaces() - {nxt.netns}
        assert not mounted(gone["root"]) and not pid_alive(int(gone["pid"]))
        assert not (tmp_path / "dead" / "lab" / "ssh").exists() and not recorded(tmp_path / "dead")
        assert answers(nxt.address)


def test_a_home_whose_set_is_held_is_refused_not_taken_over(tmp_path: Path) -> None:
    from security_checks.lab.build import LabError
    from security_checks.lab.ssh_host import chroot_roots, ssh_hosts

    # The same process as a second owner: flock locks of two open files exclude each other.
    with chroot_roots(tmp_path, 1) as (held,):
        refused = f"the SSH lab hosts of {tmp_path.resolve()} are in use by another run (pid {os.getpid()})"
        with pytest.raises(LabError, match=re.escape(refused)), ssh_hosts(tmp_path, 1):
            pass
        assert mounted(held.root)
    assert not mounted(held.root) and not recorded(tmp_path)


def test_an_address_block_in_use_on_the_machine_is_never_taken(tmp_path: Path) -> None:
    """A 198.18.N.0/30 the root namespace already has an address in (here a veth of the test's own)
    would send a lab host's packets somewhere else: that slot is skipped."""
    from security_checks.lab.build import lab_lock
    from security_checks.lab.ssh_host import REGISTRY_LOCK, free_slots

    with lab_lock(name=REGISTRY_LOCK):
        before = free_slots()
        n = before[0]
        guard = "sshguard0"
        subprocess.run(["ip", "link", "add", guard, "type", "veth", "peer", "name", "sshguard1"], check=True)
        try:
            subprocess.run(["ip", "addr", "add", f"198.18.{n}.2/32", "dev", guard], check=True)
            after = free_slots()
        finally:
            subprocess.run(["ip", "link", "del", guard], check=True)
        assert after == [s for s in before if s != n]
