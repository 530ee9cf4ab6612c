"""What the Linux audit reads over its connection for the patch step (devices.linux.package_inventory),
replayed from a recorded event of an SSH host, parsed as the patch step parses it."""

from __future__ import annotations

from datetime import date

from security_checks.compliance.apt_host import from_outputs, release_dates_from_text
from security_checks.devices.results import findings_from_events
from security_checks.findings import Status

DPKG = "ii |bash|5.2.15-2+b7\nii |openssl|3.0.15-1~deb12u1\nrc |telnet|0.17+2.4-2\nii |zoom|6.1.11.1545\n"
SIMULATION = ("Reading package lists...\nInst openssl [3.0.15-1~deb12u1] (3.0.17-1~deb12u2 Debian-Security:12/"
              "stable-security [amd64])\nConf openssl (3.0.17-1~deb12u2 Debian-Security:12/stable-security [amd64])\n")
RELEASES = ("Origin: Debian\nLabel: Debian-Security\nSuite: stable-security\nCodename: bookworm-security\n"
            "Date: Sat, 01 Nov 2026 10:00:00 UTC\n\nOrigin: Debian\nLabel: Debian\nSuite: stable\n"
            "Date: Sat, 08 Nov 2025 09:00:00 UTC\n")


def test_the_read_over_ssh_becomes_the_patch_steps_host_packages() -> None:
    event = {"event": "runner_on_ok", "event_data": {
        "host": "lab-ssh-01", "task": "Report the package inventory",
        "task_path": "/runner/project/playbooks/roles/linux_baseline/tasks/package_inventory.yml:42",
        "res": {"changed": False, "msg": {
            "estate_report": "devices.linux.package_inventory", "compliant": True,
            "observed": "3 packages installed, 1 upgrade(s) pending", "expected": "read",
            "dpkg_query": DPKG, "apt_simulation": SIMULATION, "release_files": RELEASES}}}}
    (f,) = findings_from_events([event], apply=False)
    assert f.check_id == "devices.linux.package_inventory" and f.status is Status.PASS
    h = from_outputs("lab-ssh-01", "debian-12", f.details["dpkg_query"], f.details["apt_simulation"],
                     release_dates_from_text(f.details["release_files"]))
    assert h.packages == {"bash": "5.2.15-2+b7", "openssl": "3.0.15-1~deb12u1", "zoom": "6.1.11.1545"}
    (u,) = h.upgrades
    assert (u.package, u.candidate, u.security, u.published) == ("openssl", "3.0.17-1~deb12u2", True,
                                                                 date(2026, 11, 1))
