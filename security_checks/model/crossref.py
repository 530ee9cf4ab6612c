"""Rules that need the whole estate: references between sections, duplicates and overlaps.

Two kinds of problem. Reference problems (a name that points nowhere, a duplicate, an attestation
that cannot be relied on) make the model meaningless, so every command refuses such an estate.
Policy problems (overlapping address ranges) describe an estate that can be read but must not be
built: `estate validate` reports both; the infrastructure plan reports the policy kind as policy
violations (exit 1), as its policy pack would on a real preview, and an assessment as findings of
its `estate-hygiene` step (`address_overlaps` is the one list both read).

An attestation is refused when it names a requirement the control catalogue does not have, is
dated after today, or cites evidence that is not a file inside the estate directory: a verdict
must never rest on a statement nobody could have made yet, about nothing, or on nothing.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from functools import cache
from pathlib import Path

from .. import yamlread
from .located import LoadedEstate, Path_, Problem
from .schema import Estate, ScanScope, Schedule

Net = ipaddress.IPv4Network | ipaddress.IPv6Network

# The control catalogue's YAML files. Read here as data, by path: the catalogue package imports the
# model (its matrix reads attestations), so importing it from the model would be a cycle, and the
# model imports no engine code.
CATALOGUE_DIR = Path(__file__).resolve().parents[1] / "catalogue"


@cache
def requirement_refs(directory: Path = CATALOGUE_DIR) -> frozenset[str]:
    """Every requirement reference (`<prefix>:<id>`, e.g. CE3.3:FW-3) in the catalogue files."""
    refs: set[str] = set()
    for path in sorted(directory.glob("*.yaml")):
        data = yamlread.safe_load(path.read_text(encoding="utf-8")) or {}
        prefix = data.get("prefix")
        refs.update(f"{prefix}:{req['id']}" for req in data.get("requirements") or []
                    if isinstance(req, dict) and "id" in req)
    return frozenset(refs)


@dataclass(frozen=True)
class AddressRange:
    what: str      # as people read it: "site depot", "hub address space", "VLAN guest"
    network: Net
    path: Path_    # where the estate declares it


@dataclass(frozen=True)
class Overlap:
    """Two declared ranges that overlap; `later` is where `estate validate` reports it."""

    earlier: AddressRange
    later: AddressRange
    message: str


def _within(inner: Net, outer: Net) -> bool:
    """inner is inside outer (False across IP versions, where subnet_of would raise)."""
    return inner.version == outer.version and inner.subnet_of(outer)  # type: ignore[arg-type]


def uncovered(net: Net, ranges: list[Net]) -> list[Net]:
    """The parts of `net` that no range covers, as the fewest networks (empty: `net` is covered).

    A scan scope may summarise several of the estate's ranges (a /16 over twenty schools' /20s)
    as long as together they cover all of it; the parts left over are what an error must name.
    """
    left: list[Net] = [net]
    for r in ranges:
        if r.version != net.version:
            continue
        nxt: list[Net] = []
        for part in left:
            if _within(part, r):
                continue
            if part.overlaps(r):
                nxt += part.address_exclude(r)  # type: ignore[arg-type]
            else:
                nxt.append(part)
        left = nxt
        if not left:
            break
    return list(ipaddress.collapse_addresses(left))  # type: ignore[type-var]


def _dupes(items: Iterable[tuple[str, Path_]], what: str, loaded: LoadedEstate) -> list[Problem]:
    seen: dict[str, Path_] = {}
    out = []
    for name, path in items:
        if name in seen:
            f0, l0 = loaded.where(seen[name])
            out.append(loaded.problem(path, f"duplicate {what} {name!r} (first at {loaded.shown(f0)}:{l0})"))
        else:
            seen[name] = path
    return out


def cross_reference(loaded: LoadedEstate, today: date | None = None) -> list[Problem]:
    e = loaded.estate
    today = today or date.today()
    problems: list[Problem] = []

    def bad(path: Path_, message: str, policy: bool = False) -> None:
        problems.append(loaded.problem(path, message, policy))

    zones = {z.name for z in e.zones}
    sites = {s.name: s for s in e.sites}
    firewalls = {f.name for f in e.firewalls}
    subscriptions = {s.name for s in e.azure.subscriptions}

    problems += _dupes(((z.name, ("zones", i, "name")) for i, z in enumerate(e.zones)), "zone", loaded)
    problems += _dupes(((s.name, ("sites", i, "name")) for i, s in enumerate(e.sites)), "site", loaded)
    problems += _dupes(((s.name, ("ssids", i, "name")) for i, s in enumerate(e.ssids)), "SSID", loaded)
    problems += _dupes(((s.name, ("lob_systems", i, "name")) for i, s in enumerate(e.lob_systems)),
                       "LOB system", loaded)
    problems += _dupes(((g.name, ("endpoint_groups", i, "name")) for i, g in enumerate(e.endpoint_groups)),
                       "endpoint group", loaded)
    problems += _dupes(((f.name, ("firewalls", i, "name")) for i, f in enumerate(e.firewalls)),
                       "firewall", loaded)
    problems += _dupes(((s.name, ("scan_scopes", i, "name")) for i, s in enumerate(e.scan_scopes)),
                       "scan scope", loaded)
    problems += _dupes(((s.name, ("azure", "subscriptions", i, "name"))
                        for i, s in enumerate(e.azure.subscriptions)), "subscription", loaded)
    problems += _dupes(((h.name, ("endpoint_groups", gi, "hosts", hi, "name"))
                        for gi, g in enumerate(e.endpoint_groups) for hi, h in enumerate(g.hosts)),
                       "host", loaded)

    # --- device zones name their controllers among the declared hosts ---------------------------
    declared = {h.name for h in e.declared_hosts}
    for zi, zone in enumerate(e.zones):
        for ci, name in enumerate(zone.controllers):
            if zone.kind.value not in ("iot", "building-management", "cctv"):
                bad(("zones", zi, "controllers"), f"controllers are for iot, building-management and cctv zones, "
                                                  f"not {zone.kind.value}")
                break
            if name not in declared:
                bad(("zones", zi, "controllers", ci), f"unknown declared host {name!r}")

    # --- sites and VLANs ----------------------------------------------------------------------
    for si, site in enumerate(e.sites):
        p: Path_ = ("sites", si)
        if site.firewall and site.firewall not in firewalls:
            bad((*p, "firewall"), f"unknown firewall {site.firewall!r}")
        problems += _dupes(((v.name, (*p, "vlans", vi, "name")) for vi, v in enumerate(site.vlans)),
                           "VLAN name", loaded)
        problems += _dupes(((str(v.id), (*p, "vlans", vi, "id")) for vi, v in enumerate(site.vlans)),
                           "VLAN id", loaded)
        site_nets = [ipaddress.ip_network(r) for r in site.ranges]
        for vi, vlan in enumerate(site.vlans):
            if vlan.zone not in zones:
                bad((*p, "vlans", vi, "zone"), f"unknown zone {vlan.zone!r}")
            if not any(_within(vlan.network, n) for n in site_nets):
                bad((*p, "vlans", vi, "cidr"), f"{vlan.cidr} is outside the site's ranges {site.ranges}")
            if vlan.gateway and ipaddress.ip_address(vlan.gateway) not in vlan.network:
                bad((*p, "vlans", vi, "gateway"), f"{vlan.gateway} is not inside {vlan.cidr}")

    # --- address plan: VLANs within a site; sites, hubs and spokes must not overlap -------------
    for overlap in address_overlaps(loaded):
        bad(overlap.later.path, overlap.message, policy=True)
    spaces = _address_spaces(loaded)

    # --- Wi-Fi ----------------------------------------------------------------------------------
    for i, ssid in enumerate(e.ssids):
        p = ("ssids", i)
        if ssid.sites == "all":
            if not e.ssid_sites(ssid):
                bad((*p, "vlan"), f"no site has a VLAN named {ssid.vlan!r}")
            continue
        for j, name in enumerate(ssid.sites):
            if name not in sites:
                bad((*p, "sites", j), f"unknown site {name!r}")
            elif not any(v.name == ssid.vlan for v in sites[name].vlans):
                bad((*p, "vlan"), f"site {name!r} has no VLAN named {ssid.vlan!r}")

    # --- LOB systems ------------------------------------------------------------------------------
    for i, lob in enumerate(e.lob_systems):
        for j, z in enumerate(lob.reachable_from):
            if z not in zones:
                bad(("lob_systems", i, "reachable_from", j), f"unknown zone {z!r}")
        if lob.subscription and lob.subscription not in subscriptions:
            bad(("lob_systems", i, "subscription"), f"unknown subscription {lob.subscription!r}")

    for i, budget in enumerate(e.azure.budgets):
        if budget.scope != "tenant" and budget.scope not in subscriptions:
            bad(("azure", "budgets", i, "scope"), f"unknown subscription {budget.scope!r}")

    # --- endpoints --------------------------------------------------------------------------------
    for i, group in enumerate(e.endpoint_groups):
        if group.sites != "all":
            for j, name in enumerate(group.sites):
                if name not in sites:
                    bad(("endpoint_groups", i, "sites", j), f"unknown site {name!r}")
        for j, host in enumerate(group.hosts):
            if host.site and host.site not in sites:
                bad(("endpoint_groups", i, "hosts", j, "site"), f"unknown site {host.site!r}")

    # --- firewalls --------------------------------------------------------------------------------
    for fi, fw in enumerate(e.firewalls):
        p = ("firewalls", fi)
        if fw.site not in sites:
            bad((*p, "site"), f"unknown site {fw.site!r}")
        fw_zones = set()
        for zi, fz in enumerate(fw.zones):
            fw_zones.add(fz.zone)
            if fz.zone not in zones:
                bad((*p, "zones", zi, "zone"), f"unknown zone {fz.zone!r}")
            site_vlans = {v.name for v in sites[fw.site].vlans} if fw.site in sites else set()
            for vi, vlan_name in enumerate(fz.vlans):
                if vlan_name not in site_vlans:
                    bad((*p, "zones", zi, "vlans", vi), f"site {fw.site!r} has no VLAN named {vlan_name!r}")
        objects = {o.name for o in fw.address_objects}
        services = {s.name for s in fw.services}
        problems += _dupes(((o.name, (*p, "address_objects", i, "name"))
                            for i, o in enumerate(fw.address_objects)), "address object", loaded)
        problems += _dupes(((s.name, (*p, "services", i, "name"))
                            for i, s in enumerate(fw.services)), "service", loaded)
        problems += _dupes(((r.id, (*p, "rules", i, "id")) for i, r in enumerate(fw.rules)), "rule id", loaded)
        for ri, rule in enumerate(fw.rules):
            rp = (*p, "rules", ri)
            for attr in ("from_zone", "to_zone"):
                z = getattr(rule, attr)
                if z not in fw_zones:
                    bad((*rp, attr), f"unknown zone {z!r} (firewall {fw.name} has: {', '.join(sorted(fw_zones))})")
            for attr in ("source", "destination"):
                obj = getattr(rule, attr)
                if obj != "any" and obj not in objects:
                    bad((*rp, attr), f"unknown address object {obj!r}")
            if rule.services != "any":
                for si, svc in enumerate(rule.services):
                    if svc not in services:
                        bad((*rp, "services", si), f"unknown service {svc!r}")

    # --- declared hosts ----------------------------------------------------------------------------
    lobs = {lob.name for lob in e.lob_systems}
    problems += _dupes(((h.name, ("declared_hosts", i, "name")) for i, h in enumerate(e.declared_hosts)),
                       "declared host", loaded)
    problems += _dupes(((h.address, ("declared_hosts", i, "address")) for i, h in enumerate(e.declared_hosts)),
                       "declared host address", loaded)
    for i, dh in enumerate(e.declared_hosts):
        p = ("declared_hosts", i)
        if dh.zone not in zones:
            bad((*p, "zone"), f"unknown zone {dh.zone!r}")
        if dh.site and dh.site not in sites:
            bad((*p, "site"), f"unknown site {dh.site!r}")
        if dh.lob and dh.lob not in lobs:
            bad((*p, "lob"), f"unknown LOB system {dh.lob!r}")
        addr = ipaddress.ip_address(dh.address)
        if dh.role == "selftest":
            if not addr.is_loopback:
                bad((*p, "address"), "selftest hosts live on loopback")
        elif not any(addr in r.network for r in spaces) and not any(
                addr in ipaddress.ip_network(c) for s in e.scan_scopes if s.lab for c in s.cidrs):
            bad((*p, "address"), f"{addr} is outside the estate's address ranges")

    problems += _schedule_problems(loaded)

    # --- scan scopes: inside the estate, exclusions inside the scope ------------------------------
    estate_nets = [r.network for r in spaces]
    loopback = ipaddress.ip_network("127.0.0.0/8")
    for i, scope in enumerate(e.scan_scopes):
        p = ("scan_scopes", i)
        nets = [ipaddress.ip_network(c) for c in scope.cidrs]
        for j, net in enumerate(nets):
            if scope.loopback:
                if not _within(net, loopback):
                    bad((*p, "cidrs", j), f"{net} is not loopback, but the scope says loopback: true")
            elif net.version == 4 and net.overlaps(loopback):
                bad((*p, "cidrs", j), f"{net} is loopback: mark the scope loopback: true")
            else:
                outside = uncovered(net, estate_nets)
                if outside == [net]:
                    bad((*p, "cidrs", j), f"{net} is outside the estate's address ranges")
                elif outside:
                    parts = ", ".join(str(o) for o in outside[:4]) + (
                        f" and {len(outside) - 4} more" if len(outside) > 4 else "")
                    bad((*p, "cidrs", j), f"{net} spans addresses outside the estate's ranges: {parts} "
                                          "(list the ranges inside it instead, or declare those addresses)")
        for j, ex in enumerate(scope.exclusions):
            ex_net = ipaddress.ip_network(ex)
            if not any(_within(ex_net, n) for n in nets):
                bad((*p, "exclusions", j), f"{ex} is not inside the scope's cidrs")
        if scope.expires and scope.expires < scope.authorised_on:
            bad((*p, "expires"), "expires before it was authorised")

    # --- attestations: a real requirement, already made, resting on evidence that is there --------
    refs = requirement_refs()
    root = os.path.realpath(loaded.root)
    for i, att in enumerate(e.attestations):
        p = ("attestations", i)
        if att.requirement not in refs:
            prefix = att.requirement.partition(":")[0]
            known = sorted({r.partition(":")[0] for r in refs})
            hint = (f"the catalogue has no requirement {att.requirement.partition(':')[2]!r} under {prefix}"
                    if prefix in known else f"catalogue prefixes are {', '.join(known)}")
            bad((*p, "requirement"), f"unknown requirement {att.requirement!r} ({hint})")
        if att.attested_on > today:
            bad((*p, "attested_on"), f"{att.attested_on.isoformat()} is in the future (today is "
                                     f"{today.isoformat()}): an attestation records a statement already made")
        if att.expires is not None and att.expires < att.attested_on:
            bad((*p, "expires"), "expires before it was attested")
        for j, ev in enumerate(att.evidence):
            target = os.path.realpath(os.path.join(root, ev))
            if os.path.commonpath([root, target]) != root:
                bad((*p, "evidence", j), f"{ev!r} is outside the estate directory: evidence is kept with the estate")
            elif not os.path.isfile(target):
                bad((*p, "evidence", j), f"no file {ev!r} in the estate directory {loaded.root}")
    return problems


def _address_spaces(loaded: LoadedEstate) -> list[AddressRange]:
    """Every range the address plan gives out: sites' summary ranges, the hubs', the LOB spokes'."""
    e = loaded.estate
    spaces: list[AddressRange] = []
    for si, site in enumerate(e.sites):
        for ri, r in enumerate(site.ranges):
            spaces.append(AddressRange(f"site {site.name}", ipaddress.ip_network(r), ("sites", si, "ranges", ri)))
    conn = e.azure.connectivity
    for attr in ("hub_address_space", "secondary_hub_address_space", "dns_resolver_address_space",
                 "identity_address_space"):
        value = getattr(conn, attr)
        if value:
            spaces.append(AddressRange(attr.replace("_", " "), ipaddress.ip_network(value),
                                       ("azure", "connectivity", attr)))
    for li, lob in enumerate(e.lob_systems):
        if lob.address_space:
            spaces.append(AddressRange(f"LOB system {lob.name}", ipaddress.ip_network(lob.address_space),
                                       ("lob_systems", li, "address_space")))
    return spaces


