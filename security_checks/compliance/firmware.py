"""Firewall and router firmware against the advisory feed: the 14-day rule for firmware.

Cyber Essentials v3.3 puts firewalls and routers in scope of security update management like
operating systems. The firewall audit (security_checks/firewalls) reads each device's firmware
version and reports it in its `firewalls.read` finding (details.vendor_product, details.firmware);
this step, run after it, matches the version against the feed's vendor (cpe) advisories, such as
Fortinet PSIRT entries (FG-IR-24-015) for "fortinet:fortios", and the release line's end of support
(eol.yaml). It reads only the run's earlier findings: the engines never call each other.
"""

from __future__ import annotations

from datetime import date, timedelta

from ..checks import make_finding
from ..findings import Finding, Severity, Status
from ..step import StepContext, StepResult
from .advisories import Feed, load_feed
from .eol import load_eol, product_eol
from .patch_eval import HIGH_CVSS, WINDOW_DAYS
from .steps import feed_path

READ_CHECK = "firewalls.read"


def firmware_findings(reads: list[Finding], feed: Feed | None, today: date) -> list[Finding]:
    out: list[Finding] = []
    eol = load_eol()
    for read in reads:
        product, version = read.details.get("vendor_product"), read.details.get("firmware")
        fw = str(read.details.get("firewall") or read.asset.removeprefix("firewall:"))
        if not product or not version:
            continue   # an nftables router's "firmware" is its Debian packages: the patch step's business
        site, evidence = read.site, read.evidence
        details = {"firewall": fw, "vendor_product": product, "firmware": version}
        if feed is None:
            out.append(make_finding("patch.firmware_update_overdue", f"firewall:{fw}", Status.NOT_ASSESSED,
                                    key="feed", observed=f"{product} {version}: no advisory feed to match against",
                                    expected="the firmware matched against the advisory feed", details=details,
                                    site=site, evidence=evidence))
            continue
        missing = feed.affecting(product, version)
        for a in missing:
            days = (today - a.released).days
            overdue = days > WINDOW_DAYS and (a.score is None or a.score >= HIGH_CVSS)
            check = "patch.firmware_update_overdue" if overdue else "patch.firmware_update_pending"
            f = make_finding(
                check, f"firewall:{fw}", Status.FAIL if overdue else Status.PASS, key=a.id,
                observed=f"{product} {version} is affected by {a.id} ({', '.join(a.cve) or 'no CVE'}): "
                         f"{a.title or 'security fix'}; fixed in {a.fixed_version}, released {a.released} "
                         f"({days} days ago)",
                expected=f"firmware {a.fixed_version} or later within {WINDOW_DAYS} days of release",
                cvss_vector=a.cvss_vector,
                details={**details, "advisory": a.id, "cve": list(a.cve), "fixed_version": a.fixed_version,
                         "released": a.released.isoformat(), "days_available": days,
                         "due": (a.released + timedelta(days=WINDOW_DAYS)).isoformat(), "overdue": overdue},
                site=site, evidence=evidence)
            if not overdue:
                f = f.model_copy(update={"severity": Severity.MEDIUM})
            out.append(f)
        if not missing:
            out.append(make_finding("patch.firmware_up_to_date", f"firewall:{fw}", Status.PASS,
                                    observed=f"{product} {version}: no advisory in the feed ({feed.feed_date}) "
                                             "affects it", expected="no security fix outstanding",
                                    details=details, site=site, evidence=evidence))
        life = product_eol(eol, product, version)
        if life and life[1] < today:
            out.append(make_finding("patch.firmware_unsupported", f"firewall:{fw}", Status.FAIL,
                                    observed=f"{product} {version}: {life[0]} reached end of support on {life[1]}",
                                    expected="a firmware release line the vendor still supports",
                                    details={**details, "release_line": life[0], "eol": life[1].isoformat()},
                                    site=site, evidence=evidence))
    return out


def firmware_step(ctx: StepContext) -> StepResult:
    reads = [f for f in ctx.earlier if f.check_id == READ_CHECK and f.details.get("firmware")]
    if not reads:
        return StepResult(skipped="no firewall firmware was read in this run (the firewalls step read none)")
    path = feed_path(ctx)
    feed = load_feed(path) if path else None
    findings = firmware_findings(reads, feed, ctx.today)
    failing = sum(1 for f in findings if f.status is Status.FAIL)
    return StepResult(findings, f"{len(reads)} firmware version(s) matched: {failing} failing")
