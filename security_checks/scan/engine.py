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
import tempfile
import threading
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from ..findings import Finding
from ..model.loader import LoadedEstate
from ..step import EvidenceSink
from . import nmaprun
from .drift import ScanContext, compare
from .nmapxml import ScanResult, merge, parse
from .scope import Authorisation, ScopeRefused, authorise
from .versions import Knowledge

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
ARP_TIMEOUT = 0.4  # seconds to wait for ARP answers on a link after the last request


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


def arp_sweep(auth: Authorisation, vantage: Vantage, networks: list[Network],
              timeout: float = ARP_TIMEOUT) -> list[str]:
    """scapy ARP on the links the scanner sits on; returns live addresses (the scanner's own excluded)."""
    live = {a for _net, found in arp_sweep_stream(auth, vantage, networks, timeout) for a in found}
    return sorted(live, key=ipaddress.ip_address)


def arp_sweep_stream(auth: Authorisation, vantage: Vantage, networks: list[Network],
                     timeout: float = ARP_TIMEOUT) -> Iterator[tuple[str | None, list[str]]]:
    """arp_sweep, network by network as each link's sweep ends: (network, live addresses in it).

    A last (None, addresses) carries anything the probe reported outside a per-network line.
    """
    targets = [str(n) for n in networks]
    nmaprun._check_targets(auth, targets)
    own = set(vantage.addresses)
    seen: set[str] = set()
    for line in probe_lines(vantage.netns, {"mode": "arp", "targets": targets, "timeout": timeout, "stream": True}):
        found = [a for a in line["up"] if a not in own and auth.allows(a) and a not in seen]
        seen.update(found)
        if "network" in line:
            yield str(line["network"]), found
        elif found:
            yield None, found


def _probe_cmd(netns: str | None) -> tuple[list[str], dict[str, str]]:
    cmd = [sys.executable, "-m", "security_checks.scan.probe"]
    if netns:
        cmd = ["ip", "netns", "exec", netns, *cmd]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    return cmd, env


def probe(netns: str | None, request: dict[str, Any]) -> dict[str, Any]:
    """Run security_checks.scan.probe (scapy) in `netns` and return its JSON answer."""
    cmd, env = _probe_cmd(netns)
    proc = subprocess.run(cmd, input=json.dumps(request), capture_output=True, text=True, timeout=600, env=env,
                          check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"probe in {netns or 'this namespace'} failed: {proc.stderr.strip()[-400:]}")
    answer: dict[str, Any] = json.loads(proc.stdout)
    return answer


