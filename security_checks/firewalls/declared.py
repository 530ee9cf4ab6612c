"""The declared policy of one firewall, as the plain data the Ansible roles render and the audit compares.

The roles (playbooks/roles/fortigate_policy, nftables_gateway) get this as the host variable
`estate_firewall` from the inventory plugin; the audit compares the configuration read back from
the device with the same data, so what was applied and what is judged cannot drift apart. Every
rule carries `where` (the estate file:line it is declared at) so a finding points at the line to
change.

Names on a FortiGate: a rule is the policy whose `name` is the rule id; its `policyid` is the
rule id's number (CIV-004 -> 4) so that adding a rule never renumbers the others; an address
object with one network is a firewall address of that name, one with several is an address group
of that name whose members are `<name>-1`, `<name>-2`...; a service is a custom service; a zone is
the FortiOS zone (or interface) of the same name.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from ..model.located import LoadedEstate
from ..model.schema import Estate, Firewall, ZoneKind
from ..network.policy import Policy

ADMIN_PROTOCOLS = ("http", "https", "ssh", "telnet")   # FortiOS allowaccess values that administer the box
VENDORS = ("fortinet", "nftables")                      # the vendors a role in playbooks/roles configures


def policy_id(rule_id: str, index: int, taken: set[int]) -> int:
    """The FortiOS policyid of a rule: its id's trailing number, else 1000 + its position."""
    m = re.search(r"(\d+)$", rule_id)
    pid = int(m.group(1)) if m and 0 < int(m.group(1)) < 1000 else 1000 + index
    while pid in taken:
        pid += 1000
    taken.add(pid)
    return pid


def _subnet(addr: str) -> str:
    net = ipaddress.ip_network(addr, strict=False)
    return f"{net.network_address} {net.netmask}"


def _zone_kind(estate: Estate, zone: str) -> str:
    z = next((z for z in estate.zones if z.name == zone), None)
    return z.kind.value if z else ("internet" if zone == "internet" else "")


def admin_port(estate: Estate, fw: Firewall) -> int:
    host = next((h for h in estate.declared_hosts if h.name == fw.name and h.role == "firewall"), None)
    https = [p.port for p in host.ports if p.management and p.tls] if host else []
    return https[0] if https else 443


def management_ports(estate: Estate, fw: Firewall) -> dict[str, list[int]]:
    host = next((h for h in estate.declared_hosts if h.name == fw.name and h.role == "firewall"), None)
    out: dict[str, list[int]] = {}
    for p in host.ports if host else []:
        if p.management:
            out.setdefault(p.protocol, []).append(p.port)
    return {k: sorted(set(v)) for k, v in sorted(out.items())}


