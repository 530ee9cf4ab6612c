"""The whole program under Pulumi's mock runtime (stands in for ARM and the engine), on the demo estate.

Properties asserted on the resource graph the program registers: regions, tags, no public IPs in
corp, backup by tier, NSG rules equal to the declared flows, DR where the tier needs it, and the
tenancy's shape (management groups, placement, policy, RBAC, evidence immutability).
"""

from __future__ import annotations

import ipaddress
import json
from typing import Any

import pytest

from infra.plan import Plan, PlannedResource, evaluate
from infra.policy.rules import REQUIRED_TAGS, taggable
from security_checks.model.loader import LoadedEstate
from security_checks.model.schema import Hosting, Tier, ZoneKind

T = "azure-native:"
pytestmark = pytest.mark.slow  # one offline plan of the demo (seconds), shared by every test here


RECOVERY_NETWORK = (T + "network:VirtualNetwork", T + "network:NetworkSecurityGroup")


def _lob_resources(plan: Plan, lob: str, type_token: str) -> list[PlannedResource]:
    """The system's resources of a type; its Site Recovery network (tagged dr-of-region: the recovery
    VNet and its NSG, in the other region) is test_replication.py's."""
    component = next(r for r in plan.resources if r.type == "estate:lob:System" and r.name == lob)
    return [r for r in plan.resources if r.type == type_token and component in plan.ancestors(r)
            and not (r.type in RECOVERY_NETWORK and "dr-of-region" in r.tags)]


def test_every_lob_system_and_the_tenancy_are_planned_with_no_violation_under_pulumi_mocks(
        demo_plan: Plan, demo_loaded: LoadedEstate) -> None:
    systems = {r.name for r in demo_plan.by_type("estate:lob:System")}
    assert systems == {lob.name for lob in demo_loaded.estate.lob_systems}
    assert len(systems) == 27
    groups = {r.inputs["groupId"] for r in demo_plan.by_type(T + "management:ManagementGroup")}
    assert groups == {"hdc", *(f"hdc-{p}" for p in (
        "platform", "platform-management", "platform-connectivity", "platform-identity", "platform-security",
        "landingzones", "landingzones-corp", "landingzones-online", "sandbox", "decommissioned", "quarantine"))}
    assert evaluate(demo_plan) == []


def test_subscriptions_are_placed_by_their_placement_under_pulumi_mocks(demo_plan: Plan,
                                                                        demo_loaded: LoadedEstate) -> None:
    placed = {r.name.removeprefix("mgsub-"): r.inputs["groupId"]
              for r in demo_plan.by_type(T + "management:ManagementGroupSubscription")}
    want = {"management": "platform-management", "connectivity": "platform-connectivity",
            "identity": "platform-identity", "security": "platform-security", "corp": "landingzones-corp",
            "online": "landingzones-online", "sandbox": "sandbox"}
    assert placed == {s.name: f"hdc-{want[s.placement.value]}" for s in demo_loaded.estate.azure.subscriptions}
    # Each placement goes through that subscription's own provider.
    providers = {r.urn: r.inputs.get("subscriptionId") for r in demo_plan.resources
                 if r.type == "pulumi:providers:azure-native"}
    for r in demo_plan.by_type(T + "management:ManagementGroupSubscription"):
        sub = next(s for s in demo_loaded.estate.azure.subscriptions if s.name == r.name.removeprefix("mgsub-"))
        assert r.provider is not None
        provider_urn = r.provider.rsplit("::", 1)[0]  # a provider reference is "<urn>::<id>"
        assert providers[provider_urn] == sub.id


def test_every_resource_is_in_a_uk_region_under_pulumi_mocks(demo_plan: Plan) -> None:
    located = [r for r in demo_plan.resources if isinstance(r.inputs.get("location"), str)]
    assert len(located) > 100
    assert {r.inputs["location"] for r in located} <= {"uksouth", "ukwest", "global"}


def test_every_taggable_resource_carries_the_required_tags_under_pulumi_mocks(demo_plan: Plan) -> None:
    taggables = [r for r in demo_plan.resources if taggable(r.type)]
    assert len(taggables) > 200
    for r in taggables:
        tags = r.inputs.get("tags") or {}
        missing = [k for k in REQUIRED_TAGS if not tags.get(k)]
        assert not missing, f"{r.type} {r.name} lacks {missing}"


