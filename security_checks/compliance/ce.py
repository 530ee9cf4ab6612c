"""Cyber Essentials configuration checks made on the estate model itself (evidence: declared).

They read what the estate declares about firewalls and cloud services, so they can show a
requirement as declared, never as observed; the verdicts that use them are computed by the
runner (security_checks/compliance/verdict.py).
"""

from __future__ import annotations

import ipaddress
from datetime import date

from ..checks import make_finding
from ..findings import Finding, Status
from ..model.located import LoadedEstate
from ..model.schema import Estate, ZoneKind
from ..network.policy import internet_management_breaches

# -- configuration checks on the estate model ---------------------------------------------------

def config_findings(estate: Estate, today: date) -> list[Finding]:
    return [*cloud_mfa(estate), *firewall_default_deny(estate), *firewall_admin_interface(estate),
            *firewall_rule_review(estate, today)]


def cloud_mfa(estate: Estate) -> list[Finding]:
    out = []
    for lob in estate.lob_systems:
        ok = lob.mfa_enforced
        out.append(make_finding(
            "ce.cloud_mfa", f"lob:{lob.name}", Status.PASS if ok else Status.FAIL,
            observed=f"{lob.title} ({lob.hosting.value}, {lob.supplier}): MFA "
                     f"{'enforced for every user' if ok else 'not enforced for every user'}",
            expected="multi-factor authentication for every user and administrator",
            details={"lob": lob.name, "hosting": lob.hosting.value, "supplier": lob.supplier}))
    return out


def _internet_zones(estate: Estate) -> set[str]:
    return {z.name for z in estate.zones if z.kind is ZoneKind.INTERNET}


def _management_zones(estate: Estate) -> set[str]:
    return {z.name for z in estate.zones if z.kind is ZoneKind.MANAGEMENT}


def firewall_default_deny(estate: Estate) -> list[Finding]:
    internet = _internet_zones(estate)
    out = []
    for fw in estate.firewalls:
        problems = []
        if fw.default_inbound != "deny":
            problems.append(f"default inbound action is {fw.default_inbound}")
        for r in fw.rules:
            if r.action == "allow" and r.from_zone in internet and r.source == "any" and r.destination == "any" \
                    and r.services == "any":
                problems.append(f"rule {r.id} allows anything from the internet")
        out.append(make_finding(
            "ce.firewall_default_deny", f"firewall:{fw.name}", Status.FAIL if problems else Status.PASS,
            observed="; ".join(problems) or f"default inbound {fw.default_inbound}; no any-any rule from the internet",
            expected="inbound denied unless a rule allows it", site=fw.site,
            details={"firewall": fw.name, "vendor": fw.vendor}))
    return out


def firewall_admin_interface(estate: Estate) -> list[Finding]:
    internet = _internet_zones(estate)
    mgmt = _management_zones(estate)
    out = []
    for fw in estate.firewalls:
        problems = []
        public = False
        if fw.management_address:
            try:
                public = ipaddress.ip_address(fw.management_address).is_global
            except ValueError:
                public = False
        if not fw.management_mfa and not fw.management_allowlist:
            problems.append("administration has neither MFA nor an address allow-list")
        if public and not fw.management_mfa and not fw.management_allowlist:
            problems.append(f"management address {fw.management_address} is internet-routable")
        for r in fw.rules:
            if r.action == "allow" and r.from_zone in internet and r.to_zone in mgmt:
                problems.append(f"rule {r.id} allows the internet into the management zone {r.to_zone}")
        protection = ", ".join(p for p in (
            "MFA" if fw.management_mfa else "",
            f"allow-list {', '.join(fw.management_allowlist)}" if fw.management_allowlist else "") if p)
        out.append(make_finding(
            "ce.firewall_admin_interface", f"firewall:{fw.name}", Status.FAIL if problems else Status.PASS,
            observed="; ".join(problems) or f"administration protected by {protection}",
            expected="no administration from the internet unless MFA or an allow-list protects it", site=fw.site,
            details={"firewall": fw.name, "management_address": fw.management_address,
                     "management_mfa": fw.management_mfa, "management_allowlist": fw.management_allowlist}))
    return out


def firewall_mgmt_port_from_internet(loaded: LoadedEstate) -> list[Finding]:
    """Per firewall: no allow rule from an internet zone opens SSH, telnet, SMB, RDP or WinRM to any
    zone (judged by network.policy, where the estate's other on-premises rules are), each offending
    rule named with the file and line that declares it."""
    estate = loaded.estate
    breaches = internet_management_breaches(estate)
    internet = _internet_zones(estate)
    out = []
    for fi, fw in enumerate(estate.firewalls):
        mine = [b for b in breaches if b.path[:2] == ("firewalls", fi)]
        lines = []
        for b in mine:
            file, line = loaded.where(b.path)
            lines.append(f"{b.message} ({file}:{line})")
        inbound = sum(1 for r in fw.rules if r.action == "allow" and r.from_zone in internet)
        first = loaded.where(mine[0].path) if mine else None
        out.append(make_finding(
            "ce.firewall_mgmt_port_from_internet", f"firewall:{fw.name}", Status.FAIL if mine else Status.PASS,
            observed="; ".join(lines) or f"none of {inbound} allow rule(s) from an internet zone opens SSH, telnet, "
                                         "SMB, RDP or WinRM",
            expected="no rule from the internet to any zone opens a management port (SSH 22, telnet 23, SMB 445, "
                     "RDP 3389, WinRM 5985/5986)", site=fw.site,
            details={"firewall": fw.name, "rules": [fw.rules[int(b.path[3])].id for b in mine],
                     **({"estate_file": first[0], "estate_line": first[1]} if first else {})}))
    return out


def firewall_rule_review(estate: Estate, today: date) -> list[Finding]:
    out = []
    for fw in estate.firewalls:
        for r in fw.rules:
            if r.action != "allow":
                continue
            problems = []
            if not r.owner.strip():
                problems.append("no owner")
            if len(r.justification.strip()) < 3:
                problems.append("no justification")
            if r.review_by < today:
                problems.append(f"review was due {r.review_by.isoformat()}")
            out.append(make_finding(
                "ce.firewall_rule_review", f"firewall:{fw.name}", Status.FAIL if problems else Status.PASS, key=r.id,
                observed=f"rule {r.id} ({r.name}): " + ("; ".join(problems) or
                                                        f"owner {r.owner}, review by {r.review_by.isoformat()}"),
                expected="an owner, a justification and a review date not in the past", site=fw.site,
                details={"firewall": fw.name, "rule": r.id, "owner": r.owner, "review_by": r.review_by.isoformat()}))
    return out
