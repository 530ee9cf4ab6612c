"""Line-of-business systems: one `estate:lob:System` component per catalogue entry (`lob_systems`).

The component's shape follows the system's hosting model (cloud-first order SaaS > PaaS > IaaS):

- SaaS: the supplier runs it; we own identity, DNS and conditional access. A CNAME in the
  council's public zone per supplier FQDN, and the conditional-access requirement recorded as a
  component output and as record metadata (Entra conditional access is not an ARM resource).
- PaaS: App Service and Azure SQL behind private endpoints in a spoke VNet joined to the hub;
  Entra-only SQL administration, auditing and TDE; SQL failover group to the secondary region for
  tiers that need DR.
- IaaS: VMs (RHEL for revenues and benefits, Windows Server for most vendor software) with NICs
  that have no public IP, encryption at host, Trusted Launch, and Azure Backup from the tier's
  policy; Site Recovery (Azure to Azure) replication of every VM to the other region for tiers that need DR.

Every PaaS/IaaS spoke gets: a resource group in the system's region (lob.region, so a non-UK
region is caught by the location policy rather than silently deployed), a VNet with the catalogue's
address_space, NSGs whose inbound rules come from the declared flows (`reachable_from` zones ->
the VLAN ranges of those zones across every site; `ports`), a Key Vault with purge protection,
diagnostics to the central workspace and the catalogue's tags.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import pulumi

from security_checks.model.schema import (
    Estate,
    Hosting,
    LobSystem,
    OperatingSystem,
    SubscriptionPlacement,
    Tier,
    ZoneKind,
)
from security_checks.network.reach import private_link_zones, zone_prefixes

from .context import Context, vault_properties
from .hub import Hub, connect_spoke, spoke_route_table

# Azure Backup's Enhanced policy runs at most every 4 hours for VMs, so tier 1 (RPO 1 hour) gets
# 4-hourly backups plus Site Recovery replication to the secondary region (crash-consistent points
# every few minutes), which is what actually meets the hour.
BACKUP: dict[Tier, dict[str, Any]] = {
    Tier.TIER1: {"frequency": "Hourly", "interval_hours": 4, "daily_days": 35, "weekly_weeks": 12,
                 "monthly_months": 12},
    Tier.TIER2: {"frequency": "Daily", "interval_hours": 24, "daily_days": 30, "weekly_weeks": 12, "monthly_months": 0},
    Tier.TIER3: {"frequency": "Daily", "interval_hours": 24, "daily_days": 14, "weekly_weeks": 0, "monthly_months": 0},
}
SQL_PITR_DAYS = {Tier.TIER1: 35, Tier.TIER2: 14, Tier.TIER3: 7}
BACKUP_START = "2026-01-01T01:00:00Z"   # only the time of day matters to Azure Backup
TIME_ZONE = "GMT Standard Time"          # UK time, with summer time

IMAGES: dict[OperatingSystem, dict[str, str]] = {
    OperatingSystem.RHEL_9: {"publisher": "RedHat", "offer": "RHEL", "sku": "9-lvm-gen2", "version": "latest"},
    OperatingSystem.RHEL_8: {"publisher": "RedHat", "offer": "RHEL", "sku": "8-lvm-gen2", "version": "latest"},
    OperatingSystem.WINDOWS_SERVER_2022: {"publisher": "MicrosoftWindowsServer", "offer": "WindowsServer",
                                          "sku": "2022-datacenter-azure-edition", "version": "latest"},
    OperatingSystem.WINDOWS_SERVER_2019: {"publisher": "MicrosoftWindowsServer", "offer": "WindowsServer",
                                          "sku": "2019-datacenter-gensecond", "version": "latest"},
    OperatingSystem.UBUNTU_2204: {"publisher": "Canonical", "offer": "0001-com-ubuntu-server-jammy",
                                  "sku": "22_04-lts-gen2", "version": "latest"},
    OperatingSystem.UBUNTU_2404: {"publisher": "Canonical", "offer": "ubuntu-24_04-lts", "sku": "server",
                                  "version": "latest"},
    OperatingSystem.DEBIAN_12: {"publisher": "Debian", "offer": "debian-12", "sku": "12-gen2", "version": "latest"},
}
VM_SIZE = {Tier.TIER1: "Standard_D4s_v5", Tier.TIER2: "Standard_D4s_v5", Tier.TIER3: "Standard_D2s_v5"}
ADMIN_USER = "estateadmin"

# Private DNS zones the LOB systems' private endpoints register in, by private-link group id
# (sites, sqlServer, vault): web apps, SQL and Key Vault. infra/wan.py links these same zones.
# Site Recovery's zone serves the private endpoint of each replicating system's DR vault.
PRIVATE_ZONES = private_link_zones(("web", "sql", "keyvault", "siterecovery"))
SITE_RECOVERY_GROUP = "AzureSiteRecovery"

# Priorities: declared flows from 100, management from 300, the explicit deny at 4096.
FLOW_PRIORITY = 100
MGMT_PRIORITY = 300
LB_PRIORITY = 4000
DENY_PRIORITY = 4096


def _any(value: Any) -> Any:
    """A nested input written as a dict literal (the SDK translates its snake_case keys)."""
    return value


@dataclass(frozen=True)
class InboundRule:
    """One NSG inbound rule derived from the estate's declared flows."""

    name: str
    priority: int
    protocol: str                 # Tcp / Udp
    port: int
    sources: tuple[str, ...]      # CIDRs or service tags (Internet, VirtualNetwork)
    description: str

    def as_input(self) -> dict[str, Any]:
        rule: dict[str, Any] = {
            "name": self.name, "priority": self.priority, "direction": "Inbound", "access": "Allow",
            "protocol": self.protocol, "source_port_range": "*", "destination_address_prefix": "*",
            "destination_port_range": str(self.port), "description": self.description,
        }
        if len(self.sources) == 1:
            rule["source_address_prefix"] = self.sources[0]
        else:
            rule["source_address_prefixes"] = list(self.sources)
        return rule


def zone_sources(estate: Estate, zone_name: str) -> list[str]:
    """The source address ranges of a zone: its VLANs at every site, or a service tag.

    The internet zone is the `Internet` service tag; a cloud zone is `VirtualNetwork` (other
    spokes through the hub). Ranges are collapsed so a rule stays short however many sites exist.
    """
    zone = estate.zone(zone_name)
    if zone.kind is ZoneKind.INTERNET:
        return ["Internet"]
    if zone.kind is ZoneKind.CLOUD:
        return ["VirtualNetwork"]
    nets = [ipaddress.ip_network(p) for p in zone_prefixes(estate, zone_name)]
    v4 = ipaddress.collapse_addresses(n for n in nets if n.version == 4)
    v6 = ipaddress.collapse_addresses(n for n in nets if n.version == 6)
    return [str(n) for n in (*v4, *v6)]


