"""Each policy rule catches what it guards against and passes what is compliant.

The rule functions are pure (type token + properties), so they are called directly here with the
properties a provider would receive; the CrossGuard pack is exercised with hand-built
ResourceValidationArgs / StackValidationArgs (constructing PolicyPack itself would start its gRPC
server and block: that only happens under the Pulumi CLI).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import pytest

from infra.policy import rules
from infra.policy.pack import RULES
from infra.policy.rules import PolicyResource, check_resource
from security_checks.checks import check

T = "azure-native:"
GOOD_TAGS: dict[str, Any] = {"information-asset-owner": "Head of Planning", "data-classification": "OFFICIAL",
             "cost-centre": "PLACE-PLAN", "system": "planning", "landing-zone": "corp"}
OUR_CHECKS = {
    "infra.policy.allowed_locations", "infra.policy.required_tags", "infra.policy.no_public_ip_corp",
    "infra.policy.mgmt_ports_from_internet", "infra.policy.subnet_nsg", "infra.policy.storage_https_tls",
    "infra.policy.keyvault_purge_protection", "infra.policy.sql_tde_auditing", "infra.policy.backup_matches_tier",
    "infra.policy.diagnostics_to_workspace",
}


def ids(type_token: str, props: dict[str, Any]) -> set[str]:
    return {rule.check_id for rule, _ in check_resource(RULES, type_token, props)}


def test_every_rule_has_check_metadata() -> None:
    assert {r.check_id for r in RULES} >= OUR_CHECKS
    for r in RULES:
        assert check(r.check_id).remediation


def test_location_outside_the_uk_is_caught() -> None:
    vnet = {"location": "westeurope", "tags": GOOD_TAGS}
    assert "infra.policy.allowed_locations" in ids(T + "network:VirtualNetwork", vnet)
    assert "infra.policy.allowed_locations" not in ids(T + "network:VirtualNetwork", {**vnet, "location": "ukwest"})
    assert "infra.policy.allowed_locations" not in ids(T + "dns:Zone", {"location": "global", "tags": GOOD_TAGS})


def test_saas_data_held_outside_the_uk_is_caught_from_its_dns_record() -> None:
    record = {"cnameRecord": {"cname": "council.supplier.example.com"}, "metadata": {"data-residency": "eastus"}}
    assert "infra.policy.allowed_locations" in ids(T + "dns:RecordSet", record)
    assert "infra.policy.allowed_locations" not in ids(T + "dns:RecordSet", {"metadata": {"data-residency": "uksouth"}})


def test_missing_or_empty_required_tag_is_caught_on_taggable_types_only() -> None:
    untagged = {"location": "uksouth", "tags": {**GOOD_TAGS, "cost-centre": ""}}
    msgs = [m for r, m in check_resource(RULES, T + "keyvault:Vault", untagged) if r.check_id.endswith("required_tags")]
    assert msgs == ["missing required tag(s): cost-centre"]
    # A management group takes no tags: nothing to require.
    assert "infra.policy.required_tags" not in ids(T + "management:ManagementGroup", {})
    assert rules.taggable(T + "compute:VirtualMachine") and not rules.taggable(T + "authorization:RoleAssignment")


def test_public_ip_in_corp_is_caught_on_nic_vm_and_public_ip() -> None:
    nic: dict[str, Any] = {"tags": GOOD_TAGS, "location": "uksouth",
           "ipConfigurations": [{"name": "ipconfig1", "publicIPAddress": {"id": "/x/pip"}}]}
    assert "infra.policy.no_public_ip_corp" in ids(T + "network:NetworkInterface", nic)
    online = {**nic, "tags": {**GOOD_TAGS, "landing-zone": "online"}}
    assert "infra.policy.no_public_ip_corp" not in ids(T + "network:NetworkInterface", online)
    assert "infra.policy.no_public_ip_corp" in ids(T + "network:PublicIPAddress", {"tags": GOOD_TAGS})
    vm = {"tags": GOOD_TAGS, "networkProfile": {"networkInterfaceConfigurations": [
        {"ipConfigurations": [{"publicIPAddressConfiguration": {"name": "pip"}}]}]}}
    assert "infra.policy.no_public_ip_corp" in ids(T + "compute:VirtualMachine", vm)


@pytest.mark.parametrize(("rule", "caught"), [
    ({"direction": "Inbound", "access": "Allow", "sourceAddressPrefix": "*", "destinationPortRange": "3389"}, True),
    ({"direction": "Inbound", "access": "Allow", "sourceAddressPrefix": "Internet", "destinationPortRange": "20-25"},
     True),
    ({"direction": "Inbound", "access": "Allow", "sourceAddressPrefixes": ["0.0.0.0/0"],
      "destinationPortRanges": ["443", "5986"]}, True),
    ({"direction": "Inbound", "access": "Allow", "sourceAddressPrefix": "Internet", "destinationPortRange": "*"}, True),
    ({"direction": "Inbound", "access": "Allow", "sourceAddressPrefix": "10.10.99.0/24", "destinationPortRange": "22"},
     False),
    ({"direction": "Inbound", "access": "Deny", "sourceAddressPrefix": "*", "destinationPortRange": "*"}, False),
    ({"direction": "Inbound", "access": "Allow", "sourceAddressPrefix": "Internet", "destinationPortRange": "443"},
     False),
])
def test_management_ports_from_the_internet(rule: dict[str, Any], caught: bool) -> None:
    nsg = {"tags": GOOD_TAGS, "location": "uksouth", "securityRules": [{"name": "r", **rule}]}
    assert ("infra.policy.mgmt_ports_from_internet" in ids(T + "network:NetworkSecurityGroup", nsg)) is caught
    assert ("infra.policy.mgmt_ports_from_internet" in ids(T + "network:SecurityRule", rule)) is caught


def test_subnet_without_nsg_is_caught_except_platform_subnets() -> None:
    vnet = {"tags": GOOD_TAGS, "location": "uksouth", "subnets": [
        {"name": "snet-app", "addressPrefix": "10.0.0.0/25"},
        {"name": "GatewaySubnet", "addressPrefix": "10.0.0.128/27"},
        {"name": "snet-ok", "networkSecurityGroup": {"id": "/x/nsg"}}]}
    found = check_resource(RULES, T + "network:VirtualNetwork", vnet)
    msgs = [m for r, m in found if r.check_id.endswith("subnet_nsg")]
    assert msgs == ["subnet 'snet-app' has no network security group"]
    assert "infra.policy.subnet_nsg" in ids(T + "network:Subnet", {"subnetName": "snet-x"})
    assert "infra.policy.subnet_nsg" not in ids(T + "network:Subnet", {"subnetName": "AzureFirewallSubnet"})


def test_storage_https_and_tls() -> None:
    good = {"tags": GOOD_TAGS, "location": "uksouth", "enableHttpsTrafficOnly": True, "minimumTlsVersion": "TLS1_2"}
    assert "infra.policy.storage_https_tls" not in ids(T + "storage:StorageAccount", good)
    assert "infra.policy.storage_https_tls" in ids(T + "storage:StorageAccount",
                                                   {**good, "minimumTlsVersion": "TLS1_0"})
    assert "infra.policy.storage_https_tls" in ids(T + "storage:StorageAccount",
                                                   {**good, "enableHttpsTrafficOnly": False})


def test_key_vault_purge_protection() -> None:
    good = {"tags": GOOD_TAGS, "location": "uksouth",
            "properties": {"enablePurgeProtection": True, "enableSoftDelete": True}}
    assert "infra.policy.keyvault_purge_protection" not in ids(T + "keyvault:Vault", good)
    assert "infra.policy.keyvault_purge_protection" in ids(T + "keyvault:Vault", {**good, "properties": {}})


def _stack(rule_id: str, resources: list[PolicyResource]) -> list[tuple[str, str]]:
    rule = next(r for r in RULES if r.check_id == rule_id)
    assert rule.stack is not None
    return [(res.name, msg) for res, msg in rule.stack(resources)]


def test_sql_server_needs_auditing_and_database_needs_tde() -> None:
    server = PolicyResource(T + "sql:Server", "sql", "urn:sql", {"serverName": "sql-a"})
    db = PolicyResource(T + "sql:Database", "db", "urn:db", {"serverName": "sql-a", "databaseName": "db-a"})
    audit = PolicyResource(T + "sql:ServerBlobAuditingPolicy", "audit", "urn:a", {"serverName": "sql-a",
                                                                                "state": "Enabled"})
    tde = PolicyResource(T + "sql:TransparentDataEncryption", "tde", "urn:t",
                         {"serverName": "sql-a", "databaseName": "db-a", "state": "Enabled"})
    assert _stack("infra.policy.sql_tde_auditing", [server, db, audit, tde]) == []
    found = _stack("infra.policy.sql_tde_auditing", [server, db])
    assert [n for n, _ in found] == ["sql", "db"]


def _policy(tier: str, frequency: str, interval: int | None, days: int, policy_type: str = "V2") -> dict[str, Any]:
    schedule: dict[str, Any] = {"scheduleRunFrequency": frequency}
    if interval is not None:
        schedule["hourlySchedule"] = {"interval": interval}
    return {"tags": {**GOOD_TAGS, "tier": tier}, "properties": {
        "policyType": policy_type, "schedulePolicy": schedule,
        "retentionPolicy": {"dailySchedule": {"retentionDuration": {"count": days, "durationType": "Days"}}}}}


@pytest.mark.parametrize(("props", "caught"), [
    (_policy("tier-1", "Hourly", 4, 35), False),
    (_policy("tier-1", "Daily", None, 35), True),        # tier 1 backed up only daily
    (_policy("tier-1", "Hourly", 12, 35), True),
    (_policy("tier-1", "Hourly", 4, 7), True),           # kept too briefly
    (_policy("tier-1", "Hourly", 4, 35, "V1"), True),    # sub-daily needs the Enhanced policy
    (_policy("tier-2", "Daily", None, 30, "V1"), False),
    (_policy("tier-3", "Daily", None, 7, "V1"), True),
    (_policy("", "Daily", None, 30, "V1"), True),        # no tier: cannot be checked against an RPO
])
def test_backup_policy_matches_tier(props: dict[str, Any], caught: bool) -> None:
    assert ("infra.policy.backup_matches_tier" in ids(T + "recoveryservices:ProtectionPolicy", props)) is caught


def test_every_vm_needs_a_backup_item_of_its_own_tier() -> None:
    vm = PolicyResource(T + "compute:VirtualMachine", "vm1", "urn:vm1", {"tags": {"tier": "tier-1"}}, id="/vm/1")
    pp = T + "recoveryservices:ProtectionPolicy"
    p1 = PolicyResource(pp, "p1", "urn:p1", {"tags": {"tier": "tier-1"}}, id="/p/1")
    p3 = PolicyResource(pp, "p3", "urn:p3", {"tags": {"tier": "tier-3"}}, id="/p/3")

    def item(policy: str) -> PolicyResource:
        return PolicyResource(T + "recoveryservices:ProtectedItem", "i", "urn:i",
                              {"properties": {"sourceResourceId": "/vm/1", "policyId": policy}}, id="/i")

    assert _stack("infra.policy.backup_matches_tier", [vm, p1, item("/p/1")]) == []
    assert "no backup" in _stack("infra.policy.backup_matches_tier", [vm, p1])[0][1]
    assert "tier-3 policy" in _stack("infra.policy.backup_matches_tier", [vm, p1, p3, item("/p/3")])[0][1]


def test_diagnostics_must_reach_the_workspace() -> None:
    kv = PolicyResource(T + "keyvault:Vault", "kv", "urn:kv", {}, id="/kv/1")
    diag = PolicyResource(T + "monitor:DiagnosticSetting", "d", "urn:d", {"resourceUri": "/kv/1", "workspaceId": "/w"})
    assert _stack("infra.policy.diagnostics_to_workspace", [kv, diag]) == []
    assert [n for n, _ in _stack("infra.policy.diagnostics_to_workspace", [kv])] == ["kv"]


def _pack() -> Any:
    path = Path(__file__).resolve().parents[2] / "infra" / "policy" / "__main__.py"
    spec = importlib.util.spec_from_file_location("estate_policy_pack", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)   # __name__ is not "__main__": no PolicyPack, no gRPC server
    return module


def test_crossguard_pack_reports_the_same_violations_as_the_offline_rules() -> None:
    from pulumi_policy import PolicyResource as CGResource
    from pulumi_policy import PolicyResourceOptions, ResourceValidationArgs, StackValidationArgs

    pack = _pack()
    policies = {p.name: p for p in pack.policies()}
    assert {"allowed-locations", "required-tags", "no-public-ip-corp", "mgmt-ports-from-internet", "subnet-nsg",
            "storage-https-tls", "keyvault-purge-protection", "sql-tde-auditing-stack", "backup-matches-tier",
            "diagnostics-to-workspace-stack"} <= set(policies)
    from pulumi_policy import PolicyCustomTimeouts

    opts = PolicyResourceOptions(protect=False, ignore_changes=[], delete_before_replace=None, aliases=[],
                                 custom_timeouts=PolicyCustomTimeouts(0, 0, 0), additional_secret_outputs=[])
    args = ResourceValidationArgs(T + "network:VirtualNetwork", {"location": "westeurope", "tags": GOOD_TAGS},
                                  "urn:pulumi:production::estate::azure-native:network:VirtualNetwork::v", "v",
                                  opts, None)
    reported: list[tuple[str, str | None]] = []
    policies["allowed-locations"].validate(args, lambda msg, urn=None: reported.append((msg, urn)))
    assert reported and reported[0][0].startswith("[infra.policy.allowed_locations] location 'westeurope'")
    kv = CGResource(T + "keyvault:Vault", {"id": "/kv/1"}, "urn:kv", "kv", opts, None, None, [], {})
    stack_args = StackValidationArgs([kv])
    reported.clear()
    policies["diagnostics-to-workspace-stack"].validate(stack_args, lambda msg, urn=None: reported.append((msg, urn)))
    assert reported == [("[infra.policy.diagnostics_to_workspace] no diagnostic setting sends this resource's logs "
                         "to the central Log Analytics workspace", "urn:kv")]
