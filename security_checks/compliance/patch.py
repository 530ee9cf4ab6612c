"""Patch compliance findings: the 14-day rule on Debian/Ubuntu endpoints (real apt metadata
matched offline against the advisory feed), on Windows (the device audit's update results with
release dates), unsupported operating systems and software, and the feed's own freshness.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, timedelta
from typing import Any

from ..checks import make_finding
from ..findings import EvidenceRef, Finding, Severity, Status
from ..model.schema import Estate
from .advisories import Feed
from .apt_host import HostPackages
from .eol import EolData, load_eol
from .patch_eval import HIGH_CVSS, WINDOW_DAYS, Fleet, MissingFix, evaluate

DEFAULT_FEED_MAX_AGE = 30   # days; a monthly refresh at least (Patch Tuesday cadence)


def feed_finding(feed: Feed | None, today: date, max_age_days: int = DEFAULT_FEED_MAX_AGE) -> Finding:
    if feed is None:
        # Said, never assumed: another council's feed would match the wrong packages.
        return make_finding("patch.advisory_feed_stale", "advisory-feed", Status.NOT_ASSESSED,
                            observed="no advisory feed: the estate declares none (organisation.advisory_feed) and "
                                     "none was given (--advisory-feed); installed versions were not matched against "
                                     "advisories, only pending security-archive updates were judged",
                            expected=f"the council's own advisory feed, at most {max_age_days} day(s) old")
    age = feed.age_days(today)
    status = Status.FAIL if age > max_age_days else Status.PASS
    return make_finding("patch.advisory_feed_stale", "advisory-feed", status,
                        observed=f"feed dated {feed.feed_date.isoformat()} ({age} day(s) old)",
                        expected=f"at most {max_age_days} day(s) old", details=feed.summary(today))


def _pending(f: Finding, severity: Severity) -> Finding:
    # Pending fixes are not failures yet, but the RAP and ITHC view still rank them by CVSS.
    f.severity = severity
    return f


def linux_findings(hosts: list[HostPackages], feed: Feed | None, today: date, estate: Estate,
                   evidence: dict[str, list[EvidenceRef]] | None = None, eol: EolData | None = None) -> list[Finding]:
    evidence = evidence or {}
    fleet = Fleet.from_hosts((h.host, h.os, h.packages) for h in hosts)
    groups = evaluate(fleet, feed, today).groups() if feed is not None else []
    feed_date = feed.feed_date.isoformat() if feed is not None else None
    out: list[Finding] = []
    matched: set[tuple[str, str]] = set()
    for host_i, pkg_i, fixes in groups:
        assert feed is not None
        h = hosts[host_i]
        package = fleet.packages[pkg_i]
        matched.add((h.host, package))
        upgrade = next((u for u in h.upgrades if u.package == package), None)
        out.append(_group_finding(h, package, fixes, upgrade.candidate if upgrade else None, feed,
                                  evidence.get(h.host, [])))
    for h in hosts:
        # Security-archive upgrades the feed does not know: unrated, so treated as high (CE SUM-5).
        for u in h.upgrades:
            if not u.security or (h.host, u.package) in matched:
                continue
            matched.add((h.host, u.package))
            days = (today - u.published).days if u.published else None
            overdue = days is not None and days > WINDOW_DAYS
            due = (u.published + timedelta(days=WINDOW_DAYS)).isoformat() if u.published else None
            details: dict[str, Any] = {"package": u.package, "installed": u.installed, "candidate": u.candidate,
                                       "archives": u.archives, "rated": False, "days_available": days,
                                       "released": u.published.isoformat() if u.published else None,
                                       "due": due, "feed_date": feed_date}
            check = "patch.security_update_overdue" if overdue else "patch.security_update_pending"
            f = make_finding(check, f"host:{h.host}", Status.FAIL if overdue else Status.PASS, key=u.package,
                             observed=f"{u.package} {u.installed} installed; {u.candidate} from {u.archives} "
                                      f"available {days if days is not None else '?'} day(s) (no advisory: unrated)",
                             expected=f"security updates installed within {WINDOW_DAYS} days",
                             evidence=evidence.get(h.host, []), details=details)
            out.append(f if overdue else _pending(f, Severity.MEDIUM))
        if not any(f.asset == f"host:{h.host}" and f.check_id.startswith("patch.security_update") for f in out):
            where = f"in the feed dated {feed_date}" if feed_date else \
                "in the configured repositories (no advisory feed to match installed versions against)"
            out.append(make_finding("patch.up_to_date", f"host:{h.host}", Status.PASS,
                                    observed=f"{len(h.packages)} packages; no security fix outstanding {where}",
                                    expected="every applicable security fix installed",
                                    evidence=evidence.get(h.host, []), details={"feed_date": feed_date}))
        out.extend(_software_findings(h, estate, today, eol or load_eol(), evidence.get(h.host, [])))
    return out


def _group_finding(h: HostPackages, package: str, fixes: list[MissingFix], candidate: str | None,
                   feed: Feed, evidence: list[EvidenceRef]) -> Finding:
    advs: list[dict[str, Any]] = []
    for m in fixes:
        a = m.advisory
        advs.append({"id": a.id, "cve": a.cve, "fixed_version": a.fixed_version, "cvss_vector": a.cvss_vector,
                     "cvss_score": m.score, "released": a.released.isoformat(), "days_available": m.days,
                     "due": (a.released + timedelta(days=WINDOW_DAYS)).isoformat(), "overdue": m.overdue,
                     "title": a.title})
    overdue = [a for a in advs if a["overdue"]]
    ranked = sorted(overdue or advs, key=lambda a: (a["cvss_score"] is None, -(a["cvss_score"] or 0)))
    worst = ranked[0]
    installed = h.packages[package]
    details = {"package": package, "installed": installed, "candidate": candidate,
               "available_in_repos": candidate is not None, "advisories": advs,
               "days_available": max(a["days_available"] for a in advs),
               "due": min(a["due"] for a in advs if a["overdue"] == bool(overdue)),
               "feed_date": feed.feed_date.isoformat(), "rated": worst["cvss_vector"] is not None}
    cves = ", ".join(c for a in advs for c in (a["cve"] or [a["id"]]))
    observed = (f"{package} {installed} installed; fix {worst['fixed_version']} released {worst['released']} "
                f"({worst['days_available']} day(s) ago) for {cves}"
                + (f"; {candidate} available from the configured repositories" if candidate else
                   "; no fixed version in the configured repositories"))
    if overdue:
        return make_finding("patch.security_update_overdue", f"host:{h.host}", Status.FAIL, key=package,
                            observed=observed, expected=f"high and critical fixes installed within {WINDOW_DAYS} days",
                            evidence=evidence, cvss_vector=worst["cvss_vector"], details=details,
                            severity=None if worst["cvss_vector"] else Severity.HIGH)
    f = make_finding("patch.security_update_pending", f"host:{h.host}", Status.PASS, key=package,
                     observed=observed, expected=f"installed by {details['due']}", evidence=evidence,
                     cvss_vector=worst["cvss_vector"], details={**details, "pending": True})
    score = worst["cvss_score"]
    return _pending(f, Severity.from_cvss(score) if score is not None else Severity.HIGH)


def _software_findings(h: HostPackages, estate: Estate, today: date, eol: EolData,
                       evidence: list[EvidenceRef]) -> list[Finding]:
    banned: dict[str, str] = {}
    for s in estate.unsupported_software:
        if s.package:
            banned[s.package] = f"{s.name}: {s.reason} (estate unsupported_software)"
    for sw in eol.software:
        if sw.eol is not None and sw.eol < today:
            for p in sw.debian_packages:
                banned.setdefault(p, f"{sw.name}: end of life {sw.eol.isoformat()} ({sw.source})")
    found = sorted(p for p in h.packages if p in banned)
    asset = f"host:{h.host}"
    if not found:
        return [make_finding("patch.unsupported_software", asset, Status.PASS,
                             observed=f"none of {len(banned)} unsupported packages installed",
                             expected="no unsupported software", evidence=evidence)]
    return [make_finding("patch.unsupported_software", asset, Status.FAIL, key=p,
                         observed=f"{p} {h.packages[p]} installed: {banned[p]}", expected="not installed",
                         evidence=evidence, details={"package": p, "version": h.packages[p]}) for p in found]


_WIN_SEVERE = {"critical": Severity.CRITICAL, "important": Severity.HIGH, "high": Severity.HIGH}
_WIN_UNRATED = {"", "unspecified", "none", "unknown"}


def windows_findings(device_findings: Iterable[Finding], today: date) -> list[Finding]:
    """The 14-day rule over `devices.win.updates` results: details.missing_updates carry release dates."""
    out: list[Finding] = []
    for d in device_findings:
        if d.check_id != "devices.win.updates":
            continue
        for u in d.details.get("missing_updates") or []:
            kb = str(u.get("kb") or u.get("title") or "update")
            try:
                released = date.fromisoformat(str(u["released"]))
            except (KeyError, ValueError):
                released = None
            rating = str(u.get("severity") or "").strip().lower()
            vector = u.get("cvss_vector")
            score = u.get("cvss")
            severity = _WIN_SEVERE.get(rating)
            if score is not None and float(score) >= HIGH_CVSS:
                severity = Severity.from_cvss(float(score))
            # Windows Update says "Unspecified" where Microsoft gave no rating; an empty rating means
            # the same. Cyber Essentials treats an unrated security fix within the 14-day rule.
            unrated = rating in _WIN_UNRATED and score is None and not vector
            severe = severity is not None or unrated or (vector is not None)
            days = (today - released).days if released else None
            overdue = severe and (days is None or days > WINDOW_DAYS)
            due = (released + timedelta(days=WINDOW_DAYS)).isoformat() if released else None
            details = {"kb": kb, "title": u.get("title", ""), "released": released.isoformat() if released else None,
                       "vendor_severity": u.get("severity"), "days_available": days, "due": due,
                       "from_finding": d.id}
            observed = (f"{kb} ({u.get('title', '')}) rated {'unrated' if unrated else u.get('severity')}, released "
                        f"{details['released'] or 'on an unknown date'}"
                        + (f", {days} day(s) ago" if days is not None else "") + ": not installed")
            if overdue:
                out.append(make_finding("patch.security_update_overdue", d.asset, Status.FAIL, key=kb,
                                        observed=observed,
                                        expected=f"high and critical updates installed within {WINDOW_DAYS} days",
                                        evidence=d.evidence, site=d.site, cvss_vector=vector, details=details,
                                        severity=None if vector else (severity or Severity.HIGH)))
            else:
                f = make_finding("patch.security_update_pending", d.asset, Status.PASS, key=kb, observed=observed,
                                 expected=f"installed by {due}" if due else "installed", evidence=d.evidence,
                                 site=d.site, cvss_vector=vector, details={**details, "pending": True})
                out.append(_pending(f, severity or _WIN_RATING.get(rating, Severity.MEDIUM)))
    return out


_WIN_RATING = {"moderate": Severity.MEDIUM, "low": Severity.LOW, "medium": Severity.MEDIUM}
