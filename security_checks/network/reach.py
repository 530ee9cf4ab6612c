"""What the estate model implies for the network, derived once and shared.

Pure functions of the model (no Pulumi, no scanner, no I/O): the Pulumi program builds the firewall
policy, VPNs, Wi-Fi and private DNS from them (infra/wan.py, infra/wifi.py, infra/lob.py), the scans
judge observed traffic by them (`security_checks.network.policy`), and the PSN submission draws the
diagram from them (`security_checks.network.diagram`). One derivation for all of them means the
network that is built, the one that is checked and the one that is drawn cannot drift apart.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..model.schema import Estate, Hosting, Site, Ssid, Vlan, VlanPurpose, ZoneKind

# Azure Firewall network rule protocols for the estate's service protocols.
FIREWALL_PROTOCOLS = {"tcp": "TCP", "udp": "UDP", "icmp": "ICMP"}

MAX_SSIDS = 15          # Meraki SSID numbers 0-14

# Private endpoint DNS zones per Azure service (Azure's documented privatelink zone names).
PRIVATE_DNS_ZONES: dict[str, str] = {
    "web": "privatelink.azurewebsites.net",
    "sql": "privatelink.database.windows.net",
    "keyvault": "privatelink.vaultcore.azure.net",
    "blob": "privatelink.blob.core.windows.net",
    "siterecovery": "privatelink.siterecovery.windowsazure.com",
}
# The private-link group id (the endpoint's subresource) of each of those services: a private
# endpoint names the group, its DNS record lands in the service's zone.
PRIVATE_LINK_GROUPS: dict[str, str] = {"web": "sites", "sql": "sqlServer", "keyvault": "vault", "blob": "blob",
                                       "siterecovery": "AzureSiteRecovery"}


# ---- zones and their prefixes ------------------------------------------------------------------


def zone_prefix_map(estate: Estate) -> dict[str, list[str]]:
    """Every zone's prefixes: its VLANs at every site (in site order); a cloud zone also holds the
    LOB spokes. Zones without a prefix are absent (for example internet, which is everything else)."""
    out: dict[str, list[str]] = {}
    for site in estate.sites:
        for vlan in site.vlans:
            out.setdefault(vlan.zone, []).append(vlan.cidr)
    spokes = [lob.address_space for lob in estate.lob_systems if lob.address_space]
    if spokes:
        for zone in estate.zones:
            if zone.kind is ZoneKind.CLOUD:
                out.setdefault(zone.name, []).extend(spokes)
    return out


def zone_prefixes(estate: Estate, zone: str) -> list[str]:
    """Every prefix in a zone: its VLANs at every site, and for a cloud zone the LOB spokes."""
    return list(zone_prefix_map(estate).get(zone, ()))


def untrusted_prefixes(site: Site) -> list[str]:
    """The site's guest and public Wi-Fi ranges: what must never reach the PSN."""
    return [v.cidr for v in site.vlans if v.purpose in (VlanPurpose.GUEST_WIFI, VlanPurpose.PUBLIC_WIFI)]


def untrusted_estate_prefixes(estate: Estate) -> list[str]:
    """Every guest and public Wi-Fi range in the estate: by VLAN purpose, or by zone kind."""
    untrusted_zones = {z.name for z in estate.zones if z.untrusted}
    out: list[str] = []
    for site in estate.sites:
        for vlan in site.vlans:
            if vlan.cidr not in out and (vlan.zone in untrusted_zones or vlan.cidr in untrusted_prefixes(site)):
                out.append(vlan.cidr)
    return out


def breakout_sources(estate: Estate) -> list[str]:
    """Ranges whose internet traffic breaks out centrally through the hub firewall."""
    out = [r for s in estate.sites if s.wan.breakout == "central" for r in s.ranges]
    out += [lob.address_space for lob in estate.lob_systems if lob.address_space]
    return out


# ---- the WAN and the PSN -------------------------------------------------------------------------


def psn_name(estate: Estate) -> str:
    return estate.organisation.public_sector_network.lower()


