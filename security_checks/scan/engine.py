"""Scans end to end: authorise, discover, scan, keep the XML as evidence, compare with the estate.

Every path that sends packets starts from `scope.authorise()`: the self-test on loopback, lab
scans from the lab's scanner namespaces, and the per-site scanners. Imports of XML produced
elsewhere send nothing and are compared the same way.
"""

from __future__ import annotations

import ipaddress
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from ..findings import Finding
from ..model.loader import LoadedEstate
from ..store import RunWriter
from . import nmaprun
from .drift import ScanContext, compare
from .nmapxml import ScanResult, merge, parse
from .scope import Authorisation, ScopeRefused, authorise

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass
class Vantage:
    """Where packets leave from: a lab namespace with the networks it sits on, or this machine."""

    name: str
    netns: str | None = None
    networks: list[str] = field(default_factory=list)   # on-link networks (the scanner's interfaces)
    addresses: list[str] = field(default_factory=list)  # the scanner's own addresses: never findings


@dataclass
class ScanOutcome:
    label: str
    xml: bytes
    result: ScanResult
    findings: list[Finding]
    targets: list[str]
    command: list[list[str]]
    live_hosts: list[str] = field(default_factory=list)


def declared_ports(loaded: LoadedEstate, networks: list[Network]) -> tuple[set[int], set[int]]:
    tcp: set[int] = set()
    udp: set[int] = set()
    for h in loaded.estate.declared_hosts:
        ip = ipaddress.ip_address(h.address)
        if any(ip in n for n in networks):
            for p in h.ports:
                (tcp if p.protocol == "tcp" else udp).add(p.port)
    return tcp, udp


def intersect(auth: Authorisation, onlink: list[str]) -> list[Network]:
    """The authorised part of each on-link network (exclusions already cut out of auth.networks)."""
    out: list[Network] = []
    for raw in onlink:
        link = ipaddress.ip_network(raw, strict=False)
        for n in auth.networks:
            if n.version != link.version or not n.overlaps(link):
                continue
            out.append(n if n.subnet_of(link) else link)  # type: ignore[arg-type]
    uniq = {str(n): n for n in out}
    return sorted(uniq.values(), key=lambda n: (n.version, n.network_address, n.prefixlen))


def arp_sweep(auth: Authorisation, vantage: Vantage, networks: list[Network], timeout: float = 0.4) -> list[str]:
    """scapy ARP on the links the scanner sits on; returns live addresses (the scanner's own excluded)."""
    targets = [str(n) for n in networks]
    nmaprun._check_targets(auth, targets)
    out = probe(vantage.netns, {"mode": "arp", "targets": targets, "timeout": timeout})
    own = set(vantage.addresses)
    return [a for a in out["up"] if a not in own and auth.allows(a)]


def probe(netns: str | None, request: dict[str, Any]) -> dict[str, Any]:
    """Run security_checks.scan.probe (scapy) in `netns` and return its JSON answer."""
    cmd = [sys.executable, "-m", "security_checks.scan.probe"]
    if netns:
        cmd = ["ip", "netns", "exec", netns, *cmd]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    proc = subprocess.run(cmd, input=json.dumps(request), capture_output=True, text=True, timeout=600, env=env,
                          check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"probe in {netns or 'this namespace'} failed: {proc.stderr.strip()[-400:]}")
    answer: dict[str, Any] = json.loads(proc.stdout)
    return answer


