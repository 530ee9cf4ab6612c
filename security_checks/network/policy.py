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

from ..model.schema import Estate, Firewall, FirewallRule
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
