"""How people and services reach the Key Vaults: private endpoints and data-plane roles.

Every vault is built with public network access disabled and RBAC authorisation (infra/context.py
`vault_properties`). Such a vault is usable only through a private endpoint, and only by someone
holding a Key Vault data-plane role: management-plane roles (Owner, Contributor) do not read secrets
("Provide access to Key Vault keys, certificates, and secrets with Azure role-based access control",
https://learn.microsoft.com/en-us/azure/key-vault/general/rbac-guide; "Integrate Key Vault with
Azure Private Link", https://learn.microsoft.com/en-us/azure/key-vault/general/private-link-service).

- The LOB systems' vaults have their private endpoint in the spoke (infra/lob.py); here the
  infrastructure engineers get Key Vault Secrets User on each (the IaaS local administrator password).
- The platform vault (management) and the network secrets vault (connectivity: VPN pre-shared keys,
  guest Wi-Fi keys, RADIUS secret, the TLS inspection CA) get private endpoints in a third subnet of
  the DNS resolver's VNet (`infra.wan.platform_endpoint_subnet`), which the sites reach through the
  hub and whose privatelink.vaultcore.azure.net zone the resolver answers from. Its NSG admits only
  the management zone on 443, as does the hub firewall (`infra.wan.estate_flows`). The engineers get
  Key Vault Secrets Officer on both: they read the generated keys and upload the CA certificate.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pulumi

from security_checks.model.schema import ZoneKind
from security_checks.network.reach import zone_prefixes

from .tenancy import ROLE, ROLES, _role_name
from .wan import platform_endpoint_subnet

if TYPE_CHECKING:
    from .context import Context
    from .identity import Identity
    from .tenancy import Tenancy
    from .wan import WanOutputs

CONNECTIVITY = "connectivity"
VAULT_GROUP = "vault"   # the private-link group id (sub-resource) of a Key Vault


@dataclass
class VaultAccess:
    endpoints: dict[str, Any] = field(default_factory=dict)         # vault logical name -> PrivateEndpoint
    role_assignments: list[Any] = field(default_factory=list)


def build(ctx: Context, tenancy: Tenancy, identity: Identity, wan_out: WanOutputs,
          lob_systems: dict[str, Any]) -> VaultAccess:
    import pulumi_azure_native.authorization as authorization

    out = VaultAccess()
    engineers = ctx.estate.azure.entra_groups.infrastructure_engineers

    def grant(logical: str, role: str, vault_id: Any, scope_key: str, placement: str,
              parent: pulumi.Resource | None) -> None:
        ra = authorization.RoleAssignment(
            logical, role_assignment_name=_role_name(scope_key, role, engineers), principal_id=engineers,
            principal_type="Group", role_definition_id=ROLE + ROLES[role], scope=vault_id,
            description=f"{role} for the infrastructure engineers group",
            opts=pulumi.ResourceOptions(provider=ctx.provider(placement), parent=parent))
        ctx.track(logical, ("azure", "entra_groups", "infrastructure_engineers"))
        out.role_assignments.append(ra)

    platform: list[tuple[str, Any, str, pulumi.Resource | None]] = [
        ("kv-platform", tenancy.key_vault.id, "management", tenancy.key_vault),
        ("kv-network-secrets", identity.vault.id, CONNECTIVITY, None)]
    for logical, vault_id, placement, parent in platform:
        grant(f"{logical}-secrets-officer", "Key Vault Secrets Officer", vault_id, f"kv:{logical}", placement, parent)
    for name, system in lob_systems.items():
        if system.key_vault is not None:
            grant(f"{name}-kv-secrets-user", "Key Vault Secrets User", system.key_vault.id, f"kv:{name}",
                  system.args.subscription, system.key_vault)
    _platform_endpoints(ctx, wan_out, [(logical, vault_id) for logical, vault_id, _, _ in platform], out)
    return out


def _platform_endpoints(ctx: Context, wan_out: WanOutputs, vaults: list[tuple[str, Any]], out: VaultAccess) -> None:
    import pulumi_azure_native.network as network

    conn = ctx.estate.azure.connectivity
    prefix = platform_endpoint_subnet(conn.dns_resolver_address_space)
    dns = wan_out.dns
    zone = ctx.private_zones.get(VAULT_GROUP)
    if prefix is None or dns is None or dns.vnet is None or zone is None:
        return   # no room for them: the rule infra.policy.keyvault_reachable reports each vault
    provider = ctx.provider(CONNECTIVITY)
    opts = pulumi.ResourceOptions(provider=provider, parent=dns)
    tags = ctx.platform_tags("platform-connectivity", CONNECTIVITY)
    region = ctx.estate.azure.primary_region
    rg = dns.resource_group_name
    mgmt = [p for z in ctx.estate.zones if z.kind is ZoneKind.MANAGEMENT for p in zone_prefixes(ctx.estate, z.name)]
    allow: list[Any] = []
    if mgmt:
        allow.append({"name": "allow-management-to-vaults", "priority": 100, "direction": "Inbound",
                      "access": "Allow", "protocol": "Tcp", "source_address_prefixes": mgmt,
                      "source_port_range": "*", "destination_address_prefix": prefix,
                      "destination_port_range": "443",
                      "description": "engineers, from the management zone, to the platform vaults"})
    nsg = network.NetworkSecurityGroup(
        "platform-endpoints-nsg", network_security_group_name=ctx.namer.name("nsg", "platform-endpoints"),
        resource_group_name=rg, location=region, tags=tags, opts=opts,
        security_rules=[*allow, {
            "name": "deny-inbound", "priority": 4096, "direction": "Inbound", "access": "Deny", "protocol": "*",
            "source_address_prefix": "*", "source_port_range": "*", "destination_address_prefix": "*",
            "destination_port_range": "*", "description": "only the management zone"}])
    ctx.track("platform-endpoints-nsg", ("azure", "connectivity", "dns_resolver_address_space"))
    if ctx.workspace_id is not None:
        ctx.diagnostics(nsg, "platform-endpoints-nsg", CONNECTIVITY, parent=nsg, metrics=False)
    subnet = network.Subnet(
        "platform-endpoints-snet", subnet_name="snet-platform-endpoints", virtual_network_name=dns.vnet.name,
        resource_group_name=rg, address_prefix=prefix, network_security_group={"id": nsg.id},
        private_endpoint_network_policies="Enabled",
        # Azure refuses concurrent writes to one VNet's subnets: after the resolver's.
        opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(
            depends_on=[dns.last_subnet] if dns.last_subnet is not None else [])))
    ctx.track("platform-endpoints-snet", ("azure", "connectivity", "dns_resolver_address_space"))
    for logical, vault_id in vaults:
        pe_name = ctx.namer.name("private_endpoint", logical.removeprefix("kv-"))
        pe = network.PrivateEndpoint(
            f"{logical}-pep", private_endpoint_name=pe_name, resource_group_name=rg, location=region,
            subnet={"id": subnet.id}, tags=tags,
            private_link_service_connections=[{"name": f"{logical}-connection", "private_link_service_id": vault_id,
                                               "group_ids": [VAULT_GROUP]}], opts=opts)
        network.PrivateDnsZoneGroup(
            f"{logical}-pep-dns", private_dns_zone_group_name="default", private_endpoint_name=pe_name,
            resource_group_name=rg, private_dns_zone_configs=[{"name": VAULT_GROUP, "private_dns_zone_id": zone.id}],
            opts=pulumi.ResourceOptions(provider=provider, parent=pe))
        ctx.track(f"{logical}-pep", ("azure", "connectivity", "dns_resolver_address_space"))
        out.endpoints[logical] = pe
