"""The segregation matrix: probe from every zone to every other zone's declared ports, compare with policy.

Sources are probe points in each zone (in the demo, the lab's zone namespaces; each probes from an
address of its own zone: see vantage.ProbeNetwork); targets are
the declared hosts and ports, the firewalls' management interfaces, a stand-in client in each user
zone and the breakout. scapy sends one TCP SYN or UDP datagram per target (retried once); any
answer from the target means every firewall on the way let it through. The expected side comes
from the estate's firewall policy only (policy.py). Extra rules that hold whatever the policy says:
guest and public Wi-Fi reach nothing but the internet breakout.

Each flow carries three verdicts: declared (the policy), applied (the rulesets the routers on its
path hold, read back: applied.py) and observed (the probe), and `disagrees` names the odd one out,
so a finding says whom to fix: the router's ruleset, the wire (another path, a listener or a route),
or the declared policy itself.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any

from ..checks import make_finding
from ..findings import EvidenceRef, Finding, Severity, Status
from ..model.loader import LoadedEstate
from ..model.schema import ZoneKind
from ..network.policy import Decision, Policy
from ..step import EvidenceSink
from . import applied as applied_rulesets
from .drift import USER_KINDS
from .engine import probe
from .scope import authorise
from .vantage import ProbeNetwork, ProbeSegment


@dataclass
class Flow:
    src_segment: str
    src_zone: str
    src_site: str
    src: str
    dst: str
    dst_name: str
    dst_zone: str
    protocol: str
    port: int
    management: bool
    expected: bool
    decision: str
    path: list[str] = field(default_factory=list)   # the routers it crosses, in order
    dst_firewall: str | None = None                  # the destination is that router itself
    declared: str = ""        # allow | deny: the estate's firewall policy alone
    declared_firewall: str = ""
    declared_rule: str = ""   # rule id, default-deny, management allow-list...
    declared_where: str = ""  # the estate file:line that decides it
    observed: str = ""   # open | closed | blocked | silent
    reply: str = ""
    applied: str = ""         # accept | deny | unknown: the routers' rulesets, read back
    applied_firewall: str = ""
    applied_rule: str = ""    # the deciding router rule (handle, comment) or policy, or why unknown
    applied_hops: list[str] = field(default_factory=list)
    disagrees: str = ""       # "" | declared | applied | observed | undetermined
    disagreement: str = ""    # what that means, in a sentence

    @property
    def reachable(self) -> bool:
        return self.observed in ("open", "closed")

    @property
    def flow_text(self) -> str:
        return (f"{self.src_zone}@{self.src_site} ({self.src}) -> {self.dst_name} ({self.dst}) "
                f"{self.protocol}/{self.port}")


def _targets(loaded: LoadedEstate, lab: ProbeNetwork) -> list[tuple[ProbeSegment | None, str, str, str, str, int, bool,
                                                                    str | None]]:
    """(segment, address, name, zone, protocol, port, management, firewall-if-the-target-is-one)."""
    estate = loaded.estate
    declared = {h.address: h for h in estate.declared_hosts}
    out: list[tuple[ProbeSegment | None, str, str, str, str, int, bool, str | None]] = []
    for seg in lab.probe_segments:
        for addr in seg.addresses:
            h = declared.get(addr)
            if h is not None:
                out.extend((seg, addr, h.name, seg.zone, p.protocol, p.port, p.management, None) for p in h.ports)
            elif seg.zone == "internet":
                out.extend((seg, addr, "breakout", seg.zone, proto, port, False, None)
                           for proto, port in (("tcp", 80), ("tcp", 443), ("udp", 53)))
            elif addr == seg.source and estate.zone(seg.zone).kind in USER_KINDS:
                out.extend((seg, addr, f"{seg.zone}-client", seg.zone, proto, port, False, None)
                           for proto, port in lab.client_probe_ports)
    for fw in lab.firewall_points:
        h = declared.get(fw.management_address or "")
        mseg = lab.segment_of(fw.management_address) if fw.management_address else None
        if h is not None and mseg is not None:
            out.extend((mseg, h.address, h.name, mseg.zone, p.protocol, p.port, p.management, fw.name) for p in h.ports)
    return out


def plan(loaded: LoadedEstate, lab: ProbeNetwork) -> list[Flow]:
    policy = Policy(loaded.estate)
    flows: list[Flow] = []
    for src in lab.probe_segments:
        if not src.netns or not src.source:
            continue
        for seg, addr, name, zone, proto, port, mgmt, dst_fw in _targets(loaded, lab):
            if seg is src:
                continue  # same segment: no firewall between them
            # A small site's traffic crosses its own firewall, then the hub's (central breakout).
            path = list(dict.fromkeys([src.firewall, dst_fw or (seg.firewall if seg else "")]))
            decision: Decision = policy.path([p for p in path if p], src.source, addr, proto, port, dst_firewall=dst_fw)
            expected = decision.allowed
            reason = str(decision)
            if loaded.estate.zone(src.zone).untrusted and zone != "internet" and expected:
                expected, reason = False, f"{reason}, but {src.zone} may reach only the internet breakout"
            flows.append(Flow(src_segment=src.key, src_zone=src.zone, src_site=src.site, src=src.source, dst=addr,
                              dst_name=name, dst_zone=zone, protocol=proto, port=port, management=mgmt,
                              expected=expected, decision=reason, path=[p for p in path if p], dst_firewall=dst_fw,
                              declared="allow" if decision.allowed else "deny", declared_firewall=decision.firewall,
                              declared_rule=decision.rule, declared_where=_where(loaded, decision)))
    return flows


def _where(loaded: LoadedEstate, decision: Decision) -> str:
    """The estate file:line behind a policy decision: the rule's, else the firewall's own entry."""
    fws = loaded.estate.firewalls
    fi = next((i for i, f in enumerate(fws) if f.name == decision.firewall), None)
    if fi is None:
        return ""
    ri = next((i for i, r in enumerate(fws[fi].rules) if r.id == decision.rule), None)
    path: tuple[str | int, ...] = ("firewalls", fi, "rules", ri) if ri is not None else \
        ("firewalls", fi, "management_allowlist") if decision.rule == "management allow-list" else ("firewalls", fi)
    file, line = loaded.where(path)
    return f"{file}:{line}" if line else file


def attribute(f: Flow) -> tuple[str, str]:
    """(who disagrees, what it means): the declared policy is the intent the other two are held to."""
    allow, reach = f.declared == "allow", f.reachable
    if f.applied not in ("accept", "deny"):
        if allow == reach:
            return "", ""
        return "undetermined", (f"the wire {'lets it through' if reach else 'blocks it'} though the declared policy "
                                f"{'allows' if allow else 'denies'} it, and the applied ruleset could not be judged "
                                f"({f.applied_rule}): which of them is wrong is not known")
    accepts = f.applied == "accept"
    if allow == accepts == reach:
        if reach and not f.expected:
            return "declared", ("the declared policy itself lets it through (and the router and the wire follow it), "
                                f"against the estate's segregation rules: {f.decision}")
        return "", ""
    if allow == accepts:
        if reach:
            return "observed", ("the wire differs from both: the declared policy and the router's ruleset deny it, "
                                "yet it got through: another path or device lets it through")
        return "observed", ("the wire differs from both: the declared policy and the router's ruleset allow it, "
                            "yet nothing answered: a listener or route issue")
    if accepts:
        tail = ("the router lets it through" if reach else
                "the router would let it through; nothing answered on the wire, so something else stops it today")
        return "applied", f"the applied ruleset differs from the declared policy ({tail})"
    tail = ("the router blocks what the policy allows" if not reach else
            "the router's ruleset would block it, yet the wire let it through: it is not the path that decides")
    return "applied", f"the applied ruleset differs from the declared policy ({tail})"


def _apply(flows: list[Flow], rulesets: dict[str, applied_rulesets.Applied]) -> None:
    for f in flows:
        verdict, hops = applied_rulesets.judge(rulesets, f.path, f.dst_firewall, f.src, f.dst, f.protocol,
                                               None if f.protocol == "icmp" else f.port)
        f.applied, f.applied_hops = verdict, [str(h) for h in hops]
        # The router worth naming: the first that does not accept; else the one the policy's decision
        # names (where an allow is expected or a deny was due); else the last on the path.
        decisive = next((h for h in hops if not h.verdict.allows), None) or next(
            (h for h in hops if h.firewall == f.declared_firewall), None) or (hops[-1] if hops else None)
        if decisive is not None:
            f.applied_firewall, f.applied_rule = decisive.firewall, str(decisive.verdict)
        f.disagrees, f.disagreement = attribute(f)


def run_matrix(loaded: LoadedEstate, lab: ProbeNetwork, run: EvidenceSink, *,
               timeout: float = 1.0) -> tuple[dict[str, Any], list[Finding]]:
    flows = plan(loaded, lab)
    scope = next((s for s in loaded.estate.scan_scopes if s.lab), None)
    if scope is None:
        raise RuntimeError("the estate has no lab scan scope (scan_scopes with lab: true)")
    by_source: dict[str, list[Flow]] = {}
    for f in flows:
        by_source.setdefault(f.src_segment, []).append(f)

    def probe_from(key: str) -> None:
        seg = lab.segment(key)
        assert seg.netns
        items = by_source[key]
        auth = authorise(loaded, sorted({f.dst for f in items}), scope_name=scope.name, profile="discovery",
                         netns=seg.netns)
        for f in items:
            if not auth.allows(f.dst):
                raise RuntimeError(f"{f.dst} is not authorised")
        answer = probe(seg.netns, {"mode": "reach", "timeout": timeout,
                                   "probes": [{"src": f.src, "dst": f.dst, "proto": f.protocol, "port": f.port}
                                              for f in items]})
        for f, r in zip(items, answer["results"], strict=True):
            f.observed, f.reply = r["state"], r["reply"]

    # The rulesets in force while the probes run: read just before them.
    on_paths = {name for f in flows for name in f.path}
    rulesets = applied_rulesets.read([p for p in lab.firewall_points if p.name in on_paths])
    with ThreadPoolExecutor(max_workers=6) as pool:
        list(pool.map(probe_from, list(by_source)))
    _apply(flows, rulesets)

    refs: dict[str, EvidenceRef] = {}
    for name, a in sorted(rulesets.items()):
        if a.text:
            refs[name] = run.write_evidence(f"scan/segregation/ruleset-{name}.json", a.text,
                                            f"{name}: its ruleset (nft -j list ruleset), read before the probes")
    matrix = _matrix(flows)
    matrix["rulesets"] = {name: {"read": a.ruleset is not None, "why": a.why} for name, a in sorted(rulesets.items())}
    ref = run.write_evidence("scan/segregation/matrix.json", json.dumps(matrix, indent=1),
                             "segregation matrix: every probe with its declared, applied and observed verdicts")
    return matrix, findings_for(loaded, flows, [ref], rulesets=rulesets, ruleset_refs=refs)


def _matrix(flows: list[Flow]) -> dict[str, Any]:
    zones: dict[str, dict[str, dict[str, int]]] = {}
    for f in flows:
        cell = zones.setdefault(f"{f.src_zone}@{f.src_site}", {}).setdefault(f.dst_zone, {
            "probes": 0, "reachable": 0, "expected": 0, "breaches": 0, "declared_allow": 0, "applied_accept": 0,
            "applied_unknown": 0, "disagreements": 0})
        cell["probes"] += 1
        cell["reachable"] += int(f.reachable)
        cell["expected"] += int(f.expected)
        cell["breaches"] += int(f.reachable and not f.expected)
        cell["declared_allow"] += int(f.declared == "allow")
        cell["applied_accept"] += int(f.applied == "accept")
        cell["applied_unknown"] += int(f.applied not in ("accept", "deny"))
        cell["disagreements"] += int(bool(f.disagrees))
    who: dict[str, int] = {}
    for f in flows:
        if f.disagrees:
            who[f.disagrees] = who.get(f.disagrees, 0) + 1
    return {"flows": [{**asdict(f), "reachable": f.reachable} for f in flows], "zones": zones,
            "breaches": sum(1 for f in flows if f.reachable and not f.expected),
            "allowed_but_blocked": sum(1 for f in flows if f.expected and not f.reachable),
            "disagreements": who}


def _verdicts(f: Flow) -> dict[str, Any]:
    return {"flow": f.flow_text, "declared": f.declared, "declared_rule": f.declared_rule,
            "declared_where": f.declared_where,
            "applied": f.applied, "applied_firewall": f.applied_firewall, "applied_rule": f.applied_rule,
            "observed": f.observed, "reachable": f.reachable, "disagrees": f.disagrees,
            "disagreement": f.disagreement}


def _declared_text(f: Flow) -> str:
    return f"{f.declared} by {f.declared_firewall} {f.declared_rule}" + (
        f" ({f.declared_where})" if f.declared_where else "")


def findings_for(loaded: LoadedEstate, flows: list[Flow], evidence: list[EvidenceRef], *,
                 rulesets: dict[str, applied_rulesets.Applied] | None = None,
                 ruleset_refs: dict[str, EvidenceRef] | None = None) -> list[Finding]:
    out: list[Finding] = []
    breached: set[str] = set()
    refs = ruleset_refs or {}
    for f in flows:
        asset = f"zone:{f.src_zone}@{f.src_site}"
        key = f"{f.dst} {f.protocol}/{f.port}"
        ev = evidence + [refs[n] for n in f.path if n in refs]
        who = f"; {f.disagrees} disagrees: {f.disagreement}" if f.disagrees else ""
        if f.reachable and not f.expected:
            breached.add(asset)
            out.append(make_finding(
                "scan.segregation_breach", asset, Status.FAIL, key=key, zone=f.src_zone, site=f.src_site,
                observed=f"{f.src} reached {f.dst_name} ({f.dst}, zone {f.dst_zone}) on {f.protocol}/{f.port} "
                         f"({f.reply}); router: {f.applied or 'not read'} ({f.applied_rule}){who}",
                expected=f"blocked: {f.decision}" + (f" ({f.declared_where})" if f.declared_where else ""),
                evidence=ev, details={"flow": asdict(f), "verdicts": _verdicts(f)}))
        kind = loaded.estate.zone(f.src_zone).kind
        if f.reachable and f.management and (kind in USER_KINDS or kind is ZoneKind.PSN) and not f.expected:
            out.append(make_finding(
                "scan.management_exposed", f"host:{f.dst_name}", Status.FAIL,
                key=f"from {f.src_zone}@{f.src_site} {f.protocol}/{f.port}", zone=f.dst_zone,
                observed=f"management interface {f.dst}:{f.port}/{f.protocol} reachable from {f.src_zone} ({f.src})",
                expected="management interfaces reachable only from the management allow-list",
                evidence=ev, details={"flow": asdict(f), "verdicts": _verdicts(f)}))
        if f.disagrees in ("applied", "observed", "undetermined"):
            on_router = f.disagrees == "applied" and f.applied_firewall
            # Worse when the odd one out lets through what the policy denies.
            lets_through = f.declared == "deny" and (f.reachable or f.applied == "accept")
            out.append(make_finding(
                "scan.segregation_disagreement", f"firewall:{f.applied_firewall}" if on_router else asset,
                Status.FAIL, key=f"from {f.src_zone}@{f.src_site} to {f.dst} {f.protocol}/{f.port}",
                zone=f.src_zone, site=f.src_site, severity=Severity.HIGH if lets_through else None,
                observed=f"{f.flow_text}: {f.disagreement}. declared: {_declared_text(f)}; applied: {f.applied} "
                         f"({f.applied_rule}); observed: {f.observed} ({f.reply})",
                expected=f"the router and the wire do what the declared policy says: {_declared_text(f)}",
                evidence=ev, details={"flow": asdict(f), "verdicts": _verdicts(f), "router_rule": f.applied_rule,
                                      "where": f.declared_where}))
    for seg_zone in sorted({(f.src_zone, f.src_site) for f in flows}):
        asset = f"zone:{seg_zone[0]}@{seg_zone[1]}"
        if asset not in breached:
            n = sum(1 for f in flows if (f.src_zone, f.src_site) == seg_zone)
            out.append(make_finding("scan.segregation_breach", asset, Status.PASS, key="matrix", zone=seg_zone[0],
                                    site=seg_zone[1], observed=f"{n} probes: nothing reached that the policy forbids",
                                    expected="only flows the firewall policy allows", evidence=evidence))
    out += _router_results(flows, rulesets or {}, evidence, refs)
    return out


def _router_results(flows: list[Flow], rulesets: dict[str, applied_rulesets.Applied], evidence: list[EvidenceRef],
                    refs: dict[str, EvidenceRef]) -> list[Finding]:
    """Per router on a probed path: its ruleset agreed with the policy on every flow (pass), or could not be read."""
    out: list[Finding] = []
    for name in sorted({n for f in flows for n in f.path}):
        mine = [f for f in flows if name in f.path]
        a = rulesets.get(name)
        if a is None or a.ruleset is None:
            out.append(make_finding(
                "scan.segregation_disagreement", f"firewall:{name}", Status.NOT_ASSESSED, key="matrix",
                observed=f"{len(mine)} probed flows cross it; its ruleset was not read: "
                         f"{a.why if a else 'no way to read it from here'}",
                expected="the router's applied ruleset read back and judged for every probed flow", evidence=evidence))
        elif not any(f.disagrees == "applied" and f.applied_firewall == name for f in mine):
            unknown = sum(1 for f in mine if f.applied == "unknown")
            if unknown == len(mine):
                out.append(make_finding(
                    "scan.segregation_disagreement", f"firewall:{name}", Status.NOT_ASSESSED, key="matrix",
                    observed=f"its ruleset was read but none of the {len(mine)} probed flows could be judged from it",
                    expected="the router's applied ruleset judged for every probed flow",
                    evidence=evidence + ([refs[name]] if name in refs else [])))
                continue
            note = f"; {unknown} could not be judged from the ruleset" if unknown else ""
            out.append(make_finding(
                "scan.segregation_disagreement", f"firewall:{name}", Status.PASS, key="matrix",
                observed=f"{len(mine)} probed flows cross it: its applied ruleset does what the declared policy says"
                         f"{note}",
                expected="the router's applied ruleset does what the declared policy says",
                evidence=evidence + ([refs[name]] if name in refs else [])))
    return out
