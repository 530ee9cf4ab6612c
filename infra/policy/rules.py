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
from dataclasses import dataclass
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

    @property
    def tags(self) -> Mapping[str, Any]:
        tags = self.props.get("tags")
        return tags if isinstance(tags, Mapping) else {}


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
    """Every VM has a backup item whose policy is for the VM's own tier."""
    policies = {r.id.lower(): r for r in resources
                if r.type == T + "recoveryservices:ProtectionPolicy" and r.id}
    items: dict[str, PolicyResource] = {}
    for r in resources:
        if r.type == T + "recoveryservices:ProtectedItem":
            src = _lower((r.props.get("properties") or {}).get("sourceResourceId"))
            if src:
                items[src] = r
    for vm in resources:
        if vm.type != VM or not vm.id:
            continue
        item = items.get(vm.id.lower())
        if item is None:
            yield vm, "virtual machine has no backup (no recovery services protected item)"
            continue
        policy = policies.get(_lower((item.props.get("properties") or {}).get("policyId")))
        vm_tier = _lower(vm.tags.get("tier"))
        if policy is None:
            yield vm, "virtual machine's backup item names no backup policy of this deployment"
        elif _lower(policy.tags.get("tier")) != vm_tier:
            yield vm, (f"virtual machine is {vm_tier or 'untiered'} but is backed up by the "
                       f"{policy.tags.get('tier') or 'untiered'} policy {policy.name!r}")


def sql_tde_auditing(resources: Sequence[PolicyResource]) -> Iterable[tuple[PolicyResource, str]]:
    audited = {_lower(r.props.get("serverName")) for r in resources
               if r.type in (T + "sql:ServerBlobAuditingPolicy", T + "sql:ExtendedServerBlobAuditingPolicy")
               and r.props.get("state") == "Enabled"}
    tde = {(_lower(r.props.get("serverName")), _lower(r.props.get("databaseName"))): r.props.get("state")
           for r in resources if r.type == T + "sql:TransparentDataEncryption"}
    for r in resources:
        if r.type == T + "sql:Server" and _lower(r.props.get("serverName")) not in audited:
            yield r, "SQL server has no enabled auditing policy"
        elif r.type == T + "sql:Database":
            key = (_lower(r.props.get("serverName")), _lower(r.props.get("databaseName")))
            if tde.get(key) != "Enabled":
                yield r, "SQL database has no transparent data encryption set to Enabled"


def diagnostics_to_workspace(resources: Sequence[PolicyResource]) -> Iterable[tuple[PolicyResource, str]]:
    covered = {_lower(r.props.get("resourceUri")) for r in resources
               if r.type == T + "monitor:DiagnosticSetting" and r.props.get("workspaceId")}
    for r in resources:
        if r.type in DIAGNOSABLE and r.id and r.id.lower() not in covered:
            yield r, "no diagnostic setting sends this resource's logs to the central Log Analytics workspace"


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
