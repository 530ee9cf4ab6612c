"""The audit: the running configuration read back from a firewall against the estate's declared policy.

Each difference is a finding about `firewall:<name>` with the declared rule's estate file:line, the
device's own words as observed and the declaration as expected. A check with nothing wrong on a
firewall gives one pass for it, so coverage counts the firewall as observed.
"""

from __future__ import annotations

import ipaddress
from datetime import date
from typing import Any

from ..checks import make_finding
from ..findings import EvidenceRef, Finding, Status
from .running import ANY, Rule, Running

ADMIN_PROTOCOLS = {"http", "https", "ssh", "telnet"}
# Every check the comparison can emit, in the order they are reported.
CHECKS = ("firewalls.rule_missing", "firewalls.rule_different", "firewalls.rule_order", "firewalls.rule_extra",
          "firewalls.any_any", "firewalls.rule_shadowed", "firewalls.logging_off", "firewalls.rule_disabled",
          "firewalls.rule_review_overdue", "firewalls.rule_unused", "firewalls.default_not_deny",
          "firewalls.admin_exposed", "firewalls.admin_mfa")


def _declared_rule(decl: dict[str, Any], r: dict[str, Any], running: Running) -> Rule:
    """A declared rule in the device's terms, to compare like with like."""
    if running.vendor == "fortinet":
        def names(v: str) -> frozenset[str]:
            return frozenset({ANY}) if v in ("any", "all", "ALL") else frozenset({v})
        return Rule(key=f"policy:{r['policyid']}", name=r["id"], policyid=r["policyid"],
                    srcintf=names(r["from_zone"]), dstintf=names(r["to_zone"]), srcaddr=names(r["source"]),
                    dstaddr=names(r["destination"]),
                    service=frozenset({ANY}) if r["services"] == ["ALL"] else frozenset(r["services"]),
                    action=r["action"], log=r["log"])
    return Rule(key="", name=r["id"], srcintf=frozenset({"forward"}), dstintf=frozenset({"forward"}),
                srcaddr=frozenset({ANY}), dstaddr=frozenset({ANY}), service=frozenset({ANY}), action=r["action"],
                log=r["log"])


def _fields(rule: Rule) -> dict[str, str]:
    return {k: "/".join(sorted(getattr(rule, k))) for k in ("srcintf", "dstintf", "srcaddr", "dstaddr", "service")} | \
        {"action": rule.action}


def compare(decl: dict[str, Any], running: Running, today: date, evidence: list[EvidenceRef]) -> list[Finding]:
    fw = decl["name"]
    out: list[Finding] = []
    failed: set[str] = set()

    def add(check: str, key: str, observed: str, expected: str, where: str | None = None,
            **details: Any) -> None:
        failed.add(check)
        out.append(make_finding(check, f"firewall:{fw}", Status.FAIL, key=key, observed=observed, expected=expected,
                                site=decl["site"], evidence=evidence,
                                details={"firewall": fw, "vendor": running.vendor, "where": where or decl["where"],
                                         **details}))

    declared_ids = [r["id"] for r in decl["rules"]]
    by_name: dict[str, list[Rule]] = {}
    for rule in running.rules:
        by_name.setdefault(rule.name, []).append(rule)
    live = [r for r in running.rules if r.enabled]

    for r in decl["rules"]:
        where = r["where"]
        found = by_name.get(r["id"], [])
        if not found:
            add("firewalls.rule_missing", r["id"], f"no rule {r['id']} on {fw}",
                f"{r['id']} ({r['name']}) as declared at {where}", where, rule=r["id"])
            continue
        if running.vendor == "fortinet":
            want, have = _fields(_declared_rule(decl, r, running)), _fields(found[0])
            diff = {k: (have[k], want[k]) for k in want if have[k] != want[k]}
            if diff or found[0].policyid != r["policyid"]:
                add("firewalls.rule_different", r["id"],
                    "; ".join(f"{k}={o}" for k, (o, _) in diff.items()) or f"policyid {found[0].policyid}",
                    "; ".join(f"{k}={e}" for k, (_, e) in diff.items()) or f"policyid {r['policyid']}",
                    where, rule=r["id"])
        else:
            verdicts = {x.action for x in found}
            if verdicts != {r["action"]}:
                add("firewalls.rule_different", r["id"], f"verdict {'/'.join(sorted(verdicts))}",
                    f"verdict {r['action']}", where, rule=r["id"])
        if r["log"] and not all(x.log for x in found):
            add("firewalls.logging_off", r["id"], f"{found[0].text}: logging off",
                "logging on (every allow and deny is logged)", where, rule=r["id"])
        if not all(x.enabled for x in found):
            add("firewalls.rule_disabled", r["id"], f"{found[0].text}: disabled",
                "enabled, or removed from the estate if no longer needed", where, rule=r["id"])
        if r["review_by"] < today.isoformat() and any(x.enabled for x in found):
            add("firewalls.rule_review_overdue", r["id"], f"{r['id']} is live on {fw}; review was due {r['review_by']}",
                "reviewed and its review date moved on, or the rule removed", where, rule=r["id"])
        hits = [x.hits for x in found if x.hits is not None]
        if running.hit_counts and hits and sum(hits) == 0 and r["action"] == "accept":
            add("firewalls.rule_unused", r["id"], f"{r['id']}: no hits since the counters were last reset",
                "a rule traffic still needs, or removed", where, rule=r["id"])

    # Order: the declared rules the device has, in the device's order.
    seen = list(dict.fromkeys(x.name for x in running.rules if x.name in declared_ids))
    wanted = [i for i in declared_ids if i in seen]
    if seen != wanted:
        first = next(i for i, (a, b) in enumerate(zip(seen, wanted, strict=True)) if a != b)
        r = next(x for x in decl["rules"] if x["id"] == wanted[first])
        add("firewalls.rule_order", wanted[first], "device order: " + ", ".join(seen),
            "declared order: " + ", ".join(wanted), r["where"], rule=r["id"])

    for rule in running.rules:
        if rule.name in declared_ids or (running.vendor == "nftables" and _plumbing(rule, decl)):
            continue
        add("firewalls.rule_extra", rule.key, rule.text, f"only the rules declared at {decl['where']}",
            hits=rule.hits)

    for rule in live:
        if rule.any_any:
            add("firewalls.any_any", rule.key, rule.text, "no rule allowing any source to any destination, any service")

    for i, later in enumerate(live):
        for earlier in live[:i]:
            if earlier.covers(later) and earlier.key != later.key:
                decl_rule = next((x for x in decl["rules"] if x["id"] == later.name), None)
                add("firewalls.rule_shadowed", later.name if decl_rule else later.key,
                    f"{later.text} never matches: {earlier.text} comes first and matches all of it",
                    "every rule reachable (a broader rule after the narrower ones)",
                    decl_rule["where"] if decl_rule else None, rule=later.name, shadowed_by=earlier.key)
                break

    defaults = {k: v for k, v in running.default_action.items() if v != "deny"}
    allow_all = next((r for r in live if r.any_any and ANY in r.srcintf and ANY in r.dstintf), None)
    if defaults or allow_all:
        add("firewalls.default_not_deny", "",
            "; ".join([*(f"chain {k} policy accept" for k in sorted(defaults)),
                       *([f"{allow_all.text} lets everything else through"] if allow_all else [])]),
            "deny by default, in and through", decl["where"])

    _admin(decl, running, add)
    for check in CHECKS:
        if check not in failed and _applies(check, running):
            out.append(make_finding(check, f"firewall:{fw}", Status.PASS, observed=_pass_text(check, running),
                                    expected="as declared", site=decl["site"], evidence=evidence,
                                    details={"firewall": fw, "vendor": running.vendor, "where": decl["where"]}))
    return out