def vpn_sites(estate: Estate) -> list[Site]:
    """Sites with a VPN peer address: each gets a VPN site and connection (sites without one are
    on a carrier network, e.g. MPLS, that reaches the hub another way)."""
    return [s for s in estate.sites if s.wan.public_ip]


@dataclass(frozen=True)
class PsnReach:
    """Who may reach the PSN: the zones the firewall policy allows towards it, with the prefixes."""

    zones: tuple[str, ...]
    prefixes: tuple[str, ...]          # sources allowed to reach the PSN
    psn_prefixes: tuple[str, ...]      # the PSN side: psn-zone VLANs and declared PSN ranges
    rules: tuple[str, ...] = ()        # the firewall rule ids that allow it


def psn_reach(estate: Estate) -> PsnReach:
    """Who may reach the PSN, from the firewall rules towards the psn zone (the firewall policy's
    PSN rules and, in hub-vnet, the PSN route table are derived from it).

    A rule's source address object narrows the prefixes (CIV-004: revenues users only); with
    source any, the whole zone counts: its VLANs at every site, or for a cloud zone the LOB spokes.
    """
    psn_zones = {z.name for z in estate.zones if z.kind is ZoneKind.PSN}
    zones: list[str] = []
    prefixes: list[str] = []
    rules: list[str] = []
    for fw in estate.firewalls:
        objects = {o.name: o.addresses for o in fw.address_objects}
        for rule in fw.rules:
            if rule.action != "allow" or rule.to_zone not in psn_zones:
                continue
            rules.append(rule.id)
            if rule.from_zone not in zones:
                zones.append(rule.from_zone)
            found = _rule_addresses(estate, objects, rule.source, rule.from_zone)
            prefixes += [p for p in found if p not in prefixes]
    psn_side: list[str] = []
    for prefix, path in psn_side_origins(estate):
        # Every psn-zone VLAN; a link prefix only once, and not again if a VLAN already declares it.
        if path[0] == "sites" or prefix not in psn_side:
            psn_side.append(prefix)
    return PsnReach(tuple(zones), tuple(prefixes), tuple(psn_side), tuple(rules))


def psn_side_origins(estate: Estate) -> list[tuple[str, tuple[str | int, ...]]]:
    """Each prefix on the PSN's side as declared, with the estate path that declares it: the VLANs in
    a psn zone, then the PSN link's address_prefixes (a policy violation about one prefix is blamed
    on its own line)."""
    psn_zones = {z.name for z in estate.zones if z.kind is ZoneKind.PSN}
    out: list[tuple[str, tuple[str | int, ...]]] = [
        (v.cidr, ("sites", si, "vlans", vi, "cidr"))
        for si, site in enumerate(estate.sites) for vi, v in enumerate(site.vlans) if v.zone in psn_zones]
    link = estate.azure.connectivity.psn
    out += [(p, ("azure", "connectivity", "psn", "address_prefixes", i))
            for i, p in enumerate(link.address_prefixes if link is not None else [])]
    return out


@dataclass(frozen=True)
class PsnFlow:
    """One estate firewall rule to or from the psn zone, as the hub firewall policy allows it."""

    rule: str                       # the estate firewall rule id
    title: str                      # its name
    sources: tuple[str, ...]
    destinations: tuple[str, ...]
    protocol: str                   # Azure Firewall network rule protocol: TCP, UDP, ICMP or Any
    ports: tuple[str, ...]          # destination ports ("*" for any)


def psn_flows(estate: Estate) -> list[PsnFlow]:
    """The allow rules towards the psn zone (declared sources to the PSN prefixes) and back (the PSN
    prefixes to a declared destination), one flow per protocol of the rule's services, so that a
    rule allowing https and dns does not also open UDP 443 and TCP 53."""
    psn_zones = {z.name for z in estate.zones if z.kind is ZoneKind.PSN}
    psn_side = list(psn_reach(estate).psn_prefixes)
    out: list[PsnFlow] = []
    for fw in estate.firewalls:
        objects = {o.name: o.addresses for o in fw.address_objects}
        services = {s.name: s for s in fw.services}
        for rule in fw.rules:
            if rule.action != "allow" or (rule.to_zone in psn_zones) == (rule.from_zone in psn_zones):
                continue
            if rule.to_zone in psn_zones:
                sources, destinations = _rule_addresses(estate, objects, rule.source, rule.from_zone), psn_side
            else:
                sources = psn_side
                destinations = _rule_addresses(estate, objects, rule.destination, rule.to_zone)
            if not sources or not destinations:
                continue
            for protocol, ports in _service_groups(rule.services, services):
                out.append(PsnFlow(rule.id, rule.name, tuple(sources), tuple(destinations), protocol, tuple(ports)))
    return out


