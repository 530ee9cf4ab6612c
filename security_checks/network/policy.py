"""What the estate's firewall policy allows: the expected side of the segregation matrix.

Derived only from the estate (zones, address objects, services, rules in order, default deny,
management allow-lists), never from a device's running ruleset: the lab's nftables ruleset, or a
real firewall, is the thing under test.

Zones are matched by address: a zone holds every VLAN of that zone across the estate, a cloud
zone also the LOB spokes (`reach.zone_prefix_map`, the same prefixes the Pulumi program's firewall
rules use), and `internet` is every address no other zone holds. A flow crossing two firewalls (a
small site to headquarters) must be allowed by both.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from functools import cached_property

from ..model.schema import (
    CONTROLLED_ZONES,
    CORPORATE_ZONES,
    PURPOSE_ZONE_KINDS,
    SSID_VLAN_PURPOSES,
    Estate,
    Firewall,
    FirewallRule,
    SsidPurpose,
    VlanPurpose,
    Zone,
    ZoneKind,
)
from .reach import zone_prefix_map

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class Decision:
    allowed: bool
    firewall: str
    rule: str  # rule id, "default-deny", "management allow-list", "zone not on firewall"

    def __str__(self) -> str:
        return f"{'allow' if self.allowed else 'deny'} by {self.firewall} {self.rule}"


class Policy:
    def __init__(self, estate: Estate):
        self.estate = estate

    @cached_property
    def zone_networks(self) -> dict[str, list[Network]]:
        return {zone: [ipaddress.ip_network(p) for p in prefixes]
                for zone, prefixes in zone_prefix_map(self.estate).items()}

    @cached_property
    def internal(self) -> list[Network]:
        return [n for nets in self.zone_networks.values() for n in nets]

    def zone_of(self, address: str) -> str:
        ip = ipaddress.ip_address(address)
        for zone, nets in self.zone_networks.items():
            if any(ip in n for n in nets):
                return zone
        return "internet"

    def _objects(self, fw: Firewall, name: str) -> list[Network]:
        for o in fw.address_objects:
            if o.name == name:
                return [ipaddress.ip_network(a, strict=False) for a in o.addresses]
        raise KeyError(f"{fw.name}: no address object {name!r}")

    def _matches(self, fw: Firewall, rule: FirewallRule, src: str, src_zone: str, dst: str, dst_zone: str,
                 protocol: str, port: int) -> bool:
        if rule.from_zone != src_zone or rule.to_zone != dst_zone:
            return False
        if rule.source != "any" and not any(ipaddress.ip_address(src) in n for n in self._objects(fw, rule.source)):
            return False
        if rule.destination != "any" and not any(ipaddress.ip_address(dst) in n
                                                 for n in self._objects(fw, rule.destination)):
            return False
        if rule.services == "any":
            return True
        for name in rule.services:
            svc = next((s for s in fw.services if s.name == name), None)
            if svc and svc.protocol == protocol and port in svc.ports:
                return True
        return False

    def forward(self, fw: Firewall, src: str, dst: str, protocol: str, port: int) -> Decision:
        src_zone, dst_zone = self.zone_of(src), self.zone_of(dst)
        zones = {z.zone for z in fw.zones}
        if src_zone not in zones or dst_zone not in zones:
            return Decision(False, fw.name, f"zone not on firewall ({src_zone} -> {dst_zone})")
        for rule in fw.rules:
            if self._matches(fw, rule, src, src_zone, dst, dst_zone, protocol, port):
                return Decision(rule.action == "allow", fw.name, rule.id)
        return Decision(False, fw.name, "default-deny")

    def to_firewall(self, fw: Firewall, src: str, protocol: str, port: int) -> Decision:
        """Traffic to the firewall itself: only its declared management ports, only from its allow-list."""
        host = next((h for h in self.estate.declared_hosts if h.name == fw.name and h.role == "firewall"), None)
        ports = {(p.protocol, p.port) for p in host.ports if p.management} if host else set()
        allow = [ipaddress.ip_network(a, strict=False) for a in fw.management_allowlist]
        ok = (protocol, port) in ports and any(ipaddress.ip_address(src) in n for n in allow)
        return Decision(ok, fw.name, "management allow-list")

    def path(self, firewalls: list[str], src: str, dst: str, protocol: str, port: int,
             dst_firewall: str | None = None) -> Decision:
        """Every firewall on the path must allow; `dst_firewall`: the destination is that firewall itself."""
        last = Decision(False, "-", "no firewall on the path")
        for name in firewalls:
            fw = self.estate.firewall(name)
            d = self.to_firewall(fw, src, protocol, port) if name == dst_firewall else self.forward(
                fw, src, dst, protocol, port)
            if not d.allowed:
                return d
            last = d
        return last


# -- segregation the estate's purposes demand, judged on what it declares ------------------------------

PUPILS_REACH_CORPORATE = "pupils-reach-corporate"
DEVICES_BEYOND_CONTROLLER = "devices-beyond-controller"
MANAGEMENT_FROM_INTERNET = "management-port-from-internet"

# Remote administration and file-sharing services that are never opened to the internet: what an
# attacker scans for first (RDP and SMB carried the worst ransomware outbreaks; telnet and WinRM over
# HTTP send credentials in the clear or nearly so).
MANAGEMENT_SERVICES: dict[tuple[str, int], str] = {
    ("tcp", 22): "SSH", ("tcp", 23): "telnet", ("tcp", 445): "SMB", ("tcp", 3389): "RDP", ("udp", 3389): "RDP",
    ("tcp", 5985): "WinRM", ("tcp", 5986): "WinRM over HTTPS",
}


@dataclass(frozen=True)
class Breach:
    """A declaration that breaks a segregation rule, with the estate path that declares it."""

    rule: str       # PUPILS_REACH_CORPORATE or DEVICES_BEYOND_CONTROLLER
    zone: str       # the pupil or device zone concerned
    path: tuple[str | int, ...]
    message: str


def controller_networks(estate: Estate, zone: Zone) -> list[Network]:
    """Where a device zone's controllers are: the addresses of the declared hosts it names."""
    hosts = {h.name: h.address for h in estate.declared_hosts}
    out = []
    for c in zone.controllers:
        if c in hosts:
            out.append(ipaddress.ip_network(hosts[c]))
    return out


