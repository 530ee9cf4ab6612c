"""The lab, derived from the estate model: which namespaces, links, addresses and listeners.

Nothing here is configured by hand: the segments are the headquarters' and one small site's
VLANs (corporate, servers, guest and public Wi-Fi, PSN DMZ, management), plus an `azure`
segment for the LOB spokes that have declared hosts and an `internet` segment standing for the
breakout. Declared hosts are placed in the segment whose network holds their address, with a
listener per declared port; firewalls route between segments with the estate's own policy.

Layout (all inside namespaces named est-*, the root namespace gets nothing):

    est-sw                   one bridge per segment (the "switch")
    est-<firewall>           a router per firewall, one leg on each of its segments' bridges
    est-<site>-<vlan>        the hosts of a segment (several addresses on one interface)
    est-scan, est-scan-<site>  scanners: a leg on each segment of their site, NO default route
"""

from __future__ import annotations

import ipaddress
from dataclasses import asdict, dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from .. import yamlread
from ..model.schema import Estate, Site, VlanPurpose, ZoneKind

PREFIX = "est-"
SWITCH_NS = "est-sw"
HUB_SCANNER = "est-scan"
# The internet segment stands for the breakout: the last /26 of the connectivity hub's range, where
# the breakout firewall sits. Beyond it the lab has nothing, so "internet" ends there.
LAB_PURPOSES = {VlanPurpose.CORPORATE, VlanPurpose.SERVERS, VlanPurpose.GUEST_WIFI, VlanPurpose.PUBLIC_WIFI,
                VlanPurpose.PSN_DMZ, VlanPurpose.MANAGEMENT}
FAULTS_FILE = Path(__file__).resolve().parent / "faults.yaml"
# Ports a stand-in client answers on (closed, so a RST shows the firewall let the probe through).
CLIENT_PROBE_PORTS = [("tcp", 22), ("tcp", 445), ("tcp", 3389)]


@dataclass
class Listener:
    address: str
    port: int
    protocol: str
    kind: str
    name: str
    settings: dict[str, Any] = field(default_factory=dict)
    fault: str | None = None


@dataclass
class Segment:
    index: int
    key: str
    site: str
    zone: str
    cidrs: list[str]
    gateways: list[str]
    firewall: str
    netns: str | None
    addresses: list[str]           # host addresses in netns (declared first)
    source: str | None             # where this segment's segregation probes come from
    scanner: str | None
    scanner_addresses: list[str]
    listeners: list[Listener] = field(default_factory=list)

    @property
    def bridge(self) -> str:
        return f"est-b{self.index}"


@dataclass
class FirewallNode:
    name: str
    site: str
    netns: str
    management_address: str | None
    listeners: list[Listener] = field(default_factory=list)


@dataclass
class Bypass:
    """A planted dual-homed device: a leg on two segments, routing (and NATing) round their firewall."""

    fault: str
    netns: str
    from_segment: str      # segment key
    from_address: str      # its leg there (the route the source segment's hosts are given)
    to_segment: str
    to_address: str        # its leg on the far segment
    target: str            # the one address the source segment reaches through it


@dataclass
class Lab:
    hub_site: str
    segments: list[Segment]
    firewalls: list[FirewallNode]
    transit: list[dict[str, str]]   # links between firewalls: a_ns, a_addr, b_ns, b_addr, cidr
    scanners: dict[str, list[str]]  # scanner netns -> segment keys
    faults: list[dict[str, Any]]
    bypasses: list[Bypass] = field(default_factory=list)

    # The shape the scan engine's segregation matrix needs (security_checks/scan/vantage.ProbeNetwork).
    @property
    def probe_segments(self) -> list[Segment]:
        return self.segments

    @property
    def firewall_points(self) -> list[FirewallNode]:
        return self.firewalls

    @property
    def client_probe_ports(self) -> list[tuple[str, int]]:
        return CLIENT_PROBE_PORTS

    def namespaces(self) -> list[str]:
        names = [SWITCH_NS, *(f.netns for f in self.firewalls), *(s.netns for s in self.segments if s.netns),
                 *self.scanners, *(b.netns for b in self.bypasses)]
        return list(dict.fromkeys(names))

    def segment(self, key: str) -> Segment:
        return next(s for s in self.segments if s.key == key)

    def segment_of(self, address: str) -> Segment | None:
        ip = ipaddress.ip_address(address)
        for s in self.segments:
            if any(ip in ipaddress.ip_network(c) for c in s.cidrs):
                return s
        return None

    def firewall(self, name: str) -> FirewallNode:
        return next(f for f in self.firewalls if f.name == name)

    def scanner_vantage(self, netns: str) -> dict[str, Any]:
        segs = [self.segment(k) for k in self.scanners[netns]]
        return {"netns": netns, "networks": [c for s in segs for c in s.cidrs],
                "addresses": [a for s in segs for a in s.scanner_addresses]}

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@cache
def load_faults(path: Path = FAULTS_FILE) -> dict[str, list[dict[str, Any]]]:
    data = yamlread.safe_load(path.read_text()) or {}
    return {"selftest": data.get("selftest", []), "lab": data.get("lab", [])}