def zone_sources_memo(estate: Estate) -> Callable[[str], list[str]]:
    """`zone_sources(estate, zone)`, each zone worked out once: every LOB system's rules draw on
    the same zones, and each is a pass over every VLAN of every site (for one build of an
    unchanging estate)."""
    memo: dict[str, list[str]] = {}

    def sources(zone_name: str) -> list[str]:
        if zone_name not in memo:
            memo[zone_name] = zone_sources(estate, zone_name)
        return list(memo[zone_name])

    return sources


def inbound_rules(estate: Estate, lob: LobSystem,
                  sources_of: Callable[[str], list[str]] | None = None) -> list[InboundRule]:
    """The NSG inbound rules a LOB system's declared flows call for (pure: the tests check it too).

    `sources_of` gives a zone's source ranges (default `zone_sources`; `zone_sources_memo` for many systems)."""
    zone_sources_of = sources_of or (lambda z: zone_sources(estate, z))
    rules: list[InboundRule] = []
    flow_sources: list[str] = []
    for z in lob.reachable_from:
        for s in zone_sources_of(z):
            if s not in flow_sources:
                flow_sources.append(s)
    mgmt_sources: list[str] = []
    for zone in estate.zones:
        if zone.kind is ZoneKind.MANAGEMENT:
            mgmt_sources += [s for s in zone_sources_of(zone.name) if s not in mgmt_sources]
    for i, port in enumerate(lob.ports):
        # Administrative interfaces answer the management zone only, whatever reachable_from says.
        sources = mgmt_sources if port.management else flow_sources
        if not sources:
            continue
        base = MGMT_PRIORITY if port.management else FLOW_PRIORITY
        rules.append(InboundRule(
            name=f"allow-{port.service}-{port.protocol}-{port.port}"[:80], priority=base + i,
            protocol=port.protocol.capitalize(), port=port.port, sources=tuple(sources),
            description=(f"{port.service} from {'management' if port.management else ', '.join(lob.reachable_from)}"
                         f" (estate: lob_systems {lob.name})")))
    return rules


# What a system's own workload reaches on its private endpoints: Key Vault and web apps on 443,
# Azure SQL on 1433 (private link to SQL uses 1433 only: "Azure Private Link for Azure SQL
# Database", https://learn.microsoft.com/en-us/azure/azure-sql/database/private-endpoint-overview).
PRIVATE_ENDPOINT_PORTS: dict[Hosting, tuple[int, ...]] = {Hosting.PAAS: (443, 1433), Hosting.IAAS: (443,)}
PRIVATE_ENDPOINT_PRIORITY = 200
# On a DR resource: the region of the primary it protects (infra.policy.dr_region_differs reads it).
DR_OF_TAG = "dr-of-region"
# Site Recovery: the API version of the SDK's other Site Recovery
# resources (for the protection containers, which it has no class for), the regions with
# availability zones among the UK two (UK West has none), and the built-in roles the vault's
# identity needs on the cache storage account (Contributor, Storage Blob Data Contributor).
SITE_RECOVERY_API = "2024-10-01"
ZONAL_REGIONS = ("uksouth",)
SITE_RECOVERY_CACHE_ROLES = {"contributor": "b24988ac-6180-42a0-ab88-20f7382dd24c",
                             "blob-data-contributor": "ba92f5b4-2d11-453d-a403-e96b0029c9fe"}


@dataclass(frozen=True)
class _Replica:
    """A VM to replicate: the resource, its name, its OS disk's name and its zone (tier 1)."""

    vm: Any
    vm_name: str
    os_disk: str
    zone: str | None


def spoke_subnets(lob: LobSystem) -> dict[str, str]:
    """The spoke's subnets by name: a PaaS spoke has private endpoints and app integration, an IaaS
    spoke its VMs (snet-app) and private endpoints; each half of the system's address space."""
    space = ipaddress.ip_network(lob.address_space or "")
    halves = list(space.subnets(prefixlen_diff=1)) if space.prefixlen < 30 else [space, space]
    if lob.hosting is Hosting.PAAS:
        return {"snet-private-endpoints": str(halves[0]), "snet-app-integration": str(halves[1])}
    return {"snet-app": str(halves[0]), "snet-private-endpoints": str(halves[1])}


def private_endpoint_rule(lob: LobSystem) -> dict[str, Any] | None:
    """The NSG rule letting the system's own workload subnet reach its private endpoints.

    The spoke NSG (on both subnets) ends in an explicit deny-all, which overrides Azure's
    AllowVnetInBound; private endpoints in a subnet with network policies Enabled are filtered by
    that NSG ("Manage network policies for private endpoints",
    https://learn.microsoft.com/en-us/azure/private-link/disable-private-endpoint-network-policy).
    Without this rule the web app could not reach its own SQL and Key Vault, nor a VM its Key Vault.
    """
    if lob.hosting is Hosting.SAAS or not lob.address_space:
        return None
    subnets = spoke_subnets(lob)
    workload = next(prefix for name, prefix in subnets.items() if name != "snet-private-endpoints")
    return {"name": "allow-workload-to-private-endpoints", "priority": PRIVATE_ENDPOINT_PRIORITY,
            "direction": "Inbound", "access": "Allow", "protocol": "Tcp", "source_address_prefix": workload,
            "source_port_range": "*", "destination_address_prefix": subnets["snet-private-endpoints"],
            "destination_port_ranges": [str(p) for p in PRIVATE_ENDPOINT_PORTS[lob.hosting]],
            "description": "the system's own workload to its Key Vault, SQL and app private endpoints"}


def nsg_rules(estate: Estate, lob: LobSystem,
              sources_of: Callable[[str], list[str]] | None = None) -> list[dict[str, Any]]:
    out = [r.as_input() for r in inbound_rules(estate, lob, sources_of)]
    own = private_endpoint_rule(lob)
    if own is not None:
        out.append(own)
    out.append({"name": "allow-azure-load-balancer", "priority": LB_PRIORITY, "direction": "Inbound",
                "access": "Allow", "protocol": "*", "source_address_prefix": "AzureLoadBalancer",
                "source_port_range": "*", "destination_address_prefix": "*", "destination_port_range": "*",
                "description": "health probes"})
    # Azure's default AllowVnetInBound would let every connected network (all sites, via the hub) in:
    # deny explicitly, so only the declared flows reach the system.
    out.append({"name": "deny-all-inbound", "priority": DENY_PRIORITY, "direction": "Inbound", "access": "Deny",
                "protocol": "*", "source_address_prefix": "*", "source_port_range": "*",
                "destination_address_prefix": "*", "destination_port_range": "*",
                "description": "only the declared flows above"})
    return out


@dataclass(frozen=True)
class SystemArgs:
    """Everything a System component needs, resolved from the estate before any resource exists."""

    lob: LobSystem
    index: int                     # position in lob_systems (for estate file:line in violations)
    subscription: str              # subscription name
    landing_zone: str              # corp / online
    region: str
    dr_region: str | None          # the secondary region when the tier needs DR
    tags: dict[str, str]
    nsg_rules: list[Any] = field(default_factory=list)
    conditional_access: dict[str, Any] = field(default_factory=dict)


