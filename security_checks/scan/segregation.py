"""The segregation matrix: probe from every zone to every other zone's declared ports, compare with policy.

Sources are probe points in each zone (in the demo, the lab's zone namespaces; each probes from an
address of its own zone: see vantage.ProbeNetwork); targets are
the declared hosts and ports, the firewalls' management interfaces, a stand-in client in each user
zone and the breakout. scapy sends one TCP SYN or UDP datagram per target (retried once); any
answer from the target means every firewall on the way let it through. The expected side comes
from the estate's firewall policy only (policy.py). Extra rules that hold whatever the policy says:
guest and public Wi-Fi reach nothing but the internet breakout.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any

from ..checks import make_finding
from ..findings import EvidenceRef, Finding, Status
from ..model.loader import LoadedEstate
from ..model.schema import ZoneKind
from ..network.policy import Decision, Policy
from ..step import EvidenceSink
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
    observed: str = ""   # open | closed | blocked | silent
    reply: str = ""

    @property
    def reachable(self) -> bool:
        return self.observed in ("open", "closed")


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
                              expected=expected, decision=reason))
    return flows


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

    with ThreadPoolExecutor(max_workers=6) as pool:
        list(pool.map(probe_from, list(by_source)))

    matrix = _matrix(flows)
    ref = run.write_evidence("scan/segregation/matrix.json", json.dumps(matrix, indent=1),
                             "segregation matrix: every probe, what the policy expects and what was observed")
    return matrix, findings_for(loaded, flows, [ref])


def _matrix(flows: list[Flow]) -> dict[str, Any]:
    zones: dict[str, dict[str, dict[str, int]]] = {}
    for f in flows:
        cell = zones.setdefault(f"{f.src_zone}@{f.src_site}", {}).setdefault(f.dst_zone, {
            "probes": 0, "reachable": 0, "expected": 0, "breaches": 0})
        cell["probes"] += 1
        cell["reachable"] += int(f.reachable)
        cell["expected"] += int(f.expected)
        cell["breaches"] += int(f.reachable and not f.expected)
    return {"flows": [{**asdict(f), "reachable": f.reachable} for f in flows], "zones": zones,
            "breaches": sum(1 for f in flows if f.reachable and not f.expected),
            "allowed_but_blocked": sum(1 for f in flows if f.expected and not f.reachable)}


def findings_for(loaded: LoadedEstate, flows: list[Flow], evidence: list[EvidenceRef]) -> list[Finding]:
    out: list[Finding] = []
    breached: set[str] = set()
    for f in flows:
        asset = f"zone:{f.src_zone}@{f.src_site}"
        key = f"{f.dst} {f.protocol}/{f.port}"
        if f.reachable and not f.expected:
            breached.add(asset)
            out.append(make_finding(
                "scan.segregation_breach", asset, Status.FAIL, key=key, zone=f.src_zone, site=f.src_site,
                observed=f"{f.src} reached {f.dst_name} ({f.dst}, zone {f.dst_zone}) on {f.protocol}/{f.port} "
                         f"({f.reply})",
                expected=f"blocked: {f.decision}", evidence=evidence,
                details={"flow": asdict(f)}))
        kind = loaded.estate.zone(f.src_zone).kind
        if f.reachable and f.management and (kind in USER_KINDS or kind is ZoneKind.PSN) and not f.expected:
            out.append(make_finding(
                "scan.management_exposed", f"host:{f.dst_name}", Status.FAIL,
                key=f"from {f.src_zone}@{f.src_site} {f.protocol}/{f.port}", zone=f.dst_zone,
                observed=f"management interface {f.dst}:{f.port}/{f.protocol} reachable from {f.src_zone} ({f.src})",
                expected="management interfaces reachable only from the management allow-list",
                evidence=evidence, details={"flow": asdict(f)}))
    for seg_zone in sorted({(f.src_zone, f.src_site) for f in flows}):
        asset = f"zone:{seg_zone[0]}@{seg_zone[1]}"
        if asset not in breached:
            n = sum(1 for f in flows if (f.src_zone, f.src_site) == seg_zone)
            out.append(make_finding("scan.segregation_breach", asset, Status.PASS, key="matrix", zone=seg_zone[0],
                                    site=seg_zone[1], observed=f"{n} probes: nothing reached that the policy forbids",
                                    expected="only flows the firewall policy allows", evidence=evidence))
    return out

