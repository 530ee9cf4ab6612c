"""The infrastructure policy rules: pure functions over a resource's type and properties.

The same rules run in two places:
- offline, by `estate infra plan` over the resource graph of the program run under mocks
  (infra/plan.py, `evaluate_plan`), where each violation becomes a Finding;
- as a Pulumi CrossGuard policy pack (`pulumi preview --policy-pack infra/policy`), built in
  infra/policy/__main__.py.

Two kinds of rule:
- `Rule(resource=fn)`: `fn(type_token, props) -> iterable of messages` for one resource;
- `Rule(stack=fn)`: `fn(resources) -> iterable of (resource, message)` over every resource, for
  rules that join resources (a database and its TDE setting, a VM and its backup item).
Properties are the provider's inputs in camelCase (`enableHttpsTrafficOnly`), as CrossGuard and
the mock runtime both see them. Every rule's check id has metadata in infra/policy/checks.yaml.

This module holds the rule types and the landing-zone rules (`RULES`); the network rules are in
infra/policy/network_rules.py, and infra/policy/pack.py lists both, in the order findings show
them. Nothing here knows about plans: a rule sees a type and properties, or `PolicyResource`s.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any

# ---- what the rules see -----------------------------------------------------------------------


@dataclass(frozen=True)
class PolicyResource:
    """A resource as stack rules see it (from the plan, or from CrossGuard's stack validation)."""

    type: str
    name: str
    urn: str
    props: Mapping[str, Any]
    id: str | None = None
    # Top-level property -> URNs of the resources its value came from. At `pulumi preview` a new
    # resource has no `id` and a property made from another's id is unknown; the engine still gives
    # these dependencies, so stack rules join resources by them (and by id when ids are known).
    property_dependencies: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # What inside the resource a violation is about (a prefix it carries), when the estate declares
    # that part on a line of its own: `dataclasses.replace(resource, subject=...)` in a rule's yield.
    subject: str | None = None

    @property
    def tags(self) -> Mapping[str, Any]:
        tags = self.props.get("tags")
        return tags if isinstance(tags, Mapping) else {}

    def refers_to(self, key: str, target: PolicyResource, value: Any = None) -> bool:
        """Whether property `key` (or `value`, read from inside it) names `target`: by the target's
        id when both are known (a real `up`, the offline plan), else by the engine's record that
        the property was made from the target (a real preview, where ids are unknown)."""
        if target.id and isinstance(value, str) and value:
            return value.lower() == target.id.lower()
        return target.urn in self.property_dependencies.get(key, ())


ResourceFn = Callable[[str, Mapping[str, Any]], Iterable[str]]
StackFn = Callable[[Sequence[PolicyResource]], Iterable[tuple[PolicyResource, str]]]


@dataclass(frozen=True)
class Rule:
    check_id: str                       # e.g. infra.policy.allowed_locations (metadata in checks.yaml)
    description: str
    resource: ResourceFn | None = None  # per-resource rule
    types: tuple[str, ...] | None = None  # resource rule applies only to these type tokens (None: all)
    stack: StackFn | None = None        # whole-stack rule

    @property
    def policy_name(self) -> str:
        """The CrossGuard policy name: the check id's last part, kebab-case."""
        return self.check_id.rsplit(".", 1)[-1].replace("_", "-")


@dataclass(frozen=True)
class Violation:
    check_id: str
    resource_type: str
    resource_name: str
    urn: str
    message: str
    subject: str | None = None   # see PolicyResource.subject


# ---- shared facts -------------------------------------------------------------------------------

UK_REGIONS = ("uksouth", "ukwest")
# Resources that are not in a region (DNS zones, Front Door) say "global".
LOCATION_NEUTRAL = ("global",)
REQUIRED_TAGS = ("information-asset-owner", "data-classification", "cost-centre", "system")
MANAGEMENT_PORTS = (22, 3389, 5985, 5986)
INTERNET_SOURCES = ("*", "internet", "any", "0.0.0.0/0", "::/0")
# Azure reserves these subnets for platform services that refuse an NSG.
NSG_EXEMPT_SUBNETS = ("gatewaysubnet", "azurefirewallsubnet", "azurefirewallmanagementsubnet",
                      "azurebastionsubnet", "routeserversubnet")
T = "azure-native:"
PUBLIC_IP = T + "network:PublicIPAddress"
NIC = T + "network:NetworkInterface"
VM = T + "compute:VirtualMachine"

# Minimum backup by recovery tier (Tier in security_checks/model/schema.py). Tier 1 wants an RPO of
# 1 hour, but Azure Backup's Enhanced policy runs at most every 4 hours for VMs: tier 1 therefore
# gets the 4-hourly Enhanced policy plus replication to the secondary region (needs_dr).
TIER_BACKUP: dict[str, dict[str, Any]] = {
    "tier-1": {"frequency": "Hourly", "max_interval_hours": 4, "policy_type": "V2", "daily_retention_days": 35},
    "tier-2": {"frequency": "Daily", "max_interval_hours": 24, "policy_type": None, "daily_retention_days": 30},
    "tier-3": {"frequency": "Daily", "max_interval_hours": 24, "policy_type": None, "daily_retention_days": 14},
}

# Resource types whose logs and metrics must reach the central workspace. Others may join.
DIAGNOSABLE = {
    T + "keyvault:Vault", T + "storage:StorageAccount", T + "web:WebApp", T + "sql:Database",
    T + "network:NetworkSecurityGroup", T + "network:VirtualNetwork", T + "recoveryservices:Vault",
    T + "network:AzureFirewall",
}


@cache
def taggable(type_token: str) -> bool:
    """Whether the azure-native resource type takes tags (read from the SDK class, not guessed)."""
    parts = type_token.split(":")
    if len(parts) != 3 or parts[0] != "azure-native":
        return False
    try:
        module = importlib.import_module(f"pulumi_azure_native.{parts[1]}")
        cls = getattr(module, parts[2])
    except (ImportError, AttributeError):
        return False
    import inspect

    return "tags" in inspect.signature(cls._internal_init).parameters


def _lower(v: Any) -> str:
    return str(v).strip().lower() if v is not None else ""


def _landing_zone(props: Mapping[str, Any]) -> str:
    tags = props.get("tags")
    return _lower(tags.get("landing-zone")) if isinstance(tags, Mapping) else ""


def _ports_cover(ranges: Iterable[str], ports: Iterable[int]) -> list[int]:
    out = []
    for port in ports:
        for r in ranges:
            r = str(r).strip()
            if r == "*":
                out.append(port)
                break
            lo, _, hi = r.partition("-")
            try:
                if int(lo) <= port <= int(hi or lo):
                    out.append(port)
                    break
            except ValueError:
                continue
    return out


# ---- the rules ----------------------------------------------------------------------------------


def allowed_locations(type_token: str, props: Mapping[str, Any]) -> Iterable[str]:
    location = _lower(props.get("location")).replace(" ", "")
    if location and location not in UK_REGIONS and location not in LOCATION_NEUTRAL:
        yield (f"location {location!r} is outside the UK regions ({', '.join(UK_REGIONS)}); a non-UK region "
               "needs an approved DPIA and a policy exemption")
    # A SaaS system has no Azure resource of its own: its DNS record carries the supplier's hosting
    # region (infra/lob.py), so data held outside the UK is caught all the same.
    metadata = props.get("metadata")
    residency = _lower(metadata.get("data-residency")) if isinstance(metadata, Mapping) else ""
    if residency and residency not in UK_REGIONS:
        yield (f"the supplier hosts this SaaS system's data in {residency!r}, outside the UK regions; "
               "that needs an approved DPIA")


def required_tags(type_token: str, props: Mapping[str, Any]) -> Iterable[str]:
    if not taggable(type_token):
        return
    tags = props.get("tags")
    tags = tags if isinstance(tags, Mapping) else {}
    missing = [k for k in REQUIRED_TAGS if not str(tags.get(k) or "").strip()]
    if missing:
        yield f"missing required tag(s): {', '.join(missing)}"


def no_public_ip_corp(type_token: str, props: Mapping[str, Any]) -> Iterable[str]:
    if _landing_zone(props) != "corp":
        return
    if type_token == PUBLIC_IP:
        yield "a public IP address in the corp landing zone (corp is reached only through the hub)"
    elif type_token == NIC:
        for cfg in props.get("ipConfigurations") or []:
            if isinstance(cfg, Mapping) and cfg.get("publicIPAddress"):
                yield f"network interface IP configuration {cfg.get('name', '?')!r} has a public IP address in corp"
    elif type_token == VM:
        nics = (props.get("networkProfile") or {}).get("networkInterfaceConfigurations") or []
        for nic in nics:
            for cfg in (nic or {}).get("ipConfigurations") or []:
                if isinstance(cfg, Mapping) and cfg.get("publicIPAddressConfiguration"):
                    yield "virtual machine NIC configuration asks for a public IP address in corp"


def _mgmt_rule_messages(rule: Mapping[str, Any]) -> Iterable[str]:
    if _lower(rule.get("direction")) != "inbound" or _lower(rule.get("access")) != "allow":
        return
    sources = [rule.get("sourceAddressPrefix"), *(rule.get("sourceAddressPrefixes") or [])]
    if not any(_lower(s) in INTERNET_SOURCES for s in sources if s is not None):
        return
    ranges = [rule.get("destinationPortRange"), *(rule.get("destinationPortRanges") or [])]
    exposed = _ports_cover([r for r in ranges if r is not None], MANAGEMENT_PORTS)
    if exposed:
        yield (f"rule {rule.get('name', '?')!r} allows management port(s) {', '.join(map(str, exposed))} "
               "inbound from the internet")


def mgmt_ports_from_internet(type_token: str, props: Mapping[str, Any]) -> Iterable[str]:
    if type_token == T + "network:NetworkSecurityGroup":
        for rule in props.get("securityRules") or []:
            if isinstance(rule, Mapping):
                yield from _mgmt_rule_messages(rule)
    elif type_token == T + "network:SecurityRule":
        yield from _mgmt_rule_messages(props)


def subnet_nsg(type_token: str, props: Mapping[str, Any]) -> Iterable[str]:
    if type_token == T + "network:Subnet":
        subnets: list[Mapping[str, Any]] = [{"name": props.get("subnetName") or props.get("name"), **props}]
    elif type_token == T + "network:VirtualNetwork":
        subnets = [s for s in props.get("subnets") or [] if isinstance(s, Mapping)]
    else:
        return
    for s in subnets:
        name = str(s.get("name") or "")
        if name.lower() in NSG_EXEMPT_SUBNETS:
            continue
        if not s.get("networkSecurityGroup"):
            yield f"subnet {name or '?'!r} has no network security group"


def storage_https_tls(type_token: str, props: Mapping[str, Any]) -> Iterable[str]:
    if props.get("enableHttpsTrafficOnly") is not True:
        yield "enableHttpsTrafficOnly is not true: the account accepts plain HTTP"
    if props.get("minimumTlsVersion") not in ("TLS1_2", "TLS1_3"):
        yield f"minimumTlsVersion is {props.get('minimumTlsVersion')!r}, not TLS1_2 or later"


def keyvault_purge_protection(type_token: str, props: Mapping[str, Any]) -> Iterable[str]:
    p = props.get("properties") or {}
    if p.get("enablePurgeProtection") is not True:
        yield "purge protection is off: a deleted vault's keys and secrets could be destroyed at once"
    if p.get("enableSoftDelete") is False:
        yield "soft delete is off"


def backup_policy_tier(type_token: str, props: Mapping[str, Any]) -> Iterable[str]:
    tier = _lower((props.get("tags") or {}).get("tier"))
    want: dict[str, Any] | None = TIER_BACKUP.get(tier)
    p = props.get("properties") or {}
    if want is None:
        yield f"backup policy has no recognised tier tag ({tier or 'none'}): cannot check it against an RPO"
        return
    schedule = p.get("schedulePolicy") or {}
    freq = schedule.get("scheduleRunFrequency")
    interval = (schedule.get("hourlySchedule") or {}).get("interval")
    if want["policy_type"] and p.get("policyType") != want["policy_type"]:
        yield f"{tier} needs an Enhanced (policyType {want['policy_type']}) policy for sub-daily backups"
    if freq == "Hourly":
        if not isinstance(interval, int | float) or interval > want["max_interval_hours"]:
            yield f"{tier} backups every {interval} hours; the tier allows at most {want['max_interval_hours']}"
    elif freq == "Daily":
        if want["max_interval_hours"] < 24:
            yield f"{tier} needs backups at least every {want['max_interval_hours']} hours, not daily"
    else:
        yield f"backup frequency {freq!r} is not Hourly or Daily"
    days = ((p.get("retentionPolicy") or {}).get("dailySchedule") or {}).get("retentionDuration") or {}
    count = days.get("count") if days.get("durationType") == "Days" else None
    if not isinstance(count, int | float) or count < want["daily_retention_days"]:
        yield f"{tier} keeps daily recovery points {want['daily_retention_days']} days; this policy keeps {count}"


def backup_coverage(resources: Sequence[PolicyResource]) -> Iterable[tuple[PolicyResource, str]]:
    """Every VM has a backup item whose policy is for the VM's own tier.

    Joined as a real preview allows: a new VM has no id at preview and the item's sourceResourceId
    is unknown, so an item covers a VM when its `properties` were made from that VM (the engine's
    property dependencies), or, once ids exist, when sourceResourceId is the VM's id.
    """
    policies = [r for r in resources if r.type == T + "recoveryservices:ProtectionPolicy"]
    items = [r for r in resources if r.type == T + "recoveryservices:ProtectedItem"]
    for vm in resources:
        if vm.type != VM:
            continue
        item = next((i for i in items if i.refers_to(
            "properties", vm, (i.props.get("properties") or {}).get("sourceResourceId"))), None)
        if item is None:
            yield vm, "virtual machine has no backup (no recovery services protected item)"
            continue
        policy_id = (item.props.get("properties") or {}).get("policyId")
        policy = next((p for p in policies if item.refers_to("properties", p, policy_id)), None)
        vm_tier = _lower(vm.tags.get("tier"))
        if policy is None:
            yield vm, "virtual machine's backup item names no backup policy of this deployment"
        elif _lower(policy.tags.get("tier")) != vm_tier:
            yield vm, (f"virtual machine is {vm_tier or 'untiered'} but is backed up by the "
                       f"{policy.tags.get('tier') or 'untiered'} policy {policy.name!r}")


SQL_AUDIT_CATEGORY = "SQLSecurityAuditEvents"


def _sends_sql_audit(setting: PolicyResource) -> bool:
    logs = setting.props.get("logs") or []
    return bool(setting.props.get("workspaceId") or setting.property_dependencies.get("workspaceId")) and any(
        isinstance(log, Mapping) and log.get("enabled") is not False
        and (log.get("category") == SQL_AUDIT_CATEGORY or _lower(log.get("categoryGroup")) in ("audit", "alllogs"))
        for log in logs)


def _master_of(setting: PolicyResource, server: PolicyResource) -> bool:
    uri = setting.props.get("resourceUri")
    if server.id and isinstance(uri, str) and uri:
        return uri.lower() == f"{server.id}/databases/master".lower()
    return server.urn in setting.property_dependencies.get("resourceUri", ()) and (
        not isinstance(uri, str) or uri.lower().endswith("/databases/master"))


def sql_tde_auditing(resources: Sequence[PolicyResource]) -> Iterable[tuple[PolicyResource, str]]:
    """SQL servers audited to somewhere the audit events arrive, databases encrypted.

    Auditing with isAzureMonitorTargetEnabled only marks Azure Monitor as a target: the events go
    nowhere until a diagnostic setting with the SQLSecurityAuditEvents category exists on the
    server's `master` database (server-level auditing). Microsoft: "When using REST API to configure
    auditing, Diagnostic Settings with 'SQLSecurityAuditEvents' diagnostic logs category on the
    database should be also created. Note that for server level audit you should use the 'master'
    database as {databaseName}." (Server Blob Auditing Policies - Create Or Update,
    https://learn.microsoft.com/en-us/rest/api/sql/server-blob-auditing-policies/create-or-update)
    """
    audits = {_lower(r.props.get("serverName")): r for r in resources
              if r.type in (T + "sql:ServerBlobAuditingPolicy", T + "sql:ExtendedServerBlobAuditingPolicy")
              and r.props.get("state") == "Enabled"}
    settings = [r for r in resources if r.type == T + "monitor:DiagnosticSetting" and _sends_sql_audit(r)]
    tde = {(_lower(r.props.get("serverName")), _lower(r.props.get("databaseName"))): r.props.get("state")
           for r in resources if r.type == T + "sql:TransparentDataEncryption"}
    for r in resources:
        if r.type == T + "sql:Server":
            audit = audits.get(_lower(r.props.get("serverName")))
            if audit is None:
                yield r, "SQL server has no enabled auditing policy"
            elif (audit.props.get("isAzureMonitorTargetEnabled") is True
                  and not audit.props.get("storageEndpoint")
                  and not any(_master_of(s, r) for s in settings)):
                yield r, ("SQL server audits to Azure Monitor but no diagnostic setting sends the master "
                          f"database's {SQL_AUDIT_CATEGORY} to a workspace: the audit events go nowhere")
        elif r.type == T + "sql:Database":
            key = (_lower(r.props.get("serverName")), _lower(r.props.get("databaseName")))
            if tde.get(key) != "Enabled":
                yield r, "SQL database has no transparent data encryption set to Enabled"


def diagnostics_to_workspace(resources: Sequence[PolicyResource]) -> Iterable[tuple[PolicyResource, str]]:
    """Every diagnosable resource has a diagnostic setting to a workspace, joined by the setting's
    resourceUri: the target's id when known, else the engine's record that resourceUri was made
    from the target (a real preview, where new resources have no id)."""
    settings = [r for r in resources if r.type == T + "monitor:DiagnosticSetting"
                and (r.props.get("workspaceId") or r.property_dependencies.get("workspaceId"))]
    by_uri = {_lower(r.props.get("resourceUri")) for r in settings if r.props.get("resourceUri")}
    by_urn = {urn for r in settings for urn in r.property_dependencies.get("resourceUri", ())}
    for r in resources:
        if r.type not in DIAGNOSABLE:
            continue
        if (r.id and r.id.lower() in by_uri) or r.urn in by_urn:
            continue
        yield r, "no diagnostic setting sends this resource's logs to the central Log Analytics workspace"


# Key Vault data-plane roles that let a principal use secrets, keys or certificates (built-in ids,
# the same in every tenant): Administrator, Secrets Officer, Secrets User, Certificates Officer,
# Crypto Officer, Crypto User. Owner or Contributor do not read secrets in an RBAC vault.
KEYVAULT_DATA_ROLES = frozenset({
    "00482a5a-887f-4fb3-b363-3b7fe8e74483", "b86a8fe4-44ce-4948-aee5-eccb2c155cd7",
    "4633458b-17de-408a-b874-0445c86b69e6", "a4417e6f-fecd-4de8-b567-7b0420556985",
    "14b46e9e-c2b7-41b4-b07b-48a6ebf60603", "12338af0-0e69-4776-bea7-57ae8d297424"})


def keyvault_reachable(resources: Sequence[PolicyResource]) -> Iterable[tuple[PolicyResource, str]]:
    """A vault with public network access disabled has a private endpoint, and an RBAC vault has at
    least one data-plane role assignment: otherwise no one can use it ("Integrate Key Vault with
    Azure Private Link", https://learn.microsoft.com/en-us/azure/key-vault/general/private-link-service;
    "Azure RBAC for Key Vault data plane operations",
    https://learn.microsoft.com/en-us/azure/key-vault/general/rbac-guide)."""
    endpoints = [r for r in resources if r.type == T + "network:PrivateEndpoint"]
    grants = [r for r in resources if r.type == T + "authorization:RoleAssignment"
              and _lower(r.props.get("roleDefinitionId")).rsplit("/", 1)[-1] in KEYVAULT_DATA_ROLES]
    for vault in resources:
        if vault.type != T + "keyvault:Vault":
            continue
        p = vault.props.get("properties") or {}
        if _lower(p.get("publicNetworkAccess")) == "disabled" and not any(
                pe.refers_to("privateLinkServiceConnections", vault, c.get("privateLinkServiceId"))
                for pe in endpoints for c in pe.props.get("privateLinkServiceConnections") or [{}]
                if isinstance(c, Mapping)):
            yield vault, "public network access is disabled and no private endpoint reaches the vault"
        if p.get("enableRbacAuthorization") is True and not any(
                g.refers_to("scope", vault, g.props.get("scope")) for g in grants):
            yield vault, "no one holds a Key Vault data-plane role on this RBAC vault: its secrets cannot be read"


def dr_region_differs(resources: Sequence[PolicyResource]) -> Iterable[tuple[PolicyResource, str]]:
    """Disaster recovery lands in another region than the primary: a SQL failover group's partner
    servers are not in the primary server's region, a Site Recovery vault tagged `dr-of-region`
    is not in the region it protects, and a replicated VM's recovery network is not in the VM's region.
    A regional outage takes both copies otherwise ("Failover groups
    overview", https://learn.microsoft.com/en-us/azure/azure-sql/database/failover-group-sql-db; Site
    Recovery's target is another region: https://learn.microsoft.com/en-us/azure/site-recovery/
    azure-to-azure-architecture)."""
    servers = [r for r in resources if r.type == T + "sql:Server"]
    by_name = {_lower(r.props.get("serverName")): r for r in servers}
    for fog in resources:
        if fog.type != T + "sql:FailoverGroup":
            continue
        primary = by_name.get(_lower(fog.props.get("serverName")))
        if primary is None:
            continue
        here = _lower(primary.props.get("location"))
        for partner in fog.props.get("partnerServers") or []:
            pid = partner.get("id") if isinstance(partner, Mapping) else None
            for server in servers:
                if server is not primary and fog.refers_to("partnerServers", server, pid) \
                        and _lower(server.props.get("location")) == here:
                    yield fog, (f"failover group's partner server {server.props.get('serverName')!r} is in "
                                f"{here}, the primary's own region: a regional outage takes both")
    for vault in resources:
        protects = _lower(vault.tags.get("dr-of-region"))
        if vault.type == T + "recoveryservices:Vault" and protects and _lower(vault.props.get("location")) == protects:
            yield vault, f"Site Recovery vault is in {protects}, the region it is meant to protect"
    vms = [r for r in resources if r.type == VM]
    vnets = [r for r in resources if r.type == T + "network:VirtualNetwork"]
    for item in resources:
        if item.type != REPLICATED_ITEM:
            continue
        a2a = _a2a(item)
        vm = next((v for v in vms if item.refers_to("properties", v, a2a.get("fabricObjectId"))), None)
        net = next((n for n in vnets if item.refers_to("properties", n, a2a.get("recoveryAzureNetworkId"))), None)
        here = _lower(vm.props.get("location")) if vm is not None else ""
        if vm is not None and net is not None and here and _lower(net.props.get("location")) == here:
            yield item, (f"Site Recovery replicates {vm.props.get('vmName') or vm.name} into "
                         f"{net.props.get('virtualNetworkName') or net.name}, in {here}, the VM's own region: a "
                         "regional outage takes both")


REPLICATED_ITEM = T + "recoveryservices:ReplicationProtectedItem"


def _a2a(item: PolicyResource) -> Mapping[str, Any]:
    """A Site Recovery protected item's Azure-to-Azure settings (properties.providerSpecificDetails)."""
    details = (item.props.get("properties") or {}).get("providerSpecificDetails")
    return details if isinstance(details, Mapping) else {}


def tier1_vm_replicated(resources: Sequence[PolicyResource]) -> Iterable[tuple[PolicyResource, str]]:
    """Every tier-1 VM is replicated to another region: a Site Recovery protected item (Azure to Azure)
    whose fabricObjectId is the VM. Tier 1's RPO is one hour and Azure Backup protects a VM at most
    every 4 hours (Enhanced policy), so without replication the tier's promise is not kept ("About
    Site Recovery for Azure VMs", https://learn.microsoft.com/en-us/azure/site-recovery/azure-to-azure-architecture).
    Joined by id, or at a real preview by the item's properties having been made from the VM."""
    items = [r for r in resources if r.type == REPLICATED_ITEM]
    for vm in resources:
        if vm.type != VM or _lower(vm.tags.get("tier")) != "tier-1":
            continue
        if not any(i.refers_to("properties", vm, _a2a(i).get("fabricObjectId")) for i in items):
            yield vm, ("tier-1 virtual machine is not replicated to another region (no Site Recovery protected "
                       "item for it): its 1-hour recovery point rests on backups taken every 4 hours")


def remediation_identity_roles(resources: Sequence[PolicyResource]) -> Iterable[tuple[PolicyResource, str]]:
    """A policy assignment with a managed identity (DeployIfNotExists, Modify) has role assignments for
    that identity: "the managed identity [...] must be granted the roles [...] required for
    remediation" (https://learn.microsoft.com/en-us/azure/governance/policy/how-to/remediate-resources).
    Joined by the role assignment's principalId having been made from the assignment."""
    grants = [r for r in resources if r.type == T + "authorization:RoleAssignment"]
    for pa in resources:
        if pa.type != T + "authorization:PolicyAssignment" or not (pa.props.get("identity") or {}).get("type"):
            continue
        if _lower(pa.props.get("enforcementMode")) == "donotenforce":
            continue
        if not any(pa.urn in g.property_dependencies.get("principalId", ()) for g in grants):
            yield pa, ("policy assignment has a managed identity but no role assignment for it: it reports "
                       "non-compliance and never remediates")


# Security logs kept at least a year: the council's protective monitoring needs the last twelve
# months searchable (an incident is often found months after it began). An estate may keep more
# (`azure.log_retention_days`); this is the floor. A workspace without retentionInDays gets Azure's
# default of 30 days.
MIN_LOG_RETENTION_DAYS = 365
WORKSPACE = T + "operationalinsights:Workspace"
FIREWALL_POLICY = T + "network:FirewallPolicy"


def log_retention(type_token: str, props: Mapping[str, Any]) -> Iterable[str]:
    """A Log Analytics workspace keeps its logs at least MIN_LOG_RETENTION_DAYS ("Data retention in a
    Log Analytics workspace", https://learn.microsoft.com/en-us/azure/azure-monitor/logs/data-retention-configure:
    the workspace default is 30 days; retentionInDays sets the interactive retention)."""
    days = props.get("retentionInDays")
    if not isinstance(days, int | float) or isinstance(days, bool):
        yield (f"workspace sets no retentionInDays: Azure keeps its logs 30 days, below the "
               f"{MIN_LOG_RETENTION_DAYS} days security logs are kept")
    elif days < MIN_LOG_RETENTION_DAYS:
        yield (f"workspace keeps logs {int(days)} days, below the {MIN_LOG_RETENTION_DAYS} days security logs "
               "are kept")


def firewall_threat_intel_deny(type_token: str, props: Mapping[str, Any]) -> Iterable[str]:
    """The hub firewall denies traffic to and from known-malicious addresses and domains: Azure
    Firewall Basic offers threat intelligence in Alert mode only ("Azure Firewall Basic features":
    "Threat intelligence - alert mode", https://learn.microsoft.com/en-us/azure/firewall/basic-features),
    so a Basic policy logs that traffic and lets it through."""
    tier = _lower((props.get("sku") or {}).get("tier"))
    mode = props.get("threatIntelMode")
    if tier == "basic":
        yield ("firewall policy is Basic tier, whose threat intelligence can only alert (threatIntelMode "
               f"{mode or 'Alert'}): traffic to known-malicious addresses is let through; use Standard or Premium")
    elif _lower(mode) != "deny":
        yield f"firewall policy's threatIntelMode is {mode or 'unset (Alert)'}, not Deny"


RULES: list[Rule] = [
    Rule("infra.policy.allowed_locations", "Resources only in the UK regions (uksouth, ukwest)",
         resource=allowed_locations),
    Rule("infra.policy.required_tags", "Taggable resources carry owner, classification, cost centre and system tags",
         resource=required_tags),
    Rule("infra.policy.no_public_ip_corp", "No public IP addresses in the corp landing zone",
         resource=no_public_ip_corp, types=(PUBLIC_IP, NIC, VM)),
    Rule("infra.policy.mgmt_ports_from_internet", "No management ports (SSH, RDP, WinRM) open to the internet",
         resource=mgmt_ports_from_internet,
         types=(T + "network:NetworkSecurityGroup", T + "network:SecurityRule")),
    Rule("infra.policy.subnet_nsg", "Every subnet has a network security group", resource=subnet_nsg,
         types=(T + "network:Subnet", T + "network:VirtualNetwork")),
    Rule("infra.policy.storage_https_tls", "Storage accounts: HTTPS only, TLS 1.2 or later",
         resource=storage_https_tls, types=(T + "storage:StorageAccount",)),
    Rule("infra.policy.keyvault_purge_protection", "Key Vaults have purge protection and soft delete",
         resource=keyvault_purge_protection, types=(T + "keyvault:Vault",)),
    Rule("infra.policy.sql_tde_auditing", "SQL servers audited, SQL databases encrypted (TDE)",
         stack=sql_tde_auditing),
    Rule("infra.policy.backup_matches_tier", "Backup policies match the recovery tier; every VM is backed up",
         resource=backup_policy_tier, types=(T + "recoveryservices:ProtectionPolicy",), stack=backup_coverage),
    Rule("infra.policy.diagnostics_to_workspace", "Diagnostics go to the central Log Analytics workspace",
         stack=diagnostics_to_workspace),
    Rule("infra.policy.keyvault_reachable", "Every Key Vault reachable (private endpoint) and usable (data-plane role)",
         stack=keyvault_reachable),
    Rule("infra.policy.remediation_identity_roles",
         "DeployIfNotExists and Modify assignments have roles for their managed identity",
         stack=remediation_identity_roles),
    Rule("infra.policy.dr_region_differs", "Disaster recovery in another region than the primary",
         stack=dr_region_differs),
    Rule("infra.policy.tier1_vm_replicated", "Every tier-1 VM replicated to another region (Site Recovery)",
         stack=tier1_vm_replicated),
    Rule("infra.policy.log_retention", "Security logs kept at least 365 days", resource=log_retention,
         types=(WORKSPACE,)),
    Rule("infra.policy.firewall_threat_intel_deny", "The hub firewall denies known-malicious traffic "
         "(threat intelligence in Deny mode, not Basic tier)", resource=firewall_threat_intel_deny,
         types=(FIREWALL_POLICY,)),
]


# ---- evaluation ----------------------------------------------------------------------------------


def check_resource(rules: Sequence[Rule], type_token: str, props: Mapping[str, Any]) -> list[tuple[Rule, str]]:
    """The resource rules' messages for one resource."""
    out: list[tuple[Rule, str]] = []
    for rule in rules:
        if rule.resource is None or (rule.types is not None and type_token not in rule.types):
            continue
        out.extend((rule, m) for m in rule.resource(type_token, props))
    return out
