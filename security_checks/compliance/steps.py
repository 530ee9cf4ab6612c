"""The compliance steps: patch compliance, and the Cyber Essentials configuration checks.

Patch reads what the device steps found earlier in the run (Windows update results) and the
package state of Linux endpoints it can reach itself. Every endpoint in scope gets an answer: a
result, or a finding saying it was not read (error) or could not be here (not assessed) — an
endpoint that cannot be read must never look patched.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from ..checks import make_finding
from ..findings import EvidenceRef, Finding, Status
from ..model.schema import EndpointHost, Estate
from ..step import StepContext, StepResult
from .advisories import load_feed
from .apt_host import AptError, HostPackages, collect, from_outputs, release_dates_from_text
from .ce import config_findings, firewall_mgmt_port_from_internet
from .eol import load_eol, unsupported_os_findings
from .firewall_evidence import observed_over_declared
from .patch import feed_finding, linux_findings, windows_findings
from .third_party import debian_programs, program_findings, windows_third_party

OVERDUE = "patch.security_update_overdue"


def linux_endpoints(estate: Estate) -> list[tuple[EndpointHost, str, str]]:
    """(host, os, connection kind) for the Linux hosts the estate lists by name."""
    return [(h, g.os.value, (h.connection or g.connection).kind)
            for g in estate.endpoint_groups if g.os.family == "linux" for h in g.hosts]


def chroot_root(home: Path, host: EndpointHost) -> Path | None:
    if not host.address:
        return None
    path = Path(host.address)
    return path if path.is_absolute() else home / path


def _unread(host: EndpointHost, status: Status, why: str) -> Finding:
    return make_finding(OVERDUE, f"host:{host.name}", status, key="patch-state", site=host.site,
                        observed=f"patch state not read: {why}",
                        expected="the endpoint's installed packages and pending updates are read",
                        details={"reason": why})


def feed_path(ctx: StepContext) -> Path | None:
    """The advisory feed: --advisory-feed, else the one the estate declares, else none (never another's)."""
    given = ctx.options.get("advisory_feed")
    if given:
        return Path(given)
    declared = ctx.loaded.estate.organisation.advisory_feed
    return ctx.loaded.root / declared if declared else None


def patch_step(ctx: StepContext) -> StepResult:
    estate = ctx.loaded.estate
    path = feed_path(ctx)
    # Named as the estate names it (or by file name), in the finding and the summary: not by the
    # operator's directory.
    feed = load_feed(path).model_copy(update={"path": ctx.loaded.cited(path)}) if path else None
    findings: list[Finding] = [feed_finding(feed, ctx.today)]
    findings += unsupported_os_findings(estate, ctx.today)
    windows = windows_findings(ctx.findings, ctx.today)
    findings += windows
    # Third-party applications: the device audit's read of the uninstall keys, and dpkg below.
    eol = load_eol()
    findings += windows_third_party(ctx.findings, feed, eol, ctx.today)
    notes: list[str] = []
    hosts: list[HostPackages] = []
    evidence: dict[str, list[EvidenceRef]] = {}
    audited = {f.asset: f for f in ctx.findings if f.check_id == "devices.linux.package_inventory"}
    for host, os_name, kind in linux_endpoints(estate):
        if kind != "chroot":
            # What the device audit read over its own connection (SSH), earlier in this run.
            read = audited.get(f"host:{host.name}")
            if read is None or read.status is not Status.PASS or "dpkg_query" not in read.details:
                findings.append(_unread(host, Status.NOT_ASSESSED if read is None else Status.ERROR,
                                        f"reached over {kind}: the device audit did not read its packages"
                                        + ("" if read is None else f" ({read.observed})")))
                continue
            d = read.details
            h = from_outputs(host.name, os_name, str(d["dpkg_query"]), str(d.get("apt_simulation") or ""),
                             release_dates_from_text(str(d.get("release_files") or "")),
                             {"release-files.txt": str(d.get("release_files") or "")})
            hosts.append(h)
            evidence[h.host] = [*read.evidence, *(ctx.run.write_evidence(f"patch/{h.host}/{name}", text,
                                                                         f"{name} on {h.host}, read over {kind}")
                                                  for name, text in h.raw.items())]
            continue
        root = chroot_root(ctx.home, host)
        if root is None:
            findings.append(_unread(host, Status.ERROR, "a chroot endpoint without an address (its directory)"))
            continue
        if not ctx.is_root:
            findings.append(_unread(host, Status.NOT_ASSESSED, "reading a chroot endpoint needs root"))
            continue
        ctx.say(f"patch: reading {host.name}")
        try:
            h = collect(host.name, os_name, root)
        except (AptError, OSError, RuntimeError) as exc:
            # The chroot as the estate declares it (relative to the state directory), not this machine's path.
            why = str(exc).replace(str(root), str(host.address))
            findings.append(_unread(host, Status.ERROR, why))
            notes.append(f"{host.name}: {why}")
            continue
        hosts.append(h)
        evidence[h.host] = [ctx.run.write_evidence(f"patch/{h.host}/{name}", text, f"{name} on {h.host}")
                            for name, text in h.raw.items()]
    findings += linux_findings(hosts, feed, ctx.today, estate, evidence)
    for h in hosts:
        findings += program_findings(h.host, debian_programs(h.packages), feed, eol, ctx.today,
                                     evidence=evidence.get(h.host, []))
    c = Counter(f.check_id for f in findings if f.failing)
    unread = sum(1 for f in findings if f.key == "patch-state")
    ctx.run.write_evidence("patch/summary.json", json.dumps({
        "feed": feed.summary(ctx.today) if feed else None, "linux_hosts_read": [h.host for h in hosts],
        "notes": notes, "failing": dict(c)}, indent=2), "patch compliance summary")
    summary = (f"{'feed ' + feed.feed_date.isoformat() if feed else 'no advisory feed'}; "
               f"{len(hosts)} Linux endpoint(s) read"
               + (f", {unread} not read" if unread else "")
               + f", {len({f.asset for f in windows})} Windows asset(s); "
               f"{sum(1 for f in findings if f.check_id == OVERDUE and f.status is Status.FAIL)} overdue fix(es), "
               f"{c.get('patch.unsupported_os', 0)} unsupported OS group(s)")
    return StepResult(findings, summary)


def ce_config_step(ctx: StepContext) -> StepResult:
    # Observed beats declared: a firewall read back earlier in this run is judged from the device.
    own = observed_over_declared([*config_findings(ctx.loaded.estate, ctx.today),
                                  *firewall_mgmt_port_from_internet(ctx.loaded)], ctx.earlier)
    fails = sum(1 for f in own if f.failing)
    return StepResult(own, f"{len(own)} configuration check result(s) on the declared estate, {fails} failing")