def hub_site(estate: Estate) -> Site:
    for s in estate.sites:
        if s.kind.value == "civic-centre" and s.firewall:
            return s
    raise ValueError("the lab needs a civic-centre site with a firewall (the hub)")


def small_site(estate: Estate, hub: Site) -> Site | None:
    """The first other site behind its own firewall that has declared hosts: it gets a site scanner."""
    for s in estate.sites:
        if s is hub or not s.firewall:
            continue
        if any(h.site == s.name for h in estate.declared_hosts):
            return s
    return None


def internet_standin(estate: Estate) -> tuple[str, str]:
    hub = ipaddress.ip_network(estate.azure.connectivity.hub_address_space)
    last = ipaddress.ip_network(str(list(hub.subnets(new_prefix=max(hub.prefixlen, 26)))[-1]))
    return str(last), str(last.network_address + 8)


def _tls_kind(service: str) -> str:
    return "https" if "http" in service else "tls"


def _listener_kind(service: str, protocol: str, tls: bool) -> str:
    if protocol == "udp":
        return "sip-udp" if service.startswith("sip") else "udp-echo"
    if tls:
        return _tls_kind(service)
    if service == "ssh":
        return "ssh"
    if service == "http":
        return "http"
    if service == "telnet":
        return "telnet"
    return "tcp"


def build_lab(estate: Estate, faults: list[dict[str, Any]] | None = None) -> Lab:
    faults = load_faults()["lab"] if faults is None else faults
    hub = hub_site(estate)
    small = small_site(estate, hub)
    segments: list[Segment] = []
    idx = 0

    def add(site: Site | None, key: str, zone: str, cidrs: list[str], firewall: str, scanner: str | None,
            netns_name: str, gateways: list[str] | None = None) -> Segment:
        nonlocal idx
        nets = [ipaddress.ip_network(c) for c in cidrs]
        gws = gateways or [str(next(n.hosts())) for n in nets]
        seg = Segment(index=idx, key=key, site=site.name if site else hub.name, zone=zone, cidrs=cidrs,
                      gateways=gws, firewall=firewall, netns=netns_name, addresses=[], source=None,
                      scanner=scanner, scanner_addresses=[str(n.broadcast_address - 1) for n in nets]
                      if scanner else [])
        idx += 1
        segments.append(seg)
        return seg

    for site, scanner in ((hub, HUB_SCANNER), *(((small, f"est-scan-{small.name}"),) if small else ())):
        assert site.firewall
        for v in site.vlans:
            if v.purpose not in LAB_PURPOSES:
                continue
            add(site, f"{site.name}/{v.name}", v.zone, [v.cidr], site.firewall, scanner,
                f"{PREFIX}{site.name}-{v.name}", [v.gateway] if v.gateway else None)
    # LOB spokes with declared hosts, in one "azure" segment behind the hub firewall.
    spokes = sorted({lob.address_space for lob in estate.lob_systems if lob.address_space and any(
        h.lob == lob.name for h in estate.declared_hosts)})
    if spokes:
        add(None, "azure", "azure", spokes, hub.firewall or "", HUB_SCANNER, f"{PREFIX}azure")
    inet_cidr, inet_host = internet_standin(estate)
    inet = add(None, "internet", "internet", [inet_cidr], hub.firewall or "", None, f"{PREFIX}internet")
    inet.addresses.append(inet_host)
    for port, kind, proto in ((80, "http", "tcp"), (443, "https", "tcp"), (53, "udp-echo", "udp")):
        inet.listeners.append(Listener(inet_host, port, proto, kind, f"breakout-{port}"))

    # Declared hosts into their segments; each declared port gets a listener.
    firewall_names = {f.name for f in estate.firewalls}
    fw_hosts = {h.name: h for h in estate.declared_hosts if h.role == "firewall" and h.name in firewall_names}
    for h in estate.declared_hosts:
        if h.role == "selftest" or h.name in fw_hosts:
            continue
        seg = _segment_for(segments, h.address)
        if seg is None:
            continue
        seg.addresses.append(h.address)
        for p in h.ports:
            seg.listeners.append(Listener(h.address, p.port, p.protocol, _listener_kind(p.service, p.protocol, p.tls),
                                          h.name))
    # Stand-in clients for zones people sit in, so probes have a source and a target there.
    for seg in segments:
        zkind = estate.zone(seg.zone).kind if seg.zone in {z.name for z in estate.zones} else None
        if not seg.addresses and zkind in (ZoneKind.USER, ZoneKind.GUEST, ZoneKind.PUBLIC):
            net = ipaddress.ip_network(seg.cidrs[0])
            seg.addresses.append(str(net.network_address + 10))
        if not seg.addresses:
            seg.netns = None  # nothing lives there but the firewall's interface (and the scanner)
        seg.source = seg.addresses[0] if seg.addresses else None

    firewalls: list[FirewallNode] = []
    for fw_name in dict.fromkeys(s.firewall for s in segments):
        fw = estate.firewall(fw_name)
        node = FirewallNode(name=fw.name, site=fw.site, netns=f"{PREFIX}{fw.name}",
                            management_address=fw.management_address)
        host = fw_hosts.get(fw.name)
        for p in host.ports if host else []:
            # Firewall services listen on every interface; the firewall's input policy decides who gets in.
            node.listeners.append(Listener("0.0.0.0", p.port, p.protocol,  # noqa: S104
                                           _listener_kind(p.service, p.protocol, p.tls), fw.name))
        firewalls.append(node)

    transit: list[dict[str, str]] = []
    if small and small.firewall:
        net = ipaddress.ip_network(small.ranges[0])
        t = ipaddress.ip_network(f"{net.network_address + 254 * 256}/30")
        a, b = list(t.hosts())[:2]
        transit.append({"a_ns": f"{PREFIX}{hub.firewall}", "a_addr": str(a), "b_ns": f"{PREFIX}{small.firewall}",
                        "b_addr": str(b), "cidr": str(t), "remote_ranges": ",".join(small.ranges)})

    bypasses = _apply_faults(segments, firewalls, faults)
    scanners: dict[str, list[str]] = {}
    for s in segments:
        if s.scanner:
            scanners.setdefault(s.scanner, []).append(s.key)
    return Lab(hub_site=hub.name, segments=segments, firewalls=firewalls, transit=transit, scanners=scanners,
               faults=faults, bypasses=bypasses)


