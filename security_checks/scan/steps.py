"""The scan steps. Each authorises before a packet is sent (scope.authorise) and keeps the XML.

- selftest-scan: the estate's loopback scope, on the ports declared there (any machine);
- network-scan: every scope from the scanner vantages this run was given (in the demo, the lab's
  scanner namespaces); none given: skipped with the reason;
- segregation: probes from a probe point in each zone to every other (needs probe points);
- scope-scan, scan-import, site-scan: the single-purpose jobs of `estate scan`.

Vantages, probe points and site scanners come in through StepContext.provisions; the lab harness
fills them for the demo, so no step here knows the lab.
"""

from __future__ import annotations

import ipaddress
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from ..findings import Finding
from ..model.schema import ScanScope
from ..step import StepContext, StepResult
from . import engine, imports, intake
from .drift import dedupe
from .scope import Authorisation, authorise


def _loopback_scope(ctx: StepContext) -> ScanScope | None:
    return next((s for s in ctx.loaded.estate.scan_scopes if s.loopback), None)


def selftest_scan(ctx: StepContext) -> StepResult:
    scope = _loopback_scope(ctx)
    if scope is None:
        return StepResult(skipped="the estate has no loopback scan scope")
    if ctx.provisions.get("loopback_unavailable"):
        return StepResult(skipped=ctx.provisions["loopback_unavailable"])
    inside = [h for h in ctx.loaded.estate.declared_hosts if ipaddress.ip_address(h.address).is_loopback]
    tcp = {p.port for h in inside for p in h.ports if p.protocol == "tcp"}
    tcp |= {int(p) for p in ctx.provisions.get("loopback_ports", [])}
    addresses = sorted({h.address for h in inside} | set(ctx.provisions.get("loopback_addresses", [])),
                       key=ipaddress.ip_address)
    if not addresses or not tcp:
        return StepResult(skipped=f"scope {scope.name} declares no hosts with ports to check")
    # Refused targets stop here, before a packet is sent.
    auth = authorise(ctx.loaded, addresses, scope_name=scope.name, profile="standard")
    outcome = engine.scan(ctx.loaded, auth, engine.Vantage(name="this machine (loopback)"), ctx.run, "selftest",
                          privileged=False, top_ports=None, targets=addresses, skip_discovery=True,
                          ports_override=(tcp, set()), knowledge=ctx.options.get("knowledge"))
    fails = sum(1 for f in outcome.findings if f.failing)
    return StepResult(findings=outcome.findings,
                      summary=f"scanned {len(tcp)} loopback port(s) ({', '.join(str(p) for p in sorted(tcp))}): "
                              f"{len(outcome.findings)} findings, {fails} failing")


def _scan_vantages(ctx: StepContext, vantages: list[engine.Vantage], scope: ScanScope, profile: str,
                   targets: list[str] | None) -> tuple[list[Finding], list[str]]:
    wrapper_dir: Path | None = ctx.provisions.get("wrapper_dir")

    def one(v: engine.Vantage) -> tuple[list[Finding], str]:
        auth = authorise(ctx.loaded, targets or None, scope_name=scope.name, profile=profile, netns=v.netns)
        if v.networks and not engine.intersect(auth, v.networks):
            return [], f"{v.name}: not on the target networks"
        outcome = engine.scan(ctx.loaded, auth, v, ctx.run, v.name.removeprefix("est-"), privileged=ctx.is_root,
                              wrapper_dir=wrapper_dir, knowledge=ctx.options.get("knowledge"))
        return outcome.findings, f"{v.name}: {len(outcome.live_hosts or outcome.result.hosts)} hosts"

    with ThreadPoolExecutor(max_workers=len(vantages) or 1) as pool:
        done = list(pool.map(one, vantages))
    return dedupe([f for fs, _ in done for f in fs]), [n for _, n in done]