def system_args(ctx: Context, index: int, lob: LobSystem,
                sources_of: Callable[[str], list[str]] | None = None) -> SystemArgs:
    estate = ctx.estate
    sub = ctx.subscription(lob.subscription or SubscriptionPlacement.CORP.value)
    # DR goes to the paired region of the system's own: a system already in the secondary region fails
    # over to the primary (the rule infra.policy.dr_region_differs refuses DR in the same region).
    dr = None
    if lob.tier.needs_dr and lob.hosting is not Hosting.SAAS:
        azure = estate.azure
        dr = azure.primary_region if lob.region == azure.secondary_region else azure.secondary_region
    ca = {
        "applications": lob.saas_fqdns or [lob.name],
        "require_mfa": True,
        "require_compliant_or_hybrid_joined_device": lob.classification.value == "OFFICIAL-SENSITIVE",
        "block_legacy_authentication": True,
        "sign_in_frequency_hours": 12 if lob.classification.value == "OFFICIAL-SENSITIVE" else 24,
        "mfa_enforced_by_supplier": lob.mfa_enforced,
    }
    return SystemArgs(
        lob=lob, index=index, subscription=sub.name, landing_zone=sub.placement.value, region=lob.region,
        dr_region=dr,
        tags=ctx.tags(system=lob.name, owner=lob.owner, classification=lob.classification.value,
                      cost_centre=lob.cost_centre, landing_zone=sub.placement.value, tier=lob.tier.value),
        nsg_rules=nsg_rules(estate, lob, sources_of) if lob.hosting is not Hosting.SAAS else [],
        conditional_access=ca)


@dataclass
class SharedDns:
    """The council's public zone (SaaS CNAMEs) and the private-link zones (PaaS/IaaS private endpoints)."""

    resource_group_name: str
    public_zone: Any
    public_zone_name: str
    private_zones: dict[str, Any]   # group id (sites, sqlServer, vault) -> PrivateZone


def shared_dns(ctx: Context) -> SharedDns:
    import pulumi_azure_native.dns as dns
    import pulumi_azure_native.privatedns as privatedns
    import pulumi_azure_native.resources as resources

    conn = SubscriptionPlacement.CONNECTIVITY.value
    region = ctx.estate.azure.primary_region
    tags = ctx.platform_tags("platform-dns", conn)
    rg_name = ctx.namer.name("resource_group", "dns", region=region)
    rg = resources.ResourceGroup("rg-dns", resource_group_name=rg_name, location=region, tags=tags,
                                 opts=ctx.opts(conn))
    ctx.track("rg-dns", ("organisation", "domain"))
    domain = ctx.estate.organisation.domain
    zone = dns.Zone("dns-public", zone_name=domain, resource_group_name=rg_name, location="global",
                    zone_type=dns.ZoneType.PUBLIC, tags=tags, opts=ctx.opts(conn, depends_on=[rg]))
    ctx.track("dns-public", ("organisation", "domain"))
    private = {}
    for group, zone_name in PRIVATE_ZONES.items():
        logical = f"dns-private-{group.lower()}"
        private[group] = privatedns.PrivateZone(logical, private_zone_name=zone_name, resource_group_name=rg_name,
                                                location="global", tags=tags, opts=ctx.opts(conn, depends_on=[rg]))
        ctx.track(logical, ("lob_systems",))
    return SharedDns(rg_name, zone, domain, private)


