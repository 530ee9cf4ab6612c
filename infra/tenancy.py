"""The tenancy: management groups, policy, RBAC, central logging, Key Vault, budgets and evidence storage.

Follows the Azure Landing Zones layout with the Cabinet Office's additions:

    <prefix>                        (under the tenant root group)
    +-- platform: management, connectivity, identity, security
    +-- landingzones: corp, online
    +-- sandbox, decommissioned, quarantine

Subscriptions are placed by `azure.subscriptions[].placement`. Guardrails are Azure Policy
assignments (built-in definitions where Azure has one, ALZ-style custom definitions where it does
not); the compliance initiatives (Cyber Essentials v3.1, UK OFFICIAL and UK NHS, NCSC CAF v3.2)
are assigned in DoNotEnforce mode: they report, the guardrails enforce.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import pulumi

from security_checks.model.schema import SubscriptionPlacement as P

from .context import Context, vault_properties

MG_PROVIDER = "/providers/Microsoft.Management/managementGroups/"
BUILTIN_POLICY = "/providers/Microsoft.Authorization/policyDefinitions/"
BUILTIN_INITIATIVE = "/providers/Microsoft.Authorization/policySetDefinitions/"
ROLE = "/providers/Microsoft.Authorization/roleDefinitions/"

# Built-in role definition ids (the same in every tenant).
ROLES = {
    "Contributor": "b24988ac-6180-42a0-ab88-20f7382dd24c",
    "Reader": "acdd72a7-3385-48ef-bd42-f606fba81ae7",
    "Security Reader": "39bc4728-0917-49c7-9d2c-d95423bc2eb4",
    "Microsoft Sentinel Reader": "8d289c81-5878-46d4-8554-54e1e3d8b5cb",
    "Microsoft Sentinel Responder": "3e150937-b8fe-4cfb-8069-0eaf05ecd056",
    "Storage Blob Data Reader": "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1",
    "Network Contributor": "4d97b98b-1d4f-4787-a291-c67834d212e7",
    "Monitoring Contributor": "749f88d5-cbae-40b8-bcfc-e573ddc772fa",
    "Log Analytics Contributor": "92aaf0da-9dab-42b6-94a3-d43ce8d16293",
    "Key Vault Secrets Officer": "b86a8fe4-44ce-4948-aee5-eccb2c155cd7",
    "Key Vault Secrets User": "4633458b-17de-408a-b874-0445c86b69e6",
}

# Built-in policy definitions and initiatives (ids are the same in every tenant).
POLICIES = {
    "allowed-locations": "e56962a6-4747-49cd-b67b-bf8b01975c4c",
    "allowed-locations-rg": "e765b5de-1225-4ba3-bd56-1ac6695af988",
    "require-tag": "871b6d14-10aa-478d-b590-94f262ecfa99",           # resources: Deny (no longer assigned)
    "require-tag-rg": "96670d01-0a4d-4649-9c89-2d3abc0a5025",        # resource groups: Deny
    "inherit-tag-if-missing": "ea3f2387-9b95-492a-a190-fcdc54f7b070",  # resources: Modify from the resource group
    "not-allowed-types": "6c112d4e-5bc7-47ae-a041-ea2d9dccd749",
    "nic-no-public-ip": "83a86a26-fd1f-447c-b59d-e51f44264114",
    "storage-secure-transfer": "404c3081-a854-4457-ae30-26a93ef643f9",
    "storage-min-tls": "fe83a0eb-a853-422d-aac2-1bffd182c5d0",
    "keyvault-purge-protection": "0b60c0b2-2dc2-4e1c-b5c9-abbed971de53",
    "vm-backup": "013e242c-8828-4970-87b3-ab247555486d",
    "sql-auditing": "a6fb4358-5bf4-4ad7-ba82-2cd2f41ce5e9",
    "sql-tde": "17k78e20-9358-41c9-923c-fb736d382a12",
    "vnet-ddos": "94de2ad3-e0c1-4caf-ad78-5d47bbc83d3d",
}
INITIATIVES = {
    "diagnostics": "0884adba-2312-4468-abeb-5422caed1038",   # allLogs resource logs to Log Analytics
    "cyber-essentials": "b2f588d7-1ed5-47c7-977d-b93dff520c4c",  # Cyber Essentials v3.1
    "uk-official-nhs": "3937f550-eedd-4639-9c5e-294358be442e",   # UK OFFICIAL and UK NHS
    "ncsc-caf": "6d220abf-cf6f-4b17-8f7e-0644c4cc84b4",          # NCSC CAF v3.2
}

# The roles each DeployIfNotExists/Modify definition's managed identity needs: its
# `then.details.roleDefinitionIds`. Azure grants nothing by itself: "the managed identity [...] must
# be granted the roles [...] required for remediation" ("Remediate non-compliant resources with Azure
# Policy", https://learn.microsoft.com/en-us/azure/governance/policy/how-to/remediate-resources), as
# the Azure Landing Zones library does for each of its DINE/Modify assignments. Inherit-tag lists
# Contributor (azure-policy built-in-policies/policyDefinitions/Tags/InheritTag_Add_Modify.json); the
# DDoS Modify policy Network Contributor; the allLogs-to-Log-Analytics initiative Log Analytics
# Contributor and Monitoring Contributor.
REMEDIATION_ROLES: dict[str, tuple[str, ...]] = {
    POLICIES["inherit-tag-if-missing"]: ("Contributor",),
    POLICIES["vnet-ddos"]: ("Network Contributor",),
    INITIATIVES["diagnostics"]: ("Log Analytics Contributor", "Monitoring Contributor"),
}

# Defender for Cloud plans turned on in every platform and landing-zone subscription.
DEFENDER_PLANS = {
    "VirtualMachines": "P2", "SqlServers": None, "AppServices": None, "StorageAccounts": "DefenderForStorageV2",
    "KeyVaults": None, "Arm": None, "CloudPosture": None,
}

# Where each placement sits in the hierarchy (the management group's path below the root).
MG_PATH = {
    P.MANAGEMENT: "platform-management", P.CONNECTIVITY: "platform-connectivity",
    P.IDENTITY: "platform-identity", P.SECURITY: "platform-security",
    P.CORP: "landingzones-corp", P.ONLINE: "landingzones-online",
    P.SANDBOX: "sandbox", P.DECOMMISSIONED: "decommissioned", P.QUARANTINE: "quarantine",
}
HIERARCHY: list[tuple[str, str | None, str]] = [   # (path, parent path, display name)
    ("platform", None, "Platform"),
    ("platform-management", "platform", "Management"),
    ("platform-connectivity", "platform", "Connectivity"),
    ("platform-identity", "platform", "Identity"),
    ("platform-security", "platform", "Security"),
    ("landingzones", None, "Landing zones"),
    ("landingzones-corp", "landingzones", "Corp"),
    ("landingzones-online", "landingzones", "Online"),
    ("sandbox", None, "Sandbox"),
    ("decommissioned", None, "Decommissioned"),
    ("quarantine", None, "Quarantine (Cabinet Office: non-compliant subscriptions held here)"),
]
WORKLOAD_PLACEMENTS = (P.MANAGEMENT, P.CONNECTIVITY, P.IDENTITY, P.SECURITY, P.CORP, P.ONLINE)

# ALZ-style custom definitions for guardrails Azure has no built-in deny for.
#
# Each matches both forms ARM sees: the child resource written alone (a standalone
# securityRules / subnets resource) and the rules and subnets written inline in their parent NSG or
# VNet, which is how this program writes every one of them. The standalone aliases
# (`.../securityRules/access`) never see inline rules; inline ones need the array aliases with
# `[*]` and a `count` ("Azure Policy definition structure: understanding the [*] alias",
# https://learn.microsoft.com/en-us/azure/governance/policy/concepts/definition-structure-alias), as
# the Azure Landing Zones library's Deny-MgmtPorts-From-Internet and Deny-Subnet-Without-Nsg do.
MGMT_PORTS = ["*", "22", "3389", "5985", "5986"]
INTERNET = ["*", "Internet", "0.0.0.0/0"]


def _mgmt_port_rule(prefix: str) -> dict[str, Any]:
    """The management-port-from-internet condition on the rule fields under `prefix` (a standalone
    rule's `.../securityRules` or an NSG's `.../securityRules[*]`)."""
    return {"allOf": [
        {"field": f"{prefix}.access" if prefix.endswith("]") else f"{prefix}/access", "equals": "Allow"},
        {"field": f"{prefix}.direction" if prefix.endswith("]") else f"{prefix}/direction", "equals": "Inbound"},
        {"anyOf": [
            {"field": f"{prefix}.destinationPortRange" if prefix.endswith("]") else f"{prefix}/destinationPortRange",
             "in": MGMT_PORTS},
            {"count": {"field": (f"{prefix}.destinationPortRanges[*]" if prefix.endswith("]")
                                 else f"{prefix}/destinationPortRanges[*]"),
                       "where": {"value": "[current()]", "in": MGMT_PORTS}}, "greater": 0}]},
        {"anyOf": [
            {"field": f"{prefix}.sourceAddressPrefix" if prefix.endswith("]") else f"{prefix}/sourceAddressPrefix",
             "in": INTERNET},
            {"count": {"field": (f"{prefix}.sourceAddressPrefixes[*]" if prefix.endswith("]")
                                 else f"{prefix}/sourceAddressPrefixes[*]"),
                       "where": {"value": "[current()]", "in": INTERNET}}, "greater": 0}]}]}


_NSG = "Microsoft.Network/networkSecurityGroups"
DENY_MGMT_PORTS_RULE: dict[str, Any] = {
    "if": {"anyOf": [
        {"allOf": [{"field": "type", "equals": f"{_NSG}/securityRules"},
                   _mgmt_port_rule(f"{_NSG}/securityRules")]},
        {"allOf": [{"field": "type", "equals": _NSG},
                   {"count": {"field": f"{_NSG}/securityRules[*]",
                              "where": _mgmt_port_rule(f"{_NSG}/securityRules[*]")},
                    "greater": 0}]}]},
    "then": {"effect": "Deny"},
}
NSG_EXEMPT_SUBNETS = ["GatewaySubnet", "AzureFirewallSubnet", "AzureFirewallManagementSubnet", "AzureBastionSubnet",
                      "RouteServerSubnet"]
_VNET = "Microsoft.Network/virtualNetworks"
DENY_SUBNET_WITHOUT_NSG_RULE: dict[str, Any] = {
    "if": {"anyOf": [
        {"allOf": [
            {"field": "type", "equals": f"{_VNET}/subnets"},
            {"field": "name", "notIn": NSG_EXEMPT_SUBNETS},
            {"field": f"{_VNET}/subnets/networkSecurityGroup.id", "exists": "false"}]},
        {"allOf": [
            {"field": "type", "equals": _VNET},
            {"count": {"field": f"{_VNET}/subnets[*]", "where": {"allOf": [
                {"field": f"{_VNET}/subnets[*].name", "notIn": NSG_EXEMPT_SUBNETS},
                {"field": f"{_VNET}/subnets[*].networkSecurityGroup.id", "exists": "false"}]}},
             "greater": 0}]}]},
    "then": {"effect": "Deny"},
}


@dataclass
class Tenancy:
    root_group_id: str
    management_groups: dict[str, Any] = field(default_factory=dict)     # path -> ManagementGroup
    group_ids: dict[str, str] = field(default_factory=dict)              # path -> management group id
    policy_assignments: dict[str, Any] = field(default_factory=dict)    # assignment name -> PolicyAssignment
    role_assignments: list[Any] = field(default_factory=list)
    management_resource_group: str = ""
    workspace: Any = None
    key_vault: Any = None
    evidence_account: Any = None
    evidence_resource_group: str = ""

    def mg_id(self, path: str | None) -> str:
        return MG_PROVIDER + (self.group_ids[path] if path else self.root_group_id)


_SYSTEM_IDENTITY: Any = {"type": "SystemAssigned"}


def _role_name(*parts: str) -> str:
    # Role assignment names must be GUIDs; derive them so the same grant keeps the same name.
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "estate-rbac:" + "|".join(parts)))


def _budget_start(today: date) -> str:
    """The first of the current month: the earliest start Azure accepts for a new budget.

    Azure Consumption Budgets, timePeriod.startDate: "The start date must be first of the month and
    should be less than the end date. Budget start date must be on or after June 1, 2017. Future start
    date should not be more than twelve months. Past start date should be selected within the
    timegrain period." For a Monthly grain that is the current month, so the council's financial
    year start (1 April) would be refused eleven months in twelve. `ignore_changes` on the time
    period keeps later runs from moving an existing budget's start.
    (https://learn.microsoft.com/en-us/rest/api/consumption/budgets/create-or-update)
    """
    return f"{today.year:04d}-{today.month:02d}-01T00:00:00Z"


def build(ctx: Context) -> Tenancy:
    t = Tenancy(root_group_id=ctx.estate.azure.management_group_prefix)
    _management_groups(ctx, t)
    _logging_and_vault(ctx, t)
    _evidence_storage(ctx, t)
    _policies(ctx, t)
    _defender(ctx, t)
    _rbac(ctx, t)
    _budgets(ctx, t)
    return t


def _management_groups(ctx: Context, t: Tenancy) -> None:
    import pulumi_azure_native.management as management

    azure = ctx.estate.azure
    prefix = azure.management_group_prefix
    opts = pulumi.ResourceOptions(provider=ctx.provider(P.MANAGEMENT.value))
    root = management.ManagementGroup(
        "mg-root", group_id=t.root_group_id, display_name=f"{ctx.estate.organisation.name}",
        details={"parent": {"id": MG_PROVIDER + azure.tenant_id}}, opts=opts)
    ctx.track("mg-root", ("azure", "management_group_prefix"))
    groups: dict[str | None, Any] = {None: root}
    for path, parent, display in HIERARCHY:
        gid = ctx.namer.management_group(prefix, path)
        t.group_ids[path] = gid
        groups[path] = management.ManagementGroup(
            f"mg-{path}", group_id=gid, display_name=display,
            details={"parent": {"id": groups[parent].id}},
            opts=pulumi.ResourceOptions(provider=opts.provider, parent=groups[parent]))
        ctx.track(f"mg-{path}", ("azure", "management_group_prefix"))
    t.management_groups = {k: v for k, v in groups.items() if k is not None}
    t.management_groups["root"] = root
    for i, sub in enumerate(azure.subscriptions):
        path = MG_PATH[sub.placement]
        logical = f"mgsub-{sub.name}"
        management.ManagementGroupSubscription(
            logical, group_id=ctx.namer.management_group(prefix, path),
            opts=pulumi.ResourceOptions(provider=ctx.provider(sub.name), parent=groups[path]))
        ctx.track(logical, ("azure", "subscriptions", i, "placement"))


def _logging_and_vault(ctx: Context, t: Tenancy) -> None:
    import pulumi_azure_native.keyvault as keyvault
    import pulumi_azure_native.operationalinsights as operationalinsights
    import pulumi_azure_native.resources as resources
    import pulumi_azure_native.securityinsights as securityinsights

    azure = ctx.estate.azure
    n = ctx.namer
    region = azure.primary_region
    mgmt = P.MANAGEMENT.value
    tags = ctx.platform_tags("platform-management", mgmt)
    rg_name = n.name("resource_group", "management", region=region)
    rg = resources.ResourceGroup("rg-management", resource_group_name=rg_name, location=region, tags=tags,
                                 opts=ctx.opts(mgmt))
    t.management_resource_group = rg_name
    ws_name = n.name("log_analytics", "central", region=region)
    ws = operationalinsights.Workspace(
        "log-central", workspace_name=ws_name, resource_group_name=rg_name, location=region,
        sku={"name": "PerGB2018"}, retention_in_days=azure.log_retention_days, tags=tags,
        public_network_access_for_ingestion="Enabled", public_network_access_for_query="Enabled",
        opts=ctx.opts(mgmt, depends_on=[rg]))
    ctx.track("log-central", ("azure", "log_retention_days"))
    ctx.workspace_id = ws.id
    ctx.workspace_name = ws_name
    ctx.workspace_resource_group = rg_name
    t.workspace = ws
    securityinsights.SentinelOnboardingState(
        "sentinel-onboarding", sentinel_onboarding_state_name="default", resource_group_name=rg_name,
        workspace_name=ws_name, customer_managed_key=False, opts=ctx.opts(mgmt, parent=ws))

    kv = keyvault.Vault(
        "kv-platform", vault_name=n.name("key_vault", "platform", region=region), resource_group_name=rg_name,
        location=region, tags=tags,
        properties=vault_properties(azure.tenant_id),
        opts=ctx.opts(mgmt, depends_on=[rg]))
    t.key_vault = kv
    ctx.diagnostics(kv, "kv-platform", mgmt)


def _evidence_storage(ctx: Context, t: Tenancy) -> None:
    import pulumi_azure_native.resources as resources
    import pulumi_azure_native.storage as storage

    azure = ctx.estate.azure
    n = ctx.namer
    region = azure.primary_region
    placement = P.SECURITY.value if ctx.has_placement(P.SECURITY) else P.MANAGEMENT.value
    tags = ctx.platform_tags("evidence", placement)
    rg_name = n.name("resource_group", "evidence", region=region)
    rg = resources.ResourceGroup("rg-evidence", resource_group_name=rg_name, location=region, tags=tags,
                                 opts=ctx.opts(placement))
    t.evidence_resource_group = rg_name
    account_name = n.name("storage_account", "evidence", region=region)
    account = storage.StorageAccount(
        "st-evidence", account_name=account_name, resource_group_name=rg_name, location=region, tags=tags,
        kind="StorageV2", sku={"name": "Standard_RAGRS"}, access_tier=storage.AccessTier.HOT,
        enable_https_traffic_only=True, minimum_tls_version="TLS1_2", allow_blob_public_access=False,
        allow_shared_key_access=False, public_network_access="Enabled",
        # Version-level WORM: each blob version is immutable for the retention period.
        immutable_storage_with_versioning={"enabled": True},
        opts=ctx.opts(placement, depends_on=[rg]))
    ctx.track("st-evidence", ("azure", "evidence_retention_days"))
    t.evidence_account = account
    blob = storage.BlobServiceProperties(
        "st-evidence-blob", account_name=account_name, resource_group_name=rg_name, blob_services_name="default",
        is_versioning_enabled=True, change_feed={"enabled": True},
        delete_retention_policy={"enabled": True, "days": 365},
        container_delete_retention_policy={"enabled": True, "days": 365},
        opts=ctx.opts(placement, parent=account))
    for container in ("evidence", "reports"):
        c = storage.BlobContainer(
            f"st-evidence-{container}", account_name=account_name, resource_group_name=rg_name,
            container_name=container, public_access=storage.PublicAccess.NONE,
            immutable_storage_with_versioning={"enabled": True},
            opts=ctx.opts(placement, parent=account, depends_on=[blob]))
        storage.BlobContainerImmutabilityPolicy(
            f"st-evidence-{container}-worm", account_name=account_name, resource_group_name=rg_name,
            container_name=container, immutability_policy_name="default",
            immutability_period_since_creation_in_days=azure.evidence_retention_days,
            allow_protected_append_writes=False, opts=ctx.opts(placement, parent=c))
    ctx.diagnostics(account, "st-evidence", placement, logs=False)


def _assign(ctx: Context, t: Tenancy, short: str, scope_path: str | None, definition_id: str, display: str, *,
            parameters: dict[str, Any] | None = None, enforce: bool = True, needs_identity: bool = False,
            depends_on: list[Any] | None = None) -> Any:
    import pulumi_azure_native.authorization as authorization

    name = ctx.namer.policy_assignment(short)   # 24 characters at most at management-group scope
    scope_group = t.management_groups[scope_path] if scope_path else t.management_groups["root"]
    pa = authorization.PolicyAssignment(
        f"pa-{short}", policy_assignment_name=name, scope=scope_group.id, policy_definition_id=definition_id,
        display_name=display, enforcement_mode="Default" if enforce else "DoNotEnforce",
        parameters={k: {"value": v} for k, v in (parameters or {}).items()} or None,
        identity=_SYSTEM_IDENTITY if needs_identity else None,
        location=ctx.estate.azure.primary_region if needs_identity else None,
        non_compliance_messages=[{"message": f"{display} ({ctx.estate.organisation.name} landing-zone policy)"}],
        opts=pulumi.ResourceOptions(provider=ctx.provider(P.MANAGEMENT.value), parent=scope_group,
                                    depends_on=depends_on))
    ctx.track(f"pa-{short}", ("azure",))
    t.policy_assignments[name] = pa
    if needs_identity:
        _grant_remediation_roles(ctx, t, short, pa, definition_id.rsplit("/", 1)[-1], scope_group)
    return pa


def _grant_remediation_roles(ctx: Context, t: Tenancy, short: str, pa: Any, definition: str,
                             scope_group: Any) -> None:
    """The roles a DeployIfNotExists/Modify assignment's identity needs, at the assignment's scope:
    without them the assignment reports but never remediates (see REMEDIATION_ROLES)."""
    import pulumi_azure_native.authorization as authorization

    roles = REMEDIATION_ROLES.get(definition)
    if not roles:
        raise ValueError(f"policy assignment {short}: no remediation roles recorded for definition {definition}")
    for role in roles:
        logical = f"pa-{short}-role-{role.lower().replace(' ', '-')}"
        ra = authorization.RoleAssignment(
            logical, role_assignment_name=_role_name(f"pa:{short}", role), principal_id=pa.identity.principal_id,
            principal_type="ServicePrincipal", role_definition_id=ROLE + ROLES[role], scope=scope_group.id,
            description=f"{role} for the {short} policy assignment's remediation identity",
            opts=pulumi.ResourceOptions(provider=ctx.provider(P.MANAGEMENT.value), parent=pa))
        ctx.track(logical, ("azure",))
        t.role_assignments.append(ra)


def _policies(ctx: Context, t: Tenancy) -> None:
    import pulumi_azure_native.authorization as authorization

    azure = ctx.estate.azure
    root_gid = t.root_group_id
    mgmt_opts = pulumi.ResourceOptions(provider=ctx.provider(P.MANAGEMENT.value), parent=t.management_groups["root"])
    deny_ports = authorization.PolicyDefinitionAtManagementGroup(
        "pd-deny-mgmt-ports", management_group_id=root_gid, policy_definition_name="Deny-MgmtPorts-From-Internet",
        display_name="Management ports (SSH, RDP, WinRM) must not be open from the internet",
        policy_type="Custom", mode="All", policy_rule=DENY_MGMT_PORTS_RULE, opts=mgmt_opts)
    deny_subnet = authorization.PolicyDefinitionAtManagementGroup(
        "pd-deny-subnet-no-nsg", management_group_id=root_gid, policy_definition_name="Deny-Subnet-Without-Nsg",
        display_name="Subnets must have a network security group", policy_type="Custom", mode="All",
        policy_rule=DENY_SUBNET_WITHOUT_NSG_RULE, opts=mgmt_opts)
    custom = f"{MG_PROVIDER}{root_gid}/providers/Microsoft.Authorization/policyDefinitions/"

    # Whole tenancy: where things may live, what they must be labelled with, data-at-rest and logging.
    _assign(ctx, t, "allowed-locations", None, BUILTIN_POLICY + POLICIES["allowed-locations"],
            "Allowed locations: UK regions only", parameters={"listOfAllowedLocations": azure.allowed_regions})
    _assign(ctx, t, "allowed-locations-rg", None, BUILTIN_POLICY + POLICIES["allowed-locations-rg"],
            "Allowed locations for resource groups", parameters={"listOfAllowedLocations": azure.allowed_regions})
    # Tags: resources inherit the four required tags from their resource group when they lack them
    # (Modify), never Deny. Azure services create untagged resources of their own in the council's
    # subscriptions (Azure Backup's restore point collections, in AzureBackupRG_<region>_1; Network
    # Watcher; Defender), and a root-level Deny on resource tags refuses those, breaking backup. The
    # Azure Landing Zones library likewise uses Modify/inherit rather than Deny for tags. Resource
    # groups must carry the tags, but in DoNotEnforce mode: the groups Azure services create for
    # themselves would be refused too. The offline plan (infra.policy.required_tags) still refuses a
    # program resource without its tags.
    for tag, short in (("information-asset-owner", "owner"), ("data-classification", "class"),
                       ("cost-centre", "cost"), ("system", "system")):
        _assign(ctx, t, f"tag-inh-{short}", None, BUILTIN_POLICY + POLICIES["inherit-tag-if-missing"],
                f"Inherit tag {tag} from the resource group if missing", parameters={"tagName": tag},
                needs_identity=True)
        _assign(ctx, t, f"tag-rg-{short}", None, BUILTIN_POLICY + POLICIES["require-tag-rg"],
                f"Resource groups carry tag {tag} (audit: Azure services create their own groups)",
                parameters={"tagName": tag}, enforce=False)
    _assign(ctx, t, "storage-https", None, BUILTIN_POLICY + POLICIES["storage-secure-transfer"],
            "Storage accounts: secure transfer (HTTPS) only", parameters={"effect": "Deny"})
    _assign(ctx, t, "storage-tls12", None, BUILTIN_POLICY + POLICIES["storage-min-tls"],
            "Storage accounts: minimum TLS 1.2", parameters={"effect": "Deny", "minimumTlsVersion": "TLS1_2"})
    _assign(ctx, t, "kv-purge-protection", None, BUILTIN_POLICY + POLICIES["keyvault-purge-protection"],
            "Key Vaults: purge protection", parameters={"effect": "Deny"})
    _assign(ctx, t, "diag-to-log", None, BUILTIN_INITIATIVE + INITIATIVES["diagnostics"],
            "Resource logs to the central Log Analytics workspace",
            parameters={"logAnalytics": ctx.workspace_id}, needs_identity=True)
    _assign(ctx, t, "vm-backup", None, BUILTIN_POLICY + POLICIES["vm-backup"], "Virtual machines are backed up")
    _assign(ctx, t, "sql-auditing", None, BUILTIN_POLICY + POLICIES["sql-auditing"], "SQL servers: auditing")
    _assign(ctx, t, "sql-tde", None, BUILTIN_POLICY + POLICIES["sql-tde"], "SQL databases: TDE")
    # Compliance reporting only: these initiatives measure, the guardrails above enforce.
    _assign(ctx, t, "ce-v3-1", None, BUILTIN_INITIATIVE + INITIATIVES["cyber-essentials"],
            "Cyber Essentials v3.1 (compliance reporting)", enforce=False)
    _assign(ctx, t, "uk-official-nhs", None, BUILTIN_INITIATIVE + INITIATIVES["uk-official-nhs"],
            "UK OFFICIAL and UK NHS (compliance reporting)", enforce=False)
    _assign(ctx, t, "ncsc-caf-v3-2", None, BUILTIN_INITIATIVE + INITIATIVES["ncsc-caf"],
            "NCSC CAF v3.2 (compliance reporting)", enforce=False)

    # Landing zones: every subnet guarded; corp reached only through the hub.
    _assign(ctx, t, "subnet-needs-nsg", "landingzones", custom + "Deny-Subnet-Without-Nsg",
            "Subnets must have a network security group", depends_on=[deny_subnet])
    _assign(ctx, t, "deny-mgmt-ports", "landingzones", custom + "Deny-MgmtPorts-From-Internet",
            "No management ports from the internet", depends_on=[deny_ports])
    _assign(ctx, t, "corp-deny-public-ip", "landingzones-corp", BUILTIN_POLICY + POLICIES["not-allowed-types"],
            "Corp: no public IP addresses",
            parameters={"listOfResourceTypesNotAllowed": ["Microsoft.Network/publicIPAddresses"]})
    _assign(ctx, t, "corp-nic-no-pip", "landingzones-corp", BUILTIN_POLICY + POLICIES["nic-no-public-ip"],
            "Corp: network interfaces without public IPs")
    if azure.connectivity.ddos_protection:
        _assign(ctx, t, "vnet-ddos", "landingzones", BUILTIN_POLICY + POLICIES["vnet-ddos"],
                "Virtual networks protected by DDoS Network Protection", needs_identity=True,
                parameters={"ddosPlan": "/subscriptions/{}/resourceGroups/{}/providers/Microsoft.Network/"
                            "ddosProtectionPlans/{}".format(
                                ctx.subscription(P.CONNECTIVITY.value).id,
                                ctx.namer.name("resource_group", "connectivity"),
                                ctx.namer.name("ddos_plan", "connectivity"))})


def _defender(ctx: Context, t: Tenancy) -> None:
    import pulumi_azure_native.security as security

    for i, sub in enumerate(ctx.estate.azure.subscriptions):
        if sub.placement not in WORKLOAD_PLACEMENTS:
            continue
        for plan, sub_plan in DEFENDER_PLANS.items():
            logical = f"defender-{sub.name}-{plan.lower()}"
            security.Pricing(
                logical, pricing_name=plan, pricing_tier="Standard", scope_id=f"/subscriptions/{sub.id}",
                sub_plan=sub_plan, opts=pulumi.ResourceOptions(provider=ctx.provider(sub.name)))
            ctx.track(logical, ("azure", "subscriptions", i))


def _rbac(ctx: Context, t: Tenancy) -> None:
    import pulumi_azure_native.authorization as authorization

    groups = ctx.estate.azure.entra_groups
    provider = ctx.provider(P.MANAGEMENT.value)
    sub_mgmt = ctx.subscription(P.MANAGEMENT.value).id
    evidence_sub = ctx.subscription(P.SECURITY.value if ctx.has_placement(P.SECURITY) else P.MANAGEMENT.value)
    workspace_rg = f"/subscriptions/{sub_mgmt}/resourceGroups/{t.management_resource_group}"

    def grant(logical: str, principal: str, role: str, scope: Any, scope_key: str, field_name: str,
              parent: pulumi.Resource | None = None, prov: pulumi.ProviderResource | None = None) -> None:
        ra = authorization.RoleAssignment(
            logical, role_assignment_name=_role_name(scope_key, role, principal), principal_id=principal,
            principal_type="Group", role_definition_id=ROLE + ROLES[role], scope=scope,
            description=f"{role} for the {field_name.replace('_', ' ')} group",
            opts=pulumi.ResourceOptions(provider=prov or provider, parent=parent))
        ctx.track(logical, ("azure", "entra_groups", field_name))
        t.role_assignments.append(ra)

    lz = t.management_groups["landingzones"]
    # Engineers deploy: Contributor on the landing zones (platform stays with the pipeline identity).
    grant("rbac-engineers-lz-contributor", groups.infrastructure_engineers, "Contributor", lz.id,
          "mg:landingzones", "infrastructure_engineers", parent=lz)
    # The security group reads posture everywhere and works incidents in Sentinel.
    root = t.management_groups["root"]
    grant("rbac-security-reader", groups.security_group, "Security Reader", root.id, "mg:root", "security_group",
          parent=root)
    for role in ("Microsoft Sentinel Reader", "Microsoft Sentinel Responder"):
        grant(f"rbac-security-sentinel-{role.split()[-1].lower()}", groups.security_group, role, workspace_rg,
              f"rg:{t.management_resource_group}", "security_group", parent=t.workspace)
    # Auditors read the evidence and the reports, and nothing else.
    acct = t.evidence_account
    evidence_provider = ctx.provider(evidence_sub.name)
    grant("rbac-auditors-evidence-reader", groups.auditors, "Reader", acct.id, "st:evidence", "auditors",
          parent=acct, prov=evidence_provider)
    for container in ("evidence", "reports"):
        scope = acct.id.apply(lambda i, c=container: f"{i}/blobServices/default/containers/{c}")
        grant(f"rbac-auditors-{container}-blob-reader", groups.auditors, "Storage Blob Data Reader", scope,
              f"st:evidence/{container}", "auditors", parent=acct, prov=evidence_provider)


def _budgets(ctx: Context, t: Tenancy) -> None:
    import pulumi_azure_native.consumption as consumption

    provider = ctx.provider(P.MANAGEMENT.value)
    start = _budget_start(date.today())
    for i, b in enumerate(ctx.estate.azure.budgets):
        scope = t.mg_id(None) if b.scope == "tenant" else f"/subscriptions/{ctx.subscription(b.scope).id}"
        notifications: dict[str, Any] = {
            f"actual-over-{pct}-percent": {
                "enabled": True, "operator": "GreaterThan", "threshold": pct, "threshold_type": "Actual",
                "contact_emails": b.contact_emails}
            for pct in b.alert_thresholds}
        logical = f"budget-{b.name}"
        consumption.Budget(
            logical, budget_name=ctx.namer.name("budget", b.name), scope=scope, amount=b.monthly_gbp,
            category="Cost", time_grain="Monthly", time_period={"start_date": start},
            notifications=notifications,
            opts=pulumi.ResourceOptions(provider=provider, ignore_changes=["timePeriod"]))
        ctx.track(logical, ("azure", "budgets", i))