def test_lob_resources_carry_the_catalogue_tags_under_pulumi_mocks(demo_plan: Plan,
                                                                   demo_loaded: LoadedEstate) -> None:
    lob = next(s for s in demo_loaded.estate.lob_systems if s.name == "revs-benefits")
    for vm in _lob_resources(demo_plan, "revs-benefits", T + "compute:VirtualMachine"):
        assert vm.inputs["tags"]["information-asset-owner"] == lob.owner
        assert vm.inputs["tags"]["data-classification"] == "OFFICIAL-SENSITIVE"
        assert vm.inputs["tags"]["cost-centre"] == lob.cost_centre
        assert vm.inputs["tags"]["tier"] == "tier-1"


def test_no_corp_vm_has_a_public_ip_and_rhel_runs_revenues_under_pulumi_mocks(demo_plan: Plan) -> None:
    assert demo_plan.by_type(T + "network:PublicIPAddress") == []
    nics = demo_plan.by_type(T + "network:NetworkInterface")
    corp_nics = [n for n in nics if n.inputs["tags"].get("landing-zone") == "corp"]
    assert len(corp_nics) == 21
    for nic in corp_nics:
        assert all(not cfg.get("publicIPAddress") for cfg in nic.inputs["ipConfigurations"])
    vms = _lob_resources(demo_plan, "revs-benefits", T + "compute:VirtualMachine")
    assert len(vms) == 4
    for vm in vms:
        assert vm.inputs["storageProfile"]["imageReference"]["publisher"] == "RedHat"
        assert vm.inputs["securityProfile"]["encryptionAtHost"] is True
        assert vm.inputs["osProfile"]["linuxConfiguration"]["disablePasswordAuthentication"] is True


def test_backup_policy_matches_the_tier_and_covers_every_vm_under_pulumi_mocks(
        demo_plan: Plan, demo_loaded: LoadedEstate) -> None:
    iaas = [s for s in demo_loaded.estate.lob_systems if s.hosting is Hosting.IAAS]
    for lob in iaas:
        (policy,) = _lob_resources(demo_plan, lob.name, T + "recoveryservices:ProtectionPolicy")
        props = policy.inputs["properties"]
        schedule = props["schedulePolicy"]
        daily = props["retentionPolicy"]["dailySchedule"]["retentionDuration"]
        if lob.tier is Tier.TIER1:
            # Enhanced policy every 4 hours: the Azure Backup minimum for VMs.
            assert props["policyType"] == "V2"
            assert schedule["scheduleRunFrequency"] == "Hourly"
            assert schedule["hourlySchedule"]["interval"] == 4
            assert daily == {"count": 35, "durationType": "Days"}
        else:
            assert schedule["scheduleRunFrequency"] == "Daily"
            assert daily == {"count": 30 if lob.tier is Tier.TIER2 else 14, "durationType": "Days"}
        vms = _lob_resources(demo_plan, lob.name, T + "compute:VirtualMachine")
        items = _lob_resources(demo_plan, lob.name, T + "recoveryservices:ProtectedItem")
        assert len(vms) == lob.vm_count
        assert sorted(i.inputs["properties"]["sourceResourceId"] for i in items) == sorted(str(v.id) for v in vms)
        assert {i.inputs["properties"]["policyId"] for i in items} == {policy.id}


def _expected_sources(loaded: LoadedEstate, zones: list[str]) -> set[str]:
    out: set[str] = set()
    nets: list[Any] = []
    for z in zones:
        kind = next(zone.kind for zone in loaded.estate.zones if zone.name == z)
        if kind is ZoneKind.INTERNET:
            out.add("Internet")
            continue
        for site in loaded.estate.sites:
            nets += [ipaddress.ip_network(v.cidr) for v in site.vlans if v.zone == z]
    return out | {str(n) for n in ipaddress.collapse_addresses(nets)}


def _rule_sources(rule: dict[str, Any]) -> set[str]:
    return set(rule.get("sourceAddressPrefixes") or [rule["sourceAddressPrefix"]])


