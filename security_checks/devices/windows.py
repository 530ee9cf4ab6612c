"""Judging what the Windows role reads: PowerShell reports facts, Python decides.

The role's read-only scripts return `$Ansible.Result` with `estate_facts: <control id>` and the raw
values Windows gave (registry values, group members with SIDs, Defender status before and after a
change, the build number). Deciding here rather than in PowerShell means every rule is tested on
this machine from recorded outputs of real Windows (tests/devices/fixtures), and a rule change is a
Python change with a test, not an untestable edit to a script.

Each judge returns the report shape results.py already understands: estate_report, compliant,
observed, expected, plus details.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from datetime import date
from functools import cache
from pathlib import Path
from typing import Any

from .. import yamlread

WINDOW_DAYS = 14   # Cyber Essentials: high, critical and unrated security fixes within 14 days
RELEASES_FILE = Path(__file__).resolve().parent / "data" / "windows_releases.yaml"
# What Windows Update prints when Microsoft gave no MSRC rating. Both mean "unrated".
UNRATED = {"", "unspecified", "none", "unknown"}
SEVERE = {"critical", "important"}

Report = dict[str, Any]


def rating_of(update: dict[str, Any]) -> str:
    return str(update.get("severity") or "").strip().lower()


def is_unrated(update: dict[str, Any]) -> bool:
    return rating_of(update) in UNRATED and update.get("cvss") is None and not update.get("cvss_vector")


def under_14_day_rule(update: dict[str, Any]) -> bool:
    """Cyber Essentials: critical and important fixes, and security fixes without a vendor rating."""
    return rating_of(update) in SEVERE or is_unrated(update) or float(update.get("cvss") or 0) >= 7.0


# -- updates ------------------------------------------------------------------------------------

def judge_updates(facts: dict[str, Any], today: date) -> Report:
    missing = [u for u in facts.get("missing_updates") or [] if isinstance(u, dict)]
    overdue = []
    for u in missing:
        try:
            released = date.fromisoformat(str(u.get("released")))
        except ValueError:
            released = None
        # An unknown release date cannot prove the fix is recent: counted as overdue.
        if under_14_day_rule(u) and (released is None or (today - released).days > WINDOW_DAYS):
            overdue.append(u)
    listed = ", ".join(f"{u.get('kb')} ({u.get('released')}, {u.get('severity') or 'unrated'})" for u in missing)
    observed = (f"{len(missing)} missing, {len(overdue)} under the 14-day rule and overdue: {listed}" if missing
                else "no missing security or critical updates")
    return {"estate_report": "devices.win.updates", "compliant": not overdue, "observed": observed,
            "expected": f"critical, important and unrated security updates installed within {WINDOW_DAYS} days",
            "missing_updates": missing, "overdue": [u.get("kb") for u in overdue]}


# -- LAPS ---------------------------------------------------------------------------------------

# Windows LAPS reads its policy from the first of these roots that holds any value (Microsoft:
# "Configure policy settings for Windows LAPS", supported policy roots); settings never merge.
LAPS_ROOTS = (("csp", "Windows LAPS set by Intune (LAPS CSP)"),
              ("gpo", "Windows LAPS set by Group Policy"),
              ("local", "Windows LAPS local configuration"),
              ("legacy", "legacy Microsoft LAPS (AdmPwd) Group Policy"))
BACKUP = {0: "disabled (password not backed up, so not managed)", 1: "backed up to Entra ID",
          2: "backed up to Active Directory"}


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def judge_laps(facts: dict[str, Any], today: date) -> Report:
    roots = facts.get("roots") or {}
    expected = "a Windows LAPS policy backing the password up to Entra ID or AD, or legacy LAPS enabled with its client"
    for key, label in LAPS_ROOTS:
        values = roots.get(key) or {}
        if not values:
            continue
        if key == "legacy":
            enabled = _int(values.get("AdmPwdEnabled")) == 1
            cse = bool(facts.get("legacy_cse_installed"))
            compliant = enabled and cse
            observed = (f"{label}: AdmPwdEnabled={values.get('AdmPwdEnabled', '(absent)')}, client-side extension "
                        f"{'installed' if cse else 'not installed'}")
        else:
            backup = _int(values.get("BackupDirectory"))
            compliant = backup in (1, 2)
            observed = f"{label}: BackupDirectory {backup if backup is not None else '(absent, default 0)'}: " \
                       f"{BACKUP.get(backup or 0, 'unknown value')}"
        return {"estate_report": "devices.win.laps", "compliant": compliant, "observed": observed,
                "expected": expected, "laps_policy_root": key}
    return {"estate_report": "devices.win.laps", "compliant": False, "expected": expected,
            "observed": "no LAPS policy under any of the four policy roots (CSP, Group Policy, local, legacy)"}


# -- local Administrators -----------------------------------------------------------------------

def _short_name(name: str) -> str:
    return name.rsplit("\\", 1)[-1].lower()


def _declared(member: dict[str, Any], names: list[str]) -> bool:
    full = str(member.get("name") or "").lower()
    for n in names:
        n_low = n.lower()
        if n_low in (full, str(member.get("sid", "")).lower()):
            return True
        if "\\" not in n_low and n_low == _short_name(full):
            return True
    return False


def admin_kind(member: dict[str, Any], facts: dict[str, Any]) -> str:
    """Why a member may stay without the estate naming it, or '' when nothing explains it."""
    sid = str(member.get("sid") or "")
    if fnmatch.fnmatch(sid, "S-1-5-21-*-500"):
        return "built-in Administrator (devices.win.builtin_admin and LAPS manage it)"
    if sid.startswith("S-1-12-1-"):
        # Entra ID role and group SIDs: Entra join adds Global Administrator and Azure AD Joined
        # Device Local Administrator; Intune account protection policies add more.
        return "Entra ID role or group (added by Entra join / Intune)"
    return ""


def judge_local_admins(facts: dict[str, Any], today: date) -> Report:
    members = [m for m in facts.get("members") or [] if isinstance(m, dict)]
    declared = [str(x) for x in facts.get("declared") or []]
    removable = [str(x) for x in facts.get("removable") or []]
    keep = declared + ([str(facts["connection_user"])] if facts.get("connection_user") else [])
    explained, extra, to_remove = [], [], []
    for m in members:
        label = f"{m.get('name')} ({m.get('sid')})"
        if _declared(m, keep):
            continue
        why = admin_kind(m, facts)
        if why:
            explained.append(f"{label}: {why}")
        elif _declared(m, removable):
            to_remove.append(label)
        else:
            extra.append(label)
    parts = []
    if to_remove:
        parts.append("declared removable, removed by apply: " + ", ".join(to_remove))
    if extra:
        parts.append("not declared (reported, not removed): " + ", ".join(extra))
    if explained:
        parts.append("kept: " + "; ".join(explained))
    compliant = not to_remove and not extra
    observed = ("; ".join(parts) if parts else "only the declared members")
    return {"estate_report": "devices.win.local_admins", "compliant": compliant, "observed": observed,
            "expected": "Administrators holds only the declared members (local_admins), the built-in "
                        "Administrator and Entra ID role SIDs",
            "undeclared_members": extra, "removable_members": to_remove, "members": members}


# -- Defender -----------------------------------------------------------------------------------

def _defender_ok(state: dict[str, Any], max_age: int) -> bool:
    age = _int(state.get("signature_age_days"))
    return bool(state.get("realtime")) and age is not None and age <= max_age


def judge_defender(facts: dict[str, Any], today: date) -> Report:
    max_age = _int(facts.get("max_age_days")) or 1
    before = facts.get("before") or {}
    # After an apply the script reads Defender again: only that second reading can say it is fixed,
    # since Windows ignores local changes while Tamper Protection is on.
    after = facts.get("after") or before
    ok = _defender_ok(after, max_age)
    observed = f"real-time protection: {after.get('realtime')}; signatures {after.get('signature_age_days')} day(s) old"
    if facts.get("after") and not _defender_ok(before, max_age):
        observed = (f"before: real-time {before.get('realtime')}, signatures {before.get('signature_age_days')} "
                    f"day(s); after the change, read again: " + observed)
    if not ok and after.get("tamper_protected"):
        observed += ("; Tamper Protection is on, so Windows ignores local changes: change it in Intune or the "
                     "Defender portal")
    return {"estate_report": "devices.win.defender", "compliant": ok, "observed": observed,
            "expected": f"real-time protection on; signatures at most {max_age} day(s) old",
            "tamper_protected": bool(after.get("tamper_protected"))}


# -- unsupported software -----------------------------------------------------------------------

def judge_unsupported_software(facts: dict[str, Any], today: date) -> Report:
    found = [f for f in facts.get("found") or [] if isinstance(f, dict)]
    remaining = [f for f in found if f.get("outcome") != "removed"]
    parts = [f"{f.get('name')} {f.get('version') or ''}".strip() + f": {f.get('outcome')}" for f in found]
    return {"estate_report": "devices.win.unsupported_software", "compliant": not remaining,
            "observed": "; ".join(parts) if parts else "none of the listed programs installed",
            "expected": "none of the estate's unsupported programs installed", "found": found}


# -- Windows release support (from the build) ---------------------------------------------------

@cache
def releases(path: Path = RELEASES_FILE) -> dict[str, Any]:
    data: dict[str, Any] = yamlread.safe_load(path.read_text())
    return data


ENTERPRISE = ("enterprise", "education", "iotenterprise")


def release_of(build: int) -> dict[str, Any] | None:
    for r in releases()["releases"]:
        if int(r["build"]) == build:
            return dict(r)
    return None


def release_end(build: int, edition: str) -> tuple[str, date] | None:
    r = release_of(build)
    if r is None:
        return None
    enterprise = edition.lower().replace(" ", "").startswith(ENTERPRISE)
    end = r["enterprise_end"] if enterprise and r.get("enterprise_end") else r["end"]
    return f"{r['product']} {r['version']}", end if isinstance(end, date) else date.fromisoformat(str(end))


def judge_os_support(facts: dict[str, Any], today: date) -> Report:
    build = _int(facts.get("CurrentBuild")) or 0
    edition = str(facts.get("EditionID") or "")
    esu = facts.get("esu_until")
    esu_until = date.fromisoformat(str(esu)) if esu else None
    expected = "a Windows release (feature update) still receiving security updates"
    found = release_end(build, edition)
    shown = f"build {build}.{facts.get('UBR', '?')} {edition} ({facts.get('DisplayVersion') or 'no version'})"
    if found is None:
        return {"estate_report": "devices.win.os_support", "compliant": False, "expected": expected,
                "observed": f"{shown}: not a release in {RELEASES_FILE.name}; support cannot be shown"}
    name, end = found
    if today <= end:
        return {"estate_report": "devices.win.os_support", "compliant": True, "expected": expected,
                "observed": f"{name} {edition}: security updates until {end.isoformat()} ({shown})",
                "release": name, "end_of_support": end.isoformat()}
    if esu_until and today <= esu_until:
        return {"estate_report": "devices.win.os_support", "compliant": True, "expected": expected,
                "observed": f"{name}: past end of support {end.isoformat()}; Extended Security Updates bought "
                            f"until {esu_until.isoformat()} ({shown})",
                "release": name, "end_of_support": end.isoformat(), "esu_until": esu_until.isoformat()}
    return {"estate_report": "devices.win.os_support", "compliant": False, "expected": expected,
            "observed": f"{name} {edition}: end of support {end.isoformat()}"
                        + (f", Extended Security Updates ended {esu_until.isoformat()}" if esu_until else "")
                        + f" ({shown})",
            "release": name, "end_of_support": end.isoformat()}


# -- installed software (third-party applications) ---------------------------------------------

def judge_software_inventory(facts: dict[str, Any], today: date) -> Report:
    software = [s for s in facts.get("software") or [] if isinstance(s, dict) and s.get("name")]
    return {"estate_report": "devices.win.software_inventory", "compliant": bool(software),
            "observed": f"{len(software)} installed program(s) read from the uninstall keys" if software
            else "no installed programs could be read",
            "expected": "the installed programs and their versions are read",
            "software": software}


JUDGES: dict[str, Callable[[dict[str, Any], date], Report]] = {
    "devices.win.updates": judge_updates,
    "devices.win.laps": judge_laps,
    "devices.win.local_admins": judge_local_admins,
    "devices.win.defender": judge_defender,
    "devices.win.unsupported_software": judge_unsupported_software,
    "devices.win.os_support": judge_os_support,
    "devices.win.software_inventory": judge_software_inventory,
}


def judge(facts: dict[str, Any], today: date | None = None) -> Report | None:
    fn = JUDGES.get(str(facts.get("estate_facts")))
    return fn(facts, today or date.today()) if fn else None