def _within(inner: ipaddress.IPv4Network | ipaddress.IPv6Network,
            outer: ipaddress.IPv4Network | ipaddress.IPv6Network) -> bool:
    return inner.version == outer.version and inner.subnet_of(outer)  # type: ignore[arg-type]


def _plumbing(rule: Rule, decl: dict[str, Any]) -> bool:
    """An nft input rule the role writes for the management allow-list (not a policy rule)."""
    return rule.name == "management allow-list"


def _applies(check: str, running: Running) -> bool:
    if check == "firewalls.rule_unused":
        return running.hit_counts
    if check == "firewalls.admin_mfa":
        return running.vendor == "fortinet"
    return True


def _pass_text(check: str, running: Running) -> str:
    return f"{len(running.rules)} rule(s) read back from {running.firewall}: nothing found for this check"


def _admin(decl: dict[str, Any], running: Running, add: Any) -> None:
    management = {i for z in decl["zones"] if z["management"] for i in z["interfaces"]}
    for iface in running.interfaces:
        admin = sorted(set(iface.protocols) & ADMIN_PROTOCOLS)
        if not admin:
            continue
        if iface.interface not in management or "http" in admin or "telnet" in admin:
            add("firewalls.admin_exposed", f"interface:{iface.interface}",
                f"interface {iface.interface} answers {', '.join(admin)}",
                f"administration ({'/'.join(sorted(decl['management_ports']))}) only on the management interfaces "
                f"({', '.join(sorted(management)) or 'none declared'}), HTTPS and SSH only")
    allow = [ipaddress.ip_network(a, strict=False) for a in decl["management_allowlist"]]
    for a in running.admins:
        hosts = [ipaddress.ip_network(h, strict=False) for h in a.trusthosts]
        outside = [str(h) for h in hosts if not any(_within(h, n) for n in allow)]
        if not hosts or outside:
            add("firewalls.admin_exposed", f"admin:{a.name}",
                f"administrator {a.name} may log in from " + (", ".join(outside) if hosts else "anywhere"),
                "trusted hosts within the management allow-list " + ", ".join(decl["management_allowlist"]))
        if decl["management_mfa"] and not a.mfa:
            add("firewalls.admin_mfa", f"admin:{a.name}", f"administrator {a.name} has no second factor",
                "two-factor authentication for every administrator (management_mfa: true)")
    if running.vendor == "nftables" and decl["management_address"]:
        for rule in running.rules:
            if "input" in rule.srcintf and rule.action == "accept" and not _plumbing(rule, decl):
                add("firewalls.admin_exposed", rule.key, rule.text,
                    "input to the router only from the management allow-list " +
                    ", ".join(decl["management_allowlist"]))
