"""What a first real Windows 11 run gets wrong, each case replayed from recorded script outputs
(tests/devices/fixtures/windows11_recorded_cases.json, standing in for Windows hosts) and judged by the
same code a real run uses: results.py, windows.py and the patch step's 14-day rule."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import yaml

from security_checks.compliance.patch import windows_findings
from security_checks.devices.results import findings_from_events, verify_apply
from security_checks.findings import Finding, Status

FIXTURE = Path(__file__).parent / "fixtures" / "windows11_recorded_cases.json"
ROLE = Path(__file__).resolve().parents[2] / "playbooks" / "roles" / "windows_baseline"
RECORDED = json.loads(FIXTURE.read_text())
TODAY = date.fromisoformat(RECORDED["today"])


def _by(findings: list[Finding]) -> dict[tuple[str, str], Finding]:
    return {(f.asset.removeprefix("host:"), f.check_id): f for f in findings}


def audit() -> dict[tuple[str, str], Finding]:
    return _by(findings_from_events(RECORDED["audit"], apply=False, today=TODAY))


def test_unrated_updates_both_labels_fall_under_the_14_day_rule_standing_in_for_windows() -> None:
    f = audit()[("win-ws-0210", "devices.win.updates")]
    assert f.status is Status.FAIL
    assert f.details["overdue"] == ["KB5044284", "KB5046633"]   # "Unspecified" and "" alike; Moderate is not
    patch = {x.key: x for x in windows_findings([f], TODAY)}
    assert patch["KB5044284"].check_id == "patch.security_update_overdue"      # "Unspecified", 62 days
    assert patch["KB5046633"].check_id == "patch.security_update_overdue"      # "", 43 days
    assert "rated unrated" in patch["KB5044284"].observed
    assert patch["KB5062553"].check_id == "patch.security_update_pending"      # Critical, 7 days: not yet due
    assert patch["KB5050009"].check_id == "patch.security_update_pending"      # Moderate: not under the rule


def test_unrated_update_inside_14_days_is_pending_not_overdue() -> None:
    device = audit()[("win-ws-0210", "devices.win.updates")]
    later = windows_findings([device], date(2026, 10, 10))   # KB5044284 then 9 days old
    (u,) = [x for x in later if x.key == "KB5044284"]
    assert u.check_id == "patch.security_update_pending"


def test_windows_laps_set_by_intune_passes_and_an_empty_legacy_policy_fails() -> None:
    f = audit()
    intune = f[("win-ws-0210", "devices.win.laps")]
    assert intune.status is Status.PASS and "Intune (LAPS CSP)" in intune.observed
    assert "Entra ID" in intune.observed
    legacy = f[("win-ws-0211", "devices.win.laps")]
    assert legacy.status is Status.FAIL                     # key and client present, policy not enabled
    assert "AdmPwdEnabled=0" in legacy.observed


def test_intune_managed_administrators_keep_builtin_and_entra_sids_and_report_the_rest() -> None:
    f = audit()[("win-ws-0210", "devices.win.local_admins")]
    assert f.status is Status.FAIL
    assert f.details["undeclared_members"] == [
        "WIN-WS-0210\\helpdesk-temp (S-1-5-21-3623811015-3361044348-30300820-1004)"]
    assert f.details["removable_members"] == [
        "WIN-WS-0210\\old-admin (S-1-5-21-3623811015-3361044348-30300820-1003)"]
    assert "Entra ID role" in f.observed and "built-in Administrator" in f.observed
    assert "svc-ansible" not in f.observed                  # the connection account is kept silently


def test_the_role_removes_only_declared_removable_members() -> None:
    tasks = yaml.safe_load((ROLE / "tasks" / "local_admins.yml").read_text())
    memberships = [t["ansible.windows.win_group_membership"] for t in tasks
                   if "ansible.windows.win_group_membership" in t]
    assert memberships and all(m["state"] == "absent" for m in memberships)
    assert all("removable" in m["members"] for m in memberships)
    assert "pure" not in (ROLE / "tasks" / "local_admins.yml").read_text()


def test_tamper_protection_change_is_not_counted_as_fixed() -> None:
    applied = findings_from_events(RECORDED["apply"], apply=True, today=TODAY)
    defender = _by(applied)[("win-ws-0210", "devices.win.defender")]
    assert defender.status is Status.FAIL                   # changed, but the second reading is still off
    assert "Tamper Protection is on" in defender.observed
    assert not defender.details.get("remediated")


def test_after_apply_only_what_reads_compliant_counts_as_fixed() -> None:
    applied = findings_from_events(RECORDED["apply"], apply=True, today=TODAY)
    verified = findings_from_events(RECORDED["apply_verify"], apply=False, today=TODAY)
    merged = _by(verify_apply(applied, verified))
    firewall = merged[("win-ws-0210", "devices.win.firewall")]
    assert firewall.status is Status.FAIL                   # apply changed it, the audit after finds it back
    assert firewall.observed.startswith("still not compliant after apply")
    assert firewall.details["verified"] is False and "remediated" not in firewall.details
    autorun = merged[("win-ws-0210", "devices.win.autorun")]
    assert autorun.status is Status.PASS and autorun.details["remediated"] and autorun.details["verified"]


def test_software_without_a_quiet_uninstaller_is_reported_not_run() -> None:
    f = audit()[("win-ws-0210", "devices.win.unsupported_software")]
    assert f.status is Status.FAIL
    assert "Zoom (32-bit) 5.4.58891: report only: no quiet uninstaller registered" in f.observed
    script = yaml.safe_load((ROLE / "tasks" / "unsupported_software.yml").read_text())
    text = json.dumps(script)
    assert "win_package" not in text                        # no UninstallString run by product id
    assert "QuietUninstallString" in text and "WaitForExit" in text and "/qn" in text


def test_windows_11_end_of_support_is_read_from_the_build() -> None:
    f = audit()
    ended = f[("win-ws-0210", "devices.win.os_support")]
    assert ended.status is Status.FAIL                      # 23H2 Enterprise: ended 2026-11-10
    assert "Windows 11 23H2" in ended.observed and "2026-11-10" in ended.observed
    assert "Windows 10 Enterprise" not in ended.observed    # ProductName lies on Windows 11; the build does not
    current = f[("win-ws-0211", "devices.win.os_support")]
    assert current.status is Status.PASS and "Windows 11 25H2" in current.observed and "2027-10-12" in current.observed


def test_windows_10_with_esu_years_bought_is_supported_until_the_last_year_ends() -> None:
    from security_checks.devices.windows import judge

    facts: dict[str, Any] = {"estate_facts": "devices.win.os_support", "CurrentBuild": "19045", "UBR": 6456,
                             "EditionID": "Enterprise", "DisplayVersion": "22H2", "esu_until": "2026-10-13"}
    ended = judge(facts, TODAY)
    assert ended is not None and ended["compliant"] is False and "ended 2026-10-13" in ended["observed"]
    bought = judge({**facts, "esu_until": "2027-10-12"}, TODAY)
    assert bought is not None and bought["compliant"] is True


def test_installed_programs_are_carried_for_the_patch_step() -> None:
    f = audit()[("win-ws-0210", "devices.win.software_inventory")]
    assert f.status is Status.PASS
    assert {"name": "Google Chrome", "version": "120.0.6099.109", "publisher": "Google LLC"} in f.details["software"]