def test_nsg_rules_are_the_declared_flows_under_pulumi_mocks(demo_plan: Plan, demo_loaded: LoadedEstate) -> None:
    spokes = [s for s in demo_loaded.estate.lob_systems if s.hosting is not Hosting.SAAS]
    assert len(spokes) == 15
    for lob in spokes:
        (nsg,) = _lob_resources(demo_plan, lob.name, T + "network:NetworkSecurityGroup")
        rules = nsg.inputs["securityRules"]
        # The declared flows; besides them, the system's own workload to its private endpoints (lob.py).
        allows = [r for r in rules if r["access"] == "Allow" and r.get("sourceAddressPrefix") != "AzureLoadBalancer"
                  and r["name"] != "allow-workload-to-private-endpoints"]
        assert sorted((int(r["destinationPortRange"]), r["protocol"].lower()) for r in allows) == sorted(
            (p.port, p.protocol) for p in lob.ports)
        for r in allows:
            assert _rule_sources(r) == _expected_sources(demo_loaded, lob.reachable_from), (lob.name, r["name"])
        deny = [r for r in rules if r["access"] == "Deny"]
        assert deny and deny[0]["priority"] == 4096 and deny[0]["sourceAddressPrefix"] == "*"
        # Every subnet of the spoke is behind the NSG.
        (vnet,) = _lob_resources(demo_plan, lob.name, T + "network:VirtualNetwork")
        assert vnet.inputs["addressSpace"]["addressPrefixes"] == [lob.address_space]
        assert all(s["networkSecurityGroup"]["id"] == nsg.id for s in vnet.inputs["subnets"])


def test_revenues_flows_reach_from_corporate_and_psn_vlans_only_under_pulumi_mocks(demo_plan: Plan) -> None:
    (nsg,) = _lob_resources(demo_plan, "revs-benefits", T + "network:NetworkSecurityGroup")
    oracle = next(r for r in nsg.inputs["securityRules"] if r["destinationPortRange"] == "1521")
    sources = _rule_sources(oracle)
    corporate = ipaddress.IPv4Network("10.10.10.0/23")
    assert any(corporate.subnet_of(ipaddress.IPv4Network(s)) for s in sources)
    assert "10.10.70.0/24" in sources                 # the civic centre's PSN DMZ
    assert not any(ipaddress.ip_network("10.14.50.0/23").overlaps(ipaddress.ip_network(s)) for s in sources)


def test_spokes_join_the_virtual_wan_hub_under_pulumi_mocks(demo_plan: Plan) -> None:
    conns = demo_plan.by_type(T + "network:HubVirtualNetworkConnection")
    lob_names = {r.name for r in demo_plan.by_type("estate:lob:System")}
    vnet_ids = {v.id for v in demo_plan.by_type(T + "network:VirtualNetwork")
                if any(a.name in lob_names for a in demo_plan.ancestors(v)) and "dr-of-region" not in v.tags}
    assert {c.inputs["remoteVirtualNetwork"]["id"] for c in conns} >= vnet_ids
    assert len(vnet_ids) == 15


def test_dr_to_ukwest_only_for_tiers_that_need_it_under_pulumi_mocks(demo_plan: Plan,
                                                                     demo_loaded: LoadedEstate) -> None:
    for lob in demo_loaded.estate.lob_systems:
        if lob.hosting is Hosting.IAAS:
            asr = _lob_resources(demo_plan, lob.name, T + "recoveryservices:ReplicationPolicy")
            assert bool(asr) is lob.tier.needs_dr, lob.name
        if lob.hosting is Hosting.PAAS:
            fog = _lob_resources(demo_plan, lob.name, T + "sql:FailoverGroup")
            assert bool(fog) is lob.tier.needs_dr, lob.name
            if fog:
                servers = _lob_resources(demo_plan, lob.name, T + "sql:Server")
                assert {s.inputs["location"] for s in servers} == {"uksouth", "ukwest"}


