"""Azure's own rules that the mock runtime (standing in for ARM and the Pulumi engine) cannot see.

Issue 14: each test here encodes one rule Azure Resource Manager enforces, or one thing a first
`pulumi up` would otherwise build wrong, and names its Microsoft Learn source; infra/AZURE-RULES.md
lists them for a reviewer. Each failed on the program before the fix. The program runs under
Pulumi's mocks through the offline plan (infra/plan.py), exactly as `estate infra plan` runs it.
"""

from __future__ import annotations

import ipaddress
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from infra import tenancy, wan
from infra.plan import Plan, PlannedResource, evaluate, run_plan
from infra.policy.nsg_eval import inbound_decision
from infra.policy.rules import (
    PolicyResource,
    backup_coverage,
    diagnostics_to_workspace,
    dr_region_differs,
    sql_tde_auditing,
)
from security_checks.model.loader import LoadedEstate, load_estate
from security_checks.model.schema import Hosting
from security_checks.network.reach import vpn_sites
from tests.estate_copy import copy_demo

T = "azure-native:"
REPO = Path(__file__).resolve().parents[2]
GLENMORAY = REPO / "tests" / "estates" / "glenmoray"

_PLANS: dict[str, Plan] = {}


def _plan(estate_dir: Path) -> Plan:
    key = str(estate_dir)
    if key not in _PLANS:
        _PLANS[key] = run_plan(load_estate(estate_dir, policy=False))
    return _PLANS[key]


@pytest.fixture(scope="module")
def glenmoray_plan() -> Plan:
    return _plan(GLENMORAY)


def _props(r: PlannedResource) -> dict[str, Any]:
    """The inputs the rules see (secrets unwrapped: VPN link settings are secret for their key)."""
    return r.policy_inputs if r.policy_inputs is not None else r.inputs


def _subscription_of(plan: Plan, r: PlannedResource) -> str | None:
    providers = {p.urn: p.inputs.get("subscriptionId") for p in plan.resources
                 if p.type == "pulumi:providers:azure-native"}
    return providers.get(r.provider.rsplit("::", 1)[0]) if r.provider else None


# ---- 1. budgets ----------------------------------------------------------------------------------


def test_budget_start_is_the_first_of_the_current_month_whatever_the_month() -> None:
    # Azure: a budget's start date must be the first of a month, and a past start only within the
    # time grain (Monthly: this month). The financial year's 1 April was refused 11 months in 12.
    for today, want in ((date(2026, 12, 2), "2026-12-01"), (date(2027, 1, 31), "2027-01-01"),
                        (date(2026, 4, 1), "2026-04-01"), (date(2026, 3, 15), "2026-03-01")):
        assert tenancy._budget_start(today) == f"{want}T00:00:00Z"


@pytest.mark.slow
def test_every_planned_budget_starts_this_month_under_pulumi_mocks(demo_plan: Plan) -> None:
    budgets = demo_plan.by_type(T + "consumption:Budget")
    assert len(budgets) == 2
    first = date.today().replace(day=1).isoformat()
    assert {b.inputs["timePeriod"]["startDate"] for b in budgets} == {f"{first}T00:00:00Z"}


# ---- 2. BGP on the PSN/SWAN connection ------------------------------------------------------------


def _bgp_mismatches(plan: Plan) -> list[str]:
    """Connections that enable BGP towards a peer Azure has no BGP settings for."""
    out = []
    sites = {str(r.id).lower(): _props(r) for r in plan.by_type(T + "network:VpnSite")}
    for conn in plan.by_type(T + "network:VpnConnection"):
        for link in _props(conn).get("vpnLinkConnections") or []:
            site_id = str(link["vpnSiteLink"]["id"]).rsplit("/vpnSiteLinks/", 1)[0].lower()
            site_links = {sl["name"]: sl for sl in sites[site_id].get("vpnSiteLinks") or []}
            bgp = site_links[link["name"]].get("bgpProperties") or {}
            if link.get("enableBgp") and not (bgp.get("asn") and bgp.get("bgpPeeringAddress")):
                out.append(conn.name)
    gateways = {str(r.id).lower(): _props(r) for r in plan.by_type(T + "network:LocalNetworkGateway")}
    for conn in plan.by_type(T + "network:VirtualNetworkGatewayConnection"):
        lng = gateways[str(_props(conn)["localNetworkGateway2"]["id"]).lower()]
        settings = lng.get("bgpSettings") or {}
        if _props(conn).get("enableBgp") and not (settings.get("asn") and settings.get("bgpPeeringAddress")):
            out.append(conn.name)
    return out