def network_scan(ctx: StepContext) -> StepResult:
    vantages: list[engine.Vantage] = ctx.provisions.get("vantages") or []
    if not vantages:
        return StepResult(skipped="no scanner vantage on this machine: council scopes are scanned from site scanners "
                                  "(estate scan site) or a scanner host (estate scan --scope)")
    scope = ctx.loaded.estate.scope(ctx.provisions["vantage_scope"])
    findings, notes = _scan_vantages(ctx, vantages, scope, "standard", None)
    fails = sum(1 for f in findings if f.failing)
    return StepResult(findings=findings, summary=f"{'; '.join(notes)}; {len(findings)} findings, {fails} failing")


def segregation(ctx: StepContext) -> StepResult:
    net = ctx.provisions.get("probe_network")
    if net is None:
        return StepResult(skipped="no probe points in the zones: segregation needs a probe host in each zone "
                                  "(the demo lab provides them)")
    from .segregation import run_matrix

    matrix, findings = run_matrix(ctx.loaded, net, ctx.run)
    who = matrix.get("disagreements") or {}
    # Who disagrees with the declared policy (the router's applied ruleset, the wire, or neither known).
    odd = ", ".join(f"{n} {party}" for party, n in sorted(who.items())) or "none"
    return StepResult(findings=findings, data={"matrix": matrix},
                      summary=f"{len(matrix['flows'])} probes, {matrix['breaches']} breaches, "
                              f"{matrix['allowed_but_blocked']} allowed flows blocked; disagreeing with the "
                              f"declared policy: {odd}")


def scope_scan(ctx: StepContext) -> StepResult:
    """`estate scan --scope`: the authorisation was checked before the run opened (options)."""
    auth: Authorisation = ctx.options["authorisation"]
    targets: list[str] | None = ctx.options.get("targets") or None
    scope = auth.scope
    if scope.lab:
        vantages = ctx.provisions.get("vantages") or []
        if not vantages:
            return StepResult(skipped=f"scope {scope.name} is a lab scope and no lab scanner is available")
        findings, notes = _scan_vantages(ctx, vantages, scope, auth.profile, targets)
        return StepResult(findings=findings, summary="; ".join(notes))
    outcome = engine.scan(ctx.loaded, auth, engine.Vantage(name="this machine"), ctx.run, scope.name,
                          privileged=os.geteuid() == 0, top_ports=1000, targets=targets,
                          skip_discovery=scope.loopback, knowledge=ctx.options.get("knowledge"))
    return StepResult(findings=outcome.findings, summary=f"{len(outcome.result.hosts)} hosts")


def import_scan(ctx: StepContext) -> StepResult:
    """`estate scan import`: the file was read and parsed before the run opened (so bad input stores nothing)."""
    parsed: imports.Parsed | None = ctx.options.get("parsed")
    if parsed is None:   # nmap XML handed in as bytes (older callers)
        data: bytes = ctx.options["xml"]
        parsed = imports.parse_file(intake.open_scan(data, ctx.options["source"]))
    findings, summary = imports.judge(ctx.loaded, ctx.run, parsed, knowledge=ctx.options.get("knowledge"),
                                      source_zone=ctx.options.get("source_zone"))
    return StepResult(findings=findings, summary=summary,
                      data={"hosts": parsed.hosts, "format": parsed.file.kind, "sha256": parsed.file.sha256})


def site_scan(ctx: StepContext) -> StepResult:
    from .remote import scan_site

    site: str = ctx.options["site"]
    scanners: dict[str, Any] = ctx.provisions.get("site_scanners") or {}
    scanner = scanners.get(site)
    if scanner is None:
        have = ", ".join(sorted(scanners)) or "none"
        return StepResult(skipped=f"site {site!r} has no scanner here (scanners: {have})")
    findings, summary = scan_site(ctx.loaded, scanner, ctx.provisions["vantage_scope"], ctx.run,
                                  profile=ctx.options.get("profile", "standard"),
                                  knowledge=ctx.options.get("knowledge"))
    return StepResult(findings=findings, summary=summary)