def test_saas_systems_get_dns_and_conditional_access_only_under_pulumi_mocks(
        demo_plan: Plan, demo_loaded: LoadedEstate) -> None:
    assert demo_plan.built is not None
    for lob in (s for s in demo_loaded.estate.lob_systems if s.hosting is Hosting.SAAS):
        records = _lob_resources(demo_plan, lob.name, T + "dns:RecordSet")
        assert [r.inputs["cnameRecord"]["cname"] for r in records] == lob.saas_fqdns
        assert _lob_resources(demo_plan, lob.name, T + "network:VirtualNetwork") == []
        ca = demo_plan.built.lob_systems[lob.name].args.conditional_access
        assert ca["require_mfa"] is True
        assert ca["require_compliant_or_hybrid_joined_device"] is (lob.classification.value == "OFFICIAL-SENSITIVE")


def test_paas_sql_is_private_audited_and_encrypted_under_pulumi_mocks(demo_plan: Plan) -> None:
    (server,) = _lob_resources(demo_plan, "data-warehouse", T + "sql:Server")
    assert server.inputs["publicNetworkAccess"] == "Disabled"
    assert server.inputs["administrators"]["azureADOnlyAuthentication"] is True
    peps = _lob_resources(demo_plan, "data-warehouse", T + "network:PrivateEndpoint")
    groups = sorted(p.inputs["privateLinkServiceConnections"][0]["groupIds"][0] for p in peps)
    assert groups == ["sites", "sqlServer", "vault"]
    (tde,) = _lob_resources(demo_plan, "data-warehouse", T + "sql:TransparentDataEncryption")
    assert tde.inputs["state"] == "Enabled"


def test_tenancy_guardrails_rbac_and_evidence_worm_under_pulumi_mocks(demo_plan: Plan,
                                                                      demo_loaded: LoadedEstate) -> None:
    assignments = demo_plan.by_type(T + "authorization:PolicyAssignment")
    assert all(len(a.inputs["policyAssignmentName"]) <= 24 for a in assignments)
    ids = {a.inputs["policyDefinitionId"].rsplit("/", 1)[-1] for a in assignments}
    assert {"b2f588d7-1ed5-47c7-977d-b93dff520c4c", "3937f550-eedd-4639-9c5e-294358be442e",
            "6d220abf-cf6f-4b17-8f7e-0644c4cc84b4", "e56962a6-4747-49cd-b67b-bf8b01975c4c"} <= ids
    locations = next(a for a in assignments if a.name == "pa-allowed-locations")
    assert locations.inputs["parameters"]["listOfAllowedLocations"]["value"] == ["uksouth", "ukwest"]
    groups = demo_loaded.estate.azure.entra_groups
    roles = demo_plan.by_type(T + "authorization:RoleAssignment")
    auditor_scopes = {r.inputs["scope"] for r in roles if r.inputs["principalId"] == groups.auditors}
    # The evidence account (the others are Site Recovery's cache accounts).
    (account,) = [a for a in demo_plan.by_type(T + "storage:StorageAccount")
                  if "immutableStorageWithVersioning" in a.inputs]
    assert auditor_scopes and all(s.startswith(account.id) for s in auditor_scopes)
    # Management plane: Contributor on the landing zones (data-plane roles on vaults: test_first_deployment).
    engineer = [r for r in roles if r.inputs["principalId"] == groups.infrastructure_engineers
                and "Key Vault" not in r.inputs["description"]]
    assert [r.inputs["roleDefinitionId"].rsplit("/", 1)[-1] for r in engineer] == [
        "b24988ac-6180-42a0-ab88-20f7382dd24c"]
    assert engineer[0].inputs["scope"].endswith("/managementGroups/hdc-landingzones")
    (blob,) = demo_plan.by_type(T + "storage:BlobServiceProperties")
    assert blob.inputs["isVersioningEnabled"] is True
    worm = demo_plan.by_type(T + "storage:BlobContainerImmutabilityPolicy")
    assert {w.inputs["immutabilityPeriodSinceCreationInDays"] for w in worm} == {
        demo_loaded.estate.azure.evidence_retention_days}
    assert account.inputs["immutableStorageWithVersioning"]["enabled"] is True
    assert len(demo_plan.by_type(T + "consumption:Budget")) == len(demo_loaded.estate.azure.budgets)
    assert {p.inputs["pricingName"] for p in demo_plan.by_type(T + "security:Pricing")} >= {
        "VirtualMachines", "SqlServers", "StorageAccounts", "KeyVaults"}