@pytest.mark.slow
def test_no_vpn_connection_enables_bgp_towards_a_link_without_bgp_settings_under_pulumi_mocks(
        demo_plan: Plan, glenmoray_plan: Plan) -> None:
    # Azure: BGP on a connection needs the peer's ASN and BGP peering address on the VPN site link
    # (Virtual WAN) or the local network gateway (VPN Gateway). The demo's PSN gives an ASN only.
    assert _bgp_mismatches(demo_plan) == []
    assert _bgp_mismatches(glenmoray_plan) == []
    psn = next(c for c in demo_plan.by_type(T + "network:VpnConnection") if c.name.endswith("-psn-conn"))
    assert [link["enableBgp"] for link in _props(psn)["vpnLinkConnections"]] == [False]


@pytest.mark.slow
def test_a_psn_with_a_bgp_peering_address_gets_bgp_on_both_ends_under_pulumi_mocks(tmp_path: Path) -> None:
    estate = copy_demo(tmp_path / "estate", {"organisation.yaml": [
        ("bgp_asn: 65070,", "bgp_asn: 65070, bgp_peering_address: 10.10.70.254,")]})
    plan = run_plan(load_estate(estate, policy=False))
    assert _bgp_mismatches(plan) == []
    psn = next(c for c in plan.by_type(T + "network:VpnConnection") if c.name.endswith("-psn-conn"))
    assert [link["enableBgp"] for link in _props(psn)["vpnLinkConnections"]] == [True]
    site = next(s for s in plan.by_type(T + "network:VpnSite") if s.name.endswith("-psn-site"))
    assert site.inputs["vpnSiteLinks"][0]["bgpProperties"] == {"asn": 65070, "bgpPeeringAddress": "10.10.70.254"}
    assert evaluate(plan) == []


# ---- 3. a system reaches its own private endpoints ----------------------------------------------


@pytest.mark.slow
def test_each_spoke_nsg_lets_its_workload_reach_its_private_endpoints_under_pulumi_mocks(
        demo_plan: Plan, demo_loaded: LoadedEstate) -> None:
    # Azure: private endpoints in a subnet with network policies Enabled are filtered by its NSG, and
    # the spoke NSG's explicit deny-all (4096) overrides the default AllowVnetInBound (65000).
    checked = 0
    for lob in demo_loaded.estate.lob_systems:
        if lob.hosting is Hosting.SAAS:
            continue
        component = next(r for r in demo_plan.resources if r.type == "estate:lob:System" and r.name == lob.name)
        nsg = next(r for r in demo_plan.by_type(T + "network:NetworkSecurityGroup")
                   if component in demo_plan.ancestors(r))
        vnet = next(r for r in demo_plan.by_type(T + "network:VirtualNetwork") if component in demo_plan.ancestors(r))
        subnets = {s["name"]: ipaddress.ip_network(s["addressPrefix"]) for s in vnet.inputs["subnets"]}
        workload = subnets["snet-app-integration" if lob.hosting is Hosting.PAAS else "snet-app"]
        endpoint = subnets["snet-private-endpoints"]
        ports = {"Key Vault": 443} | ({"Azure SQL": 1433, "web app": 443} if lob.hosting is Hosting.PAAS else {})
        for what, port in ports.items():
            access, rule = inbound_decision(nsg.inputs["securityRules"], source=str(workload[10]),
                                            destination=str(endpoint[4]), port=port,
                                            vnet=[lob.address_space or ""])
            assert access == "Allow", f"{lob.name}: its workload cannot reach its {what} ({port}): {rule}"
        # ...and nothing else gets in through that rule: a site's VLAN is still decided by the flows.
        assert inbound_decision(nsg.inputs["securityRules"], source="10.14.50.10", destination=str(endpoint[4]),
                                port=1433, vnet=[lob.address_space or ""])[0] == "Deny"
        checked += 1
    assert checked == 15


# ---- 5. encryption at host needs its feature registered --------------------------------------------