def address_overlaps(loaded: LoadedEstate) -> list[Overlap]:
    """Overlapping VLANs within a site, and overlapping ranges of the address plan (the policy problems)."""
    out: list[Overlap] = []
    for si, site in enumerate(loaded.estate.sites):
        vlans = [AddressRange(f"VLAN {v.name}", v.network, ("sites", si, "vlans", vi, "cidr"))
                 for vi, v in enumerate(site.vlans)]
        for a in range(len(vlans)):
            for b in range(a + 1, len(vlans)):
                na, nb = vlans[a].network, vlans[b].network
                if na.version == nb.version and na.overlaps(nb):
                    out.append(Overlap(vlans[a], vlans[b],
                                       f"{vlans[b].network} overlaps {vlans[a].what} ({vlans[a].network})"))
    spaces = _address_spaces(loaded)
    for a in range(len(spaces)):
        for b in range(a + 1, len(spaces)):
            na, nb = spaces[a].network, spaces[b].network
            if na.version == nb.version and na.overlaps(nb):
                out.append(Overlap(spaces[a], spaces[b], f"{nb} overlaps {spaces[a].what} ({na})"))
    return out


def scheduled_scopes(estate: Estate, schedule: Schedule) -> list[ScanScope]:
    """The scopes a scheduled run sends packets to: its own scope for a scan; for the whole
    assessment every scope but the loopback self-test and the lab (which exist only on this machine)."""
    if schedule.job == "scan":
        return [s for s in estate.scan_scopes if s.name == schedule.scope]
    if schedule.job == "assess":
        return [s for s in estate.scan_scopes if not s.loopback and not s.lab]
    return []


