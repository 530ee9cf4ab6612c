"""Coverage: how much of what a requirement applies to a run actually examined.

A requirement applies to a population the estate declares (its `applies_to` in the catalogue):
every device, site, firewall or cloud service; or one thing (the network, the cloud plan, the
organisation, its users). A finding covers the members it is about: a host finding its host, a
site or zone finding its site, a group-level finding every device of the group, a tenant-wide
identity finding every cloud service that signs in through the tenant.

"Met" needs every member covered by a passing *observed* finding. Members covered only by what the
estate declares (or a person attests) make it "declared, not verified"; members nothing examined
make it "not assessed", with the count ("examined 2 of 12 sites").
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from functools import cached_property

from ..findings import EvidenceKind, Finding
from ..model.schema import Estate

LABELS = {"devices": "devices", "sites": "sites", "firewalls": "firewalls", "cloud_services": "cloud services",
          "users": "the users (tenant)", "network": "the network", "plan": "the cloud plan",
          "organisation": "the organisation"}
ONE = "*"   # the single member of a population that is one thing


@dataclass
class Coverage:
    applies_to: str
    total: int
    observed: int
    declared: int                 # covered only by declared or attested evidence
    unread: int                   # findings said these could not be examined
    checks: list[str] = field(default_factory=list)   # the checks whose results covered something

    @property
    def label(self) -> str:
        return LABELS.get(self.applies_to, self.applies_to)

    @property
    def complete(self) -> bool:
        return self.total > 0 and self.observed >= self.total

    @property
    def examined(self) -> int:
        return self.observed + self.declared

    def counted(self) -> str:
        if self.total == 1 and self.applies_to not in ("devices", "sites", "firewalls", "cloud_services"):
            return self.label
        return f"{self.total:,} {self.label}"

    def as_dict(self) -> dict[str, object]:
        return {"applies_to": self.applies_to, "label": self.label, "total": self.total, "observed": self.observed,
                "declared": self.declared, "unread": self.unread, "checks": self.checks}


class Populations:
    """The estate's populations, and which members a finding is about (built once per verdict)."""

    def __init__(self, estate: Estate):
        self.estate = estate

    # -- members and their weights (a device group counts its unnamed devices as one member) --------

    @cached_property
    def devices(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for g in self.estate.endpoint_groups:
            for h in g.hosts:
                out[f"host:{h.name}"] = 1
            rest = g.count - len(g.hosts)
            if rest > 0:
                out[f"group:{g.name}"] = rest
        for d in self.estate.declared_hosts:
            if not ipaddress.ip_address(d.address).is_loopback:   # self-test listeners are not devices
                out.setdefault(f"host:{d.name}", 1)
        return out

    @cached_property
    def group_members(self) -> dict[str, set[str]]:
        out: dict[str, set[str]] = {}
        for g in self.estate.endpoint_groups:
            rest = {f"group:{g.name}"} if g.count > len(g.hosts) else set()
            out[g.name] = {f"host:{h.name}" for h in g.hosts} | rest
        return out

    @cached_property
    def host_names(self) -> dict[str, str]:
        """Address or name -> the declared name, so host:<address> and host:<name> agree."""
        out = {h.address: h.name for h in self.estate.declared_hosts}
        out.update({h.name: h.name for h in self.estate.declared_hosts})
        for g in self.estate.endpoint_groups:
            for h in g.hosts:
                out[h.name] = h.name
        return out

    @cached_property
    def host_sites(self) -> dict[str, str]:
        out = {h.name: h.site for h in self.estate.declared_hosts if h.site}
        for g in self.estate.endpoint_groups:
            out.update({h.name: h.site for h in g.hosts if h.site})
        return out

    @cached_property
    def site_networks(self) -> list[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, str]]:
        return [(ipaddress.ip_network(str(r), strict=False), s.name) for s in self.estate.sites for r in s.ranges]

    def weights(self, applies_to: str) -> dict[str, int]:
        e = self.estate
        if applies_to == "devices":
            return self.devices
        if applies_to == "sites":
            return {s.name: 1 for s in e.sites}
        if applies_to == "firewalls":
            return {f.name: 1 for f in e.firewalls}
        if applies_to == "cloud_services":
            return {lob.name: 1 for lob in e.lob_systems}
        return {ONE: 1}

    def members(self, f: Finding, applies_to: str) -> set[str]:
        kind, _, ident = f.asset.partition(":")
        if applies_to == "devices":
            if kind == "host":
                name = self.host_names.get(ident)
                return {f"host:{name}"} if name and f"host:{name}" in self.devices else set()
            if kind == "endpoint-group":
                return set(self.group_members.get(ident, set()))
            return set()
        if applies_to == "sites":
            return self._site_of(f, kind, ident)
        if applies_to == "firewalls":
            names = self.firewall_names
            for candidate in (ident if kind in ("firewall", "host") else None, f.details.get("firewall")):
                if candidate in names:
                    return {str(candidate)}
            return set()
        if applies_to == "cloud_services":
            lobs = self.estate.lob_systems
            if kind == "lob":
                return {ident} if any(lob.name == ident for lob in lobs) else set()
            if kind == "tenant":   # a tenant-wide identity result covers what signs in through the tenant
                return {lob.name for lob in lobs if getattr(lob, "sign_in", "entra") != "own"}
            if kind == "infra-plan":
                return {lob.name for lob in lobs}
            return set()
        return {ONE}

    @cached_property
    def site_names(self) -> frozenset[str]:
        return frozenset(s.name for s in self.estate.sites)

    @cached_property
    def firewall_names(self) -> frozenset[str]:
        return frozenset(fw.name for fw in self.estate.firewalls)

    def _site_of(self, f: Finding, kind: str, ident: str) -> set[str]:
        sites = self.site_names
        if f.site in sites:
            return {str(f.site)}
        if kind == "site" and ident in sites:
            return {ident}
        if kind == "zone" and "@" in ident:
            site = ident.rsplit("@", 1)[1]
            return {site} if site in sites else set()
        if kind == "firewall":
            fw = next((x for x in self.estate.firewalls if x.name == ident), None)
            return {fw.site} if fw and fw.site in sites else set()
        if kind == "host":
            name = self.host_names.get(ident)
            if name and self.host_sites.get(name) in sites:
                return {self.host_sites[name]}
            return set(self._address_sites(ident))
        return set()

    def _address_sites(self, ident: str) -> frozenset[str]:
        """The sites whose ranges hold an address; remembered, as an ITHC import asks per finding and requirement."""
        found = self._by_address.get(ident)
        if found is None:
            try:
                ip = ipaddress.ip_address(ident)
                found = frozenset(site for net, site in self.site_networks if ip.version == net.version and ip in net)
            except ValueError:
                found = frozenset()
            self._by_address[ident] = found
        return found

    @cached_property
    def _by_address(self) -> dict[str, frozenset[str]]:
        return {}


def coverage(applies_to: str, evidence: list[Finding], pops: Populations) -> Coverage:
    """How much of the population the evidence examined, by kind of evidence."""
    weights = pops.weights(applies_to)
    observed: set[str] = set()
    declared: set[str] = set()
    unread: set[str] = set()
    checks: set[str] = set()
    for f in evidence:
        members = pops.members(f, applies_to) & weights.keys()
        if not members:
            continue
        if f.status.value in ("pass", "fail"):
            # A failing observation examined its member too: coverage says what was looked at; whether
            # it passed is the status's business (a failure makes the requirement not met anyway).
            checks.add(f.check_id)
            (observed if f.evidence_kind is EvidenceKind.OBSERVED else declared).update(members)
        elif f.status.value in ("not_assessed", "error"):
            unread.update(members)
    declared -= observed
    unread -= observed | declared

    def w(ms: set[str]) -> int:
        return sum(weights[m] for m in ms)

    return Coverage(applies_to, sum(weights.values()), w(observed), w(declared), w(unread), sorted(checks))