def scan(loaded: LoadedEstate, auth: Authorisation, vantage: Vantage, run: RunWriter, label: str, *,
         privileged: bool, top_ports: int | None = 1000, targets: list[str] | None = None,
         skip_discovery: bool = False, wrapper_dir: Path | None = None,
         ports_override: tuple[set[int], set[int]] | None = None) -> ScanOutcome:
    """One authorised scan from one vantage point, its XML stored as evidence and compared."""
    if targets is None:
        if vantage.networks:
            nets = intersect(auth, vantage.networks)
            if not nets:
                raise ScopeRefused(f"scanner {vantage.name} sits on no network of scope {auth.scope.name!r}")
        else:
            nets = list(auth.networks)
        onlink = bool(vantage.networks) and privileged
        live: list[str] = []
        if onlink:
            live = arp_sweep(auth, vantage, nets)
            hosts = live
            skip_discovery = True
        else:
            hosts = [str(n) for n in nets]
        scanned = nets
    else:
        hosts = targets
        live = []
        scanned = [ipaddress.ip_network(t, strict=False) for t in targets]
    tcp, udp = ports_override if ports_override is not None else declared_ports(loaded, scanned)
    if auth.profile == "discovery":
        tcp, udp = set(), set()
    evidence = []
    results = []
    commands: list[list[str]] = []
    xml = b""
    if not hosts:
        xml = _empty_xml(auth)
        results.append(parse(xml, source=f"nmap output ({label})"))
        evidence.append(run.write_evidence(f"scan/{label}/nmap.xml", xml, f"no live hosts from {vantage.name}"))
    else:
        # nmap scans hosts behind different interfaces in separate, sequential host groups; one
        # nmap per on-link network, run side by side, takes the time of the slowest one instead.
        groups = _group_by_network(hosts, nets if targets is None and vantage.networks else [])
        planned: list[tuple[str, nmaprun.NmapJob]] = []
        for gname, ghosts in groups:
            jobs = nmaprun.build(auth, ghosts, tcp=tcp, udp=udp, privileged=privileged,
                                 exclude=vantage.addresses or None, skip_discovery=skip_discovery,
                                 extra_tcp_top=top_ports)
            planned.extend((f"{gname}{'-tcp' if j == 0 else '-udp'}", job) for j, job in enumerate(jobs))
        with ThreadPoolExecutor(max_workers=8) as pool:
            outputs = list(pool.map(lambda item: nmaprun.run(auth, item[1], wrapper_dir=wrapper_dir), planned))
        for (name, job), out in zip(planned, outputs, strict=True):
            results.append(parse(out, source=f"nmap output ({label}/{name}.xml)"))
            evidence.append(run.write_evidence(f"scan/{label}/{name}.xml", out,
                                               f"nmap XML from {vantage.name} (scope {auth.scope.name})"))
            commands.append(job.command())
            xml = xml or out
    result = merge(results)
    ctx = ScanContext(scanned=scanned, evidence=evidence, ignore=set(vantage.addresses), vantage=vantage.name)
    findings = compare(loaded.estate, result, ctx)
    run.write_evidence(f"scan/{label}/command.json", json.dumps(
        {"vantage": vantage.name, "netns": vantage.netns, "scope": auth.scope.name, "profile": auth.profile,
         "commands": commands, "arp_live": live}, indent=1), "the nmap commands and discovery results")
    return ScanOutcome(label=label, xml=xml, result=result, findings=findings, targets=hosts, command=commands,
                       live_hosts=live)


def _group_by_network(hosts: list[str], networks: list[Network]) -> list[tuple[str, list[str]]]:
    if not networks:
        return [("nmap", hosts)]
    groups: dict[str, list[str]] = {}
    for h in hosts:
        ip = ipaddress.ip_address(h)
        net = next((n for n in networks if ip in n), None)
        groups.setdefault(str(net).replace("/", "_") if net else "other", []).append(h)
    return sorted(groups.items())


def _empty_xml(auth: Authorisation) -> bytes:
    now = int(datetime.now().timestamp())
    return (f'<?xml version="1.0"?><nmaprun scanner="estate" args="(no live hosts in scope {auth.scope.name})" '
            f'start="{now}" version=""><runstats><finished time="{now}"/></runstats></nmaprun>').encode()


def import_xml(loaded: LoadedEstate, run: RunWriter, data: bytes, *, source: str) -> tuple[ScanResult, list[Finding]]:
    """Compare nmap XML produced elsewhere with the estate. Raises BadScanXml for hostile input."""
    result = parse(data, source=source)
    ref = run.write_evidence("scan/import/nmap.xml", data, f"imported nmap XML ({Path(source).name})")
    scanned: list[Network] = []
    for h in result.hosts:
        scanned.append(ipaddress.ip_network(h.address))
    ctx = ScanContext(scanned=scanned, evidence=[ref], vantage=f"import:{Path(source).name}")
    return result, compare(loaded.estate, result, ctx)


def authorise_or_refuse(loaded: LoadedEstate, **kwargs: Any) -> Authorisation:
    return authorise(loaded, **kwargs)
