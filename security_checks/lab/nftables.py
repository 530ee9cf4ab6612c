"""Render a firewall's policy from the estate as an nftables ruleset (default deny, zones by address).

The same rendering serves the lab's firewall namespaces and, for real small-site routers, the
Ansible role that applies it (`validate: nft -c -f %s`). Planted lab faults are extra rules whose
comment starts with "PLANTED FAULT", so nobody can mistake them for policy.
"""

from __future__ import annotations

import ipaddress
import subprocess
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from ..model.schema import Estate, Firewall, FirewallRule
from ..network.policy import Policy

TEMPLATES = Path(__file__).resolve().parent / "templates"


def _set_name(prefix: str, name: str) -> str:
    return f"{prefix}_{name.replace('-', '_')}"


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "").replace('"', "'")[:120] + '"'


def _zone_match(direction: str, zone: str) -> str:
    if zone == "internet":
        return f"ip {direction} != @internal"
    return f"ip {direction} @{_set_name('z', zone)}"


def _service_matches(fw: Firewall, services: list[str] | str) -> list[str]:
    if services == "any":
        return [""]
    by_proto: dict[str, list[int]] = {}
    for name in services:
        svc = next(s for s in fw.services if s.name == name)
        by_proto.setdefault(svc.protocol, []).extend(svc.ports)
    out = []
    for proto, ports in sorted(by_proto.items()):
        if proto == "icmp":
            out.append("meta l4proto icmp")
        elif ports:
            out.append(f"{proto} dport {{ {', '.join(str(p) for p in sorted(set(ports)))} }}")
        else:
            out.append(f"meta l4proto {proto}")
    return out


def _rule_lines(fw: Firewall, rule: FirewallRule) -> list[str]:
    base = [_zone_match("saddr", rule.from_zone), _zone_match("daddr", rule.to_zone)]
    if rule.source != "any":
        base.append(f"ip saddr @{_set_name('o', rule.source)}")
    if rule.destination != "any":
        base.append(f"ip daddr @{_set_name('o', rule.destination)}")
    verdict = "accept" if rule.action == "allow" else "drop"
    comment = _quote(f"{rule.id} {rule.name}")
    return [" ".join(filter(None, [*base, svc, "counter", verdict, "comment", comment]))
            for svc in _service_matches(fw, rule.services)]


def render(estate: Estate, fw: Firewall, faults: list[dict[str, Any]] | None = None,
           source: str = "the estate") -> str:
    policy = Policy(estate)
    zones = [z.zone for z in fw.zones]
    sets: list[dict[str, Any]] = [{"name": "internal", "elements": sorted(str(n) for n in policy.internal)}]
    for z in zones:
        if z != "internet":
            sets.append({"name": _set_name("z", z), "elements": [str(n) for n in policy.zone_networks.get(z, [])]})
    for o in fw.address_objects:
        sets.append({"name": _set_name("o", o.name),
                     "elements": [str(ipaddress.ip_network(a, strict=False)) for a in o.addresses]})

    input_rules: list[str] = []
    host = next((h for h in estate.declared_hosts if h.name == fw.name and h.role == "firewall"), None)
    mgmt = sorted({(p.protocol, p.port) for p in host.ports if p.management}) if host else []
    if mgmt and fw.management_allowlist and fw.management_address:
        for proto in sorted({p for p, _ in mgmt}):
            ports = ", ".join(str(n) for p, n in mgmt if p == proto)
            input_rules.append(f"ip saddr {{ {', '.join(fw.management_allowlist)} }} ip daddr {fw.management_address} "
                               f"{proto} dport {{ {ports} }} counter accept comment \"management allow-list\"")
    forward_rules: list[str] = []
    planted_input: list[str] = []
    planted_forward: list[str] = []
    for f in faults or []:
        if f.get("action") != "nft-rule" or f.get("firewall") != fw.name:
            continue
        parts = []
        if f.get("from_zone"):
            parts.append(_zone_match("saddr", f["from_zone"]))
        if f.get("to_address"):
            parts.append(f"ip daddr {ipaddress.ip_address(f['to_address'])}")
        parts.append(f"{f['protocol']} dport {int(f['port'])}")
        line = " ".join([*parts, "counter accept comment", _quote(f"PLANTED FAULT {f['id']}: {f['description']}")])
        (planted_input if f["chain"] == "input" else planted_forward).append(line)
    for rule in fw.rules:
        forward_rules.extend(_rule_lines(fw, rule))
    env = Environment(loader=FileSystemLoader(TEMPLATES), undefined=StrictUndefined, keep_trailing_newline=True,
                      trim_blocks=True, lstrip_blocks=True, autoescape=False)  # noqa: S701 (nftables text, not HTML)
    return env.get_template("firewall.nft.j2").render(
        fw=fw, source=source, sets=sets, input_rules=input_rules, forward_rules=forward_rules,
        planted_input=planted_input, planted_forward=planted_forward)


def check(text: str, path: Path, netns: str | None = None) -> None:
    """`nft -c -f`: the kernel's own parser checks the ruleset without applying it."""
    path.write_text(text)
    cmd = ["nft", "-c", "-f", str(path)]
    if netns:
        cmd = ["ip", "netns", "exec", netns, *cmd]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise ValueError(f"{path}: nft rejects the rendered ruleset: {proc.stderr.strip()}")