class System(pulumi.ComponentResource):
    """A line-of-business system: its resources, shaped by its hosting model (see module docstring)."""

    def __init__(self, name: str, args: SystemArgs, ctx: Context, hub: Hub, dns_: SharedDns,
                 opts: pulumi.ResourceOptions | None = None):
        super().__init__("estate:lob:System", name, None, opts)
        self.args = args
        self.ctx = ctx
        self.hub = hub
        self.dns = dns_
        self.lob = args.lob
        ctx.track(name, ("lob_systems", args.index))
        self.resource_group_name = ""
        self.vnet: Any = None
        self.key_vault: Any = None
        self.vms: list[Any] = []
        self.nics: list[Any] = []
        self.backup_policy: Any = None
        self.sql_secondary: Any = None
        self._replicas: list[_Replica] = []
        self.replicated_items: list[Any] = []
        outputs: dict[str, Any] = {
            "hosting": self.lob.hosting.value, "tier": self.lob.tier.value, "region": args.region,
            "landing_zone": args.landing_zone, "conditional_access": args.conditional_access,
        }
        if self.lob.hosting is Hosting.SAAS:
            outputs["dns_records"] = self._saas()
        else:
            self._spoke()
            self._key_vault()
            if self.lob.hosting is Hosting.PAAS:
                self._paas()
            else:
                self._iaas()
            outputs["resource_group"] = self.resource_group_name
            outputs["vnet_id"] = self.vnet.id if self.vnet is not None else None
        self.register_outputs(outputs)

    # -- helpers -------------------------------------------------------------------------------

    def _opts(self, *, parent: pulumi.Resource | None = None, depends_on: Sequence[Any] | None = None,
              subscription: str | None = None) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(provider=self.ctx.provider(subscription or self.args.subscription),
                                      parent=parent or self, depends_on=list(depends_on or []))

    def _az_name(self, kind: str, suffix: str = "", *, region: str | None = None, instance: int | None = None) -> str:
        workload = self.lob.name + (f"-{suffix}" if suffix else "")
        return self.ctx.namer.name(kind, workload, region=region or self.args.region, instance=instance)

    def _logical(self, what: str) -> str:
        return f"{self.lob.name}-{what}"

    # -- SaaS ----------------------------------------------------------------------------------

    def _saas(self) -> list[str]:
        import pulumi_azure_native.dns as dns

        conn = SubscriptionPlacement.CONNECTIVITY.value
        ca = self.args.conditional_access
        records = []
        for i, fqdn in enumerate(self.lob.saas_fqdns):
            rel = self.lob.name if i == 0 else f"{self.lob.name}-{i + 1}"
            dns.RecordSet(
                self._logical(f"cname-{i + 1}"), zone_name=self.dns.public_zone_name, relative_record_set_name=rel,
                resource_group_name=self.dns.resource_group_name, record_type="CNAME", ttl=3600,
                cname_record={"cname": fqdn},
                # Record metadata carries what ARM cannot: the supplier's data residency and the
                # conditional-access policy Entra must hold for this app.
                metadata={**{k: v for k, v in self.args.tags.items()},
                          "data-residency": self.args.region,
                          "conditional-access": "mfa" + (";compliant-device"
                                                         if ca["require_compliant_or_hybrid_joined_device"] else "")},
                opts=self._opts(subscription=conn, depends_on=[self.dns.public_zone]))
            records.append(f"{rel}.{self.dns.public_zone_name} CNAME {fqdn}")
        return records

    # -- spoke network -----------------------------------------------------------------------------

    def _spoke(self) -> None:
        import pulumi_azure_native.network as network
        import pulumi_azure_native.resources as resources

        a = self.args
        tags = a.tags
        self.resource_group_name = self._az_name("resource_group")
        rg = resources.ResourceGroup(self._logical("rg"), resource_group_name=self.resource_group_name,
                                     location=a.region, tags=tags, opts=self._opts())
        self.rg = rg
        nsg_name = self._az_name("nsg")
        self.nsg = network.NetworkSecurityGroup(
            self._logical("nsg"), network_security_group_name=nsg_name, resource_group_name=self.resource_group_name,
            location=a.region, security_rules=a.nsg_rules, tags=tags, opts=self._opts(depends_on=[rg]))
        self.ctx.diagnostics(self.nsg, self._logical("nsg"), a.subscription, parent=self.nsg, metrics=False)
        space = ipaddress.ip_network(self.lob.address_space or "")
        prefixes = spoke_subnets(self.lob)
        nsg_ref = {"id": self.nsg.id}
        if self.lob.hosting is Hosting.PAAS:
            subnets: list[Any] = [
                {"name": "snet-private-endpoints", "address_prefix": prefixes["snet-private-endpoints"],
                 "network_security_group": nsg_ref, "private_endpoint_network_policies": "Enabled"},
                {"name": "snet-app-integration", "address_prefix": prefixes["snet-app-integration"],
                 "network_security_group": nsg_ref,
                 "delegations": [{"name": "web", "service_name": "Microsoft.Web/serverFarms"}]},
            ]
        else:
            subnets = [
                {"name": "snet-app", "address_prefix": prefixes["snet-app"], "network_security_group": nsg_ref,
                 "default_outbound_access": False},
                {"name": "snet-private-endpoints", "address_prefix": prefixes["snet-private-endpoints"],
                 "network_security_group": nsg_ref, "private_endpoint_network_policies": "Enabled"},
            ]
        # hub-vnet: every subnet sends its traffic to the hub firewall (none in virtual-wan: routing intent).
        route_table = spoke_route_table(self.ctx, self.hub, self.lob.name, resource_group_name=self.resource_group_name,
                                        region=a.region, tags=tags, subscription=a.subscription, parent=self,
                                        depends_on=[rg])
        if route_table is not None:
            for subnet in subnets:
                subnet["route_table"] = {"id": route_table.id}
        self.route_table = route_table
        self.vnet_name = self._az_name("virtual_network")
        ddos = self.hub.ddos_plan_id
        ddos_plan: Any = {"id": ddos} if ddos is not None else None
        self.vnet = network.VirtualNetwork(
            self._logical("vnet"), virtual_network_name=self.vnet_name, resource_group_name=self.resource_group_name,
            location=a.region, address_space={"address_prefixes": [str(space)]}, subnets=subnets,
            enable_ddos_protection=ddos is not None, ddos_protection_plan=ddos_plan,
            tags=tags, opts=self._opts(depends_on=[rg, self.nsg, *([route_table] if route_table is not None else [])]))
        self.ctx.diagnostics(self.vnet, self._logical("vnet"), a.subscription, parent=self.vnet)
        connect_spoke(self.ctx, self.hub, self.lob.name, vnet=self.vnet, vnet_name=self.vnet_name,
                      resource_group_name=self.resource_group_name, subscription=a.subscription, parent=self,
                      address_space=str(space))
        self.subnet_ids = {s["name"]: self.vnet.id.apply(lambda i, n=s["name"]: f"{i}/subnets/{n}") for s in subnets}

    def _private_endpoint(self, what: str, target_id: Any, group: str) -> Any:
        import pulumi_azure_native.network as network
        import pulumi_azure_native.privatedns as privatedns

        a = self.args
        pe_name = self._az_name("private_endpoint", what)
        pe = network.PrivateEndpoint(
            self._logical(f"pep-{what}"), private_endpoint_name=pe_name, resource_group_name=self.resource_group_name,
            location=a.region, subnet={"id": self.subnet_ids["snet-private-endpoints"]},
            private_link_service_connections=[{"name": f"{what}-connection", "private_link_service_id": target_id,
                                               "group_ids": [group]}],
            tags=a.tags, opts=self._opts(depends_on=[self.vnet]))
        zone = self.dns.private_zones[group]
        network.PrivateDnsZoneGroup(
            self._logical(f"pep-{what}-dns"), private_dns_zone_group_name="default", private_endpoint_name=pe_name,
            resource_group_name=self.resource_group_name,
            private_dns_zone_configs=[{"name": group, "private_dns_zone_id": zone.id}],
            opts=self._opts(parent=pe))
        if group not in getattr(self, "_linked", set()):
            self._linked = {*getattr(self, "_linked", set()), group}
            privatedns.VirtualNetworkLink(
                self._logical(f"dnslink-{group.lower()}"),
                virtual_network_link_name=f"link-{self.vnet_name}"[:80], private_zone_name=PRIVATE_ZONES[group],
                resource_group_name=self.dns.resource_group_name, location="global", registration_enabled=False,
                virtual_network={"id": self.vnet.id}, tags=a.tags,
                opts=self._opts(subscription=SubscriptionPlacement.CONNECTIVITY.value, depends_on=[zone]))
        return pe

    def _key_vault(self) -> None:
        import pulumi_azure_native.keyvault as keyvault

        a = self.args
        self.key_vault_name = self._az_name("key_vault")
        self.key_vault = keyvault.Vault(
            self._logical("kv"), vault_name=self.key_vault_name, resource_group_name=self.resource_group_name,
            location=a.region, tags=a.tags,
            properties=vault_properties(self.ctx.estate.azure.tenant_id),
            opts=self._opts(depends_on=[self.rg]))
        self.ctx.diagnostics(self.key_vault, self._logical("kv"), a.subscription, parent=self.key_vault)
        self._private_endpoint("kv", self.key_vault.id, "vault")

    # -- PaaS ----------------------------------------------------------------------------------

    def _paas(self) -> None:
        import pulumi_azure_native.web as web

        a = self.args
        internet = any(self.ctx.estate.zone(z).kind is ZoneKind.INTERNET for z in self.lob.reachable_from)
        plan = web.AppServicePlan(
            self._logical("asp"), name=self._az_name("app_service_plan"), resource_group_name=self.resource_group_name,
            location=a.region, kind="linux", reserved=True,
            sku={"name": "P1v3", "tier": "PremiumV3", "capacity": 2 if self.lob.tier is Tier.TIER1 else 1},
            zone_redundant=self.lob.tier is Tier.TIER1, tags=a.tags, opts=self._opts(depends_on=[self.rg]))
        app = web.WebApp(
            self._logical("app"), name=self._az_name("web_app"), resource_group_name=self.resource_group_name,
            location=a.region, server_farm_id=plan.id, https_only=True, client_cert_enabled=False,
            # Internet-facing services (reachable_from an internet zone) keep a public endpoint;
            # everything else is reachable only through its private endpoint.
            public_network_access="Enabled" if internet else "Disabled",
            virtual_network_subnet_id=self.subnet_ids["snet-app-integration"],
            identity=_any({"type": "SystemAssigned"}),
            site_config=_any({"min_tls_version": "1.2", "ftps_state": "Disabled", "http20_enabled": True,
                         "always_on": True, "vnet_route_all_enabled": True,
                         "linux_fx_version": "DOTNETCORE|8.0"}),
            tags=a.tags, opts=self._opts(depends_on=[plan, self.vnet]))
        self.web_app = app
        self.ctx.diagnostics(app, self._logical("app"), a.subscription, parent=app)
        self._private_endpoint("app", app.id, "sites")
        server, _ = self._sql_server("sql", a.region, primary=True)
        self._private_endpoint("sql", server.id, "sqlServer")
        if self.sql_secondary is not None:
            # The failover partner is private too (public access disabled): without its own private
            # endpoint the app could not reach the database after a failover. A private endpoint may
            # sit in another region than its target ("What is a private endpoint?", properties:
            # "The private endpoint must be deployed in the same region and subscription as the
            # virtual network", not as the resource: https://learn.microsoft.com/en-us/azure/
            # private-link/private-endpoint-overview), so it lives in the system's own spoke.
            self._private_endpoint("sql-dr", self.sql_secondary.id, "sqlServer")

    def _sql_server(self, what: str, region: str, *, primary: bool) -> tuple[Any, Any]:
        import pulumi_azure_native.sql as sql

        a = self.args
        groups = self.ctx.estate.azure.entra_groups
        server_name = self._az_name("sql_server", "" if primary else "dr", region=region)
        rg_name = self.resource_group_name if primary else self._dr_resource_group()
        server = sql.Server(
            self._logical(what), server_name=server_name, resource_group_name=rg_name, location=region,
            version="12.0", minimal_tls_version="1.2", public_network_access="Disabled",
            administrators={"administrator_type": "ActiveDirectory", "azure_ad_only_authentication": True,
                            "login": "infrastructure-engineers", "sid": groups.infrastructure_engineers,
                            "principal_type": "Group", "tenant_id": self.ctx.estate.azure.tenant_id},
            identity={"type": "SystemAssigned"}, tags=a.tags, opts=self._opts(depends_on=[self.rg]))
        sql.ServerBlobAuditingPolicy(
            self._logical(f"{what}-audit"), server_name=server_name, resource_group_name=rg_name,
            blob_auditing_policy_name="default", state=sql.BlobAuditingPolicyState.ENABLED,
            is_azure_monitor_target_enabled=True,
            audit_actions_and_groups=["SUCCESSFUL_DATABASE_AUTHENTICATION_GROUP",
                                      "FAILED_DATABASE_AUTHENTICATION_GROUP", "BATCH_COMPLETED_GROUP"],
            opts=self._opts(parent=server))
        self._sql_audit_diagnostics(server, what)
        if not primary:
            return server, None
        db_name = self._az_name("sql_database")
        db = sql.Database(
            self._logical(f"{what}db"), database_name=db_name, server_name=server_name, resource_group_name=rg_name,
            location=region, sku={"name": "GP_Gen5_2" if self.lob.tier is Tier.TIER1 else "S2"},
            zone_redundant=self.lob.tier is Tier.TIER1, requested_backup_storage_redundancy="Geo",
            tags=a.tags, opts=self._opts(parent=server))
        sql.TransparentDataEncryption(
            self._logical(f"{what}db-tde"), server_name=server_name, database_name=db_name, resource_group_name=rg_name,
            tde_name="current", state=sql.TransparentDataEncryptionState.ENABLED, opts=self._opts(parent=db))
        sql.BackupShortTermRetentionPolicy(
            self._logical(f"{what}db-pitr"), server_name=server_name, database_name=db_name,
            resource_group_name=rg_name, policy_name="default", retention_days=SQL_PITR_DAYS[self.lob.tier],
            opts=self._opts(parent=db))
        self.ctx.diagnostics(db, self._logical(f"{what}db"), a.subscription, parent=db)
        if a.dr_region:
            secondary, _ = self._sql_server(f"{what}-dr", a.dr_region, primary=False)
            self.sql_secondary = secondary
            sql.FailoverGroup(
                self._logical(f"{what}-fog"), failover_group_name=self._az_name("sql_server", "fog"),
                server_name=server_name, resource_group_name=rg_name, databases=[db.id],
                partner_servers=[{"id": secondary.id}],
                read_write_endpoint={"failover_policy": "Automatic",
                                     "failover_with_data_loss_grace_period_minutes": 60},
                tags=a.tags, opts=self._opts(parent=server, depends_on=[secondary]))
        return server, db

    def _sql_audit_diagnostics(self, server: Any, what: str) -> Any:
        """Where the server's audit events go: auditing with the Azure Monitor target sends nothing
        until the master database has a diagnostic setting for SQLSecurityAuditEvents (see
        infra/policy/rules.py `sql_tde_auditing` for Microsoft's words)."""
        import pulumi_azure_native.monitor as monitor

        assert self.ctx.workspace_id is not None
        return monitor.DiagnosticSetting(
            self._logical(f"{what}-audit-diag"), name="sql-audit-to-central-log",
            resource_uri=server.id.apply(lambda i: f"{i}/databases/master"), workspace_id=self.ctx.workspace_id,
            logs=[{"category": "SQLSecurityAuditEvents", "enabled": True}],
            opts=self._opts(parent=server))

    def _dr_resource_group(self) -> str:
        import pulumi_azure_native.resources as resources

        a = self.args
        assert a.dr_region is not None
        if getattr(self, "_dr_rg_name", None) is None:
            self._dr_rg_name = self._az_name("resource_group", "dr", region=a.dr_region)
            self._dr_rg = resources.ResourceGroup(self._logical("rg-dr"), resource_group_name=self._dr_rg_name,
                                                  location=a.dr_region, tags=a.tags, opts=self._opts())
        return self._dr_rg_name

    # -- IaaS ----------------------------------------------------------------------------------

    def _iaas(self) -> None:
        import pulumi_azure_native.compute as compute
        import pulumi_azure_native.keyvault as keyvault
        import pulumi_azure_native.network as network
        import pulumi_random as random

        a = self.args
        lob = self.lob
        assert lob.os is not None
        windows = lob.os.value.startswith("windows")
        admin_secret = None
        if windows:
            # The local administrator password is generated, kept only in the system's Key Vault,
            # and never printed. Marked secret here as well as by the provider's schema, so it stays
            # secret in any engine or mock, and the offline plan redacts it.
            pw = random.RandomPassword(self._logical("admin-password"), length=24, special=True, min_lower=1,
                                       min_upper=1, min_numeric=1, min_special=1,
                                       opts=pulumi.ResourceOptions(parent=self))
            admin_secret = cast(Any, pulumi.Output).secret(pw.result)
            keyvault.Secret(self._logical("admin-password-secret"), vault_name=self.key_vault_name,
                            resource_group_name=self.resource_group_name, secret_name="vm-local-admin",  # noqa: S106 (a name, not a password)
                            properties={"value": admin_secret}, tags=a.tags, opts=self._opts(parent=self.key_vault))
        vault, policy = self._backup()
        # Encryption at host (below) is refused until the subscription has the feature registered.
        encryption_at_host = self.ctx.feature(a.subscription, "Microsoft.Compute", "EncryptionAtHost")
        for i in range(1, lob.vm_count + 1):
            nic_ip: Any = {"name": "ipconfig1", "private_ip_allocation_method": "Dynamic",
                                      "subnet": {"id": self.subnet_ids["snet-app"]}, "primary": True}
            if lob.public_ip:
                pip = network.PublicIPAddress(
                    self._logical(f"pip-{i:02d}"),
                    public_ip_address_name=f"pip-{self._az_name('virtual_machine', instance=i)}",
                    resource_group_name=self.resource_group_name, location=a.region, sku={"name": "Standard"},
                    public_ip_allocation_method="Static", tags=a.tags, opts=self._opts(depends_on=[self.rg]))
                nic_ip["public_ip_address"] = {"id": pip.id}
            nic = network.NetworkInterface(
                self._logical(f"nic-{i:02d}"), network_interface_name=self._az_name("nic", instance=i),
                resource_group_name=self.resource_group_name, location=a.region, ip_configurations=[nic_ip],
                enable_accelerated_networking=True, tags=a.tags, opts=self._opts(depends_on=[self.vnet]))
            self.nics.append(nic)
            vm_name = self._az_name("virtual_machine", instance=i)
            os_profile: Any = {"computer_name": self.ctx.namer.computer_name(lob.name, i, windows=windows),
                                          "admin_username": ADMIN_USER}
            if windows:
                os_profile["admin_password"] = admin_secret
                os_profile["windows_configuration"] = {"enable_automatic_updates": True, "provision_vm_agent": True,
                                                       "patch_settings": {"patch_mode": "AutomaticByPlatform"}}
            else:
                os_profile["linux_configuration"] = {
                    "disable_password_authentication": True, "provision_vm_agent": True,
                    "ssh": {"public_keys": [{"path": f"/home/{ADMIN_USER}/.ssh/authorized_keys",
                                             "key_data": self.ctx.config.admin_ssh_public_key}]},
                    "patch_settings": {"patch_mode": "AutomaticByPlatform"}}
            vm = compute.VirtualMachine(
                self._logical(f"vm-{i:02d}"), vm_name=vm_name, resource_group_name=self.resource_group_name,
                location=a.region, hardware_profile=_any({"vm_size": VM_SIZE[lob.tier]}),
                storage_profile=_any({
                    "image_reference": IMAGES[lob.os],
                    "os_disk": {"name": self._az_name("os_disk", instance=i), "create_option": "FromImage",
                                "caching": "ReadWrite", "delete_option": "Detach",
                                "managed_disk": {"storage_account_type": "Premium_LRS"}}}),
                os_profile=os_profile,
                network_profile=_any({"network_interfaces": [{"id": nic.id, "primary": True}]}),
                # Encryption at host: temp disk and caches encrypted too, not only the managed disks.
                security_profile=_any({"encryption_at_host": True, "security_type": "TrustedLaunch",
                                       "uefi_settings": {"secure_boot_enabled": True, "v_tpm_enabled": True}}),
                diagnostics_profile=_any({"boot_diagnostics": {"enabled": True}}),
                identity=_any({"type": "SystemAssigned"}),
                zones=[str((i - 1) % 3 + 1)] if lob.tier is Tier.TIER1 else None,
                tags=a.tags, opts=self._opts(depends_on=[nic, encryption_at_host]))
            self.vms.append(vm)
            self._replicas.append(_Replica(vm, vm_name, self._az_name("os_disk", instance=i),
                                           str((i - 1) % 3 + 1) if lob.tier is Tier.TIER1 else None))
            self._back_up_vm(vm, vm_name, vault, policy, i)
        if a.dr_region:
            self._site_recovery()

    def _backup(self) -> tuple[Any, Any]:
        import pulumi_azure_native.recoveryservices as rs

        a = self.args
        tier = self.lob.tier
        spec = BACKUP[tier]
        self.vault_name = self._az_name("recovery_vault")
        vault = rs.Vault(
            self._logical("rsv"), vault_name=self.vault_name, resource_group_name=self.resource_group_name,
            location=a.region, sku={"name": "RS0", "tier": "Standard"}, identity={"type": "SystemAssigned"},
            properties=rs.VaultPropertiesArgs(
                public_network_access="Disabled",
                redundancy_settings=rs.VaultPropertiesRedundancySettingsArgs(
                    standard_tier_storage_redundancy="GeoRedundant",
                    cross_region_restore="Enabled" if tier.needs_dr else "Disabled"),
                security_settings=rs.SecuritySettingsArgs(
                    soft_delete_settings=rs.SoftDeleteSettingsArgs(soft_delete_state="AlwaysON",
                                                                   soft_delete_retention_period_in_days=14),
                    immutability_settings=rs.ImmutabilitySettingsArgs(state="Unlocked"))),
            tags=a.tags, opts=self._opts(depends_on=[self.rg]))
        self.ctx.diagnostics(vault, self._logical("rsv"), a.subscription, parent=vault)
        if spec["frequency"] == "Hourly":
            schedule: Any = rs.SimpleSchedulePolicyV2Args(
                schedule_policy_type="SimpleSchedulePolicyV2", schedule_run_frequency="Hourly",
                hourly_schedule=rs.HourlyScheduleArgs(interval=spec["interval_hours"],
                                                      schedule_window_start_time=BACKUP_START,
                                                      schedule_window_duration=24))
            policy_type = "V2"
        else:
            schedule = rs.SimpleSchedulePolicyArgs(schedule_policy_type="SimpleSchedulePolicy",
                                                   schedule_run_frequency="Daily", schedule_run_times=[BACKUP_START])
            policy_type = "V1"
        retention = rs.LongTermRetentionPolicyArgs(
            retention_policy_type="LongTermRetentionPolicy",
            daily_schedule=rs.DailyRetentionScheduleArgs(
                retention_times=[BACKUP_START],
                retention_duration=rs.RetentionDurationArgs(count=spec["daily_days"], duration_type="Days")),
            weekly_schedule=rs.WeeklyRetentionScheduleArgs(
                days_of_the_week=[rs.DayOfWeek.SUNDAY], retention_times=[BACKUP_START],
                retention_duration=rs.RetentionDurationArgs(count=spec["weekly_weeks"], duration_type="Weeks"))
            if spec["weekly_weeks"] else None,
            monthly_schedule=rs.MonthlyRetentionScheduleArgs(
                retention_schedule_format_type="Weekly", retention_times=[BACKUP_START],
                retention_schedule_weekly=rs.WeeklyRetentionFormatArgs(days_of_the_week=[rs.DayOfWeek.SUNDAY],
                                                                       weeks_of_the_month=[rs.WeekOfMonth.FIRST]),
                retention_duration=rs.RetentionDurationArgs(count=spec["monthly_months"], duration_type="Months"))
            if spec["monthly_months"] else None)
        policy = rs.ProtectionPolicy(
            self._logical("bkpol"), policy_name=self._az_name("backup_policy", tier.value), vault_name=self.vault_name,
            resource_group_name=self.resource_group_name,
            properties=rs.AzureIaaSVMProtectionPolicyArgs(
                backup_management_type="AzureIaasVM", policy_type=policy_type, schedule_policy=schedule,
                retention_policy=retention, instant_rp_retention_range_in_days=7 if tier is Tier.TIER1 else 2,
                time_zone=TIME_ZONE),
            tags=a.tags, opts=self._opts(parent=vault))
        self.backup_policy = policy
        return vault, policy

    def _back_up_vm(self, vm: Any, vm_name: str, vault: Any, policy: Any, i: int) -> None:
        import pulumi_azure_native.recoveryservices as rs

        container = f"iaasvmcontainer;iaasvmcontainerv2;{self.resource_group_name};{vm_name}"
        rs.ProtectedItem(
            self._logical(f"backup-{i:02d}"), vault_name=self.vault_name, resource_group_name=self.resource_group_name,
            fabric_name="Azure", container_name=container,
            protected_item_name=f"vm;iaasvmcontainerv2;{self.resource_group_name};{vm_name}",
            properties=rs.AzureIaaSComputeVMProtectedItemArgs(
                protected_item_type="Microsoft.Compute/virtualMachines", source_resource_id=vm.id,
                policy_id=policy.id),
            tags=self.args.tags, opts=self._opts(parent=vm, depends_on=[policy]))

    def _site_recovery(self) -> None:
        """Azure-to-Azure replication of every VM to the DR region (Site Recovery, "A2A").

        What a real enable-replication needs, in Microsoft's order ("Set up disaster recovery for
        Azure VMs", https://learn.microsoft.com/en-us/azure/site-recovery/azure-to-azure-tutorial-enable-replication;
        REST objects as in "Replication Protected Items - Create",
        https://learn.microsoft.com/en-us/rest/api/site-recovery/replication-protected-items/create):
        the vault in the target region; a replication fabric per region (instanceType Azure, the
        region as location); an A2A protection container in each; a container mapping from the
        primary's container to the recovery one with the replication policy (and back, for
        failback); a network mapping from the spoke VNet to a recovery VNet in the target region; a
        cache storage account in the source region (Standard, general-purpose v2), which the vault's
        managed identity may write to; then one protected item per VM naming its managed disks.
        infra/AZURE-RULES.md lists these rules with their references.
        """
        import pulumi_azure_native.recoveryservices as rs

        a = self.args
        assert a.dr_region is not None
        rg_name = self._dr_resource_group()
        vault_name = self._az_name("recovery_vault", "dr", region=a.dr_region)
        vault = rs.Vault(
            self._logical("rsv-dr"), vault_name=vault_name, resource_group_name=rg_name, location=a.dr_region,
            sku={"name": "RS0", "tier": "Standard"}, identity={"type": "SystemAssigned"},
            properties=rs.VaultPropertiesArgs(public_network_access="Disabled"),
            tags={**a.tags, DR_OF_TAG: a.region}, opts=self._opts(depends_on=[self._dr_rg]))
        self.ctx.diagnostics(vault, self._logical("rsv-dr"), a.subscription, parent=vault)
        # Azure-to-Azure replication: crash-consistent points every 5 minutes kept 24 hours,
        # app-consistent every 4 hours. This, not the backup, is what meets tier 1's 1-hour RPO.
        policy = rs.ReplicationPolicy(
            self._logical("asr-policy"), policy_name=f"asr-{self.lob.name}"[:60], resource_group_name=rg_name,
            resource_name_=vault_name,
            properties=rs.CreatePolicyInputPropertiesArgs(provider_specific_input=rs.A2APolicyCreationInputArgs(
                instance_type="A2A", multi_vm_sync_status="Enable", recovery_point_history=1440,
                app_consistent_frequency_in_minutes=240, crash_consistent_frequency_in_minutes=5)),
            opts=self._opts(parent=vault))
        if not self._replicas:
            return
        # The vault is private (public network access disabled): the VMs' mobility service reaches it
        # through a private endpoint in the source network ("Replicate machines with private
        # endpoints", https://learn.microsoft.com/en-us/azure/site-recovery/azure-to-azure-how-to-enable-replication-private-endpoints).
        self._private_endpoint("asr", vault.id, SITE_RECOVERY_GROUP)
        # Children are addressed by the names given here (known before anything exists), each
        # resource depending on its parents.
        fabrics = {}
        containers = {}
        fabric_names = {"primary": f"asr-fabric-{a.region}", "recovery": f"asr-fabric-{a.dr_region}"}
        container_names = {side: f"asr-container-{side}" for side in fabric_names}
        for side, region in (("primary", a.region), ("recovery", a.dr_region)):
            fabric_name = fabric_names[side]
            fabrics[side] = rs.ReplicationFabric(
                self._logical(f"asr-fabric-{side}"), fabric_name=fabric_name, resource_group_name=rg_name,
                resource_name_=vault_name,
                properties=rs.FabricCreationInputPropertiesArgs(custom_details=rs.AzureFabricCreationInputArgs(
                    instance_type="Azure", location=region)),
                opts=self._opts(parent=vault))
            containers[side] = self._protection_container(container_names[side], vault_name, fabric_name,
                                                          fabrics[side])
        for source, target in (("primary", "recovery"), ("recovery", "primary")):
            rs.ReplicationProtectionContainerMapping(
                self._logical(f"asr-mapping-{source}"), fabric_name=fabric_names[source],
                protection_container_name=container_names[source], mapping_name=f"asr-map-{source}-to-{target}",
                resource_group_name=rg_name, resource_name_=vault_name,
                properties=rs.CreateProtectionContainerMappingInputPropertiesArgs(
                    policy_id=policy.id, target_protection_container_id=containers[target].id,
                    # Automatic agent updates need an automation account; updates stay with patching.
                    provider_specific_input=rs.A2AContainerMappingInputArgs(instance_type="A2A",
                                                                            agent_auto_update_status="Disabled")),
                opts=self._opts(parent=vault, depends_on=[containers[source], containers[target], policy]))
        recovery_vnet = self._recovery_network(rg_name)
        rs.ReplicationNetworkMapping(
            self._logical("asr-network-mapping"), fabric_name=fabric_names["primary"],
            network_name=self.vnet_name, network_mapping_name=f"asr-net-{self.lob.name}"[:60],
            resource_group_name=rg_name, resource_name_=vault_name,
            properties=rs.CreateNetworkMappingInputPropertiesArgs(
                recovery_fabric_name=fabric_names["recovery"], recovery_network_id=recovery_vnet.id,
                fabric_specific_details=rs.AzureToAzureCreateNetworkMappingInputArgs(
                    instance_type="AzureToAzure", primary_network_id=self.vnet.id)),
            opts=self._opts(parent=vault, depends_on=[fabrics["primary"], fabrics["recovery"], recovery_vnet]))
        cache = self._replication_cache(vault)
        sub_id = self.ctx.subscription(a.subscription).id
        dr_rg_id = f"/subscriptions/{sub_id}/resourceGroups/{rg_name}"
        for replica in self._replicas:
            # The OS disk is made from the image with the name the program gives it: its id is known.
            disk_id = (f"/subscriptions/{sub_id}/resourceGroups/{self.resource_group_name}"
                       f"/providers/Microsoft.Compute/disks/{replica.os_disk}")
            item = rs.ReplicationProtectedItem(
                self._logical(f"asr-{replica.vm_name}"), fabric_name=fabric_names["primary"],
                protection_container_name=container_names["primary"],
                replicated_protected_item_name=replica.vm_name, resource_group_name=rg_name,
                resource_name_=vault_name,
                properties=rs.EnableProtectionInputPropertiesArgs(
                    policy_id=policy.id,
                    provider_specific_details=rs.A2AEnableProtectionInputArgs(
                        instance_type="A2A", fabric_object_id=replica.vm.id,
                        recovery_container_id=containers["recovery"].id, recovery_resource_group_id=dr_rg_id,
                        recovery_azure_network_id=recovery_vnet.id, recovery_subnet_name="snet-app",
                        # A zonal VM recovers into the same zone number only where the target region
                        # has availability zones (UK West has none).
                        recovery_availability_zone=replica.zone if a.dr_region in ZONAL_REGIONS else None,
                        vm_managed_disks=[rs.A2AVmManagedDiskInputDetailsArgs(
                            disk_id=disk_id, primary_staging_azure_storage_account_id=cache.id,
                            recovery_resource_group_id=dr_rg_id, recovery_replica_disk_account_type="Premium_LRS",
                            recovery_target_disk_account_type="Premium_LRS")])),
                opts=self._opts(parent=replica.vm, depends_on=[policy, cache, recovery_vnet, *containers.values()]))
            self.replicated_items.append(item)

    def _protection_container(self, name: str, vault_name: str, fabric_name: str, fabric: Any) -> Any:
        """An A2A protection container in a fabric. The installed azure-native SDK has no class for
        `replicationProtectionContainers` (only for the mappings), so it is the generic ARM resource
        at the API version the SDK's other Site Recovery resources use."""
        import pulumi_azure_native.resources as resources

        return resources.Resource(
            self._logical(name), resource_group_name=self._dr_resource_group(),
            resource_provider_namespace="Microsoft.RecoveryServices",
            parent_resource_path=f"vaults/{vault_name}/replicationFabrics/{fabric_name}",
            resource_type="replicationProtectionContainers", resource_name_=name,
            api_version=SITE_RECOVERY_API, properties={"providerSpecificInput": [{"instanceType": "A2A"}]},
            tags=self.args.tags, opts=self._opts(parent=fabric, depends_on=[fabric]))

    def _recovery_network(self, rg_name: str) -> Any:
        """Where replicated VMs start after failover: a VNet in the DR region with the spoke's address
        space and subnets (so the VMs keep their addresses), its own NSG with the spoke's rules, and
        no peering or hub connection until failover (an engineer connects it then: README)."""
        import pulumi_azure_native.network as network

        a = self.args
        assert a.dr_region is not None
        tags = {**a.tags, DR_OF_TAG: a.region}
        nsg = network.NetworkSecurityGroup(
            self._logical("nsg-dr"), network_security_group_name=self._az_name("nsg", "dr", region=a.dr_region),
            resource_group_name=rg_name, location=a.dr_region, security_rules=a.nsg_rules, tags=tags,
            opts=self._opts(depends_on=[self._dr_rg]))
        self.ctx.diagnostics(nsg, self._logical("nsg-dr"), a.subscription, parent=nsg, metrics=False)
        subnets: list[Any] = [{"name": name, "address_prefix": prefix, "network_security_group": {"id": nsg.id}}
                   for name, prefix in spoke_subnets(self.lob).items()]
        ddos = self.hub.ddos_plan_id   # a DDoS protection plan covers VNets in any region
        vnet = network.VirtualNetwork(
            self._logical("vnet-dr"), virtual_network_name=self._az_name("virtual_network", "dr", region=a.dr_region),
            resource_group_name=rg_name, location=a.dr_region,
            address_space={"address_prefixes": [self.lob.address_space or ""]}, subnets=subnets, tags=tags,
            enable_ddos_protection=ddos is not None, ddos_protection_plan={"id": ddos} if ddos is not None else None,
            opts=self._opts(depends_on=[self._dr_rg, nsg]))
        self.ctx.diagnostics(vnet, self._logical("vnet-dr"), a.subscription, parent=vnet)
        self.recovery_vnet = vnet
        return vnet

    def _replication_cache(self, vault: Any) -> Any:
        """The cache storage account replication stages changes in: source region, Standard
        general-purpose v2 (Premium is not supported for cache), HTTPS and TLS 1.2 only. Its firewall
        denies by default and lets trusted Azure services through; the vault's managed identity gets
        Contributor and Storage Blob Data Contributor on it, which Site Recovery needs to write there
        ("Replicate machines with private endpoints", grant access to the cache storage account)."""
        import pulumi_azure_native.authorization as authorization
        import pulumi_azure_native.storage as storage

        a = self.args
        cache = storage.StorageAccount(
            self._logical("st-asr-cache"), account_name=self._az_name("storage_account", "asrc"),
            resource_group_name=self.resource_group_name, location=a.region, kind="StorageV2",
            sku=_any({"name": "Standard_LRS"}), enable_https_traffic_only=True, minimum_tls_version="TLS1_2",
            allow_blob_public_access=False, public_network_access="Enabled",
            network_rule_set=_any({"default_action": "Deny", "bypass": "AzureServices"}),
            tags=a.tags, opts=self._opts(depends_on=[self.rg]))
        self.ctx.diagnostics(cache, self._logical("st-asr-cache"), a.subscription, parent=cache, logs=False)
        principal = vault.identity.principal_id
        for role, role_id in SITE_RECOVERY_CACHE_ROLES.items():
            authorization.RoleAssignment(
                self._logical(f"st-asr-cache-{role}"), principal_id=principal, principal_type="ServicePrincipal",
                scope=cache.id, role_definition_id=f"/providers/Microsoft.Authorization/roleDefinitions/{role_id}",
                description=f"Site Recovery vault writes replication changes to its cache ({role})",
                opts=self._opts(parent=cache))
        return cache


def build(ctx: Context, hub: Hub) -> dict[str, System]:
    """One System component per catalogue entry, in catalogue order."""
    dns_ = shared_dns(ctx)
    ctx.private_zones = dns_.private_zones
    systems: dict[str, System] = {}
    sources_of = zone_sources_memo(ctx.estate)
    for i, lob in enumerate(ctx.estate.lob_systems):
        systems[lob.name] = System(lob.name, system_args(ctx, i, lob, sources_of), ctx, hub, dns_)
    return systems
