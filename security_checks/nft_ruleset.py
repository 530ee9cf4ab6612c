"""An nftables ruleset as `nft -j list ruleset` prints it (libnftables JSON): read, and asked about a packet.

Two readers share this one parser: the firewall audit (firewalls/running.py) turns the rules into
rules it can compare with the declared policy, and the segregation matrix (scan/applied.py) asks
what the ruleset a router has loaded does with each probed flow.

The evaluator knows the constructs the nftables_gateway role's template emits (base chains and
their policy, ip saddr/daddr against addresses, prefixes, ranges, anonymous and named sets, the
l4 protocol, tcp/udp/th dport, ct state, iifname/oifname, accept/drop/reject/jump/goto/return,
counter and log) and answers "unknown", with the reason, for anything else (NAT, marks, maps,
rate limits, a chain of another family...): a verdict it cannot derive is never guessed. Rules
outside nftables (iptables-legacy tables) are invisible to `nft` and so to this reader.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any

# What a probe is to conntrack: the first packet of a connection.
NEW = "new"
# Hooks a packet meets in the filter path, in order, for traffic through the box and to it.
HOOKS = {"forward": ("prerouting", "forward", "postrouting"), "input": ("prerouting", "input")}
FAMILIES_V4 = ("ip", "inet")
L4_NUMBERS = {1: "icmp", 6: "tcp", 17: "udp", 132: "sctp"}
MAX_DEPTH = 16


@dataclass(frozen=True)
class Term:
    """One match of a rule: `subject op value`, e.g. ("ip saddr", "==", "@z_corporate")."""

    subject: str     # "ip saddr", "tcp dport", "meta l4proto", "meta iifname", "ct state"; "" if not understood
    op: str
    value: Any       # the right-hand side as libnftables prints it


def subject(left: Any) -> str:
    if not isinstance(left, dict):
        return ""
    if "payload" in left and isinstance(left["payload"], dict):
        p = left["payload"]
        return f"{p.get('protocol')} {p.get('field')}" if p.get("protocol") and p.get("field") else ""
    for kind in ("meta", "ct"):
        if kind in left and isinstance(left[kind], dict) and left[kind].get("key"):
            return f"{kind} {left[kind]['key']}"
    return ""


def term(match: dict[str, Any]) -> Term:
    return Term(subject(match.get("left")), str(match.get("op", "==")), match.get("right"))


def value_text(v: Any) -> str:
    """A right-hand side as nft writes it (for showing, and for the audit's comparisons)."""
    if isinstance(v, dict) and "prefix" in v:
        return f"{v['prefix']['addr']}/{v['prefix']['len']}"
    if isinstance(v, dict) and "range" in v:
        return f"{v['range'][0]}-{v['range'][1]}"
    if isinstance(v, dict) and "set" in v:
        return ",".join(value_text(x) for x in v["set"])
    if isinstance(v, dict) and "elem" in v:
        return value_text(v["elem"].get("val"))
    if isinstance(v, list):
        return ",".join(value_text(x) for x in v)
    return str(v)


@dataclass(frozen=True)
class Packet:
    """The first packet of a probed flow, as a router sees it."""

    src: str
    dst: str
    protocol: str             # tcp | udp | icmp
    port: int | None          # destination port (None for icmp)
    hook: str = "forward"     # forward: through the router; input: to the router itself
    iifname: str | None = None
    oifname: str | None = None


@dataclass(frozen=True)
class Verdict:
    action: str                  # accept | drop | reject | unknown
    chain: str = ""              # family table chain
    handle: int | None = None    # the deciding rule's handle; None: the chain's policy
    comment: str = ""
    reason: str = ""             # why "unknown"; "policy" for a chain policy

    @property
    def allows(self) -> bool:
        return self.action == "accept"

    def __str__(self) -> str:
        if self.action == "unknown":
            return f"unknown: {self.reason}"
        where = f"{self.chain} " if self.chain else ""
        if self.handle is None:
            return f"{self.action} by {where}{self.reason or 'policy'}"
        return f"{self.action} by {where}rule #{self.handle}" + (f" ({self.comment})" if self.comment else "")


class _Return(Exception):
    """`return` (or falling off a goto'd chain): back to the chain that jumped."""


@dataclass
class _Chain:
    family: str
    table: str
    name: str
    hook: str | None = None
    type: str = "filter"
    prio: int = 0
    policy: str = "accept"
    rules: list[dict[str, Any]] = field(default_factory=list)

    @property
    def label(self) -> str:
        return f"{self.family} {self.table} {self.name}"


class Ruleset:
    """The ruleset of one box, from `nft -j list ruleset` output (the parsed JSON)."""

    def __init__(self, data: dict[str, Any]):
        self.raw = data
        self.chains: dict[tuple[str, str, str], _Chain] = {}
        self.sets: dict[tuple[str, str, str], dict[str, Any]] = {}
        items = data.get("nftables", []) if isinstance(data, dict) else []
        for item in items:
            if not isinstance(item, dict):
                continue
            if "chain" in item:
                c = item["chain"]
                prio = c.get("prio", 0)
                self.chains[(c["family"], c["table"], c["name"])] = _Chain(
                    c["family"], c["table"], c["name"], c.get("hook"), str(c.get("type", "filter")),
                    prio if isinstance(prio, int) else 0, str(c.get("policy", "accept")))
            elif "set" in item or "map" in item:
                s = item.get("set") or item["map"]
                self.sets[(s["family"], s["table"], s["name"])] = {**s, "is_map": "map" in item}
        for item in items:
            r = item.get("rule") if isinstance(item, dict) else None
            if r and (r["family"], r["table"], r["chain"]) in self.chains:
                self.chains[(r["family"], r["table"], r["chain"])].rules.append(r)

    def base_chains(self, hook: str) -> list[_Chain]:
        return [c for c in self.chains.values() if c.hook == hook]

    def verdict(self, pkt: Packet) -> Verdict:
        """What this box does with the packet: every base chain on its path must accept it."""
        for c in self.chains.values():
            if c.hook == "ingress" and (c.rules or c.policy != "accept"):
                return Verdict("unknown", c.label, reason=f"ingress chain {c.label} is not evaluated")
        decided: Verdict | None = None
        for hook in HOOKS[pkt.hook]:
            for c in sorted(self.base_chains(hook), key=lambda c: c.prio):
                if c.family not in FAMILIES_V4:
                    continue   # ip6, arp, bridge, netdev chains never see a routed IPv4 packet
                if c.type != "filter" and c.rules:
                    return Verdict("unknown", c.label, reason=f"{c.type} chain {c.label} is not evaluated")
                v = self._base(c, pkt)
                if v.action != "accept":
                    return v
                if hook == pkt.hook and (decided is None or decided.handle is None):
                    decided = v   # the accept worth naming: the main hook's, a rule's over a policy's
        return decided or Verdict("accept", reason=f"no base chain filters the {pkt.hook} hook")

    def _base(self, c: _Chain, pkt: Packet) -> Verdict:
        v = self._chain(c, pkt, 0)
        if v is not None:
            return v
        return Verdict("drop" if c.policy == "drop" else "accept", c.label, reason=f"policy {c.policy}")

    def _chain(self, c: _Chain, pkt: Packet, depth: int) -> Verdict | None:
        """The verdict a chain reaches, or None when the packet falls off its end."""
        if depth > MAX_DEPTH:
            return Verdict("unknown", c.label, reason=f"jumps nested deeper than {MAX_DEPTH}")
        try:
            for r in c.rules:
                v = self._rule(c, r, pkt, depth)
                if v is not None:
                    return v
        except _Return:
            pass
        return None

    def _rule(self, c: _Chain, r: dict[str, Any], pkt: Packet, depth: int) -> Verdict | None:
        doubt = ""
        handle, comment = r.get("handle"), str(r.get("comment") or "")

        def unknown(why: str) -> Verdict:
            return Verdict("unknown", c.label, handle, comment, why)

        for e in r.get("expr", []):
            if not isinstance(e, dict) or len(e) != 1:
                return unknown(f"rule #{handle}: an expression it cannot read")
            (kind, arg), = e.items()
            if kind == "match":
                got = self._match(c, term(arg), pkt)
                if got is False:
                    return None
                if isinstance(got, str):
                    doubt = doubt or f"rule #{handle}: {got}"
            elif kind in ("counter", "log"):
                continue
            elif kind in ("accept", "drop", "reject"):
                return unknown(doubt) if doubt else Verdict(kind, c.label, handle, comment)
            elif kind in ("jump", "goto"):
                if doubt:
                    return unknown(doubt)
                target = self.chains.get((c.family, c.table, str((arg or {}).get("target"))))
                if target is None:
                    return unknown(f"rule #{handle}: {kind} to a chain not in the ruleset")
                v = self._chain(target, pkt, depth + 1)
                if v is not None:
                    return v
                if kind == "goto":
                    raise _Return   # a goto does not come back: this chain ends too
                return None   # back from the jump: the next rule
            elif kind == "return":
                if doubt:
                    return unknown(doubt)
                raise _Return
            elif kind == "continue":
                return None
            else:
                return unknown(f"rule #{handle}: statement {kind!r} is not evaluated")
        return None   # no verdict statement: the packet goes on to the next rule

    # -- matches: True, False, or a string saying why it cannot tell ---------------------------------

    def _match(self, c: _Chain, t: Term, pkt: Packet) -> bool | str:
        op = t.op
        if op not in ("==", "!=", "in", "<", ">", "<=", ">="):
            return f"operator {op!r} is not evaluated"
        proto, _, fld = t.subject.partition(" ")
        have: Any
        if proto == "ip" and fld in ("saddr", "daddr"):
            have = ipaddress.ip_address(pkt.src if fld == "saddr" else pkt.dst)
        elif (proto == "ip" and fld == "protocol") or t.subject == "meta l4proto":
            have = pkt.protocol
        elif proto in ("ip6", "arp", "icmpv6"):
            return False   # an IPv4 packet never matches an IPv6 or ARP header field
        elif proto in ("tcp", "udp", "sctp", "th") and fld == "dport":
            if pkt.port is None or (proto != "th" and proto != pkt.protocol) or (
                    proto == "th" and pkt.protocol not in ("tcp", "udp", "sctp")):
                return False   # `tcp dport` carries an implicit `meta l4proto tcp`
            have = pkt.port
        elif t.subject == "meta nfproto":
            have = "ipv4"
        elif t.subject == "meta protocol":
            have = "ip"
        elif t.subject == "ct state":
            have = NEW
        elif t.subject in ("meta iifname", "meta oifname"):
            have = pkt.iifname if t.subject == "meta iifname" else pkt.oifname
            if have is None:
                # A packet from another host never arrives on loopback: `iifname "lo"` is known false.
                if t.subject == "meta iifname" and t.value == "lo" and not ipaddress.ip_address(pkt.src).is_loopback:
                    return op == "!="
                return f"{t.subject} is not known for a probe"
        else:
            return f"match on {t.subject or 'an expression'} is not evaluated"
        hit = self._contains(c, t.value, have, op)
        if isinstance(hit, str):
            return hit
        return (not hit) if op == "!=" else hit

    def _contains(self, c: _Chain, right: Any, have: Any, op: str) -> bool | str:
        if op in ("<", ">", "<=", ">="):
            if not isinstance(have, int) or not isinstance(right, int):
                return f"comparison {op} on a non-number"
            return {"<": have < right, ">": have > right, "<=": have <= right, ">=": have >= right}[op]
        if isinstance(right, str) and right.startswith("@"):
            s = self.sets.get((c.family, c.table, right[1:]))
            if s is None:
                return f"set {right} is not in the ruleset"
            if s["is_map"] or "," in str(s.get("type", "")) or isinstance(s.get("type"), list):
                return f"set {right} is a map or a concatenation"
            return self._any(s.get("elem", []), have)
        if isinstance(right, dict) and "set" in right:
            return self._any(right["set"], have)
        if isinstance(right, list):
            return self._any(right, have)
        return self._element(right, have)

    def _any(self, elements: Any, have: Any) -> bool | str:
        doubt = ""
        for el in elements if isinstance(elements, list) else [elements]:
            got = self._element(el, have)
            if got is True:
                return True
            if isinstance(got, str):
                doubt = got
        return doubt or False

    def _element(self, el: Any, have: Any) -> bool | str:
        if isinstance(el, dict) and "elem" in el:
            return self._element(el["elem"].get("val"), have)
        if isinstance(have, ipaddress.IPv4Address | ipaddress.IPv6Address):
            try:
                if isinstance(el, str):
                    return have == ipaddress.ip_address(el)
                if isinstance(el, dict) and "prefix" in el:
                    net = ipaddress.ip_network(f"{el['prefix']['addr']}/{el['prefix']['len']}", strict=False)
                    return have in net
                if isinstance(el, dict) and "range" in el:
                    lo, hi = (ipaddress.ip_address(x) for x in el["range"])
                    return lo <= have <= hi   # type: ignore[operator]
            except (ValueError, TypeError, KeyError):
                return f"address element {value_text(el)} is not understood"
            return f"address element {value_text(el)} is not understood"
        if isinstance(have, int):
            if isinstance(el, int) or (isinstance(el, str) and el.isdigit()):
                return have == int(el)
            if isinstance(el, dict) and "range" in el and all(isinstance(x, int) for x in el["range"]):
                return el["range"][0] <= have <= el["range"][1]
            return f"port element {value_text(el)} is not understood"
        if isinstance(el, int) and el in L4_NUMBERS:
            return L4_NUMBERS[el] == have
        if isinstance(el, str):
            return el == have
        return f"element {value_text(el)} is not understood"
