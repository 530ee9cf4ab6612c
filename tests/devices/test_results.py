"""Runner events into findings: a recorded Windows audit replayed, secrets scrubbed, diffs described."""

from __future__ import annotations

import json
from pathlib import Path

from security_checks.devices.results import describe_diff, findings_from_events
from security_checks.devices.scrub import MASK, Scrubber
from security_checks.findings import Status

FIXTURE = Path(__file__).parent / "fixtures" / "windows_standin_audit_events.json"


def test_windows_audit_replayed_from_events_standing_in_for_a_windows_host() -> None:
    events = json.loads(FIXTURE.read_text())["events"]
    findings = findings_from_events(events, apply=False, sites={"win-ws-0142": "central-library"})
    f = {x.check_id: x for x in findings if x.asset == "host:win-ws-0142"}
    assert set(f) == {"devices.win.updates", "devices.win.firewall", "devices.win.autorun", "devices.win.screen_lock",
                      "devices.win.lockout", "devices.win.local_admins", "devices.win.builtin_admin",
                      "devices.win.laps", "devices.win.bitlocker", "devices.win.defender",
                      "devices.win.unsupported_software"}
    updates = f["devices.win.updates"]
    assert updates.status is Status.FAIL
    assert updates.details["missing_updates"][0] == {
        "kb": "KB5048685", "released": "2024-12-10", "severity": "Critical",
        "title": "2024-12 Cumulative Update for Windows 11 Version 23H2 for x64-based Systems (KB5048685)"}
    assert f["devices.win.firewall"].status is Status.FAIL
    assert "Public={'enabled': False" in f["devices.win.firewall"].observed
    assert "dword:00000091" in f["devices.win.autorun"].observed
    assert "dword:000000ff" in f["devices.win.autorun"].expected
    assert f["devices.win.screen_lock"].status is Status.PASS
    assert f["devices.win.lockout"].status is Status.FAIL
    assert (f["devices.win.lockout"].observed, f["devices.win.lockout"].expected) == (
        "LockoutBadCount = 0", "LockoutBadCount = 10")
    assert "helpdesk-temp" in f["devices.win.local_admins"].observed
    assert "helpdesk-temp" not in f["devices.win.local_admins"].expected
    assert f["devices.win.builtin_admin"].status is Status.PASS
    assert f["devices.win.laps"].status is Status.PASS
    assert f["devices.win.bitlocker"].status is Status.FAIL
    assert "EncryptionInProgress" in f["devices.win.bitlocker"].observed
    assert f["devices.win.defender"].status is Status.FAIL and "6 day(s)" in f["devices.win.defender"].observed
    assert f["devices.win.unsupported_software"].status is Status.FAIL
    assert f["devices.win.unsupported_software"].observed == "present: Java 8 Update 351 8.0.3510.10"
    assert updates.site == "central-library" and updates.controls  # control references from the catalogue
    unreachable = [x for x in findings if x.check_id == "devices.unreachable"]
    assert [(x.asset, x.status) for x in unreachable] == [("host:win-ws-0199", Status.ERROR)]


def test_apply_mode_reports_changes_as_remediated() -> None:
    events = json.loads(FIXTURE.read_text())["events"]
    f = {x.check_id: x for x in findings_from_events(events, apply=True) if x.asset == "host:win-ws-0142"}
    assert f["devices.win.firewall"].status is Status.PASS and f["devices.win.firewall"].details["remediated"]
    assert f["devices.win.bitlocker"].status is Status.FAIL  # report-only stays a failure
    assert "remediated" not in f["devices.win.screen_lock"].details


def test_failed_task_is_an_error_finding() -> None:
    events = [{"event": "runner_on_failed", "event_data": {
        "host": "h1", "task": "Write the hardened sshd configuration",
        "task_path": "/x/playbooks/roles/linux_baseline/tasks/ssh.yml:3",
        "res": {"msg": "failed to validate", "failed": True}}}]
    (f,) = findings_from_events(events, apply=False)
    assert f.check_id == "devices.linux.ssh" and f.status is Status.ERROR and "failed to validate" in f.observed