def segregation_breaches(estate: Estate) -> list[Breach]:
    """Pupil networks never reach the council's own zones; device networks (IoT, building
    management, CCTV) reach only their zone's declared controllers.

    Judged on placement (a pupils VLAN or SSID outside a pupil zone, a device VLAN outside a device
    zone) and on every allow rule of every firewall, in order: a rule shadowed by an earlier deny is
    still reported, because reordering the policy would open it.
    """
    kinds = {z.name: z.kind for z in estate.zones}
    out: list[Breach] = []
    for si, site in enumerate(estate.sites):
        for vi, vlan in enumerate(site.vlans):
            allowed = PURPOSE_ZONE_KINDS.get(vlan.purpose)
            kind = kinds.get(vlan.zone)
            if allowed is None or kind is None or kind in allowed:
                continue
            if vlan.purpose is VlanPurpose.PUPILS:
                which = PUPILS_REACH_CORPORATE
            elif kind not in CONTROLLED_ZONES and set(allowed) <= set(CONTROLLED_ZONES):
                which = DEVICES_BEYOND_CONTROLLER   # cameras or sensors in a zone with no controller rule
            else:
                continue   # voice or Wi-Fi in an unexpected zone: the firewall rules say what it reaches
            out.append(Breach(which, vlan.zone, ("sites", si, "vlans", vi, "zone"),
                              f"{vlan.purpose.value} VLAN {vlan.name} at {site.name} is in zone {vlan.zone} "
                              f"({kind.value}), not a {' or '.join(k.value for k in allowed)} zone"))
    for i, ssid in enumerate(estate.ssids):
        wanted = SSID_VLAN_PURPOSES.get(ssid.purpose)
        if ssid.purpose is not SsidPurpose.PUPILS or wanted is None:
            continue
        wrong = [(site.name, v) for site in estate.ssid_sites(ssid) for v in site.vlans
                 if v.name == ssid.vlan and v.purpose not in wanted]
        if wrong:   # one SSID, one finding, however many sites broadcast it
            names = ", ".join(name for name, _ in wrong[:5]) + (f" and {len(wrong) - 5} more" if len(wrong) > 5 else "")
            purposes = ", ".join(sorted({v.purpose.value for _, v in wrong}))
            out.append(Breach(PUPILS_REACH_CORPORATE, wrong[0][1].zone, ("ssids", i, "vlan"),
                              f"pupils' SSID {ssid.name!r} is bridged to VLAN {ssid.vlan}, whose purpose is "
                              f"{purposes}, not pupils, at {len(wrong)} site(s): {names}"))
    zones = {z.name: z for z in estate.zones}
    for fi, fw in enumerate(estate.firewalls):
        objects = {o.name: [ipaddress.ip_network(a, strict=False) for a in o.addresses] for o in fw.address_objects}
        for ri, rule in enumerate(fw.rules):
            if rule.action != "allow":
                continue
            src, dst = kinds.get(rule.from_zone), kinds.get(rule.to_zone)
            path = ("firewalls", fi, "rules", ri)
            if src is ZoneKind.PUPIL and dst in CORPORATE_ZONES:
                out.append(Breach(PUPILS_REACH_CORPORATE, rule.from_zone, (*path, "to_zone"),
                                  f"{fw.name} rule {rule.id} allows pupil zone {rule.from_zone} to reach "
                                  f"{rule.to_zone} ({dst.value if dst else '?'}): pupil networks never reach the "
                                  "council's own zones"))
            if src in CONTROLLED_ZONES:
                zone = zones[rule.from_zone]
                controllers = controller_networks(estate, zone)
                targets = objects.get(rule.destination) if rule.destination != "any" else None
                if targets and controllers and all(
                        any(t.version == c.version and t.subnet_of(c) for c in controllers)  # type: ignore[arg-type]
                        for t in targets):
                    continue
                named = ", ".join(zone.controllers) or "none declared"
                what = "any address" if rule.destination == "any" else f"{rule.destination}"
                out.append(Breach(DEVICES_BEYOND_CONTROLLER, rule.from_zone, (*path, "destination"),
                                  f"{fw.name} rule {rule.id} allows {src.value} zone {rule.from_zone} to reach "
                                  f"{what} in {rule.to_zone}, which is not its controllers ({named})"))
    return out


