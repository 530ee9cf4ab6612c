"""Authorised scope: the one gate every packet-sending path passes before it sends anything.

A target is refused when it lies outside every scan scope, inside a scope's exclusion, outside the
scope's time windows (Europe/London), before the scope was authorised or after it expires, or
when the profile asked for is deeper than the scope allows. Refusals name the scope rule (and its
file and line in the estate) so the person scanning can see exactly why. There is no override:
widening what may be scanned is a reviewed change to scan_scopes in the estate.

Where a target network overlaps an exclusion, the authorised target list is the network minus
the exclusion, so an excluded address is never handed to nmap or scapy at all.

Two kinds of scope are special: `loopback` scopes may only hold loopback addresses, and `lab`
scopes name addresses that exist only inside the lab's network namespaces, so they may only be
scanned from a lab namespace (the caller says which one it will use, and the scope checks it is
a lab namespace). Other scopes are for the council's scanner hosts: a machine is one only when
whoever provisioned it set ESTATE_SCANNER_HOST (to the scanner's name) in its service environment,
so a laptop or CI runner can never sweep real ranges.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from ..model.loader import LoadedEstate
from ..model.schema import DAYS, ScanScope

LONDON = ZoneInfo("Europe/London")
PROFILES = ("discovery", "standard", "deep")
LAB_NETNS_PREFIX = "est-"

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class ScopeRefused(Exception):
    """A target may not be scanned; the message names the scope rule that refuses it."""


@dataclass
class Authorisation:
    """What may be sent, and from where: the only input the packet-sending code accepts."""

    scope: ScanScope
    profile: str
    networks: list[Network]          # targets with every exclusion already cut out
    netns: str | None = None         # lab scopes: the namespace the packets leave from
    notes: list[str] = field(default_factory=list)

    @property
    def targets(self) -> list[str]:
        return [str(n.network_address) if n.num_addresses == 1 else str(n) for n in self.networks]

    def allows(self, address: str) -> bool:
        ip = ipaddress.ip_address(address)
        return any(ip in n for n in self.networks)


def _where(loaded: LoadedEstate, scope: ScanScope, *path: str | int) -> str:
    idx = loaded.estate.scan_scopes.index(scope)
    file, line = loaded.where(("scan_scopes", idx, *path))
    return f"{file}:{line}"


def _parse_targets(targets: list[str]) -> list[Network]:
    out: list[Network] = []
    for t in targets:
        try:
            out.append(ipaddress.ip_network(t, strict=False))
        except ValueError:
            raise ScopeRefused(f"target {t!r} is not an address or network (host names are not scanned: "
                               "scopes are address ranges)") from None
    if not out:
        raise ScopeRefused("no targets given")
    return out


def in_window(scope: ScanScope, when: datetime) -> bool:
    local = when.astimezone(LONDON)
    return scope.minutes_left(DAYS[local.weekday()], local.time().replace(tzinfo=None)) is not None


def authorise(loaded: LoadedEstate, targets: list[str] | None, *, scope_name: str | None = None,
              profile: str = "standard", when: datetime | None = None, netns: str | None = None) -> Authorisation:
    """Authorise a scan of `targets` (default: the whole named scope), or raise ScopeRefused.

    Call this before building any probe; pass its Authorisation to the code that sends packets.
    """
    estate = loaded.estate
    when = when or datetime.now(LONDON)
    if when.tzinfo is None:
        raise ValueError("when must be timezone-aware")
    if profile not in PROFILES:
        raise ScopeRefused(f"profile {profile!r} is not one of {', '.join(PROFILES)}")

    if scope_name is not None:
        try:
            scope = estate.scope(scope_name)
        except KeyError:
            names = ", ".join(s.name for s in estate.scan_scopes) or "none"
            raise ScopeRefused(f"no scan scope named {scope_name!r} in the estate (scopes: {names})") from None
        wanted = _parse_targets(targets) if targets else [ipaddress.ip_network(c) for c in scope.cidrs]
    else:
        if not targets:
            raise ScopeRefused("give --scope NAME or targets inside a scan scope")
        wanted = _parse_targets(targets)
        scope = _scope_for(loaded, wanted)

    loc = _where(loaded, scope)
    # Targets must lie wholly inside the scope's ranges.
    cidrs = [ipaddress.ip_network(c) for c in scope.cidrs]
    for net in wanted:
        if not any(net.version == c.version and net.subnet_of(c) for c in cidrs):  # type: ignore[arg-type]
            raise ScopeRefused(f"{net} is outside scan scope {scope.name!r} (cidrs {', '.join(scope.cidrs)}; {loc})")

    # Exclusions: a target inside one is refused; a range overlapping one loses that part.
    exclusions = [ipaddress.ip_network(e, strict=False) for e in scope.exclusions]
    for i, ex in enumerate(exclusions):
        for net in wanted:
            if net.version == ex.version and net.subnet_of(ex):  # type: ignore[arg-type]
                raise ScopeRefused(f"{net} is inside exclusion {scope.exclusions[i]} of scan scope {scope.name!r} "
                                   f"({_where(loaded, scope, 'exclusions', i)})")

    today = when.astimezone(LONDON).date()
    if today < scope.authorised_on:
        raise ScopeRefused(f"scan scope {scope.name!r} is authorised only from {scope.authorised_on} "
                           f"({_where(loaded, scope, 'authorised_on')})")
    if scope.expires is not None and today > scope.expires:
        raise ScopeRefused(f"scan scope {scope.name!r} expired on {scope.expires} "
                           f"({_where(loaded, scope, 'expires')}): renew the authorisation to scan again")
    if not in_window(scope, when):
        spans = "; ".join(f"{','.join(w.days)} {w.start:%H:%M}-{w.end:%H:%M}" for w in scope.windows)
        raise ScopeRefused(f"scan scope {scope.name!r} allows scans only in its windows ({spans}, Europe/London); "
                           f"it is {when.astimezone(LONDON):%a %H:%M} there ({_where(loaded, scope, 'windows')})")
    if PROFILES.index(profile) > PROFILES.index(scope.max_profile):
        raise ScopeRefused(f"profile {profile!r} is deeper than scan scope {scope.name!r} allows "
                           f"(max_profile {scope.max_profile}; {_where(loaded, scope, 'max_profile')})")

    if scope.loopback:
        for net in wanted:
            if not net.is_loopback:
                raise ScopeRefused(f"{net}: scan scope {scope.name!r} is a loopback scope and holds only loopback "
                                   f"addresses ({loc})")
        if netns is not None:
            raise ScopeRefused(f"scan scope {scope.name!r} is scanned on this machine's loopback, not from {netns}")
    elif scope.lab:
        if not netns or not netns.startswith(LAB_NETNS_PREFIX):
            raise ScopeRefused(f"scan scope {scope.name!r} is a lab scope: it is scanned only from inside the lab's "
                               f"scanner namespace (is the lab up? `estate lab up`) ({loc})")
    elif not os.environ.get("ESTATE_SCANNER_HOST"):
        raise ScopeRefused(f"scan scope {scope.name!r} covers the council's networks: it is scanned only from a "
                           f"council scanner host (one whose environment sets ESTATE_SCANNER_HOST), "
                           f"which this machine is not ({loc})")

    networks: list[Network] = []
    for net in wanted:
        networks.extend(_subtract(net, exclusions))
    if not networks:
        raise ScopeRefused(f"nothing is left to scan in scope {scope.name!r} once its exclusions are removed ({loc})")
    return Authorisation(scope=scope, profile=profile, networks=networks, netns=netns)


def _scope_for(loaded: LoadedEstate, wanted: list[Network]) -> ScanScope:
    for scope in loaded.estate.scan_scopes:
        cidrs = [ipaddress.ip_network(c) for c in scope.cidrs]
        if all(any(n.version == c.version and n.subnet_of(c) for c in cidrs) for n in wanted):  # type: ignore[arg-type]
            return scope
    listed = ", ".join(str(n) for n in wanted)
    raise ScopeRefused(f"{listed} is outside every scan scope in the estate (scan_scopes): add a reviewed scope "
                       "to scan it")


def _subtract(net: Network, exclusions: list[Network]) -> list[Network]:
    parts = [net]
    for ex in exclusions:
        nxt: list[Network] = []
        for p in parts:
            if p.version != ex.version or not p.overlaps(ex):
                nxt.append(p)
            elif p.subnet_of(ex):  # type: ignore[arg-type]
                continue
            else:
                nxt.extend(p.address_exclude(ex))  # type: ignore[arg-type]
        parts = nxt
    return sorted(parts, key=lambda n: (n.version, n.network_address))