def _segment_for(segments: list[Segment], address: str) -> Segment | None:
    ip = ipaddress.ip_address(address)
    for s in segments:
        if any(ip in ipaddress.ip_network(c) for c in s.cidrs):
            return s
    return None


def _bypass_leg(seg: Segment) -> str:
    """A free address on the segment for a planted device: below the scanner's, above the hosts'."""
    net = ipaddress.ip_network(seg.cidrs[0])
    taken = {*seg.addresses, *seg.gateways, *seg.scanner_addresses}
    return next(str(a) for a in (net.broadcast_address - n for n in range(5, 60)) if str(a) not in taken)


def _apply_faults(segments: list[Segment], firewalls: list[FirewallNode],
                  faults: list[dict[str, Any]]) -> list[Bypass]:
    bypasses: list[Bypass] = []
    for f in faults:
        action = f.get("action")
        if action == "nft-rule":
            continue  # rendered into the firewall's ruleset
        if action == "bypass-host":
            src, dst = _segment_for(segments, f["from_address"]), _segment_for(segments, f["to_address"])
            if src is None or dst is None or not src.netns:
                raise ValueError(f"lab fault {f['id']}: from_address and to_address must be in lab segments with hosts")
            bypasses.append(Bypass(fault=f["id"], netns=f"{PREFIX}bypass{len(bypasses)}", from_segment=src.key,
                                   from_address=_bypass_leg(src), to_segment=dst.key, to_address=_bypass_leg(dst),
                                   target=f["to_address"]))
            continue
        seg = _segment_for(segments, f["address"])
        if seg is None:
            raise ValueError(f"lab fault {f['id']}: {f['address']} is in no lab segment")
        if action == "add-listener":
            if f["address"] not in seg.addresses:
                seg.addresses.append(f["address"])
            seg.listeners.append(Listener(f["address"], int(f["port"]), f.get("protocol", "tcp"), f["kind"],
                                          f"fault-{f['id']}", fault=f["id"]))
            continue
        match = [li for li in seg.listeners if li.address == f["address"] and li.port == int(f["port"])]
        if not match:
            raise ValueError(f"lab fault {f['id']}: no declared service at {f['address']}:{f['port']}")
        if action == "stop-listener":
            seg.listeners.remove(match[0])
        elif action == "change-listener":
            match[0].settings.update(f.get("settings", {}))
            match[0].fault = f["id"]
        else:
            raise ValueError(f"lab fault {f['id']}: unknown action {action!r}")
    return bypasses