def _rule_addresses(estate: Estate, objects: dict[str, list[str]], address: str, zone: str) -> list[str]:
    """A rule side's prefixes: its address object when it names one, else the whole zone."""
    if address != "any" and address in objects:
        return [_as_network(a) for a in objects[address]]
    return zone_prefixes(estate, zone)


def _service_groups(names: Sequence[str] | str, services: dict[str, Any]) -> list[tuple[str, list[str]]]:
    if names == "any":
        return [("Any", ["*"])]
    groups: dict[str, list[str]] = {}
    for name in names:
        service = services.get(name)
        if service is None:
            continue
        ports = groups.setdefault(FIREWALL_PROTOCOLS[service.protocol], [])
        wanted = [str(p) for p in service.ports] if service.protocol != "icmp" and service.ports else ["*"]
        ports += [p for p in wanted if p not in ports]
    return [(proto, ["*"] if "*" in ports else ports) for proto, ports in groups.items()]


def _as_network(address: str) -> str:
    return str(ipaddress.ip_network(address, strict=False))


# ---- private DNS -----------------------------------------------------------------------------------


def private_dns_zones(estate: Estate) -> dict[str, str]:
    """The privatelink zones the LOB systems need: web apps, SQL and blob for PaaS, blob for IaaS
    (backups, diagnostics) and Site Recovery for IaaS that replicates (its DR vault is private), Key
    Vault always (every workload keeps its secrets there)."""
    hosting = {lob.hosting for lob in estate.lob_systems}
    wanted = {"keyvault"}
    if Hosting.PAAS in hosting:
        wanted |= {"web", "sql", "blob"}
    if Hosting.IAAS in hosting:
        wanted |= {"blob"}
    if any(lob.hosting is Hosting.IAAS and lob.tier.needs_dr for lob in estate.lob_systems):
        wanted |= {"siterecovery"}
    return {k: v for k, v in PRIVATE_DNS_ZONES.items() if k in wanted}


def private_link_zones(services: Sequence[str]) -> dict[str, str]:
    """private-link group id -> privatelink zone, for the given services (in their order)."""
    return {PRIVATE_LINK_GROUPS[s]: PRIVATE_DNS_ZONES[s] for s in services}


# ---- Wi-Fi ----------------------------------------------------------------------------------------


def site_vlan(site: Site, name: str) -> Vlan | None:
    return next((v for v in site.vlans if v.name == name), None)


def wifi_sites(estate: Estate) -> dict[str, list[tuple[int, Ssid, Vlan]]]:
    """site name -> [(SSID number, SSID, the site's VLAN for it)] for every site with Wi-Fi.

    One pass over SSIDs x sites: O(SSIDs x sites), with a per-site VLAN index.
    """
    if len(estate.ssids) > MAX_SSIDS:
        raise ValueError(f"ssids: {len(estate.ssids)} SSIDs, a Meraki network has {MAX_SSIDS} at most")
    vlans = {s.name: {v.name: v for v in s.vlans} for s in estate.sites}
    out: dict[str, list[tuple[int, Ssid, Vlan]]] = {}
    for number, ssid in enumerate(estate.ssids):
        for site in estate.ssid_sites(ssid):
            vlan = vlans[site.name].get(ssid.vlan)
            if vlan is not None:
                out.setdefault(site.name, []).append((number, ssid, vlan))
    return {s.name: out[s.name] for s in estate.sites if s.name in out}