@pytest.mark.slow
def test_each_subscription_with_encryption_at_host_registers_the_feature_first_under_pulumi_mocks(
        demo_plan: Plan) -> None:
    # Azure: "You must enable the feature for your subscription before you can use encryption at host".
    features = {(_subscription_of(demo_plan, r), r.inputs.get("providerNamespace"), r.inputs.get("featureName")): r
                for r in demo_plan.by_type(T + "features:SubscriptionFeatureRegistration")}
    vms = [v for v in demo_plan.by_type(T + "compute:VirtualMachine")
           if (v.inputs.get("securityProfile") or {}).get("encryptionAtHost")]
    assert len(vms) == 21
    for vm in vms:
        registration = features.get((_subscription_of(demo_plan, vm), "Microsoft.Compute", "EncryptionAtHost"))
        assert registration is not None, f"{vm.name}: its subscription does not register EncryptionAtHost"
        assert registration.urn in vm.dependencies, f"{vm.name} may be created before the registration"


# ---- 10. SQL audit events reach the workspace ---------------------------------------------------------


@pytest.mark.slow
def test_every_sql_server_audits_through_a_master_database_diagnostic_setting_under_pulumi_mocks(
        demo_plan: Plan) -> None:
    settings = {str(r.inputs.get("resourceUri")).lower(): r for r in demo_plan.by_type(T + "monitor:DiagnosticSetting")}
    servers = demo_plan.by_type(T + "sql:Server")
    assert len(servers) >= 4
    for server in servers:
        setting = settings.get(f"{server.id}/databases/master".lower())
        assert setting is not None, f"{server.name}: audit events to Azure Monitor go nowhere"
        assert {"category": "SQLSecurityAuditEvents", "enabled": True} in setting.inputs["logs"]
        assert setting.inputs["workspaceId"]


def _r(type_: str, name: str, props: dict[str, Any], *, rid: str | None = None,
       deps: dict[str, tuple[str, ...]] | None = None) -> PolicyResource:
    return PolicyResource(type=T + type_, name=name, urn=f"urn:{name}", props=props, id=rid,
                          property_dependencies=deps or {})


def test_sql_auditing_rule_wants_the_master_diagnostic_setting_when_auditing_to_azure_monitor() -> None:
    server = _r("sql:Server", "sql", {"serverName": "sql-a"}, rid="/s/sql-a")
    audit = _r("sql:ServerBlobAuditingPolicy", "audit", {"serverName": "sql-a", "state": "Enabled",
                                                        "isAzureMonitorTargetEnabled": True})
    assert [m for _, m in sql_tde_auditing([server, audit])] == [
        "SQL server audits to Azure Monitor but no diagnostic setting sends the master database's "
        "SQLSecurityAuditEvents to a workspace: the audit events go nowhere"]
    to_master = _r("monitor:DiagnosticSetting", "diag", {"resourceUri": "/s/sql-a/databases/master",
                                                        "workspaceId": "/w",
                                                        "logs": [{"category": "SQLSecurityAuditEvents",
                                                                  "enabled": True}]})
    assert list(sql_tde_auditing([server, audit, to_master])) == []


# ---- 12. stack rules that work at a real preview (no ids yet) -----------------------------------------


def test_backup_and_diagnostics_rules_join_by_property_dependencies_when_ids_are_unknown() -> None:
    # At `pulumi preview` a new resource has no id and properties made from ids are unknown; the
    # engine still records which resources each property came from. The rules used to skip a VM
    # without an id (so could never fire at preview).
    vm = _r("compute:VirtualMachine", "vm1", {"tags": {"tier": "tier-2"}})
    bare = _r("compute:VirtualMachine", "vm2", {"tags": {"tier": "tier-2"}})
    policy = _r("recoveryservices:ProtectionPolicy", "pol", {"tags": {"tier": "tier-2"}})
    item = _r("recoveryservices:ProtectedItem", "item", {"properties": {}},
              deps={"properties": (vm.urn, policy.urn)})
    assert [(r.name, m) for r, m in backup_coverage([vm, bare, policy, item])] == [
        ("vm2", "virtual machine has no backup (no recovery services protected item)")]
    kv = _r("keyvault:Vault", "kv", {})
    lonely = _r("keyvault:Vault", "kv2", {})
    ws = _r("operationalinsights:Workspace", "ws", {})
    diag = _r("monitor:DiagnosticSetting", "kv-diag", {}, deps={"resourceUri": (kv.urn,), "workspaceId": (ws.urn,)})
    assert [r.name for r, _ in diagnostics_to_workspace([kv, lonely, ws, diag])] == ["kv2"]