def probe_lines(netns: str | None, request: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Like probe(), for a streaming request: each JSON line of the answer as soon as the probe writes it."""
    cmd, env = _probe_cmd(netns)
    with tempfile.TemporaryFile() as errf, subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                                             stderr=errf, text=True, env=env) as proc:
        killer = threading.Timer(600, proc.kill)
        killer.start()
        try:
            assert proc.stdin is not None and proc.stdout is not None
            proc.stdin.write(json.dumps(request))
            proc.stdin.close()
            bad = False
            for line in proc.stdout:
                if not line.strip() or bad:
                    continue
                try:
                    answer = json.loads(line)
                except json.JSONDecodeError:
                    bad = True  # a line cut short: the exit status says why
                    continue
                yield answer
            rc = proc.wait()
        finally:
            killer.cancel()
        if rc != 0 or bad:
            errf.seek(0)
            tail = errf.read().decode(errors="replace").strip()[-400:]
            raise RuntimeError(f"probe in {netns or 'this namespace'} failed: {tail or f'exit status {rc}'}")


def scan(loaded: LoadedEstate, auth: Authorisation, vantage: Vantage, run: EvidenceSink, label: str, *,
         privileged: bool, top_ports: int | None = 1000, targets: list[str] | None = None,
         skip_discovery: bool = False, wrapper_dir: Path | None = None,
         ports_override: tuple[set[int], set[int]] | None = None, knowledge: Knowledge | None = None) -> ScanOutcome:
    """One authorised scan from one vantage point, its XML stored as evidence and compared."""
    if targets is None:
        if vantage.networks:
            nets = intersect(auth, vantage.networks)
            if not nets:
                raise ScopeRefused(f"scanner {vantage.name} sits on no network of scope {auth.scope.name!r}")
        else:
            nets = list(auth.networks)
        onlink = bool(vantage.networks) and privileged
        hosts = [] if onlink else [str(n) for n in nets]
        scanned = nets
    else:
        onlink = False
        hosts = targets
        scanned = [ipaddress.ip_network(t, strict=False) for t in targets]
    live: list[str] = []
    tcp, udp = ports_override if ports_override is not None else declared_ports(loaded, scanned)
    if auth.profile == "discovery":
        tcp, udp = set(), set()
    # nmap scans hosts behind different interfaces in separate, sequential host groups; one nmap
    # per on-link network, run side by side, takes the time of the slowest one instead.
    group_nets = nets if targets is None and vantage.networks else []
    planned: list[tuple[str, int, nmaprun.NmapJob, Future[bytes]]] = []

    def submit(pool: ThreadPoolExecutor, group_hosts: list[str], *, discovered: bool) -> None:
        for gname, ghosts in _group_by_network(group_hosts, group_nets):
            jobs = nmaprun.build(auth, ghosts, tcp=tcp, udp=udp, privileged=privileged,
                                 exclude=vantage.addresses or None, skip_discovery=skip_discovery or discovered,
                                 extra_tcp_top=top_ports)
            for j, job in enumerate(jobs):
                fut = pool.submit(nmaprun.run, auth, job, wrapper_dir=wrapper_dir)
                planned.append((gname, j, job, fut))

    # Every job of the scan at once (a TCP and a UDP job per network at most), as a person would.
    with ThreadPoolExecutor(max_workers=2 * max(1, len(group_nets))) as pool:
        if onlink:
            # scapy ARP discovery first; each network's nmap jobs start as soon as that link's sweep
            # ends, while the other links are still being swept. Hosts are grouped by the network
            # they sit in, so the jobs are the same as after a sweep of every link, provided the
            # networks do not overlap (otherwise: wait for the whole sweep).
            disjoint = not any(a.overlaps(b) for i, a in enumerate(nets) for b in nets[i + 1:])
            for network, found in arp_sweep_stream(auth, vantage, nets):
                live.extend(found)
                if disjoint and network is not None and found:
                    submit(pool, sorted(found, key=ipaddress.ip_address), discovered=True)
                elif found and planned:
                    raise RuntimeError(f"probe in {vantage.netns}: addresses outside its per-network answers")
            live.sort(key=ipaddress.ip_address)
            hosts = live
            if not planned and hosts:
                submit(pool, hosts, discovered=True)
        elif hosts:
            submit(pool, hosts, discovered=False)
    # Results, evidence and commands in network order, whichever job finished first.
    planned.sort(key=lambda item: (item[0], item[1]))
    evidence = []
    results = []
    commands: list[list[str]] = []
    xml = b""
    if not planned:
        xml = _empty_xml(auth)
        results.append(parse(xml, source=f"nmap output ({label})"))
        evidence.append(run.write_evidence(f"scan/{label}/nmap.xml", xml, f"no live hosts from {vantage.name}"))
    for gname, j, job, fut in planned:
        name = f"{gname}{'-tcp' if j == 0 else '-udp'}"
        out = fut.result()
        results.append(parse(out, source=f"nmap output ({label}/{name}.xml)"))
        evidence.append(run.write_evidence(f"scan/{label}/{name}.xml", out,
                                           f"nmap XML from {vantage.name} (scope {auth.scope.name})"))
        commands.append(job.command())
        xml = xml or out
    result = merge(results)
    ctx = ScanContext(scanned=scanned, evidence=evidence, ignore=set(vantage.addresses), vantage=vantage.name,
                      sources=list(vantage.addresses), knowledge=knowledge)
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


def authorise_or_refuse(loaded: LoadedEstate, **kwargs: Any) -> Authorisation:
    return authorise(loaded, **kwargs)