def _schedule_problems(loaded: LoadedEstate) -> list[Problem]:
    e = loaded.estate
    out: list[Problem] = []
    scopes = {s.name for s in e.scan_scopes}
    out += _dupes(((s.name, ("schedules", i, "name")) for i, s in enumerate(e.schedules)), "schedule", loaded)
    for i, sch in enumerate(e.schedules):
        if sch.scope is not None and sch.scope not in scopes:
            out.append(loaded.problem(("schedules", i, "scope"), f"unknown scan scope {sch.scope!r}"))
            continue
        for scope in scheduled_scopes(e, sch):
            # A scan's profile is the schedule's; the whole assessment takes each scope's own cap.
            if sch.job == "scan" and ((sch.profile == "deep" and scope.max_profile != "deep") or (
                    sch.profile == "standard" and scope.max_profile == "discovery")):
                out.append(loaded.problem(("schedules", i, "profile"),
                                          f"profile {sch.profile} is above scope {scope.name}'s max_profile "
                                          f"{scope.max_profile}"))
            closed = [d for d in sch.days if scope.minutes_left(d, sch.at) is None]
            if closed:
                out.append(loaded.problem(("schedules", i, "at"),
                                          f"{', '.join(closed)} {sch.at.strftime('%H:%M')} is outside every "
                                          f"authorised window of scan scope {scope.name}"))
    return out