def test_scrubber_removes_password_env_values_and_secret_keys() -> None:
    scrub = Scrubber(["ESTATE_WINRM_PASSWORD"], environ={"ESTATE_WINRM_PASSWORD": "Hunter2-xyz"})
    event = {"event_data": {"res": {"msg": "auth failed for svc with Hunter2-xyz", "ansible_password": "other",
                                    "nested": [{"api_token": "abc", "ok": "fine"}], "passed": True}}}
    clean = scrub(event)
    text = json.dumps(clean)
    assert "Hunter2-xyz" not in text and "other" not in text and "abc" not in text
    assert clean["event_data"]["res"]["ansible_password"] == MASK
    assert clean["event_data"]["res"]["nested"][0]["ok"] == "fine"
    assert clean["event_data"]["res"]["passed"] is True


def test_scrubber_names_this_machines_directories_longest_first(tmp_path: Path) -> None:
    from security_checks.devices.controls import control_for
    from security_checks.playbook_run import PLAYBOOKS

    home, private = tmp_path / "state", tmp_path / "state" / "tmp" / "devices-audit-1"
    local = Scrubber([]).naming({PLAYBOOKS: "playbooks", PLAYBOOKS.parent: "<repo>", private: "<runner>",
                                 home: "<state>"})
    event = {"event_data": {"task_path": f"{PLAYBOOKS}/roles/linux_baseline/tasks/ssh.yml:3",
                            "stderr": f"{PLAYBOOKS.parent}/collections/ansible_collections/x.py failed",
                            "remote_addr": f"{home}/lab/chroots/debian-01", "res": {"msg": f"in {private}/project",
                                                                                   "rc": 0, "lines": [str(home)]}}}
    clean = local(event)
    assert clean["event_data"]["task_path"] == "playbooks/roles/linux_baseline/tasks/ssh.yml:3"
    assert clean["event_data"]["remote_addr"] == "<state>/lab/chroots/debian-01"
    assert clean["event_data"]["stderr"] == "<repo>/collections/ansible_collections/x.py failed"
    assert clean["event_data"]["res"] == {"msg": "in <runner>/project", "rc": 0, "lines": ["<state>"]}
    assert str(tmp_path) not in json.dumps(clean)
    # whole path names only
    assert local(f"{home}-old and /x{home}") == f"{home}-old and /x{home}"
    # the control mapping reads the cited task file whatever its prefix
    assert control_for(clean["event_data"]["task_path"]) == "devices.linux.ssh"


def test_diff_description_names_only_the_lines_that_differ() -> None:
    obs, exp = describe_diff({"before": "# c\nA 1\nB 2\n", "after": "# d\nA 1\nB 3\n", "before_header": "/etc/x"})
    assert (obs, exp) == ("/etc/x: B 2", "/etc/x: B 3")
    obs, exp = describe_diff({"prepared": "The following packages will be REMOVED:\n  telnet\n0 upgraded"})
    assert (obs, exp) == ("installed: telnet", "not installed: telnet")


def test_a_killed_runs_private_data_is_removed_but_a_live_one_kept(tmp_path: Path) -> None:
    import os
    import subprocess

    from security_checks.devices.runner import remove_stale_private_dirs

    gone = subprocess.Popen(["true"])
    gone.wait()
    stale = tmp_path / f"devices-runner-{gone.pid}-abc"
    (stale / "artifacts" / "x").mkdir(parents=True)
    (stale / "artifacts" / "x" / "command").write_text('{"env": {"ESTATE_WINRM_PASSWORD": "s"}}')
    live = tmp_path / f"devices-runner-{os.getpid()}-def"
    live.mkdir()
    assert remove_stale_private_dirs(tmp_path) == [stale]
    assert not stale.exists() and live.exists()
