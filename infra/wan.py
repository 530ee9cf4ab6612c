"""The council's WAN in Azure: site VPNs into the hub(s), the firewall for internet breakout and
PSN isolation, the PSN/SWAN connection, private DNS for private endpoints and a DNS resolver.

Two designs, as the estate chooses (`azure.connectivity.design`):

- virtual-wan: a VPN gateway in each virtual hub, a VPN site and a VPN connection per council
  site, and routing intent sending internet and private traffic through the hub's Azure Firewall.
  Routing intent rules out custom hub route tables, so the PSN connection stays on the
  defaultRouteTable and its isolation is the firewall policy's: only the declared zones' prefixes
  are allowed to the PSN prefixes, guest and public Wi-Fi explicitly denied, the rest default-denied;
- hub-vnet: a VPN virtual network gateway in the hub VNet, a local network gateway and an IPsec
  connection per site, the firewall in the hub VNet, and a UDR route table for the PSN on the
  GatewaySubnet, sending the PSN's and the declared zones' prefixes to the firewall (plus the same
  firewall policy, which is what isolates the PSN: see `SiteVpns._hub_vnet`).

The hub itself (virtual WAN / virtual hub or hub VNet, its resource group) comes from `infra.hub`;
this module attaches to it. Everything is derived from the estate model; pre-shared keys are
generated into Key Vault (`infra.identity.generated_secret`), never read from estate files.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Protocol, cast

import pulumi
import pulumi_azure_native as az

from security_checks.model.schema import Estate, Site, WanDesign, ZoneKind
from security_checks.network.reach import (
    PRIVATE_LINK_GROUPS,
    PsnReach,
    breakout_sources,
    private_dns_zones,
    psn_flows,
    psn_name,
    psn_reach,
    psn_side_origins,
    untrusted_estate_prefixes,
    untrusted_prefixes,
    vpn_sites,
    zone_prefixes,
)

from .hub import hub_firewall_ip, hub_vnet_subnets
from .identity import KeyVaultRef, generated_secret, identity_subnet
from .standards import IPSEC_POLICY, NETWORK_NAME_TAG, PSN_ROLE_TAG, ROUTE_TABLE_PSN

if TYPE_CHECKING:
    from .context import Context
    from .hub import Hub
    from .identity import Identity
    from .naming import Namer

CONNECTIVITY = "connectivity"

PSK_LENGTH = 48


class HubLike(Protocol):
    """What this module needs from a hub (`infra.hub.Hub` satisfies it)."""

    design: WanDesign | str
    region: str
    resource_group_name: pulumi.Input[str]
    address_space: str


# --------------------------------------------------------------------------------------------
# Address arithmetic for the hub (no Pulumi). What the estate implies for the network (PSN reach,
# VPN sites, zone prefixes, private DNS) is security_checks.network.reach, shared with the scans
# and the diagram.
# --------------------------------------------------------------------------------------------


def dns_subnets(space: str) -> tuple[str, str]:
    """Inbound and outbound endpoint subnets (/28 each, the resolver's minimum) of the DNS space."""
    net = ipaddress.ip_network(space)
    subnets = list(net.subnets(new_prefix=28)) if net.prefixlen <= 27 else [net, net]
    return str(subnets[0]), str(subnets[1])


# --------------------------------------------------------------------------------------------
# Components
# --------------------------------------------------------------------------------------------


@dataclass
class HubAttachments:
    """What the WAN attached to one hub: ids other modules (and the diagram) may use."""

    region: str
    firewall_id: pulumi.Output[str] | None = None
    firewall_private_ip: pulumi.Output[str] | None = None
    gateway_id: pulumi.Output[str] | None = None
    site_connections: dict[str, pulumi.Resource] = field(default_factory=dict)
    psn_connection: pulumi.Resource | None = None
    psn_route_table: pulumi.Resource | None = None   # hub-vnet only: routing intent rules out one in virtual-wan


@dataclass
class WanOutputs:
    hubs: list[HubAttachments] = field(default_factory=list)
    psk_secrets: dict[str, str] = field(default_factory=dict)   # site -> Key Vault secret name (never the value)
    dns_resolver_inbound_ip: pulumi.Output[str] | None = None
    private_dns_zone_ids: dict[str, pulumi.Output[str]] = field(default_factory=dict)
    dns: PrivateDns | None = None    # the DNS VNet also holds the platform vaults' private endpoints


def _hub_attr(hub: Any, *names: str) -> Any:
    for n in names:
        value = getattr(hub, n, None)
        if value is not None:
            return value
    return None


# Built-in role "Key Vault Secrets User" (the same id in every tenant).
KV_SECRETS_USER = "4633458b-17de-408a-b874-0445c86b69e6"


class Breakout(pulumi.ComponentResource):
    """Azure Firewall and its policy: central internet breakout, allow-listed by FQDN and category,
    and the PSN's isolation (declared zones only; see `_psn_collections`)."""

    def __init__(self, name: str, estate: Estate, hub: Any, *, tags: dict[str, str] | None = None,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("estate:wan:Breakout", name, None, opts)
        tags = dict(tags or {})
        conn = estate.azure.connectivity
        child = pulumi.ResourceOptions(parent=self)
        rg = hub.resource_group_name
        location = hub.region
        tier = conn.firewall_tier
        policy_args: dict[str, Any] = {}
        n: Namer = replace(hub.namer, region=location)
        policy_name = n.name("firewall_policy", CONNECTIVITY)
        self.tls_identity: Any = None
        policy_opts = child
        if conn.tls_inspection:
            # Premium only (the schema refuses other tiers). The council's intermediate CA is
            # uploaded to the network vault as `tls-inspection-ca` (it cannot be generated here);
            # the policy reads it through its own user-assigned identity, which needs Key Vault
            # Secrets User on that vault before the policy is written.
            self.tls_identity = az.managedidentity.UserAssignedIdentity(
                f"{name}-tls-identity", resource_name_=n.name("managed_identity", "afwp-tls"), resource_group_name=rg,
                location=location, tags=tags, opts=child)
            grant = az.authorization.RoleAssignment(
                f"{name}-tls-kv-secrets-user", principal_id=self.tls_identity.principal_id,
                principal_type="ServicePrincipal", scope=_hub_attr(hub, "key_vault_id"),
                role_definition_id=f"/providers/Microsoft.Authorization/roleDefinitions/{KV_SECRETS_USER}",
                description="Azure Firewall policy reads the TLS inspection CA", opts=child)
            policy_args["identity"] = {"type": "UserAssigned", "user_assigned_identities": [self.tls_identity.id]}
            policy_args["transport_security"] = {"certificate_authority": {
                "name": "tls-inspection-ca",
                "key_vault_secret_id": pulumi.Output.concat(_hub_attr(hub, "key_vault_uri") or "",
                                                            "secrets/tls-inspection-ca")}}
            policy_args["intrusion_detection"] = {"mode": "Deny"}
            policy_opts = pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(depends_on=[grant]))
        self.policy = az.network.FirewallPolicy(
            f"{name}-policy", firewall_policy_name=policy_name,
            resource_group_name=rg, location=location, sku={"tier": tier},
            threat_intel_mode="Deny" if tier != "Basic" else "Alert",
            dns_settings={"enable_proxy": True} if tier != "Basic" else None,
            opts=policy_opts, **policy_args, tags=tags)
        sources = breakout_sources(estate)
        # Union-typed inputs (rule collections, rules) need the Args classes: plain dicts would
        # reach the provider with snake_case keys.
        net = az.network
        app_rules: list[Any] = []
        protocols = [net.FirewallPolicyRuleApplicationProtocolArgs(protocol_type="Https", port=443),
                     net.FirewallPolicyRuleApplicationProtocolArgs(protocol_type="Http", port=80)]
        if conn.breakout_allowed_fqdns:
            app_rules.append(net.ApplicationRuleArgs(
                rule_type="ApplicationRule", name="allowed-fqdns", source_addresses=sources, protocols=protocols,
                target_fqdns=list(conn.breakout_allowed_fqdns), terminate_tls=conn.tls_inspection))
        if conn.breakout_allowed_categories:
            app_rules.append(net.ApplicationRuleArgs(
                rule_type="ApplicationRule", name="allowed-categories", source_addresses=sources,
                protocols=protocols, web_categories=list(conn.breakout_allowed_categories),
                terminate_tls=conn.tls_inspection))
        collections: list[Any] = []
        if app_rules:
            collections.append(net.FirewallPolicyFilterRuleCollectionArgs(
                rule_collection_type="FirewallPolicyFilterRuleCollection", name="internet-breakout", priority=200,
                action=net.FirewallPolicyFilterRuleCollectionActionArgs(type="Allow"), rules=app_rules))
        collections += _psn_collections(estate)
        collections += _estate_flow_collections(estate)
        self.rules = None
        if collections:
            self.rules = az.network.FirewallPolicyRuleCollectionGroup(
                # The name as a plain string: the policy's outputs (with a user-assigned identity map)
                # are not needed to name it, only its creation first.
                f"{name}-rules", rule_collection_group_name="breakout", firewall_policy_name=policy_name,
                resource_group_name=rg, priority=200, rule_collections=collections,
                opts=pulumi.ResourceOptions(parent=self, depends_on=[self.policy]))
        design = WanDesign(hub.design)
        self._expected_ip = ""      # hub-vnet: the private IP Azure will assign (see `private_ip`)
        if design is WanDesign.VIRTUAL_WAN:
            self.firewall = az.network.AzureFirewall(
                f"{name}-afw", azure_firewall_name=n.name("azure_firewall", CONNECTIVITY),
                resource_group_name=rg, location=location, sku={"name": "AZFW_Hub", "tier": tier},
                virtual_hub={"id": _hub_attr(hub, "virtual_hub_id")},
                hub_ip_addresses=az.network.HubIPAddressesArgs(public_ips=az.network.HubPublicIPAddressesArgs(count=1)),
                firewall_policy={"id": self.policy.id},
                opts=child, tags=tags)
        else:
            subnets = _hub_attr(hub, "subnet_ids") or {}
            pip = az.network.PublicIPAddress(
                f"{name}-pip", public_ip_address_name=n.name("public_ip", "afw"),
                resource_group_name=rg, location=location, sku={"name": "Standard"},
                public_ip_allocation_method="Static", opts=child, tags=tags)
            ip_configs: Any = [{"name": "ipconfig1", "subnet": {"id": subnets.get("AzureFirewallSubnet")},
                           "public_ip_address": {"id": pip.id}}]
            extra: dict[str, Any] = {}
            if tier == "Basic":
                mgmt_pip = az.network.PublicIPAddress(
                    f"{name}-mgmt-pip", public_ip_address_name=n.name("public_ip", "afw-mgmt"),
                    resource_group_name=rg, location=location, sku={"name": "Standard"},
                    public_ip_allocation_method="Static", opts=child, tags=tags)
                extra["management_ip_configuration"] = {
                    "name": "mgmt", "subnet": {"id": subnets.get("AzureFirewallManagementSubnet")},
                    "public_ip_address": {"id": mgmt_pip.id}}
            self.firewall = az.network.AzureFirewall(
                f"{name}-afw", azure_firewall_name=n.name("azure_firewall", CONNECTIVITY),
                resource_group_name=rg, location=location, sku={"name": "AZFW_VNet", "tier": tier},
                ip_configurations=ip_configs, firewall_policy={"id": self.policy.id}, opts=child, **extra, tags=tags)
            self._expected_ip = hub_firewall_ip(hub.address_space)
        self.register_outputs({"firewall_id": self.firewall.id, "policy_id": self.policy.id})

    @property
    def private_ip(self) -> pulumi.Output[str]:
        """The firewall's private IP, from the firewall resource's own outputs (Azure assigns it), so
        whatever uses it waits for the firewall. In a hub VNet, when the provider returns no address
        (the offline plan's mocks echo the inputs, which carry none), the one Azure assigns there:
        `hub_firewall_ip`."""
        design_vwan = self.firewall.hub_ip_addresses
        expected = self._expected_ip
        return pulumi.Output.all(design_vwan, self.firewall.ip_configurations).apply(
            lambda values: _firewall_ip(values) or expected)


def _psn_collections(estate: Estate) -> list[Any]:
    """The firewall policy's PSN isolation: the explicit deny for guest and public Wi-Fi first, then
    the declared flows; anything else to or from the PSN falls to the firewall's default deny.

    In virtual-wan this is the PSN's only isolation (routing intent sends all private traffic here
    and rules out a custom route table); in hub-vnet too, the PSN route table on the GatewaySubnet
    only steers traffic here (it must keep BGP propagation on, so it cannot filter routes itself).
    """
    net = az.network
    psn = psn_name(estate)
    network = estate.organisation.public_sector_network   # the council's own name for it: PSN, SWAN...
    psn_side = list(psn_reach(estate).psn_prefixes)
    if not psn_side:
        return []
    out: list[Any] = []
    untrusted = untrusted_estate_prefixes(estate)
    if untrusted:
        # Redundant with the default deny on purpose: the intent is visible in the policy and its
        # logs, and the policy rule `infra.policy.psn_route_isolation` reads these sources.
        out.append(net.FirewallPolicyFilterRuleCollectionArgs(
            rule_collection_type="FirewallPolicyFilterRuleCollection", name=f"{psn}-deny-untrusted", priority=100,
            action=net.FirewallPolicyFilterRuleCollectionActionArgs(type="Deny"),
            rules=[net.NetworkRuleArgs(
                rule_type="NetworkRule", name=f"guest-public-wifi-to-{psn}", source_addresses=untrusted,
                destination_addresses=psn_side, ip_protocols=["Any"], destination_ports=["*"],
                description=f"guest and public Wi-Fi never reach the {network}"),
                   net.NetworkRuleArgs(
                rule_type="NetworkRule", name=f"{psn}-to-guest-public-wifi", source_addresses=psn_side,
                destination_addresses=untrusted, ip_protocols=["Any"], destination_ports=["*"],
                description=f"the {network} never reaches guest or public Wi-Fi")]))
    rules: list[Any] = []
    names: set[str] = set()
    for flow in psn_flows(estate):
        name = f"{flow.rule}-{flow.protocol}".lower()
        if name in names:
            continue
        names.add(name)
        rules.append(net.NetworkRuleArgs(
            rule_type="NetworkRule", name=name, source_addresses=list(flow.sources),
            destination_addresses=list(flow.destinations), ip_protocols=[flow.protocol],
            destination_ports=list(flow.ports), description=f"firewall rule {flow.rule}: {flow.title}"))
    if rules:
        out.append(net.FirewallPolicyFilterRuleCollectionArgs(
            rule_collection_type="FirewallPolicyFilterRuleCollection", name=f"{psn}-declared-zones", priority=110,
            action=net.FirewallPolicyFilterRuleCollectionActionArgs(type="Allow"), rules=rules))
    return out


def platform_endpoint_subnet(dns_space: str | None) -> str | None:
    """The /28 of the DNS VNet after the resolver's two that holds the platform vaults' private
    endpoints (None when the DNS space is smaller than a /26 and has no third /28)."""
    if not dns_space:
        return None
    net = ipaddress.ip_network(dns_space)
    if net.prefixlen > 26:
        return None
    return str(list(net.subnets(new_prefix=28))[2])


def _trusted_zone_prefixes(estate: Estate, zone_name: str) -> list[str]:
    zone = estate.zone(zone_name)
    if zone.kind in (ZoneKind.INTERNET, ZoneKind.CLOUD, ZoneKind.GUEST, ZoneKind.PUBLIC):
        return []
    return zone_prefixes(estate, zone_name)


def estate_flows(estate: Estate) -> list[tuple[str, list[str], list[str], list[str], list[str]]]:
    """(name, sources, destinations, protocols, ports) of every private flow the estate declares
    through the hub: site zones to the LOB spokes (`reachable_from`, `ports`), the management zone
    to management ports, the sites to the DNS resolver and RADIUS, engineers to the platform vaults.

    Routing intent (virtual-wan) and the spoke route tables (hub-vnet) send all of it through the hub
    firewall, whose policy denies by default: without these rules sites could not reach the LOB
    systems, RADIUS or DNS at all. Guest, public and internet zones never get a private flow.
    """
    conn = estate.azure.connectivity
    mgmt = [p for z in estate.zones if z.kind is ZoneKind.MANAGEMENT for p in zone_prefixes(estate, z.name)]
    # The sites' own devices (not the PSN's side, not guest or public Wi-Fi) use DNS and RADIUS.
    trusted_sites = _collapse(p for z in estate.zones if z.kind is not ZoneKind.PSN
                              for p in _trusted_zone_prefixes(estate, z.name))
    out: list[tuple[str, list[str], list[str], list[str], list[str]]] = []
    for lob in estate.lob_systems:
        if not lob.address_space or lob.hosting.value == "saas":
            continue
        users = list(dict.fromkeys(p for z in lob.reachable_from for p in _trusted_zone_prefixes(estate, z)))
        for management, sources in ((False, users), (True, mgmt)):
            for protocol in ("tcp", "udp"):
                ports = sorted({str(p.port) for p in lob.ports
                                if p.management is management and p.protocol == protocol}, key=int)
                if ports and sources:
                    kind = "mgmt" if management else "flows"
                    out.append((f"lob-{lob.name}-{kind}-{protocol}"[:80], sources, [lob.address_space],
                                [protocol.upper()], ports))
    if conn.dns_resolver_address_space and trusted_sites:
        inbound, _ = dns_subnets(conn.dns_resolver_address_space)
        out.append(("sites-to-dns-resolver", trusted_sites, [inbound], ["UDP", "TCP"], ["53"]))
    if conn.identity_address_space and trusted_sites and any(s.radius_servers for s in estate.ssids):
        out.append(("sites-to-radius", trusted_sites, [str(identity_subnet(conn.identity_address_space))],
                    ["UDP"], ["1812", "1813"]))
    endpoints = platform_endpoint_subnet(conn.dns_resolver_address_space)
    if endpoints and mgmt:
        out.append(("management-to-platform-vaults", mgmt, [endpoints], ["TCP"], ["443"]))
    return out


def _collapse(prefixes: Iterable[str]) -> list[str]:
    nets = [ipaddress.ip_network(p) for p in prefixes]
    return [str(n) for version in (4, 6)
            for n in ipaddress.collapse_addresses(cast(Any, [x for x in nets if x.version == version]))]


def _estate_flow_collections(estate: Estate) -> list[Any]:
    net = az.network
    rules = [net.NetworkRuleArgs(rule_type="NetworkRule", name=name, source_addresses=sources,
                                 destination_addresses=dests, ip_protocols=protocols, destination_ports=ports,
                                 description="declared in the estate model")
             for name, sources, dests, protocols, ports in estate_flows(estate)]
    if not rules:
        return []
    return [net.FirewallPolicyFilterRuleCollectionArgs(
        rule_collection_type="FirewallPolicyFilterRuleCollection", name="estate-private-flows", priority=120,
        action=net.FirewallPolicyFilterRuleCollectionActionArgs(type="Allow"), rules=rules)]


def _firewall_ip(values: list[Any]) -> str:
    hub_ips, ip_configs = values
    if hub_ips and hub_ips.get("private_ip_address"):
        return str(hub_ips["private_ip_address"])
    for cfg in ip_configs or []:
        if cfg.get("private_ip_address"):
            return str(cfg["private_ip_address"])
    return ""


def _ipsec() -> Any:
    return [dict(IPSEC_POLICY)]


class SiteVpns(pulumi.ComponentResource):
    """One hub's VPN gateway, the council sites' VPNs into it, and the PSN connection (primary hub)."""

    def __init__(self, name: str, estate: Estate, hub: Any, vault: KeyVaultRef, *,
                 shared_keys: dict[str, pulumi.Output[str]], firewall: Breakout, with_psn: bool,
                 vpn_site_ids: dict[str, pulumi.Output[str]] | None = None, tags: dict[str, str] | None = None,
                 hub_subnets: HubVnetSubnets | None = None, spoke_prefixes: Sequence[str] = (),
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("estate:wan:SiteVpns", name, None, opts)
        self.gateway: Any = None
        self.network_name = estate.organisation.public_sector_network
        self.tags = dict(tags or {})
        self.namer: Namer = hub.namer
        self._sites = {s.name: s for s in estate.sites}
        self.attachments = HubAttachments(region=hub.region, firewall_id=firewall.firewall.id)
        self.vpn_site_ids: dict[str, pulumi.Output[str]] = dict(vpn_site_ids or {})
        design = WanDesign(hub.design)
        if design is WanDesign.VIRTUAL_WAN:
            self._virtual_wan(name, estate, hub, shared_keys, firewall, with_psn, vault)
        else:
            if hub_subnets is None:
                raise ValueError("hub-vnet: SiteVpns writes the GatewaySubnet, so it needs the hub's subnets")
            self._hub_vnet(name, estate, hub, shared_keys, firewall, with_psn, hub_subnets, spoke_prefixes)
        self.register_outputs({"gateway_id": self.attachments.gateway_id,
                               "sites": sorted(self.attachments.site_connections)})

    # -- Virtual WAN ------------------------------------------------------------------------------

    def _virtual_wan(self, name: str, estate: Estate, hub: Any, keys: dict[str, pulumi.Output[str]],
                     firewall: Breakout, with_psn: bool, vault: KeyVaultRef) -> None:
        child = pulumi.ResourceOptions(parent=self)
        tags = self.tags
        rg = hub.resource_group_name
        location = hub.region
        n: Namer = replace(hub.namer, region=location)
        hub_id = _hub_attr(hub, "virtual_hub_id")
        hub_name = _hub_attr(hub, "virtual_hub_name")
        wan_id = _hub_attr(hub, "virtual_wan_id")
        gateway = az.network.VpnGateway(
            f"{name}-vpngw", gateway_name=n.name("vpn_gateway", CONNECTIVITY), resource_group_name=rg,
            location=location,
            virtual_hub={"id": hub_id}, vpn_gateway_scale_unit=_scale_units(estate),
            bgp_settings={"asn": 65515}, opts=child, tags=tags)
        self.attachments.gateway_id = gateway.id
        # Routing intent: internet and private traffic both through the hub firewall. The private
        # policy is what isolates the PSN here (see the PSN connection below).
        az.network.RoutingIntent(
            f"{name}-routing-intent", routing_intent_name="hub-routing-intent", virtual_hub_name=hub_name,
            resource_group_name=rg,
            routing_policies=[
                {"name": "InternetTraffic", "destinations": ["Internet"], "next_hop": firewall.firewall.id},
                {"name": "PrivateTraffic", "destinations": ["PrivateTraffic"], "next_hop": firewall.firewall.id},
            ], opts=child)
        for site in vpn_sites(estate):
            site_id = self.vpn_site_ids.get(site.name)
            if site_id is None:
                site_id = self._vpn_site(name, site.name, estate, rg, location, wan_id,
                                         ranges=site.ranges, ip=str(site.wan.public_ip), asn=site.wan.bgp_asn,
                                         bgp_address=_bgp_address(site.ranges), provider=site.wan.provider,
                                         mbps=site.wan.bandwidth_mbps, role="site")
            self.attachments.site_connections[site.name] = az.network.VpnConnection(
                f"{name}-{site.name}-conn", connection_name=n.name("vpn_connection", site.name),
                gateway_name=gateway.name, resource_group_name=rg, remote_vpn_site={"id": site_id}, opts=child,
                vpn_connection_protocol_type="IKEv2", ipsec_policies=_ipsec(),
                vpn_link_connections=[_link_connection(site.name, site_id, keys[site.name],
                                                       site.wan.bgp_asn is not None, site.wan.bandwidth_mbps)])
        if not with_psn or estate.azure.connectivity.psn is None:
            return
        link = estate.azure.connectivity.psn
        reach = psn_reach(estate)
        psn = psn_name(estate)
        # No custom hub route table for the PSN: Microsoft's "How to configure Virtual WAN Hub routing
        # intent and routing policies", Known limitations: "Routing Intent simplifies routing by
        # managing route table associations and propagations for all connections [...]. Virtual WANs
        # with custom route tables and customized policies therefore can't be used with the Routing
        # Intent constructs." Its prerequisites: "There are no custom route tables deployed with the
        # Virtual Hub. The only route tables that exist are the noneRouteTable and the
        # defaultRouteTable." With internet and private policies every connection is associated with
        # the defaultRouteTable and propagates to the noneRouteTable.
        # (https://learn.microsoft.com/en-us/azure/virtual-wan/how-to-routing-policies#knownlimitations)
        # So the PSN connection takes the hub's default routing, and the private traffic policy above
        # puts every flow to or from it through the firewall, whose policy (Breakout) allows only
        # the declared zones and denies guest and public Wi-Fi.
        psn_site_id = self._vpn_site(name, psn, estate, rg, location, wan_id, ranges=list(reach.psn_prefixes),
                                     ip=link.public_ip, asn=link.bgp_asn, bgp_address=link.bgp_peering_address,
                                     provider=link.provider, mbps=link.bandwidth_mbps, role=PSN_ROLE_TAG)
        self.vpn_site_ids[psn] = psn_site_id
        self.attachments.psn_connection = az.network.VpnConnection(
            f"{name}-{psn}-conn", connection_name=n.name("vpn_connection", psn), gateway_name=gateway.name,
            resource_group_name=rg,
            remote_vpn_site={"id": psn_site_id}, vpn_connection_protocol_type="IKEv2", ipsec_policies=_ipsec(),
            vpn_link_connections=[_link_connection(psn, psn_site_id, keys[psn], _psn_bgp(link), link.bandwidth_mbps)],
            opts=child)

    def _vpn_site(self, name: str, key: str, estate: Estate, rg: Any, location: str, wan_id: Any, *,
                  ranges: Sequence[str], ip: str, asn: int | None, bgp_address: str | None, provider: str,
                  mbps: int, role: str) -> pulumi.Output[str]:
        link: Any = {"name": f"{key}-link", "ip_address": ip,
                                "link_properties": {"link_provider_name": provider, "link_speed_in_mbps": mbps}}
        if asn and bgp_address:
            link["bgp_properties"] = {"asn": asn, "bgp_peering_address": bgp_address}
        site = az.network.VpnSite(
            f"{name}-{key}-site", vpn_site_name=self.namer.name("vpn_site", key, region=location),
            resource_group_name=rg, location=location,
            virtual_wan={"id": wan_id}, address_space={"address_prefixes": list(ranges)},
            device_properties=cast(Any, {"device_vendor": "council-site", "link_speed_in_mbps": mbps}),
            vpn_site_links=[link], tags={**self.tags, **_site_tags(self._sites.get(key), key, role, self.network_name)},
            opts=pulumi.ResourceOptions(parent=self))
        self.vpn_site_ids[key] = site.id
        return site.id

    # -- hub VNet -----------------------------------------------------------------------------------

    def _hub_vnet(self, name: str, estate: Estate, hub: Any, keys: dict[str, pulumi.Output[str]],
                  firewall: Breakout, with_psn: bool, subnets: HubVnetSubnets,
                  spoke_prefixes: Sequence[str] = ()) -> None:
        child = pulumi.ResourceOptions(parent=self)
        tags = self.tags
        rg = hub.resource_group_name
        location = hub.region
        n: Namer = replace(hub.namer, region=location)
        link = estate.azure.connectivity.psn
        psn = psn_name(estate)
        reach = psn_reach(estate)
        has_psn = with_psn and link is not None
        spokes = list(spoke_prefixes or []) if with_psn else []   # the primary hub's spokes
        route_table = self._psn_route_table(name, psn, reach, hub, firewall, spokes, has_psn) \
            if has_psn or spokes else None
        # Creation order (no cycle): firewall subnets -> firewall -> PSN route table (routes to the
        # firewall's private IP, an output of the firewall) -> GatewaySubnet (carries the route table:
        # an azure-native Subnet takes it as a property) -> VPN gateway (in the GatewaySubnet).
        gateway_subnet = subnets.add("GatewaySubnet", route_table=route_table)
        pip = az.network.PublicIPAddress(
            f"{name}-vpngw-pip", public_ip_address_name=n.name("public_ip", "vgw"), resource_group_name=rg,
            location=location, sku={"name": "Standard"}, public_ip_allocation_method="Static", opts=child, tags=tags)
        gateway = az.network.VirtualNetworkGateway(
            f"{name}-vpngw", virtual_network_gateway_name=n.name("vnet_gateway", CONNECTIVITY), resource_group_name=rg,
            location=location, gateway_type="Vpn", vpn_type="RouteBased", vpn_gateway_generation="Generation2",
            sku={"name": "VpnGw2AZ", "tier": "VpnGw2AZ"}, enable_bgp=True, active_active=False,
            bgp_settings={"asn": 65515},
            ip_configurations=[{"name": "default", "subnet": {"id": gateway_subnet.id},
                                "public_ip_address": {"id": pip.id}}], opts=child, tags=tags)
        self.attachments.gateway_id = gateway.id
        self.gateway = gateway
        peers: list[tuple[str, list[str], str, int | None, str | None, int]] = [
            (s.name, list(s.ranges), str(s.wan.public_ip), s.wan.bgp_asn, _bgp_address(s.ranges),
             s.wan.bandwidth_mbps) for s in vpn_sites(estate)]
        if has_psn and link is not None:
            peers.append((psn, list(reach.psn_prefixes), link.public_ip, link.bgp_asn, link.bgp_peering_address,
                          link.bandwidth_mbps))
        for key, ranges, ip, asn, bgp_address, _mbps in peers:
            lng_args: dict[str, Any] = {}
            if asn and bgp_address:
                lng_args["bgp_settings"] = {"asn": asn, "bgp_peering_address": bgp_address}
            role = PSN_ROLE_TAG if key == psn and has_psn else "site"
            lng = az.network.LocalNetworkGateway(
                f"{name}-{key}-lng", local_network_gateway_name=n.name("local_network_gateway", key),
                resource_group_name=rg,
                location=location, gateway_ip_address=ip, local_network_address_space={"address_prefixes": ranges},
                tags={**self.tags, **_site_tags(self._sites.get(key), key, role, self.network_name)}, opts=child,
                **lng_args)
            conn = az.network.VirtualNetworkGatewayConnection(
                f"{name}-{key}-conn", virtual_network_gateway_connection_name=n.name("connection", key),
                resource_group_name=rg,
                location=location, connection_type="IPsec", connection_protocol="IKEv2",
                virtual_network_gateway1={"id": gateway.id}, local_network_gateway2={"id": lng.id},
                shared_key=keys[key], enable_bgp=bool(lng_args), ipsec_policies=_ipsec(),
                use_policy_based_traffic_selectors=False, dpd_timeout_seconds=45,
                tags={**self.tags, "estate-role": role, "estate-site": key,
                      **({NETWORK_NAME_TAG: self.network_name} if role == PSN_ROLE_TAG else {})}, opts=child)
            if role == PSN_ROLE_TAG:
                self.attachments.psn_connection = conn
            else:
                self.attachments.site_connections[key] = conn

    def _psn_route_table(self, name: str, psn: str, reach: PsnReach, hub: Any, firewall: Breakout,
                         spokes: Sequence[str] = (), has_psn: bool = True) -> az.network.RouteTable:
        """The PSN UDR, for the GatewaySubnet: traffic arriving at the VPN gateway for the PSN, or from
        the PSN for a declared zone, goes to the hub firewall, whose policy (`_psn_collections`) denies
        guest and public Wi-Fi (priority 100), allows only the declared flows (110) and default-denies
        the rest. That policy, not this table, is the PSN's isolation guarantee.

        BGP route propagation stays enabled, as Microsoft requires on the GatewaySubnet. "About VPN
        Gateway configuration settings", Gateway subnet, Considerations: "User-defined routes with a
        0.0.0.0/0 destination and NSGs on the GatewaySubnet are not supported. [...] BGP route
        propagation should be set to "Enabled" on the GatewaySubnet to ensure availability of the
        gateway. If BGP route propagation is set to disabled, the gateway won't function."
        (https://learn.microsoft.com/en-us/azure/vpn-gateway/vpn-gateway-about-vpn-gateway-settings#gwsub)
        So the table cannot stop BGP adding routes; it holds only the PSN and declared prefixes (never
        0.0.0.0/0), and the policy rule `infra.policy.psn_route_isolation` checks both and that the
        table is on the GatewaySubnet.

        The same table (the GatewaySubnet has one) also sends the spokes' address spaces to the
        firewall, so traffic from the sites to a spoke takes the same path as the spoke's replies
        (each spoke's own table sends 0.0.0.0/0 there: `infra.hub.spoke_route_table`); without it the
        firewall would see one direction only and drop the flow.
        """
        next_hop = firewall.private_ip
        routes: list[Any] = []
        if has_psn:
            routes += [{"name": f"{psn}-{i}", "address_prefix": p, "next_hop_type": "VirtualAppliance",
                        "next_hop_ip_address": next_hop} for i, p in enumerate(reach.psn_prefixes)]
            routes += [{"name": f"declared-{i}", "address_prefix": p, "next_hop_type": "VirtualAppliance",
                        "next_hop_ip_address": next_hop} for i, p in enumerate(reach.prefixes)]
        routes += [{"name": f"spoke-{i}", "address_prefix": p, "next_hop_type": "VirtualAppliance",
                    "next_hop_ip_address": next_hop} for i, p in enumerate(spokes)]
        role = PSN_ROLE_TAG if has_psn else "gateway"
        table = az.network.RouteTable(
            f"{name}-{psn}-rt" if has_psn else f"{name}-gateway-rt",
            route_table_name=hub.namer.name("route_table", ROUTE_TABLE_PSN if has_psn else "gateway",
                                            region=hub.region),
            resource_group_name=hub.resource_group_name, location=hub.region,
            disable_bgp_route_propagation=False, routes=routes,
            tags={**self.tags, "estate-role": role}, opts=pulumi.ResourceOptions(parent=self))
        if has_psn:
            self.attachments.psn_route_table = table
        return table


def _first_private_ip(configs: Any) -> str:
    for cfg in configs or []:
        value = cfg.get("private_ip_address") if isinstance(cfg, dict) else getattr(cfg, "private_ip_address", None)
        if value:
            return str(value)
    return ""


def _site_tags(site: Site | None, key: str, role: str, network_name: str = "PSN") -> dict[str, str]:
    """Tags that let the policy pack tell a council site from the PSN, and see untrusted ranges."""
    tags = {"estate-role": role, "estate-site": key}
    if role == PSN_ROLE_TAG:
        # What the council calls the network (PSN, SWAN...): the policy rules' messages use it.
        tags[NETWORK_NAME_TAG] = network_name
    if role != PSN_ROLE_TAG and site is not None:
        untrusted = untrusted_prefixes(site)
        if untrusted:
            tags["untrusted-prefixes"] = " ".join(untrusted)
    return tags


# Virtual WAN: "1 scale unit of VPN = 500 Mbps" (Virtual WAN FAQ, "What is a Virtual WAN gateway
# scale unit?", https://learn.microsoft.com/en-us/azure/virtual-wan/virtual-wan-faq); a site-to-site
# gateway takes 1 to 20 units (https://learn.microsoft.com/en-us/azure/virtual-wan/gateway-settings).
VPN_SCALE_UNIT_MBPS = 500
MAX_VPN_SCALE_UNITS = 20


def _scale_units(estate: Estate) -> int:
    """VPN gateway scale units (500 Mbps each) for the aggregate site and PSN bandwidth, capped at 20."""
    total = sum(s.wan.bandwidth_mbps for s in vpn_sites(estate))
    if estate.azure.connectivity.psn is not None:
        total += estate.azure.connectivity.psn.bandwidth_mbps
    return max(1, min(MAX_VPN_SCALE_UNITS, -(-total // VPN_SCALE_UNIT_MBPS)))


def _bgp_address(ranges: Sequence[str]) -> str:
    """The site router's BGP address: the first host of its first summary range (its loopback)."""
    net = ipaddress.ip_network(ranges[0])
    return str(next(net.hosts()))


def _psn_bgp(link: Any) -> bool:
    """BGP on the PSN connection only when the estate gives both the peer's ASN and its BGP address.

    Azure needs both on the VPN site link (bgpProperties: asn and bgpPeeringAddress) before a
    connection with enableBgp can come up ("Configure BGP for Virtual WAN",
    https://learn.microsoft.com/en-us/azure/virtual-wan/virtual-wan-site-to-site-portal): an ASN
    alone used to give a connection that enabled BGP towards a link with no BGP settings. Without the
    address the connection routes statically to the VPN site's address space (the PSN prefixes).
    """
    return link.bgp_asn is not None and link.bgp_peering_address is not None


def _link_connection(key: str, site_id: pulumi.Input[str], shared_key: pulumi.Output[str], bgp: bool,
                     mbps: int) -> Any:
    return {"name": f"{key}-link", "vpn_site_link": {"id": pulumi.Output.concat(site_id, f"/vpnSiteLinks/{key}-link")},
            "vpn_connection_protocol_type": "IKEv2", "shared_key": shared_key, "enable_bgp": bgp,
            "connection_bandwidth": min(mbps, 10000), "ipsec_policies": _ipsec(),
            "use_policy_based_traffic_selectors": False}


class PrivateDns(pulumi.ComponentResource):
    """privatelink.* zones for the LOB systems' private endpoints, linked to the hub side, and a
    DNS private resolver whose inbound endpoint the sites' DNS servers forward to."""

    def __init__(self, name: str, estate: Estate, hub: Any, *, tags: dict[str, str] | None = None,
                 existing: dict[str, tuple[Any, Any]] | None = None, gateway: Any = None,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("estate:wan:PrivateDns", name, None, opts)
        tags = dict(tags or {})
        child = pulumi.ResourceOptions(parent=self)
        conn = estate.azure.connectivity
        rg = hub.resource_group_name
        location = hub.region
        n: Namer = replace(hub.namer, region=location)
        linked: list[tuple[str, pulumi.Input[str]]] = []
        self.inbound_ip: pulumi.Output[str] | None = None
        self.vnet: az.network.VirtualNetwork | None = None
        self.last_subnet: az.network.Subnet | None = None   # later subnets of the VNet wait for it
        self.resource_group_name = hub.resource_group_name
        self.nsg: az.network.NetworkSecurityGroup | None = None
        if conn.dns_resolver_address_space:
            inbound, outbound = dns_subnets(conn.dns_resolver_address_space)
            vnet = az.network.VirtualNetwork(
                f"{name}-vnet", virtual_network_name=n.name("virtual_network", "dns"), resource_group_name=rg,
                location=location, address_space={"address_prefixes": [conn.dns_resolver_address_space]},
                opts=child, tags=tags)
            self.vnet = vnet
            self.nsg = az.network.NetworkSecurityGroup(
                f"{name}-nsg", network_security_group_name=n.name("nsg", "dns"), resource_group_name=rg,
                location=location, tags=tags, opts=child,
                security_rules=[
                    # DNS queries from the council's own ranges only.
                    {"name": "allow-dns", "priority": 100, "direction": "Inbound", "access": "Allow",
                     "protocol": "*", "source_address_prefixes": sorted({r for s in estate.sites for r in s.ranges}),
                     "source_port_range": "*", "destination_address_prefix": "*", "destination_port_range": "53"},
                    {"name": "deny-inbound", "priority": 4096, "direction": "Inbound", "access": "Deny",
                     "protocol": "*", "source_address_prefix": "*", "source_port_range": "*",
                     "destination_address_prefix": "*", "destination_port_range": "*"},
                ])
            delegation: Any = [{"name": "resolver", "service_name": "Microsoft.Network/dnsResolvers"}]
            in_subnet = az.network.Subnet(
                f"{name}-inbound", subnet_name="snet-dns-inbound", virtual_network_name=vnet.name,
                resource_group_name=rg, address_prefix=inbound, delegations=delegation,
                network_security_group={"id": self.nsg.id}, opts=child)
            self.last_subnet = az.network.Subnet(
                f"{name}-outbound", subnet_name="snet-dns-outbound", virtual_network_name=vnet.name,
                resource_group_name=rg, address_prefix=outbound, delegations=delegation,
                network_security_group={"id": self.nsg.id},
                opts=pulumi.ResourceOptions(parent=self, depends_on=[in_subnet]))
            resolver = az.dnsresolver.DnsResolver(
                f"{name}-resolver", dns_resolver_name=n.name("dns_resolver", "dns"), resource_group_name=rg,
                location=location, virtual_network={"id": vnet.id}, opts=child, tags=tags)
            endpoint = az.dnsresolver.InboundEndpoint(
                f"{name}-inbound-ep", inbound_endpoint_name="inbound", dns_resolver_name=resolver.name,
                resource_group_name=rg, location=location,
                ip_configurations=[{"subnet": {"id": in_subnet.id}, "private_ip_allocation_method": "Dynamic"}],
                opts=child, tags=tags)
            self.inbound_ip = endpoint.ip_configurations.apply(_first_private_ip)
            linked.append(("dns", vnet.id))
            if WanDesign(hub.design) is WanDesign.VIRTUAL_WAN and _hub_attr(hub, "virtual_hub_name"):
                az.network.HubVirtualNetworkConnection(
                    f"{name}-hub-conn", connection_name=n.name("hub_connection", "dns"),
                    virtual_hub_name=_hub_attr(hub, "virtual_hub_name"), resource_group_name=rg,
                    remote_virtual_network={"id": vnet.id}, enable_internet_security=True, opts=child)
            elif _hub_attr(hub, "hub_vnet_name"):
                # A peering is one-way until both VNets have one: the hub side too ("Create, change,
                # or delete a virtual network peering", https://learn.microsoft.com/en-us/azure/
                # virtual-network/virtual-network-manage-peering). DNS answers the sites directly, not
                # through the firewall: the resolver's delegated subnets carry no route table.
                from_hub = az.network.VirtualNetworkPeering(
                    f"{name}-peer-from-hub", virtual_network_peering_name=n.name("peering", "hub-to-dns"),
                    virtual_network_name=_hub_attr(hub, "hub_vnet_name"), resource_group_name=rg,
                    remote_virtual_network={"id": vnet.id}, allow_virtual_network_access=True,
                    allow_forwarded_traffic=True, allow_gateway_transit=True, opts=child)
                az.network.VirtualNetworkPeering(
                    f"{name}-peer-hub", virtual_network_peering_name=n.name("peering", "dns-to-hub"),
                    virtual_network_name=vnet.name,
                    resource_group_name=rg, remote_virtual_network={"id": _hub_attr(hub, "hub_vnet_id")},
                    allow_forwarded_traffic=True, use_remote_gateways=gateway is not None,
                    opts=pulumi.ResourceOptions(parent=self, depends_on=[from_hub, *([gateway] if gateway else [])]))
        if WanDesign(hub.design) is WanDesign.HUB_VNET and _hub_attr(hub, "hub_vnet_id"):
            linked.append(("hub", _hub_attr(hub, "hub_vnet_id")))
        self.zone_ids: dict[str, pulumi.Output[str]] = {}
        existing = existing or {}
        for service, zone_name in private_dns_zones(estate).items():
            if service in existing:
                # The LOB systems' module already made this zone: link it, do not make a second one.
                zone, zone_rg = existing[service]
            else:
                zone = az.privatedns.PrivateZone(
                    f"{name}-{service}", private_zone_name=zone_name, resource_group_name=rg, location="global",
                    opts=child, tags=tags)
                zone_rg = rg
            self.zone_ids[service] = zone.id
            for label, vnet_id in linked:
                az.privatedns.VirtualNetworkLink(
                    f"{name}-{service}-{label}-link", virtual_network_link_name=n.name("private_dns_link", label),
                    private_zone_name=zone_name, resource_group_name=zone_rg, location="global",
                    virtual_network={"id": vnet_id}, registration_enabled=False, tags=tags,
                    opts=pulumi.ResourceOptions(parent=self, depends_on=[zone]))
        self.register_outputs({"zones": sorted(self.zone_ids), "inbound_ip": self.inbound_ip})


@dataclass
class HubView:
    """One hub as this module sees it: the primary `infra.hub.Hub`, or its secondary virtual hub."""

    design: WanDesign
    region: str
    resource_group_name: Any
    address_space: str
    namer: Namer                  # the one naming convention (infra/naming.py) for every physical name
    virtual_wan_id: Any = None
    virtual_hub_id: Any = None
    virtual_hub_name: Any = None
    hub_vnet_id: Any = None
    hub_vnet_name: Any = None
    subnet_ids: dict[str, Any] = field(default_factory=dict)
    key_vault_uri: Any = None
    key_vault_id: Any = None


def hub_views(ctx: Context, hub: Hub, vault: KeyVaultRef) -> list[HubView]:
    """The primary hub, then the secondary virtual hub when the estate has one (virtual-wan)."""
    conn = ctx.estate.azure.connectivity
    views = [HubView(design=WanDesign(hub.design), region=hub.region, resource_group_name=hub.resource_group_name,
                     address_space=conn.hub_address_space, namer=ctx.namer, virtual_wan_id=hub.virtual_wan_id,
                     virtual_hub_id=hub.virtual_hub_id, virtual_hub_name=hub.virtual_hub_name,
                     hub_vnet_id=hub.hub_vnet_id, hub_vnet_name=hub.hub_vnet_name,
                     key_vault_uri=vault.vault_uri, key_vault_id=vault.id)]
    if hub.secondary_hub is not None and conn.secondary_hub_address_space:
        region = ctx.estate.azure.secondary_region
        views.append(HubView(design=WanDesign.VIRTUAL_WAN, region=region, resource_group_name=hub.resource_group_name,
                             address_space=conn.secondary_hub_address_space, namer=ctx.namer,
                             virtual_wan_id=hub.virtual_wan_id,
                             virtual_hub_id=hub.secondary_hub.id,
                             virtual_hub_name=ctx.namer.name("virtual_hub", "connectivity", region=region),
                             key_vault_uri=vault.vault_uri, key_vault_id=vault.id))
    return views


# The firewall's subnets come first: the GatewaySubnet carries the PSN route table, whose routes
# need the firewall's private IP (see `SiteVpns._hub_vnet`).
FIREWALL_SUBNETS = ("AzureFirewallSubnet", "AzureFirewallManagementSubnet")


class HubVnetSubnets:
    """The hub VNet's subnets (the hub leaves subnets to their users), written one at a time: Azure
    rejects concurrent subnet writes to the same VNet."""

    def __init__(self, view: HubView, hub: Hub, opts: pulumi.ResourceOptions) -> None:
        self.view = view
        self.opts = opts
        self.prefixes = hub_vnet_subnets(view.address_space)
        self.previous: list[pulumi.Resource] = [hub.hub_vnet] if hub.hub_vnet is not None else []

    def add(self, subnet_name: str, *, route_table: az.network.RouteTable | None = None) -> az.network.Subnet:
        extra: dict[str, Any] = {}
        if route_table is not None:
            extra["route_table"] = {"id": route_table.id}
        subnet = az.network.Subnet(
            f"hub-{subnet_name.lower()}", subnet_name=subnet_name, virtual_network_name=self.view.hub_vnet_name,
            resource_group_name=self.view.resource_group_name, address_prefix=self.prefixes[subnet_name],
            opts=pulumi.ResourceOptions.merge(self.opts, pulumi.ResourceOptions(depends_on=list(self.previous))),
            **extra)
        self.view.subnet_ids[subnet_name] = subnet.id
        self.previous = [subnet]
        return subnet


def psn_prefix_origins(estate: Estate) -> list[tuple[str, tuple[str | int, ...]]]:
    """(prefix, estate path) for each prefix on the PSN's side (security_checks.network.reach), the
    prefix normalised as the policy rules print it."""
    return [(str(ipaddress.ip_network(p, strict=False)), path) for p, path in psn_side_origins(estate)]


def _lob_zones(ctx: Context) -> dict[str, tuple[Any, Any]]:
    """Zones the LOB module already made (ctx.private_zones), with their resource group."""
    zones = getattr(ctx, "private_zones", None) or {}
    if not zones:
        return {}
    rg = ctx.namer.name("resource_group", "dns", region=ctx.estate.azure.primary_region)
    # infra/lob.py keys its privatelink zones by private-link group id.
    return {service: (zones[group], rg) for service, group in PRIVATE_LINK_GROUPS.items() if group in zones}


def build(ctx: Context, hub: Hub, identity: Identity) -> WanOutputs:
    """Attach the WAN to the hubs (primary first): breakout, site VPNs, PSN (primary only), DNS.

    One pre-shared key per VPN peer, shared by its connections to every hub, generated into Key
    Vault. In Virtual WAN the VPN sites belong to the virtual WAN, so they are created once and
    connected to each hub's gateway.
    """
    estate = ctx.estate
    vault = identity.vault
    out = WanOutputs()
    prefix = estate.organisation.short_name
    tags = ctx.platform_tags("platform-connectivity", CONNECTIVITY)
    provider_opts = pulumi.ResourceOptions(provider=hub.provider, depends_on=[hub.resource_group])
    root = pulumi.ComponentResource("estate:wan:Wan", f"{prefix}-wan", None, provider_opts)
    ctx.track(f"{prefix}-wan", ("azure", "connectivity"))
    child = pulumi.ResourceOptions(parent=root)
    keys: dict[str, pulumi.Output[str]] = {}
    index = {s.name: i for i, s in enumerate(estate.sites)}
    peers = [s.name for s in vpn_sites(estate)]
    if estate.azure.connectivity.psn is not None:
        peers.append(psn_name(estate))
    for peer in peers:
        secret = generated_secret(f"{prefix}-vpn-psk-{peer}", vault, length=PSK_LENGTH, parent=root)
        keys[peer] = secret.value
        out.psk_secrets[peer] = secret.name
    site_ids: dict[str, pulumi.Output[str]] = {}
    site_names = {s.name for s in vpn_sites(estate)}
    for i, view in enumerate(hub_views(ctx, hub, vault)):
        tag = f"{prefix}-{view.region}"
        subnets: HubVnetSubnets | None = None
        if view.design is WanDesign.HUB_VNET:
            subnets = HubVnetSubnets(view, hub, child)
            for subnet_name in FIREWALL_SUBNETS:
                subnets.add(subnet_name)
        breakout = Breakout(f"{tag}-breakout", estate, view, tags=tags, opts=child)
        vpns = SiteVpns(f"{tag}-vpn", estate, view, vault, shared_keys=keys, firewall=breakout, with_psn=i == 0,
                        vpn_site_ids=site_ids, tags=tags, hub_subnets=subnets,
                        spoke_prefixes=hub.spoke_prefixes if i == 0 else (), opts=child)
        if i == 0 and view.design is WanDesign.HUB_VNET:
            # The spokes' peerings use the hub's VPN gateway: made now that it exists.
            from .hub import connect_pending_spokes

            connect_pending_spokes(hub, vpns.gateway)
        # Violations name the estate entry each resource came from (see SiteVpns for the names).
        for site_name in vpns.attachments.site_connections:
            ctx.track(f"{tag}-vpn-{site_name}-conn", ("sites", index[site_name], "wan"))
            ctx.track(f"{tag}-vpn-{site_name}-site", ("sites", index[site_name], "ranges"))
            ctx.track(f"{tag}-vpn-{site_name}-lng", ("sites", index[site_name], "ranges"))
        psn = psn_name(estate)
        psn_origins = psn_prefix_origins(estate)
        for suffix in ("conn", "site", "lng", "rt"):
            ctx.track(f"{tag}-vpn-{psn}-{suffix}", ("azure", "connectivity", "psn"))
            # Each PSN prefix on the line that declares it: a psn-zone VLAN or a psn.address_prefixes entry.
            for psn_prefix, path in psn_origins:
                ctx.track_detail(f"{tag}-vpn-{psn}-{suffix}", psn_prefix, path)
        # The firewall policy's PSN rules come from the estate's firewall rules; its tier (and so
        # whether threat intelligence can deny) from azure.connectivity.firewall_tier.
        ctx.track(f"{tag}-breakout-rules", ("firewalls",))
        ctx.track(f"{tag}-breakout-policy", ("azure", "connectivity", "firewall_tier"))
        if ctx.workspace_id is not None:
            ctx.diagnostics(breakout.firewall, f"{tag}-afw", CONNECTIVITY, parent=breakout)
        site_ids = {k: v for k, v in vpns.vpn_site_ids.items() if k in site_names}
        vpns.attachments.firewall_private_ip = breakout.private_ip
        out.hubs.append(vpns.attachments)
        if i == 0:
            dns = PrivateDns(f"{tag}-dns", estate, view, tags=tags, existing=_lob_zones(ctx), gateway=vpns.gateway,
                             opts=child)
            ctx.track(f"{tag}-dns", ("azure", "connectivity", "dns_resolver_address_space"))
            out.dns_resolver_inbound_ip = dns.inbound_ip
            if ctx.workspace_id is not None:
                for res, logical in ((dns.vnet, f"{tag}-dns-vnet"), (dns.nsg, f"{tag}-dns-nsg")):
                    if res is not None:
                        ctx.diagnostics(res, logical, CONNECTIVITY, parent=dns)
            out.private_dns_zone_ids = dns.zone_ids
            out.dns = dns
    root.register_outputs({"sites": peers})
    return out