# ---- 13. VPN gateway scale units -------------------------------------------------------------------


@pytest.mark.slow
def test_vpn_gateway_scale_units_are_500_mbps_each_under_pulumi_mocks(demo_plan: Plan,
                                                                       demo_loaded: LoadedEstate) -> None:
    estate = demo_loaded.estate
    psn = estate.azure.connectivity.psn
    total = sum(s.wan.bandwidth_mbps for s in vpn_sites(estate)) + (psn.bandwidth_mbps if psn else 0)
    (gateway,) = demo_plan.by_type(T + "network:VpnGateway")
    units = gateway.inputs["vpnGatewayScaleUnit"]
    assert units == min(20, -(-total // 500))
    assert units * 500 >= min(total, 20 * 500)
    assert wan.VPN_SCALE_UNIT_MBPS == 500


# ---- 7. the hub firewall lets the declared private flows through ------------------------------------


def _firewall_allows(plan: Plan, source: str, destination: str, port: int, protocol: str = "TCP") -> bool:
    src, dst = ipaddress.ip_address(source), ipaddress.ip_address(destination)

    def covers(values: list[str], ip: Any) -> bool:
        return any(v == "*" or ip in ipaddress.ip_network(v, strict=False) for v in values)

    for group in plan.by_type(T + "network:FirewallPolicyRuleCollectionGroup"):
        for collection in sorted(group.inputs["ruleCollections"], key=lambda c: c["priority"]):
            for rule in collection.get("rules") or []:
                if rule.get("ruleType") != "NetworkRule":
                    continue
                if (covers(rule["sourceAddresses"], src) and covers(rule["destinationAddresses"], dst)
                        and protocol in rule["ipProtocols"] + (["TCP", "UDP"] if "Any" in rule["ipProtocols"] else [])
                        and any(p == "*" or int(p.split("-")[0]) <= port <= int(p.split("-")[-1])
                                for p in rule["destinationPorts"])):
                    return bool(collection["action"]["type"] == "Allow")
    return False   # the firewall's default deny


@pytest.mark.slow
def test_the_hub_firewall_passes_declared_flows_to_lob_dns_and_radius_and_nothing_from_guests_under_pulumi_mocks(
        demo_plan: Plan) -> None:
    # Routing intent sends all private traffic through the hub firewall, which denies by default:
    # the declared flows must be allowed there, or no site reaches a LOB system, DNS or RADIUS.
    corporate_pc, guest_phone, mgmt_pc = "10.10.10.20", "10.14.50.20", "10.10.99.20"
    assert _firewall_allows(demo_plan, corporate_pc, "10.200.1.10", 443)        # revenues, from corporate
    assert _firewall_allows(demo_plan, corporate_pc, "10.100.4.4", 53, "UDP")    # the DNS resolver
    assert _firewall_allows(demo_plan, corporate_pc, "10.100.8.10", 1812, "UDP")  # NPS
    assert _firewall_allows(demo_plan, mgmt_pc, "10.100.4.36", 443)              # the platform vaults' endpoints
    assert not _firewall_allows(demo_plan, guest_phone, "10.200.1.10", 443)
    assert not _firewall_allows(demo_plan, guest_phone, "10.100.8.10", 1812, "UDP")
    assert not _firewall_allows(demo_plan, corporate_pc, "10.100.4.36", 443)     # vaults: engineers only


# ---- 4. tags never deny what Azure services create ------------------------------------------------


@pytest.mark.slow
def test_tags_are_inherited_by_modify_and_never_denied_on_resources_under_pulumi_mocks(demo_plan: Plan) -> None:
    # Azure Backup creates untagged restore point collections (AzureBackupRG_<region>_1): a root-level
    # Deny on resource tags refuses them. ALZ inherits tags from the resource group with Modify.
    assignments = demo_plan.by_type(T + "authorization:PolicyAssignment")
    deny_tags = [a.name for a in assignments
                 if a.inputs["policyDefinitionId"].endswith(tenancy.POLICIES["require-tag"])]
    assert deny_tags == []
    inherit = {a.inputs["parameters"]["tagName"]["value"]: a for a in assignments
               if a.inputs["policyDefinitionId"].endswith(tenancy.POLICIES["inherit-tag-if-missing"])}
    assert set(inherit) == {"information-asset-owner", "data-classification", "cost-centre", "system"}
    for a in inherit.values():
        assert a.inputs["enforcementMode"] == "Default" and a.inputs["identity"]["type"] == "SystemAssigned"
        assert a.inputs["scope"] == "/providers/Microsoft.Management/managementGroups/hdc"
    rg_tags = [a for a in assignments if a.inputs["policyDefinitionId"].endswith(tenancy.POLICIES["require-tag-rg"])]
    assert len(rg_tags) == 4 and {a.inputs["enforcementMode"] for a in rg_tags} == {"DoNotEnforce"}


# ---- 8. DeployIfNotExists / Modify identities hold their roles --------------------------------------


@pytest.mark.slow
def test_every_remediating_assignment_grants_its_definitions_roles_to_its_identity_under_pulumi_mocks(
        demo_plan: Plan) -> None:
    grants = demo_plan.by_type(T + "authorization:RoleAssignment")
    roles_by_id = {v: k for k, v in tenancy.ROLES.items()}
    with_identity = [a for a in demo_plan.by_type(T + "authorization:PolicyAssignment") if a.inputs.get("identity")]
    assert len(with_identity) == 5   # four inherit-tag Modify, the diagnostics DINE initiative
    for pa in with_identity:
        mine = [g for g in grants if pa.urn in g.property_dependencies.get("principalId", ())]
        granted = {roles_by_id[g.inputs["roleDefinitionId"].rsplit("/", 1)[-1]] for g in mine}
        want = set(tenancy.REMEDIATION_ROLES[pa.inputs["policyDefinitionId"].rsplit("/", 1)[-1]])
        assert granted == want, pa.name
        assert {g.inputs["scope"] for g in mine} == {pa.inputs["scope"]}
        assert {g.inputs["principalType"] for g in mine} == {"ServicePrincipal"}


# ---- 6. vaults someone can use -----------------------------------------------------------------------


@pytest.mark.slow
def test_every_vault_has_a_private_endpoint_and_a_data_plane_role_under_pulumi_mocks(
        demo_plan: Plan, demo_loaded: LoadedEstate) -> None:
    vaults = demo_plan.by_type(T + "keyvault:Vault")
    assert len(vaults) == 17   # platform, network secrets, one per PaaS/IaaS system (15)
    endpoints = demo_plan.by_type(T + "network:PrivateEndpoint")
    grants = demo_plan.by_type(T + "authorization:RoleAssignment")
    engineers = demo_loaded.estate.azure.entra_groups.infrastructure_engineers
    for vault in vaults:
        assert vault.inputs["properties"]["publicNetworkAccess"] == "Disabled"
        assert any(c["privateLinkServiceId"] == vault.id and c["groupIds"] == ["vault"]
                   for pe in endpoints for c in pe.inputs["privateLinkServiceConnections"]), vault.name
        mine = {g.inputs["roleDefinitionId"].rsplit("/", 1)[-1] for g in grants
                if g.inputs["scope"] == vault.id and g.inputs["principalId"] == engineers}
        want = "Key Vault Secrets Officer" if vault.name in ("kv-platform", "kv-network-secrets") \
            else "Key Vault Secrets User"
        assert mine == {tenancy.ROLES[want]}, vault.name
    # The platform vaults' endpoints sit where only the management zone reaches them.
    pe = next(p for p in endpoints if p.name == "kv-network-secrets-pep")
    subnet = next(s for s in demo_plan.by_type(T + "network:Subnet") if s.id == pe.inputs["subnet"]["id"])
    nsg = next(n for n in demo_plan.by_type(T + "network:NetworkSecurityGroup")
               if n.id == subnet.inputs["networkSecurityGroup"]["id"])
    target = str(ipaddress.ip_network(subnet.inputs["addressPrefix"])[4])
    assert inbound_decision(nsg.inputs["securityRules"], source="10.10.99.20", destination=target, port=443)[0] \
        == "Allow"
    assert inbound_decision(nsg.inputs["securityRules"], source="10.10.10.20", destination=target, port=443)[0] \
        == "Deny"


# ---- 7. hub-vnet: spokes route through the hub and use its gateway -----------------------------------


@pytest.mark.slow
def test_hub_vnet_spokes_use_the_gateway_and_route_through_the_firewall_both_ways_under_pulumi_mocks(
        glenmoray_plan: Plan) -> None:
    # Azure: a spoke learns the sites' routes only with useRemoteGateways (the hub allowing gateway
    # transit); a peering is one-way until both sides have one; and without route tables on both the
    # spoke subnets and the GatewaySubnet, traffic skips the firewall in one direction.
    plan = glenmoray_plan
    (hub,) = [v for v in plan.by_type(T + "network:VirtualNetwork") if v.name == "vnet-hub"]
    (gateway,) = plan.by_type(T + "network:VirtualNetworkGateway")
    firewall_subnet = next(s for s in plan.by_type(T + "network:Subnet")
                           if s.inputs["subnetName"] == "AzureFirewallSubnet")
    firewall_ip = str(ipaddress.ip_network(firewall_subnet.inputs["addressPrefix"])[4])
    peerings = plan.by_type(T + "network:VirtualNetworkPeering")
    tables = {t.id: t for t in plan.by_type(T + "network:RouteTable")}
    # Site Recovery's recovery VNets (tagged dr-of-region) share their spoke's addresses and join the
    # hub only at failover.
    spokes = [v for v in plan.by_type(T + "network:VirtualNetwork")
              if v.name != "vnet-hub" and "dr-of-region" not in v.tags]
    assert len(spokes) == 9   # 7 systems, identity, DNS
    for spoke in spokes:
        to_hub = [p for p in peerings if p.inputs["virtualNetworkName"] == spoke.inputs["virtualNetworkName"]]
        from_hub = [p for p in peerings if p.inputs["remoteVirtualNetwork"]["id"] == spoke.id]
        assert len(to_hub) == 1 and len(from_hub) == 1, spoke.name
        assert to_hub[0].inputs["useRemoteGateways"] is True and gateway.urn in to_hub[0].dependencies, spoke.name
        assert from_hub[0].inputs["allowGatewayTransit"] is True
    lob_spokes = [v for v in spokes if v.inputs.get("subnets")]
    for spoke in lob_spokes:
        for subnet in spoke.inputs["subnets"]:
            table = tables[subnet["routeTable"]["id"]]
            assert table.inputs["disableBgpRoutePropagation"] is True
            assert table.inputs["routes"] == [{"name": "default-to-hub-firewall", "addressPrefix": "0.0.0.0/0",
                                               "nextHopType": "VirtualAppliance", "nextHopIpAddress": firewall_ip}]
    (nps,) = [s for s in plan.by_type(T + "network:Subnet") if s.inputs["subnetName"] == "snet-nps"]
    assert tables[nps.inputs["routeTable"]["id"]].inputs["routes"][0]["addressPrefix"] == "0.0.0.0/0"
    gateway_subnet = next(s for s in plan.by_type(T + "network:Subnet") if s.inputs["subnetName"] == "GatewaySubnet")
    routed = {r["addressPrefix"]: r["nextHopIpAddress"]
              for r in tables[gateway_subnet.inputs["routeTable"]["id"]].inputs["routes"]}
    for spoke in [*lob_spokes, next(v for v in spokes if v.name.endswith("radius-vnet"))]:
        for prefix in spoke.inputs["addressSpace"]["addressPrefixes"]:
            assert routed.get(prefix) == firewall_ip, f"{spoke.name}: sites reach it around the firewall"
    assert hub.id and evaluate(plan) == []


# ---- 11. tier-1 DR really in the other region, and reachable after failover ---------------------------


def test_dr_region_rule_refuses_a_failover_partner_or_recovery_vault_in_the_primarys_region() -> None:
    primary = _r("sql:Server", "p", {"serverName": "sql-a", "location": "ukwest"}, rid="/s/sql-a")
    partner = _r("sql:Server", "d", {"serverName": "sql-a-dr", "location": "ukwest"}, rid="/s/sql-a-dr")
    fog = _r("sql:FailoverGroup", "fog", {"serverName": "sql-a", "partnerServers": [{"id": "/s/sql-a-dr"}]})
    vault = _r("recoveryservices:Vault", "rsv-dr", {"location": "ukwest", "tags": {"dr-of-region": "ukwest"}})
    assert [r.name for r, _ in dr_region_differs([primary, partner, fog, vault])] == ["fog", "rsv-dr"]
    elsewhere = _r("sql:Server", "d", {"serverName": "sql-a-dr", "location": "uksouth"}, rid="/s/sql-a-dr")
    assert list(dr_region_differs([primary, elsewhere, fog])) == []


@pytest.mark.slow
def test_a_tier1_system_in_the_secondary_region_fails_over_to_the_primary_under_pulumi_mocks(tmp_path: Path) -> None:
    # The program used to put "DR" in the secondary region whatever the system's own region.
    estate = copy_demo(tmp_path / "estate", {"lob_systems.yaml": [
        ("tier: tier-1, cost_centre: ICT-DIGITAL,", "tier: tier-1, cost_centre: ICT-DIGITAL, region: ukwest,")]})
    plan = run_plan(load_estate(estate, policy=False))
    component = next(r for r in plan.resources if r.type == "estate:lob:System" and r.name == "citizen-portal")
    servers = {r.inputs["serverName"]: r.inputs["location"] for r in plan.by_type(T + "sql:Server")
               if component in plan.ancestors(r)}
    assert sorted(servers.values()) == ["uksouth", "ukwest"]
    assert evaluate(plan) == []


@pytest.mark.slow
def test_the_failover_partner_has_its_own_private_endpoint_in_the_spoke_under_pulumi_mocks(demo_plan: Plan) -> None:
    groups = demo_plan.by_type(T + "sql:FailoverGroup")
    assert groups
    endpoints = demo_plan.by_type(T + "network:PrivateEndpoint")
    servers = {str(s.id): s for s in demo_plan.by_type(T + "sql:Server")}
    for fog in groups:
        for partner in fog.inputs["partnerServers"]:
            assert servers[partner["id"]].inputs["publicNetworkAccess"] == "Disabled"
            assert any(c["privateLinkServiceId"] == partner["id"] and c["groupIds"] == ["sqlServer"]
                       for pe in endpoints for c in pe.inputs["privateLinkServiceConnections"]), fog.name


# ---- 9. the custom deny policies see inline rules and subnets ---------------------------------------
# A small evaluator of the Azure Policy language parts these two definitions use (allOf, anyOf,
# equals, in, notIn, exists, count/where/greater, [current()]) over ARM-shaped JSON, since ARM's own
# cannot run here. Aliases resolve as Azure documents them: `<type>/<prop>` for a resource's own
# property, `<type>/<array>[*].<prop>` through each element's `properties` (`name` at its top).


def _alias_values(alias: str, resource: dict[str, Any], item: dict[str, Any] | None) -> list[Any]:
    if alias in ("type", "name"):
        return [resource[alias]]
    rtype = resource["type"]
    assert alias.startswith(rtype + "/"), (alias, rtype)
    rest = alias[len(rtype) + 1:]

    def prop(obj: dict[str, Any], path: str) -> list[Any]:
        head, _, tail = path.partition(".")
        value = obj.get(head) if head == "name" else (obj.get("properties") or {}).get(head.removesuffix("[*]"))
        if tail:
            return [v for x in ([value] if isinstance(value, dict) else []) for v in [x.get(tail)]]
        return list(value or []) if head.endswith("[*]") else [value]

    if ("[*]" in rest.split(".")[0] and "." in rest) or (rest.endswith("[*]") and item is not None):
        head, _, tail = rest.partition("[*]")
        if item is not None:
            return prop(item, tail.lstrip(".")) if tail else [item]
        return [v for el in (resource.get("properties") or {}).get(head) or [] for v in prop(el, tail.lstrip("."))]
    return prop(resource, rest)


def _holds(cond: dict[str, Any], res: dict[str, Any], item: dict[str, Any] | None = None) -> bool:
    if "allOf" in cond:
        return all(_holds(c, res, item) for c in cond["allOf"])
    if "anyOf" in cond:
        return any(_holds(c, res, item) for c in cond["anyOf"])
    if "count" in cond:
        field = cond["count"]["field"]
        head = field.rsplit("[*]", 1)[0] + "[*]"
        if field.startswith(res["type"] + "/") and field.count("[*]") == 1 and field.endswith("[*]") \
                and "." not in field[len(res["type"]) + 1:]:
            elements = (res.get("properties") or {}).get(field[len(res["type"]) + 1:-3]) or []
        else:   # an array inside the current element (or the resource): its values
            elements = _alias_values(head, res, item) if item is None else \
                list((item.get("properties") or {}).get(field.rsplit("[*]", 1)[0].rsplit(".", 1)[-1]) or [])
        n = sum(1 for el in elements if _holds(cond["count"]["where"], res, el))
        return n > cond["greater"]
    if "value" in cond:
        values = [item] if cond["value"] == "[current()]" else [cond["value"]]
    else:
        values = _alias_values(cond["field"], res, item)
    if "equals" in cond:
        return any(v == cond["equals"] for v in values)
    if "in" in cond:
        return any(v in cond["in"] for v in values)
    if "notIn" in cond:
        return all(v not in cond["notIn"] for v in values)
    if "exists" in cond:
        return any(v is not None for v in values) is (cond["exists"] == "true")
    raise AssertionError(f"unsupported condition {cond}")


def _nsg(rules: list[dict[str, Any]]) -> dict[str, Any]:
    return {"type": "Microsoft.Network/networkSecurityGroups", "name": "nsg",
            "properties": {"securityRules": [{"name": r["name"], "properties": r} for r in rules]}}


def test_custom_deny_policies_match_inline_rules_and_subnets_as_the_program_writes_them() -> None:
    # Azure: standalone aliases (.../securityRules/access) do not see rules inline in an NSG, nor
    # .../subnets/... subnets inline in a VNet; every rule and subnet of this program is inline.
    rdp = {"name": "rdp", "access": "Allow", "direction": "Inbound", "destinationPortRange": "3389",
           "sourceAddressPrefix": "Internet"}
    https = {**rdp, "name": "https", "destinationPortRange": "443"}
    ssh_many = {**rdp, "name": "ssh", "destinationPortRange": None, "destinationPortRanges": ["443", "22"],
                "sourceAddressPrefix": None, "sourceAddressPrefixes": ["10.0.0.0/8", "0.0.0.0/0"]}
    rule = tenancy.DENY_MGMT_PORTS_RULE["if"]
    assert _holds(rule, _nsg([https, rdp]))
    assert _holds(rule, _nsg([ssh_many]))
    assert not _holds(rule, _nsg([https, {**rdp, "sourceAddressPrefix": "10.10.99.0/24"}]))
    standalone = {"type": "Microsoft.Network/networkSecurityGroups/securityRules", "name": "rdp", "properties": rdp}
    assert _holds(rule, standalone)

    subnet_rule = tenancy.DENY_SUBNET_WITHOUT_NSG_RULE["if"]

    def vnet(*subnets: dict[str, Any]) -> dict[str, Any]:
        return {"type": "Microsoft.Network/virtualNetworks", "name": "vnet",
                "properties": {"subnets": [{"name": s["name"], "properties": s} for s in subnets]}}

    guarded = {"name": "snet-app", "networkSecurityGroup": {"id": "/nsg"}}
    assert not _holds(subnet_rule, vnet(guarded, {"name": "GatewaySubnet"}))
    assert _holds(subnet_rule, vnet(guarded, {"name": "snet-bare"}))
    assert _holds(subnet_rule, {"type": "Microsoft.Network/virtualNetworks/subnets", "name": "snet-bare",
                                "properties": {}})


# ---- issue 15: the council's own name for its public-sector network ----------------------------------


@pytest.mark.slow
def test_glenmoray_texts_say_swan_never_psn_under_pulumi_mocks(glenmoray_plan: Plan) -> None:
    import json

    from infra.policy.network_rules import psn_route_isolation

    texts = [json.dumps(r.inputs) for r in glenmoray_plan.resources]
    described = [t for t in texts if "Wi-Fi never reach" in t]
    assert described and all("the SWAN" in t for t in described)
    assert not [t for t in texts if "PSN" in t]
    # A planted fault: an allow-any rule to SWAN. The violation names SWAN.
    views = [PolicyResource(type=r.type, name=r.name, urn=r.urn, props=_props(r), id=r.id)
             for r in glenmoray_plan.resources if r.custom]
    group = next(v for v in views if v.type == T + "network:FirewallPolicyRuleCollectionGroup")
    bad = {**group.props, "ruleCollections": [*group.props["ruleCollections"], {
        "name": "oops", "priority": 300, "action": {"type": "Allow"}, "rules": [{
            "ruleType": "NetworkRule", "name": "any-to-swan", "sourceAddresses": ["*"],
            "destinationAddresses": ["172.22.0.0/16"], "ipProtocols": ["Any"], "destinationPorts": ["*"]}]}]}
    views = [PolicyResource(type=v.type, name=v.name, urn=v.urn, props=bad, id=v.id) if v is group else v
             for v in views]
    messages = [m for _, m in psn_route_isolation(views)]
    assert messages == ["firewall policy rule 'any-to-swan' (oops) allows any source to the SWAN: only declared "
                        "zones may reach the SWAN"]
