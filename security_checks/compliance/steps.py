"""The compliance steps of `estate assess`: patch, then ce, then psn (they read what the scan,
device and infrastructure steps found earlier in the same run).
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from ..assess import StepContext, StepResult
from ..findings import EvidenceRef, Finding
from ..model.schema import EndpointHost, Estate
from ..waivers import apply_waivers
from .advisories import load_feed
from .apt_host import AptError, HostPackages, collect
from .ce import assess, config_findings
from .eol import unsupported_os_findings
from .patch import feed_finding, linux_findings, windows_findings
from .psn import psn_report
from .rap import CSV_COLUMNS, Rap, rap_csv_rows


def linux_endpoints(estate: Estate) -> list[tuple[EndpointHost, str]]:
    """(host, os) for Debian/Ubuntu hosts the estate lists by name."""
    return [(h, g.os.value) for g in estate.endpoint_groups if g.os.family == "linux" for h in g.hosts]


def _chroot_for(home: Path, host: EndpointHost) -> Path | None:
    # Lab endpoints are chroot directories under the state directory (address lab/chroots/...).
    if host.address and "/" in host.address:
        return home / host.address
    return None


def patch_step(ctx: StepContext) -> StepResult:
    estate = ctx.loaded.estate
    feed_path = ctx.options.get("advisory_feed")
    feed = load_feed(Path(feed_path) if feed_path else None)
    findings: list[Finding] = [feed_finding(feed, ctx.today)]
    findings += unsupported_os_findings(estate, ctx.today)
    windows = windows_findings(ctx.findings, ctx.today)
    findings += windows
    notes = []
    hosts: list[HostPackages] = []
    evidence: dict[str, list[EvidenceRef]] = {}
    for host, os_name in linux_endpoints(estate):
        root = _chroot_for(ctx.store.home, host)
        if root is None:
            notes.append(f"{host.name}: reached over SSH by the device audit, not by this step")
            continue
        if not ctx.is_root:
            notes.append(f"{host.name}: skipped, reading a chroot endpoint needs root")
            continue
        try:
            if host.address and host.address.startswith("lab/"):
                _prepare_lab(ctx.store.home, root)
            h = collect(host.name, os_name, root)
        except (AptError, OSError, RuntimeError) as exc:
            notes.append(f"{host.name}: {exc}")
            continue
        hosts.append(h)
        evidence[h.host] = [ctx.run.write_evidence(f"patch/{h.host}/{name}", text, f"{name} on {h.host}")
                            for name, text in h.raw.items()]
    findings += linux_findings(hosts, feed, ctx.today, estate, evidence)
    c = Counter(f.check_id for f in findings if f.failing)
    ctx.run.write_evidence("patch/summary.json", json.dumps({
        "feed": feed.summary(ctx.today), "linux_hosts": [h.host for h in hosts], "notes": notes,
        "failing": dict(c)}, indent=2), "patch compliance summary")
    summary = (f"feed {feed.feed_date.isoformat()}; {len(hosts)} Linux endpoint(s), "
               f"{len({f.asset for f in windows})} Windows asset(s); "
               f"{c.get('patch.security_update_overdue', 0)} overdue fix(es), "
               f"{c.get('patch.unsupported_os', 0)} unsupported OS group(s)")
    return StepResult(findings, summary + (f" ({'; '.join(notes)})" if notes else ""))


def _prepare_lab(home: Path, root: Path) -> None:
    """The demo lab endpoint: built by the device engine if missing; carries the planted overdue update."""
    from .lab_repo import plant

    if not (root / "var/lib/dpkg/status").exists():
        from ..devices.endpoint import ensure_lab_endpoint

        ensure_lab_endpoint(home)
    plant(root)


def ce_step(ctx: StepContext) -> StepResult:
    estate = ctx.loaded.estate
    own = config_findings(estate, ctx.today)
    every = [*ctx.findings, *own]
    apply_waivers(every, estate.waivers, ctx.today)
    doc = assess(estate, every, ctx.today, version=ctx.options.get("ce_version"), run_id=ctx.run.id,
                 estate_dir=ctx.loaded.root)
    ctx.run.write_evidence("compliance/ce.json", json.dumps(doc, indent=2), "Cyber Essentials readiness assessment")
    n = doc["counts"]
    return StepResult(own, f"Cyber Essentials {doc['version']}: {doc['verdict']} (met {n['met']}, not met "
                           f"{n['not_met']}, manual {n['manual']}, not assessed {n['not_assessed']})")


def psn_step(ctx: StepContext) -> StepResult:
    estate = ctx.loaded.estate
    apply_waivers(ctx.findings, estate.waivers, ctx.today)
    rap = Rap(ctx.store)
    update = rap.update(ctx.run.id, ctx.findings, estate, ctx.today, full_scope=ctx.run.full_scope)
    doc = psn_report(estate, ctx.findings, rap, ctx.today, run_id=ctx.run.id, full_scope=ctx.run.full_scope,
                     rap_update=update)
    ctx.run.write_evidence("compliance/psn.json", json.dumps(doc, indent=2, default=str),
                           "PSN ITHC-style findings and Remediation Action Plan")
    ctx.run.write_evidence("compliance/rap.csv", csv_text(rap), "Remediation Action Plan (CSV)")
    s = doc["summary"]
    return StepResult([], f"{len(doc['ithc_findings'])} ITHC-style finding(s); RAP "
                          + ", ".join(f"{v} {k}" for k, v in sorted(s["rap"].items())))


def csv_text(rap: Rap) -> str:
    import csv
    import io

    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(CSV_COLUMNS)
    w.writerows(rap_csv_rows(rap.items()))
    return buf.getvalue()