def declared_firewall(loaded: LoadedEstate, fw: Firewall) -> dict[str, Any]:
    estate = loaded.estate
    index = next(i for i, f in enumerate(estate.firewalls) if f.name == fw.name)
    policy = Policy(estate)
    services = {s.name: s for s in fw.services}
    zones = []
    for z in fw.zones:
        kind = _zone_kind(estate, z.zone)
        zones.append({"name": z.zone, "kind": kind, "interfaces": [*z.vlans, *z.interfaces],
                      "management": kind == ZoneKind.MANAGEMENT.value,
                      "networks": [] if z.zone == "internet"
                      else [str(n) for n in policy.zone_networks.get(z.zone, [])]})
    addresses: list[dict[str, str]] = []
    groups: list[dict[str, Any]] = []
    for o in fw.address_objects:
        if len(o.addresses) == 1:
            addresses.append({"name": o.name, "subnet": _subnet(o.addresses[0])})
        else:
            members = [f"{o.name}-{i}" for i in range(1, len(o.addresses) + 1)]
            addresses += [{"name": m, "subnet": _subnet(a)} for m, a in zip(members, o.addresses, strict=True)]
            groups.append({"name": o.name, "members": members})
    taken: set[int] = set()
    rules = []
    for j, r in enumerate(fw.rules):
        file, line = loaded.where(("firewalls", index, "rules", j))
        by_proto: dict[str, list[int]] = {}
        if r.services != "any":
            for name in r.services:
                svc = services[name]
                by_proto.setdefault(svc.protocol, []).extend(svc.ports)
        rules.append({
            "id": r.id, "name": r.name, "policyid": policy_id(r.id, j, taken),
            "from_zone": r.from_zone, "to_zone": r.to_zone, "source": r.source, "destination": r.destination,
            "services": ["ALL"] if r.services == "any" else list(r.services),
            "by_protocol": {p: sorted(set(v)) for p, v in sorted(by_proto.items())},
            "action": "accept" if r.action == "allow" else "deny", "log": r.log,
            "comments": f"{r.name} (owner {r.owner}; review by {r.review_by.isoformat()})"[:1023],
            "review_by": r.review_by.isoformat(), "where": f"{file}:{line}",
        })
    return {
        "name": fw.name, "vendor": fw.vendor, "site": fw.site,
        "where": "{}:{}".format(*loaded.where(("firewalls", index))),
        "management_address": fw.management_address, "management_allowlist": list(fw.management_allowlist),
        "management_trusthosts": [_subnet(a) for a in fw.management_allowlist],
        "management_mfa": fw.management_mfa, "management_ports": management_ports(estate, fw),
        "admin_port": admin_port(estate, fw), "default_inbound": fw.default_inbound,
        "zones": zones, "internal": sorted(str(n) for n in policy.internal),
        "objects": [{"name": o.name, "networks": [str(ipaddress.ip_network(a, strict=False)) for a in o.addresses]}
                    for o in fw.address_objects],
        "addresses": addresses, "address_groups": groups,
        "services": [{"name": s.name, "protocol": s.protocol, "ports": list(s.ports),
                      "portrange": " ".join(str(p) for p in s.ports)} for s in fw.services],
        "rules": rules,
        "fortios": fortios_objects(rules, zones, addresses, groups, fw) if fw.vendor == "fortinet" else {},
    }


def _names(values: list[str]) -> list[dict[str, str]]:
    return [{"name": v} for v in values]


def fortios_objects(rules: list[dict[str, Any]], zones: list[dict[str, Any]], addresses: list[dict[str, str]],
                    groups: list[dict[str, Any]], fw: Firewall) -> dict[str, Any]:
    """Each declared object as the body the fortinet.fortios module takes (and FortiOS returns)."""
    services = []
    for s in fw.services:
        body: dict[str, Any] = {"name": s.name, "protocol": "ICMP" if s.protocol == "icmp" else "TCP/UDP/SCTP"}
        if s.protocol in ("tcp", "udp"):
            body[f"{s.protocol}_portrange"] = " ".join(str(p) for p in s.ports)
        services.append(body)
    policies = [{
        "policyid": r["policyid"], "name": r["id"], "srcintf": _names([r["from_zone"]]),
        "dstintf": _names([r["to_zone"]]), "srcaddr": _names(["all" if r["source"] == "any" else r["source"]]),
        "dstaddr": _names(["all" if r["destination"] == "any" else r["destination"]]),
        "service": _names(r["services"]), "action": r["action"], "schedule": "always", "status": "enable",
        "logtraffic": "all" if r["log"] else "disable", "comments": r["comments"]} for r in rules]
    return {
        "address": [{"name": a["name"], "type": "ipmask", "subnet": a["subnet"]} for a in addresses],
        "addrgrp": [{"name": g["name"], "member": _names(g["members"])} for g in groups],
        "service_custom": services,
        "policy": policies,
        "interfaces": [{"name": i, "management": z["management"]} for z in zones for i in z["interfaces"]],
    }


def managed_firewalls(loaded: LoadedEstate) -> list[Firewall]:
    """Firewalls a role configures: a vendor with a role and a management address to reach."""
    return [fw for fw in loaded.estate.firewalls if fw.vendor in VENDORS and fw.management_address]


def token_env(firewall: str) -> str:
    """The environment variable holding a FortiGate's REST API token (an AWX credential injects it)."""
    return "ESTATE_FORTIOS_TOKEN_" + "".join(c if c.isalnum() else "_" for c in firewall).upper()


# The CA bundle that signed the firewalls' admin certificates, when it is not in the system store.
CA_ENV = "ESTATE_FIREWALL_CA"
