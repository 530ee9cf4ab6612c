"""Third-party applications on endpoints (browsers, Java, PDF readers, Office, Zoom/Teams), judged like
the operating system: a fix the feed knows of left uninstalled more than 14 days (high, critical or
unrated) is overdue, and a release line past its end of support is unsupported software.

What is installed comes from the endpoints themselves: the device audit's read of the Windows
uninstall keys (devices.win.software_inventory, earlier in the same run) and dpkg on Linux. A small
data file (data/software_cpe.yaml) names each program's product in CPE terms, so the advisory feed's
`cpe` ecosystem (Feed.affecting) and eol.yaml's `cpe:` release lines (eol.product_eol) judge it.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from functools import cache
from pathlib import Path
from typing import Any

from .. import yamlread
from ..checks import make_finding
from ..findings import EvidenceRef, Finding, Severity, Status
from . import vendorver
from .advisories import Feed
from .eol import EolData, product_eol
from .patch_eval import HIGH_CVSS, WINDOW_DAYS

MAPPING_FILE = Path(__file__).resolve().parent / "data" / "software_cpe.yaml"


@dataclass(frozen=True)
class Program:
    name: str          # as installed: DisplayName or dpkg package
    version: str       # the product's version in vendor terms
    cpe: str           # vendor:product


@dataclass(frozen=True)
class WindowsRule:
    pattern: str
    cpe: str
    name_regex: str | None = None
    version: str | None = None


@cache
def mapping(path: Path = MAPPING_FILE) -> tuple[tuple[WindowsRule, ...], dict[str, str]]:
    data = yamlread.safe_load(path.read_text())
    return tuple(WindowsRule(**r) for r in data.get("windows") or []), dict(data.get("debian") or {})


def windows_program(name: str, display_version: str, path: Path = MAPPING_FILE) -> Program | None:
    rules, _ = mapping(path)
    for r in rules:
        if not fnmatch.fnmatchcase(name.lower(), r.pattern.lower()):
            continue
        version = display_version
        if r.name_regex and r.version:
            m = re.search(r.name_regex, name)
            if not m:
                continue
            version = r.version.format(*m.groups())
        return Program(name, version, r.cpe)
    return None


def upstream(dpkg_version: str) -> str:
    """The upstream part of a dpkg version: epoch and Debian revision removed (1:120.0-1 -> 120.0)."""
    v = dpkg_version.split(":", 1)[-1]
    return v.rsplit("-", 1)[0] if "-" in v else v


def debian_programs(packages: Mapping[str, str], path: Path = MAPPING_FILE) -> list[Program]:
    _, debian = mapping(path)
    return [Program(p, upstream(v), debian[p]) for p, v in sorted(packages.items()) if p in debian]


def _versioned(version: str) -> bool:
    try:
        vendorver.key(version)
    except vendorver.VersionError:
        return False
    return True


def program_findings(host: str, programs: Iterable[Program], feed: Feed | None, eol: EolData, today: date, *,
                     evidence: list[EvidenceRef] | None = None, site: str | None = None) -> list[Finding]:
    asset = f"host:{host}"
    out: list[Finding] = []
    for p in programs:
        common: dict[str, Any] = {"evidence": evidence or [], "site": site}
        base = {"program": p.name, "version": p.version, "cpe": p.cpe, "third_party": True}
        if not _versioned(p.version):
            out.append(make_finding("patch.security_update_overdue", asset, Status.NOT_ASSESSED, key=p.cpe,
                                    observed=f"{p.name}: no version to match ({p.version!r})",
                                    expected="a version the advisory feed can be matched against",
                                    details=base, **common))
            continue
        life = product_eol(eol, p.cpe, p.version)
        if life is not None and life[1] < today:
            out.append(make_finding("patch.unsupported_software", asset, Status.FAIL, key=p.cpe,
                                    observed=f"{p.name} {p.version}: {life[0]} end of support {life[1].isoformat()}",
                                    expected="a release still supported by its vendor",
                                    details={**base, "eol": life[1].isoformat(), "release": life[0]}, **common))
        if feed is None:
            continue
        for a in feed.affecting(p.cpe, p.version):
            days = (today - a.released).days
            score = a.score
            severe = score is None or score >= HIGH_CVSS      # unrated counts as high (CE)
            overdue = severe and days > WINDOW_DAYS
            due = (a.released + timedelta(days=WINDOW_DAYS)).isoformat()
            details = {**base, "advisory": a.id, "cve": a.cve, "fixed_version": a.fixed_version,
                       "released": a.released.isoformat(), "days_available": days, "due": due,
                       "cvss_score": score, "rated": score is not None, "feed_date": feed.feed_date.isoformat()}
            observed = (f"{p.name} {p.version} installed; {p.cpe} {a.fixed_version} fixes "
                        f"{', '.join(a.cve) or a.id}, released {a.released.isoformat()} ({days} day(s) ago)")
            if overdue:
                out.append(make_finding("patch.security_update_overdue", asset, Status.FAIL, key=f"{p.cpe}:{a.id}",
                                        observed=observed, cvss_vector=a.cvss_vector, details=details,
                                        expected=f"high, critical and unrated fixes installed within {WINDOW_DAYS} "
                                                 "days", severity=None if a.cvss_vector else Severity.HIGH, **common))
            else:
                f = make_finding("patch.security_update_pending", asset, Status.PASS, key=f"{p.cpe}:{a.id}",
                                 observed=observed, expected=f"installed by {due}", cvss_vector=a.cvss_vector,
                                 details={**details, "pending": True}, **common)
                f.severity = Severity.from_cvss(score) if score is not None else Severity.HIGH
                out.append(f)
    return out


def windows_third_party(device_findings: Iterable[Finding], feed: Feed | None, eol: EolData,
                        today: date) -> list[Finding]:
    """From the device audit's software inventory (devices.win.software_inventory details.software)."""
    out: list[Finding] = []
    for d in device_findings:
        if d.check_id != "devices.win.software_inventory":
            continue
        programs = []
        for s in d.details.get("software") or []:
            p = windows_program(str(s.get("name") or ""), str(s.get("version") or ""))
            if p is not None:
                programs.append(p)
        out += program_findings(d.asset.removeprefix("host:"), programs, feed, eol, today, evidence=d.evidence,
                                site=d.site)
    return out
