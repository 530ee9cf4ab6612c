"""The connectivity hub every spoke joins, from `azure.connectivity`, in the connectivity subscription.

Two designs, chosen by `azure.connectivity.design`:
- `virtual-wan`: a VirtualWan and a Standard VirtualHub (plus a second hub in the secondary region
  when `secondary_hub` is true). Spokes join with a HubVirtualNetworkConnection.
- `hub-vnet`: a hub VirtualNetwork. Spokes join with a pair of VirtualNetworkPeerings.

`build(ctx)` returns a `Hub`. This is the contract the WAN helper builds on (infra/wan.py adds VPN
gateways, VPN sites, Azure Firewall, DNS and the PSN connection to `hub`): keep the fields stable.

    hub = build(ctx)
    hub.design                 # WanDesign.VIRTUAL_WAN or WanDesign.HUB_VNET
    hub.region                 # e.g. "uksouth"
    hub.resource_group_name    # str: the connectivity resource group (already created)
    hub.resource_group         # resources.ResourceGroup
    hub.provider               # the connectivity subscription's provider: pass it in opts
    hub.virtual_wan, hub.virtual_hub            # virtual-wan design (else None)
    hub.hub_vnet                                # hub-vnet design (else None)
    hub.virtual_wan_id, hub.virtual_hub_id, hub.hub_vnet_id   # Output[str] | None
    hub.secondary_hub          # the secondary-region VirtualHub (virtual-wan, secondary_hub: true)
    hub.ddos_plan_id           # Output[str] | None: DDoS Network Protection plan, when chosen
    connect_spoke(ctx, hub, ...)   # how a spoke VNet joins the hub (used by infra/lob.py)
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pulumi

from security_checks.model.schema import WanDesign

from .context import Context

CONNECTIVITY = "connectivity"


@dataclass
class Hub:
    design: WanDesign
    region: str
    resource_group_name: str
    resource_group: Any
    provider: pulumi.ProviderResource
    virtual_wan: Any | None = None
    virtual_hub: Any | None = None
    hub_vnet: Any | None = None
    secondary_hub: Any | None = None
    ddos_plan: Any | None = None
    hub_vnet_name: str | None = None
    virtual_hub_name: str | None = None
    # hub-vnet: the spokes' address spaces (the GatewaySubnet routes them to the firewall) and their
    # peerings, made once the VPN gateway exists (a peering that uses the remote gateway needs it).
    spoke_prefixes: list[str] = field(default_factory=list)
    pending_peerings: list[Callable[[list[Any]], list[Any]]] = field(default_factory=list)

    @property
    def virtual_wan_id(self) -> pulumi.Output[str] | None:
        return self.virtual_wan.id if self.virtual_wan is not None else None

    @property
    def virtual_hub_id(self) -> pulumi.Output[str] | None:
        return self.virtual_hub.id if self.virtual_hub is not None else None

    @property
    def hub_vnet_id(self) -> pulumi.Output[str] | None:
        return self.hub_vnet.id if self.hub_vnet is not None else None

    @property
    def ddos_plan_id(self) -> pulumi.Output[str] | None:
        return self.ddos_plan.id if self.ddos_plan is not None else None


def build(ctx: Context) -> Hub:
    import pulumi_azure_native.network as network
    import pulumi_azure_native.resources as resources

    conn = ctx.estate.azure.connectivity
    region = ctx.estate.azure.primary_region
    n = ctx.namer
    tags = ctx.platform_tags("platform-connectivity", CONNECTIVITY)
    provider = ctx.provider(CONNECTIVITY)
    opts = pulumi.ResourceOptions(provider=provider)

    rg_name = n.name("resource_group", "connectivity", region=region)
    rg = resources.ResourceGroup("rg-connectivity", resource_group_name=rg_name, location=region, tags=tags, opts=opts)
    ctx.track("rg-connectivity", ("azure", "connectivity"))
    hub = Hub(design=conn.design, region=region, resource_group_name=rg_name, resource_group=rg, provider=provider)
    child = pulumi.ResourceOptions(provider=provider, depends_on=[rg])

    if conn.ddos_protection:
        # About GBP 2,300 a month for the tenant: a recorded choice (azure.connectivity.ddos_protection).
        hub.ddos_plan = network.DdosProtectionPlan(
            "ddos-plan", ddos_protection_plan_name=n.name("ddos_plan", "connectivity", region=region),
            resource_group_name=rg_name, location=region, tags=tags, opts=child)
        ctx.track("ddos-plan", ("azure", "connectivity", "ddos_protection"))

    if conn.design is WanDesign.VIRTUAL_WAN:
        hub.virtual_wan = network.VirtualWan(
            "vwan", virtual_wan_name=n.name("virtual_wan", "connectivity", region=region),
            resource_group_name=rg_name, location=region, type="Standard",
            allow_branch_to_branch_traffic=True, disable_vpn_encryption=False, tags=tags, opts=child)
        hub.virtual_hub_name = n.name("virtual_hub", "connectivity", region=region)
        hub.virtual_hub = network.VirtualHub(
            "vhub-primary", virtual_hub_name=hub.virtual_hub_name, resource_group_name=rg_name, location=region,
            address_prefix=conn.hub_address_space, sku="Standard", virtual_wan={"id": hub.virtual_wan.id},
            tags=tags, opts=child)
        ctx.track("vwan", ("azure", "connectivity", "design"))
        ctx.track("vhub-primary", ("azure", "connectivity", "hub_address_space"))
        if conn.secondary_hub and conn.secondary_hub_address_space:
            secondary = ctx.estate.azure.secondary_region
            hub.secondary_hub = network.VirtualHub(
                "vhub-secondary", virtual_hub_name=n.name("virtual_hub", "connectivity", region=secondary),
                resource_group_name=rg_name, location=secondary, address_prefix=conn.secondary_hub_address_space,
                sku="Standard", virtual_wan={"id": hub.virtual_wan.id}, tags=tags, opts=child)
            ctx.track("vhub-secondary", ("azure", "connectivity", "secondary_hub_address_space"))
    else:
        hub.hub_vnet_name = n.name("virtual_network", "hub", region=region)
        hub.hub_vnet = network.VirtualNetwork(
            "vnet-hub", virtual_network_name=hub.hub_vnet_name, resource_group_name=rg_name, location=region,
            address_space={"address_prefixes": [conn.hub_address_space]},
            enable_ddos_protection=conn.ddos_protection,
            ddos_protection_plan={"id": hub.ddos_plan.id} if hub.ddos_plan is not None else None,
            tags=tags, opts=pulumi.ResourceOptions(provider=provider, depends_on=[rg],
                                                   ignore_changes=["subnets", "virtualNetworkPeerings"]))
        ctx.track("vnet-hub", ("azure", "connectivity", "hub_address_space"))
        if ctx.workspace_id is not None:
            ctx.diagnostics(hub.hub_vnet, "vnet-hub", CONNECTIVITY)
    return hub


def hub_vnet_subnets(space: str) -> dict[str, str]:
    """GatewaySubnet, AzureFirewallSubnet and AzureFirewallManagementSubnet (/26 each) of a hub VNet."""
    net = ipaddress.ip_network(space)
    if net.prefixlen > 24:
        raise ValueError(f"hub address space {space} is too small: a hub VNet needs at least a /24")
    parts = list(net.subnets(new_prefix=26))
    return {"GatewaySubnet": str(parts[0]), "AzureFirewallSubnet": str(parts[1]),
            "AzureFirewallManagementSubnet": str(parts[2])}


def hub_firewall_ip(space: str) -> str:
    """The private IP Azure gives a hub VNet's firewall: the first usable host of AzureFirewallSubnet,
    x.x.x.4 (Azure reserves the first four addresses of every subnet, and the firewall's IP
    configuration is the subnet's first)."""
    net = ipaddress.ip_network(hub_vnet_subnets(space)["AzureFirewallSubnet"])
    return str(net.network_address + 4)


def spoke_route_table(ctx: Context, hub: Hub, logical: str, *, resource_group_name: str, region: str,
                      tags: dict[str, str], subscription: str, parent: pulumi.Resource | None = None,
                      depends_on: list[Any] | None = None) -> Any | None:
    """hub-vnet: the spoke's route table, sending everything (0.0.0.0/0) to the hub firewall, with
    gateway route propagation off so routes the VPN gateway learns by BGP cannot bypass it.

    A peered spoke otherwise routes straight to the VPN gateway (system and BGP routes), around the
    firewall, and the firewall sees only one direction of each flow ("Hub-spoke network topology
    in Azure", https://learn.microsoft.com/en-us/azure/architecture/networking/architecture/hub-spoke;
    "Virtual network traffic routing", custom routes,
    https://learn.microsoft.com/en-us/azure/virtual-network/virtual-networks-udr-overview).
    None in virtual-wan, where routing intent does this for every connection.
    """
    import pulumi_azure_native.network as network

    if hub.design is not WanDesign.HUB_VNET:
        return None
    firewall = hub_firewall_ip(ctx.estate.azure.connectivity.hub_address_space)
    table = network.RouteTable(
        f"{logical}-rt", route_table_name=ctx.namer.name("route_table", logical, region=region),
        resource_group_name=resource_group_name, location=region, disable_bgp_route_propagation=True,
        routes=[{"name": "default-to-hub-firewall", "address_prefix": "0.0.0.0/0",
                 "next_hop_type": "VirtualAppliance", "next_hop_ip_address": firewall}],
        tags=tags, opts=pulumi.ResourceOptions(provider=ctx.provider(subscription), parent=parent,
                                               depends_on=depends_on or []))
    return table


def connect_spoke(ctx: Context, hub: Hub, logical: str, *, vnet: Any, vnet_name: str, resource_group_name: str,
                  subscription: str, parent: pulumi.Resource | None = None,
                  address_space: str | None = None) -> list[Any]:
    """Join a spoke VNet to the hub: a hub connection (virtual-wan) or two peerings (hub-vnet).

    hub-vnet: the spoke uses the hub's VPN gateway (useRemoteGateways, the hub side allowing gateway
    transit), so the sites' routes reach it; that needs the gateway to exist, so the peerings are made
    by `connect_pending_spokes` once infra/wan.py has built it.
    """
    import pulumi_azure_native.network as network

    n = ctx.namer
    if hub.design is WanDesign.VIRTUAL_WAN:
        assert hub.virtual_hub is not None and hub.virtual_hub_name is not None
        conn = network.HubVirtualNetworkConnection(
            f"{logical}-hubconn", connection_name=n.name("hub_connection", logical, region=hub.region),
            resource_group_name=hub.resource_group_name, virtual_hub_name=hub.virtual_hub_name,
            remote_virtual_network={"id": vnet.id}, enable_internet_security=True,
            allow_hub_to_remote_vnet_transit=True, allow_remote_vnet_to_use_hub_vnet_gateways=True,
            opts=pulumi.ResourceOptions(provider=hub.provider, parent=parent, depends_on=[hub.virtual_hub]))
        return [conn]
    assert hub.hub_vnet is not None and hub.hub_vnet_name is not None
    if address_space:
        hub.spoke_prefixes.append(address_space)
    hub_vnet, hub_vnet_name = hub.hub_vnet, hub.hub_vnet_name

    def peer(gateway: list[Any]) -> list[Any]:
        from_hub = network.VirtualNetworkPeering(
            f"{logical}-peer-from-hub", virtual_network_peering_name=n.name("peering", f"hub-to-{logical}"),
            resource_group_name=hub.resource_group_name, virtual_network_name=hub_vnet_name,
            remote_virtual_network={"id": vnet.id}, allow_virtual_network_access=True,
            allow_forwarded_traffic=True, allow_gateway_transit=True,
            opts=pulumi.ResourceOptions(provider=hub.provider, parent=parent, depends_on=[hub_vnet, *gateway]))
        to_hub = network.VirtualNetworkPeering(
            f"{logical}-peer-to-hub", virtual_network_peering_name=n.name("peering", f"{logical}-to-hub"),
            resource_group_name=resource_group_name, virtual_network_name=vnet_name,
            remote_virtual_network={"id": hub_vnet.id}, allow_virtual_network_access=True,
            allow_forwarded_traffic=True, use_remote_gateways=bool(gateway),
            opts=pulumi.ResourceOptions(provider=ctx.provider(subscription), parent=parent,
                                        depends_on=[vnet, from_hub, *gateway]))
        return [to_hub, from_hub]

    hub.pending_peerings.append(peer)
    return []


def connect_pending_spokes(hub: Hub, gateway: Any | None) -> list[Any]:
    """hub-vnet: make the spokes' peerings, using the VPN gateway when there is one."""
    made: list[Any] = []
    for peer in hub.pending_peerings:
        made += peer([gateway] if gateway is not None else [])
    hub.pending_peerings.clear()
    return made