def internet_management_breaches(estate: Estate) -> list[Breach]:
    """Every on-premises firewall allow rule from an internet zone that opens a management port
    (SSH, telnet, SMB, RDP, WinRM) to any zone: by one of its services, or by `services: any`.
    Whatever the source object: a supplier's address is still the internet, and remote
    administration comes in over the VPN to the management zone. A rule an earlier deny shadows is
    still reported, because reordering the policy would open it."""
    kinds = {z.name: z.kind for z in estate.zones}
    out: list[Breach] = []
    for fi, fw in enumerate(estate.firewalls):
        services = {svc.name: svc for svc in fw.services}
        for ri, rule in enumerate(fw.rules):
            if rule.action != "allow" or kinds.get(rule.from_zone) is not ZoneKind.INTERNET:
                continue
            if rule.services == "any":
                opened = "every service (management ports included)"
                field = "services"
            else:
                named: list[str] = []
                for svc in (services[n] for n in rule.services if n in services):
                    for port in svc.ports:
                        label = MANAGEMENT_SERVICES.get((svc.protocol, port))
                        if label and f"{label} ({svc.protocol}/{port})" not in named:
                            named.append(f"{label} ({svc.protocol}/{port})")
                if not named:
                    continue
                opened, field = ", ".join(named), "services"
            source = "" if rule.source == "any" else f" (source {rule.source})"
            out.append(Breach(MANAGEMENT_FROM_INTERNET, rule.to_zone, ("firewalls", fi, "rules", ri, field),
                              f"{fw.name} rule {rule.id} ({rule.name}) allows {opened} from the internet zone "
                              f"{rule.from_zone}{source} to {rule.to_zone}"))
    return out