def test_plan_json_never_holds_a_generated_password_under_pulumi_mocks(demo_plan: Plan) -> None:
    text = json.dumps(demo_plan.to_json(), default=str)
    assert "mock-password-" not in text
    assert "[secret]" in text  # the Windows admin passwords were there, redacted


def test_violations_point_back_to_the_estate_line_under_pulumi_mocks(demo_plan: Plan,
                                                                    demo_loaded: LoadedEstate) -> None:
    vm = _lob_resources(demo_plan, "planning", T + "compute:VirtualMachine")[0]
    where = demo_plan.origin(vm)
    assert where is not None
    file, line = where
    assert file == "lob_systems.yaml"   # relative to the estate directory, as findings cite it
    assert "name: planning" in (demo_loaded.root / file).read_text().splitlines()[line - 1]


def _spokes_only(loaded: LoadedEstate) -> Plan:
    """Hub and LOB systems alone under mocks (no tenancy, WAN or Wi-Fi): the hub contract's two designs."""
    import pulumi

    from infra import hub, lob
    from infra.config import InfraConfig
    from infra.context import Context
    from infra.naming import Namer
    from infra.plan import run_under_mocks

    def program() -> None:
        ctx = Context(loaded=loaded, config=InfraConfig(), namer=Namer("hdc", "prod"))
        ctx.workspace_id = pulumi.Output.from_input("/subscriptions/x/workspaces/log-central")
        h = hub.build(ctx)
        lob.build(ctx, h)
        hub.connect_pending_spokes(h, None)   # no VPN gateway here: peerings without gateway transit

    resources, _ = run_under_mocks(program)
    return Plan(stack="demo", resources=resources)


def test_hub_vnet_design_peers_every_spoke_both_ways_with_ddos_under_pulumi_mocks(tmp_path: Any) -> None:
    from security_checks.model.loader import load_estate

    from .conftest import copy_demo

    estate = copy_demo(tmp_path / "estate", {"organisation.yaml": [
        ("design: virtual-wan", "design: hub-vnet"), ("ddos_protection: false", "ddos_protection: true")]})
    plan = _spokes_only(load_estate(estate))
    assert plan.by_type(T + "network:VirtualWan") == [] and plan.by_type(T + "network:VirtualHub") == []
    (hub_vnet,) = [v for v in plan.by_type(T + "network:VirtualNetwork") if v.name == "vnet-hub"]
    (ddos,) = plan.by_type(T + "network:DdosProtectionPlan")
    peerings = plan.by_type(T + "network:VirtualNetworkPeering")
    spokes = [v for v in plan.by_type(T + "network:VirtualNetwork")
              if v.name != "vnet-hub" and "dr-of-region" not in v.tags]   # recovery VNets join at failover
    assert len(spokes) == 15 and len(peerings) == 30
    for spoke in spokes:
        to_hub = [p for p in peerings if p.inputs["virtualNetworkName"] == spoke.inputs["virtualNetworkName"]]
        from_hub = [p for p in peerings if p.inputs["remoteVirtualNetwork"]["id"] == spoke.id]
        assert [p.inputs["remoteVirtualNetwork"]["id"] for p in to_hub] == [hub_vnet.id]
        assert len(from_hub) == 1 and from_hub[0].inputs["virtualNetworkName"] == hub_vnet.inputs["virtualNetworkName"]
        assert spoke.inputs["ddosProtectionPlan"]["id"] == ddos.id
    # Hub and systems alone: the vaults' data-plane roles come with the rest (infra/vault_access.py).
    assert [v for v in evaluate(plan) if v.check_id != "infra.policy.keyvault_reachable"] == []


def test_the_entry_point_pulumi_runs_builds_and_exports_under_pulumi_mocks() -> None:
    """infra/__main__.py, as `pulumi up` would run it (stack config absent: the defaults, the demo)."""
    import runpy
    from pathlib import Path

    from infra.plan import run_under_mocks

    main = Path(__file__).resolve().parents[2] / "infra" / "__main__.py"
    resources, _ = run_under_mocks(lambda: runpy.run_path(str(main), run_name="__main__"))
    assert sum(r.type == "estate:lob:System" for r in resources) == 27
    assert any(r.type == T + "operationalinsights:Workspace" for r in resources)
