"""The running configuration of a firewall, read back by the roles, in one shape for both vendors.

FortiGate: the fortigate_policy role's facts (fortios_monitor_fact system_status and
firewall_policy hit counts, fortios_configuration_fact of the policy, objects, interfaces, admins).
nftables: the nftables_gateway role's `nft -j list ruleset` (libnftables JSON schema).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from ..nft_ruleset import term, value_text

ANY = "any"


@dataclass
class Rule:
    """One rule as the device holds it. Sets use "any" for "everything" (FortiOS all / ALL / any)."""

    key: str                      # the device's handle: policy:<policyid> or nft:<chain>#<handle>
    name: str                     # FortiOS name / the rule id at the start of an nft comment
    srcintf: frozenset[str]
    dstintf: frozenset[str]
    srcaddr: frozenset[str]
    dstaddr: frozenset[str]
    service: frozenset[str]
    action: str                   # accept | deny
    enabled: bool = True
    log: bool = True
    hits: int | None = None
    policyid: int | None = None
    text: str = ""                # how to show it: the device's own words

    def covers(self, other: Rule) -> bool:
        """Every packet `other` matches, this rule matches too."""
        return all(ANY in mine or theirs <= mine for mine, theirs in (
            (self.srcintf, other.srcintf), (self.dstintf, other.dstintf), (self.srcaddr, other.srcaddr),
            (self.dstaddr, other.dstaddr), (self.service, other.service)))

    @property
    def any_any(self) -> bool:
        return self.action == "accept" and ANY in self.srcaddr and ANY in self.dstaddr and ANY in self.service \
            and (ANY in self.srcintf or ANY in self.dstintf)


@dataclass
class AdminAccess:
    interface: str
    protocols: list[str]


@dataclass
class Admin:
    name: str
    trusthosts: list[str]         # "a.b.c.d/len"; empty = from anywhere
    mfa: bool


@dataclass
class Running:
    firewall: str
    vendor: str
    rules: list[Rule] = field(default_factory=list)
    default_action: dict[str, str] = field(default_factory=dict)   # chain/direction -> accept | drop
    interfaces: list[AdminAccess] = field(default_factory=list)
    admins: list[Admin] = field(default_factory=list)
    firmware: str | None = None
    product: str | None = None   # the feed's cpe vendor:product
    hit_counts: bool = False
    raw: dict[str, Any] = field(default_factory=dict)                # what was read, for evidence


# -- FortiGate ------------------------------------------------------------------------------------


def _names(items: Any) -> frozenset[str]:
    out = set()
    for i in items or []:
        name = str(i.get("name", "")) if isinstance(i, dict) else str(i)
        out.add(ANY if name in ("all", "ALL", "any") else name)
    return frozenset(out)


def _mask_len(mask: str) -> int:
    return sum(bin(int(p)).count("1") for p in mask.split("."))


def fortios_results(meta: Any, path: str, name: str) -> list[dict[str, Any]]:
    for entry in meta if isinstance(meta, list) else [meta]:
        if isinstance(entry, dict) and entry.get("path") == path and entry.get("name") == name:
            res = entry.get("results")
            return res if isinstance(res, list) else [res] if isinstance(res, dict) else []
    return []


def from_fortios(firewall: str, status: dict[str, Any] | None, config: list[Any] | dict[str, Any],
                 hits: dict[str, Any] | None) -> Running:
    run = Running(firewall=firewall, vendor="fortinet", product="fortinet:fortios",
                  raw={"status": status, "configuration": config, "hit_counts": hits})
    if status:
        version = str(status.get("version") or "")
        run.firmware = f"{version},build{status['build']}" if status.get("build") and version else version or None
    hit = {}
    if hits and isinstance(hits.get("results"), list):
        run.hit_counts = True
        hit = {int(h["policyid"]): int(h.get("hit_count") or 0) for h in hits["results"] if "policyid" in h}
    for p in fortios_results(config, "firewall", "policy"):
        pid = int(p.get("policyid", 0))
        run.rules.append(Rule(
            key=f"policy:{pid}", name=str(p.get("name") or ""), policyid=pid,
            srcintf=_names(p.get("srcintf")), dstintf=_names(p.get("dstintf")), srcaddr=_names(p.get("srcaddr")),
            dstaddr=_names(p.get("dstaddr")), service=_names(p.get("service")), action=str(p.get("action", "deny")),
            enabled=p.get("status", "enable") == "enable", log=p.get("logtraffic", "all") != "disable",
            hits=hit.get(pid) if run.hit_counts else None,
            text=f"policy {pid} {p.get('name') or ''}: {'/'.join(sorted(_names(p.get('srcintf'))))} -> "
                 f"{'/'.join(sorted(_names(p.get('dstintf'))))} {'/'.join(sorted(_names(p.get('srcaddr'))))} -> "
                 f"{'/'.join(sorted(_names(p.get('dstaddr'))))} {'/'.join(sorted(_names(p.get('service'))))} "
                 f"{p.get('action')}"))
    run.default_action = {"forward": "deny"}   # FortiOS's implicit policy 0 denies what no policy allows
    for i in fortios_results(config, "system", "interface"):
        access = i.get("allowaccess") or ""
        run.interfaces.append(AdminAccess(str(i.get("name")), access.split() if isinstance(access, str)
                                          else [str(a) for a in access]))
    for a in fortios_results(config, "system", "admin"):
        hosts = []
        for n in range(1, 11):
            value = str(a.get(f"trusthost{n}") or "0.0.0.0 0.0.0.0")
            addr, _, mask = value.partition(" ")
            if value != "0.0.0.0 0.0.0.0":
                hosts.append(f"{addr}/{_mask_len(mask or '255.255.255.255')}")
        two = a.get("two-factor", a.get("two_factor", "disable"))
        run.admins.append(Admin(str(a.get("name")), hosts, mfa=str(two) not in ("disable", "", "None")))
    return run


# -- nftables -------------------------------------------------------------------------------------

COMMENT_ID = re.compile(r"^(\S+)\s")


def _nft_match(expr: list[dict[str, Any]]) -> dict[str, Any]:
    """What a rule matches and does, from its libnftables JSON expression list (read by nft_ruleset)."""
    out: dict[str, Any] = {"saddr": set(), "daddr": set(), "service": set(), "verdict": None, "log": False,
                           "counter": None, "iif": set(), "oif": set()}
    for e in expr:
        if "match" in e:
            t = term(e["match"])
            value = t.value if isinstance(t.value, str) and t.value.startswith("@") else value_text(t.value)
            text = f"{'!' if t.op == '!=' else ''}{value}"
            proto, _, field_ = t.subject.partition(" ")
            if proto in ("ip", "ip6") and field_ in ("saddr", "daddr"):
                out[field_].add(text)
            elif field_ == "dport":
                out["service"].add(f"{proto}/{value}")
            elif t.subject == "meta l4proto":
                out["service"].add(f"{value}/*")
            elif t.subject in ("meta iifname", "meta oifname"):
                out["iif" if t.subject == "meta iifname" else "oif"].add(text)
            elif proto == "ct":
                out["service"].add(f"ct {field_} {text}")
        elif "accept" in e:
            out["verdict"] = "accept"
        elif "drop" in e or "reject" in e:
            out["verdict"] = "deny"
        elif "log" in e:
            out["log"] = True
        elif "counter" in e:
            c = e["counter"]
            out["counter"] = int(c.get("packets", 0)) if isinstance(c, dict) else None
    return out


def from_nft(firewall: str, ruleset: dict[str, Any]) -> Running:
    # nft counters restart at every load (each apply), so a zero says nothing about whether a rule is
    # needed: hit counts are reported (details) but not judged, unlike a FortiGate's.
    run = Running(firewall=firewall, vendor="nftables", raw={"ruleset": ruleset}, hit_counts=False)
    chains: dict[tuple[str, str], dict[str, Any]] = {}
    for item in ruleset.get("nftables", []):
        if "chain" in item and item["chain"].get("hook") in ("input", "forward"):
            c = item["chain"]
            chains[(c["table"], c["name"])] = c
            run.default_action[c["hook"]] = "accept" if c.get("policy", "accept") == "accept" else "deny"
    for item in ruleset.get("nftables", []):
        r = item.get("rule")
        if not r or (r["table"], r["chain"]) not in chains:
            continue
        hook = chains[(r["table"], r["chain"])]["hook"]
        m = _nft_match(r.get("expr", []))
        if m["verdict"] is None:
            continue
        if any(s.startswith("ct state") for s in m["service"]) or "lo" in {x.lstrip("!") for x in m["iif"]}:
            continue   # established/related, invalid and loopback: the chain's plumbing, not policy
        comment = str(r.get("comment") or "")
        ident = COMMENT_ID.match(comment + " ")
        run.rules.append(Rule(
            key=f"nft:{hook}#{r.get('handle')}", name=ident.group(1) if ident and hook == "forward" else comment,
            srcintf=frozenset({hook}), dstintf=frozenset({hook}),
            srcaddr=frozenset(m["saddr"]) or frozenset({ANY}), dstaddr=frozenset(m["daddr"]) or frozenset({ANY}),
            service=frozenset(m["service"]) or frozenset({ANY}), action=m["verdict"], log=m["log"],
            hits=m["counter"], text=f"{hook}: {comment or '(no comment)'}"))
    return run
