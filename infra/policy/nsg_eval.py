"""What a network security group decides for one inbound packet, as Azure evaluates it.

Azure processes an NSG's rules in priority order (lowest number first) and stops at the first
rule that matches; after the custom rules come the default rules AllowVNetInBound (65000),
AllowAzureLoadBalancerInBound (65001) and DenyAllInBound (65500) ("Network security groups",
How network security groups filter network traffic and Default security rules,
https://learn.microsoft.com/en-us/azure/virtual-network/network-security-groups-overview).

Properties are the provider's inputs in camelCase, as the plan and CrossGuard see them. Service
tags are read narrowly: `VirtualNetwork` matches the addresses the caller says are in the virtual
network (its own space plus what is connected), `Internet` an address outside the private ranges,
`*`/`Any` everything; any other tag matches nothing (this evaluator is for the council's own
addresses).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

DEFAULT_INBOUND: list[dict[str, Any]] = [
    {"name": "AllowVnetInBound", "priority": 65000, "direction": "Inbound", "access": "Allow", "protocol": "*",
     "sourceAddressPrefix": "VirtualNetwork", "destinationAddressPrefix": "VirtualNetwork",
     "destinationPortRange": "*"},
    {"name": "AllowAzureLoadBalancerInBound", "priority": 65001, "direction": "Inbound", "access": "Allow",
     "protocol": "*", "sourceAddressPrefix": "AzureLoadBalancer", "destinationAddressPrefix": "*",
     "destinationPortRange": "*"},
    {"name": "DenyAllInBound", "priority": 65500, "direction": "Inbound", "access": "Deny", "protocol": "*",
     "sourceAddressPrefix": "*", "destinationAddressPrefix": "*", "destinationPortRange": "*"},
]


def _values(rule: Mapping[str, Any], one: str, many: str) -> list[str]:
    out = [str(v) for v in rule.get(many) or []]
    if rule.get(one) is not None:
        out.append(str(rule[one]))
    return out


def _address_matches(values: Iterable[str], address: str, vnet: Sequence[str]) -> bool:
    ip = ipaddress.ip_address(address)
    for value in values:
        v = value.strip()
        low = v.lower()
        if low in ("*", "any"):
            return True
        if low == "virtualnetwork":
            if any(ip in ipaddress.ip_network(p) for p in vnet):
                return True
            continue
        if low == "internet":
            if not ip.is_private:
                return True
            continue
        try:
            if ip in ipaddress.ip_network(v, strict=False):
                return True
        except ValueError:
            continue   # another service tag: not one of the council's addresses
    return False


def _port_matches(values: Iterable[str], port: int) -> bool:
    for value in values:
        v = value.strip()
        if v == "*":
            return True
        lo, _, hi = v.partition("-")
        try:
            if int(lo) <= port <= int(hi or lo):
                return True
        except ValueError:
            continue
    return False


def inbound_decision(rules: Iterable[Mapping[str, Any]], *, source: str, destination: str, port: int,
                     protocol: str = "Tcp", vnet: Sequence[str] = ()) -> tuple[str, str]:
    """(Allow or Deny, the deciding rule's name) for a packet arriving at `destination`."""
    candidates = [r for r in rules if str(r.get("direction", "")).lower() == "inbound"] + DEFAULT_INBOUND
    for rule in sorted(candidates, key=lambda r: int(r.get("priority", 65535))):
        proto = str(rule.get("protocol", "*")).lower()
        if proto not in ("*", protocol.lower()):
            continue
        if not _address_matches(_values(rule, "sourceAddressPrefix", "sourceAddressPrefixes"), source, vnet):
            continue
        if not _address_matches(_values(rule, "destinationAddressPrefix", "destinationAddressPrefixes"),
                                destination, vnet):
            continue
        if not _port_matches(_values(rule, "destinationPortRange", "destinationPortRanges"), port):
            continue
        return str(rule.get("access")), str(rule.get("name"))
    return "Deny", "DenyAllInBound"
