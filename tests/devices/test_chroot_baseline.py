"""The baseline against a real Debian bookworm endpoint (debootstrap chroot, community.general.chroot).

One ordered scenario, as an engineer would run it: audit finds the planted drift, apply fixes it,
a second apply changes nothing, a second audit is clean. Each step is its own test so a failure
names the step; they share the session's endpoint and run in file order.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from security_checks.store import Store

from .conftest import LAB_SECRET, REPO

pytestmark = [pytest.mark.root, pytest.mark.slow]
ESTATE = str(REPO / ".venv" / "bin" / "estate")
LINUX_CONTROLS = {"devices.linux.unattended_upgrades", "devices.linux.firewall", "devices.linux.ssh",
                  "devices.linux.automount", "devices.linux.faillock", "devices.linux.sudoers",
                  "devices.linux.disk_encryption", "devices.linux.antimalware", "devices.linux.unsupported_software",
                  "devices.linux.package_inventory"}
REPORT_ONLY = {"devices.linux.disk_encryption", "devices.linux.antimalware"}
READ_ONLY = {"devices.linux.package_inventory"}   # reads for the patch step; passes whenever it reads


def run_cli(lab: dict[str, Path], *args: str) -> tuple[int, dict]:  # type: ignore[type-arg]
    proc = subprocess.run([ESTATE, "devices", *args, "--estate", str(lab["estate"]), "--home", str(lab["home"]),
                           "--format", "json"], capture_output=True, text=True, timeout=900)
    assert proc.stdout, proc.stderr
    return proc.returncode, json.loads(proc.stdout)


def installed(root: Path, package: str) -> bool:
    proc = subprocess.run(["chroot", str(root), "dpkg-query", "-W", "-f=${Status}", package],
                          capture_output=True, text=True)
    return proc.returncode == 0 and proc.stdout.endswith(" installed")


def by_check(out: dict, host: str = "lab-debian-01") -> dict[str, dict]:  # type: ignore[type-arg]
    return {f["check_id"]: f for f in out["findings"] if f["asset"] == f"host:{host}"}


def test_1_audit_finds_the_planted_drift_and_changes_nothing(lab: dict[str, Path]) -> None:
    root = lab["home"] / "lab" / "chroots" / "debian-01"
    before = (root / "etc" / "ssh" / "sshd_config").read_text()
    rc, out = run_cli(lab, "audit")
    assert rc == 1
    f = by_check(out)
    assert set(f) == LINUX_CONTROLS
    assert f["devices.linux.ssh"]["status"] == "fail"
    assert "PermitRootLogin yes" in f["devices.linux.ssh"]["observed"]
    assert "PermitRootLogin no" in f["devices.linux.ssh"]["expected"]
    assert f["devices.linux.sudoers"]["status"] == "fail"
    assert "ansible,mallory" in f["devices.linux.sudoers"]["observed"]
    assert "mallory" not in f["devices.linux.sudoers"]["expected"]
    assert f["devices.linux.unsupported_software"]["observed"] == "installed: telnet"
    assert "not installed: unattended-upgrades" in f["devices.linux.unattended_upgrades"]["observed"]
    assert f["devices.linux.firewall"]["status"] == "fail" and "policy drop" in f["devices.linux.firewall"]["expected"]
    assert f["devices.linux.faillock"]["status"] == "fail"
    for check in REPORT_ONLY:
        assert f[check]["status"] == "fail"
    # check mode really changed nothing
    assert (root / "etc" / "ssh" / "sshd_config").read_text() == before
    assert installed(root, "telnet") and not installed(root, "unattended-upgrades")
    # the unreachable host is a finding, not a crash
    unreachable = [x for x in out["findings"] if x["check_id"] == "devices.unreachable"]
    assert [x["asset"] for x in unreachable] == ["host:lab-unreachable"]
    assert unreachable[0]["status"] == "error"
    # stored as a devices-audit run with scrubbed runner events as evidence
    with Store(lab["home"]) as store:
        run = store.get_run(out["run"])
        assert run is not None and run.kind == "devices-audit"
        evidence = store.evidence_dir(run.id)
    events = (evidence / "devices" / "audit-events.jsonl").read_text()
    assert "PermitRootLogin yes" in events
    # tasks cited by their place in the repository, not this machine's checkout or state directory
    assert '"task_path": "playbooks/roles/linux_baseline/tasks/' in events
    assert str(REPO) not in events and str(lab["home"].resolve()) not in events
    everything = b"".join(p.read_bytes() for p in evidence.rglob("*") if p.is_file())
    everything += (lab["home"] / "estate.db").read_bytes()
    assert LAB_SECRET.encode() not in everything
    assert not list((lab["home"] / "tmp").iterdir()), "the runner's private data (env, command) must not remain"
    store.close()


def test_2_apply_fixes_it(lab: dict[str, Path]) -> None:
    rc, out = run_cli(lab, "apply", "--limit", "lab-debian-01")
    assert rc == 0, out["summary"]
    f = by_check(out)
    for check in LINUX_CONTROLS - REPORT_ONLY - READ_ONLY:
        assert f[check]["status"] == "pass", (check, f[check]["observed"])
        assert f[check]["details"].get("remediated"), check
    root = lab["home"] / "lab" / "chroots" / "debian-01"
    sshd = (root / "etc" / "ssh" / "sshd_config").read_text()
    assert "PermitRootLogin no" in sshd and "PermitRootLogin yes" not in sshd
    group = (root / "etc" / "group").read_text()
    assert "sudo:x:27:ansible\n" in group
    assert not installed(root, "telnet") and installed(root, "unattended-upgrades")
    assert "pam_faillock.so" in (root / "etc" / "pam.d" / "common-auth").read_text()
    # sshd accepts what was written (validated before writing, and again here)
    subprocess.run(["chroot", str(root), "/usr/sbin/sshd", "-t"], check=True)
    assert Store(lab["home"]).get_run(out["run"]).kind == "devices-apply"  # type: ignore[union-attr]


def test_3_second_apply_changes_nothing(lab: dict[str, Path]) -> None:
    rc, out = run_cli(lab, "apply", "--limit", "lab-debian-01")
    assert rc == 0
    f = by_check(out)
    assert set(f) == LINUX_CONTROLS
    assert not [c for c, x in f.items() if x["details"].get("remediated")]


def test_4_second_audit_is_clean(lab: dict[str, Path]) -> None:
    rc, out = run_cli(lab, "audit", "--limit", "lab-debian-01")
    assert rc == 1  # the report-only controls still fail (no disk encryption, no anti-malware)
    f = by_check(out)
    assert {c for c, x in f.items() if x["status"] == "pass"} == LINUX_CONTROLS - REPORT_ONLY
    assert {c for c, x in f.items() if x["status"] == "fail"} == REPORT_ONLY


def test_5_assess_step_audits_the_reachable_endpoints(lab: dict[str, Path]) -> None:
    from security_checks.jobs import DEVICES
    from security_checks.model.loader import load_estate
    from security_checks.runner import Job, Runner

    loaded = load_estate(lab["estate"])
    out = Runner(loaded, lab["home"]).run(Job("assess", (DEVICES,), "devices only"))
    found = {(f.check_id, f.asset, f.status.value) for f in out.findings}
    [step] = out.run.steps
    assert step["status"] == "ran" and "2 host(s)" in step["summary"]
    assert ("devices.linux.ssh", "host:lab-debian-01", "pass") in found
    assert ("devices.unreachable", "host:lab-unreachable", "error") in found
