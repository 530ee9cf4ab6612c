"""The baseline over SSH, as production runs it: a lab host in its own network namespace running a real
OpenSSH server (chrooted into a Debian bookworm root), key log-in as the non-root `ansible` with sudo.
Audited, applied and patch-checked over that one connection, in file order like the chroot scenario."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
import yaml

from security_checks.findings import Status
from security_checks.jobs import DEVICES, PATCH
from security_checks.model.loader import load_estate
from security_checks.runner import Job, Runner
from security_checks.store import Store

from .conftest import REPO, copy_estate, edit_endpoints

pytestmark = [pytest.mark.root, pytest.mark.slow]
ESTATE = str(REPO / ".venv" / "bin" / "estate")


@pytest.fixture(scope="module")
def ssh_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    if os.geteuid() != 0:
        pytest.skip("needs root: network namespaces, mounts and sshd")
    from security_checks.lab.ssh_host import environment, ssh_hosts

    home = tmp_path_factory.mktemp("ssh-home")
    with ssh_hosts(home, 1) as (host,):
        estate = copy_estate(tmp_path_factory.mktemp("ssh-estate") / "estate")

        def edit(data: dict) -> None:  # type: ignore[type-arg]
            group = next(g for g in data["endpoint_groups"] if g["name"] == "linux-endpoints")
            # Only the SSH host: the chroot endpoint has its own scenario.
            group["hosts"] = [{"name": host.name, "address": host.address,
                               "connection": {"kind": "ssh", "user": "ansible"}}]

        edit_endpoints(estate, edit)
        saved = {k: os.environ.get(k) for k in environment(home)}
        os.environ.update(environment(home))
        try:
            yield {"home": home, "estate": estate, "root": Path(host.root)}
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
    assert not (home / "lab" / "ssh").exists()


def cli(lab: dict[str, Path], *args: str) -> tuple[int, dict[str, dict]]:  # type: ignore[type-arg]
    proc = subprocess.run([ESTATE, "devices", *args, "--estate", str(lab["estate"]), "--home", str(lab["home"]),
                           "--format", "json"], capture_output=True, text=True, timeout=900)
    assert proc.stdout, proc.stderr
    out = json.loads(proc.stdout)
    return proc.returncode, {f["check_id"]: f for f in out["findings"] if f["asset"] == "host:lab-ssh-01"}


def test_0_a_host_whose_key_is_not_known_is_refused_not_trusted(ssh_lab: dict[str, Path]) -> None:
    """ansible.cfg keeps host key checking on, as ansible-playbook honours it; ansible-runner turns it off
    unless told. Against a known_hosts without the host's key the audit reaches nothing, says why, adds
    no key, and does not wait on a prompt (ansible-runner gives ansible-playbook a terminal to ask on)."""
    empty = ssh_lab["home"] / "known_hosts-without-the-host"
    empty.write_text("")
    env = {**os.environ, "ANSIBLE_SSH_COMMON_ARGS": f"-o UserKnownHostsFile={empty} -o IdentitiesOnly=yes",
           # No ControlPersist: a connection another run left open would skip the key check altogether.
           "ANSIBLE_SSH_ARGS": "-C"}
    proc = subprocess.run([ESTATE, "devices", "audit", "--estate", str(ssh_lab["estate"]), "--home",
                           str(ssh_lab["home"]), "--format", "json"], capture_output=True, text=True, timeout=300,
                          env=env)
    assert proc.stdout, proc.stderr
    f = {x["check_id"]: x for x in json.loads(proc.stdout)["findings"] if x["asset"] == "host:lab-ssh-01"}
    assert set(f) == {"devices.unreachable"}, sorted(f)
    assert "Host key verification failed" in f["devices.unreachable"]["observed"]
    assert empty.read_text() == ""


def test_1_audit_over_ssh_finds_the_planted_drift(ssh_lab: dict[str, Path]) -> None:
    rc, f = cli(ssh_lab, "audit")
    assert rc == 1
    assert "devices.unreachable" not in f
    assert f["devices.linux.ssh"]["status"] == "fail" and "PermitRootLogin yes" in f["devices.linux.ssh"]["observed"]
    assert f["devices.linux.sudoers"]["status"] == "fail" and "mallory" in f["devices.linux.sudoers"]["observed"]
    assert f["devices.linux.package_inventory"]["status"] == "pass"
    assert "PermitRootLogin yes" in (ssh_lab["root"] / "etc" / "ssh" / "sshd_config").read_text()


def test_2_apply_over_ssh_fixes_it_and_keeps_the_way_in(ssh_lab: dict[str, Path]) -> None:
    rc, f = cli(ssh_lab, "apply")
    assert rc == 0, {k: v["observed"] for k, v in f.items() if v["status"] != "pass"}
    assert f["devices.linux.ssh"]["details"]["verified"] is True     # read back by the audit after the apply
    sshd = (ssh_lab["root"] / "etc" / "ssh" / "sshd_config").read_text()
    assert "PermitRootLogin no" in sshd and "PasswordAuthentication no" in sshd
    group = (ssh_lab["root"] / "etc" / "group").read_text()
    assert "sudo:x:27:ansible\n" in group                              # mallory out, the connection user kept
    rc, f = cli(ssh_lab, "audit")                                       # the reloaded sshd still lets Ansible in
    failing = {k for k, v in f.items() if v["status"] != "pass"}
    assert failing == {"devices.linux.disk_encryption", "devices.linux.antimalware"}, failing


def test_3_pending_updates_read_over_the_same_connection(ssh_lab: dict[str, Path]) -> None:
    job = Job("assess", (DEVICES, PATCH), "device audit then patch, over SSH")
    out = Runner(load_estate(ssh_lab["estate"]), ssh_lab["home"], today=date.today()).run(job)
    mine = [x for x in out.findings if x.asset == "host:lab-ssh-01" and x.check_id.startswith("patch.")]
    assert mine and not [x for x in mine if x.key == "patch-state"]   # read, not "not read"
    assert any(x.check_id in ("patch.up_to_date", "patch.security_update_pending", "patch.security_update_overdue")
               for x in mine)
    unsupported = next(x for x in mine if x.check_id == "patch.unsupported_software")
    assert unsupported.status is Status.PASS                            # telnet was removed by the apply
    with Store(ssh_lab["home"]) as store:
        files = {e.path for e in store.evidence_files(out.run.id)}
    assert {"patch/lab-ssh-01/dpkg-query.txt", "patch/lab-ssh-01/apt-get-simulate.txt"} <= files


def test_4_the_estate_declares_only_ssh_no_lab_path() -> None:
    data = yaml.safe_load((REPO / "inventory" / "demo" / "endpoints.yaml").read_text())
    assert all("198.18." not in json.dumps(g) for g in data["endpoint_groups"])
