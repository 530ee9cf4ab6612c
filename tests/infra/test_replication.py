"""Issue 14 item 11: tier-1 VMs are replicated to the other UK region by Site Recovery (Azure to Azure).

The program runs under Pulumi's mock runtime (the SDK's stand-in for the engine and Azure Resource
Manager, which cannot run here): the tests read the resource graph it registers, as `estate infra
plan` does, and call the policy rules directly over hand-built properties as CrossGuard hands them
over. infra/AZURE-RULES.md says which Azure rule each test encodes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from infra.plan import Plan, PlannedResource, evaluate, run_plan
from infra.policy import rules
from infra.policy.pack import RULES
from infra.policy.rules import PolicyResource
from security_checks.checks import check
from security_checks.model.loader import load_estate

from .conftest import copy_demo

T = "azure-native:"
RS = T + "recoveryservices:"
VM = T + "compute:VirtualMachine"
REPO = Path(__file__).resolve().parents[2]
# Contributor and Storage Blob Data Contributor (built-in ids, the same in every tenant).
CACHE_ROLES = ("b24988ac-6180-42a0-ab88-20f7382dd24c", "ba92f5b4-2d11-453d-a403-e96b0029c9fe")


def _a2a(item: PlannedResource) -> dict[str, Any]:
    return dict(item.inputs["properties"]["providerSpecificDetails"])


def _replication_of(plan: Plan) -> dict[str, PlannedResource]:
    """VM id -> its protected item (each VM at most once)."""
    out: dict[str, PlannedResource] = {}
    for item in plan.by_type(RS + "ReplicationProtectedItem"):
        vm_id = _a2a(item)["fabricObjectId"]
        assert vm_id not in out, f"{vm_id} replicated twice"
        out[vm_id] = item
    return out


def check_replication(plan: Plan) -> int:
    """Every tier-1 VM has one protected item that replicates it, with every piece Azure needs, into
    the other region; returns how many VMs were checked."""
    by_vm = _replication_of(plan)
    vaults = {r.inputs["vaultName"]: r for r in plan.by_type(RS + "Vault")}
    tier1 = [vm for vm in plan.by_type(VM) if vm.tags.get("tier") == "tier-1"]
    for vm in tier1:
        item = by_vm.get(str(vm.id))
        assert item is not None, f"{vm.name} (tier-1) is not replicated"
        a2a = _a2a(item)
        source = vm.inputs["location"]
        vault = vaults[item.inputs["resourceName"]]
        target = vault.inputs["location"]
        assert {source, target} == {"uksouth", "ukwest"}, (vm.name, source, target)
        assert a2a["instanceType"] == "A2A"
        # The recovery network is in the target region and is mapped from the VM's own spoke.
        net = plan.by_id(a2a["recoveryAzureNetworkId"])
        assert net is not None and net.inputs["location"] == target
        assert a2a["recoverySubnetName"] in {s["name"] for s in net.inputs["subnets"]}
        nic = plan.by_id(vm.inputs["networkProfile"]["networkInterfaces"][0]["id"])
        assert nic is not None
        spoke_id = nic.inputs["ipConfigurations"][0]["subnet"]["id"].rsplit("/subnets/", 1)[0]
        mappings = [m for m in plan.by_type(RS + "ReplicationNetworkMapping")
                    if m.inputs["resourceName"] == vault.inputs["vaultName"]]
        assert [(m.inputs["properties"]["fabricSpecificDetails"]["primaryNetworkId"],
                 m.inputs["properties"]["recoveryNetworkId"]) for m in mappings] == [(spoke_id, str(net.id))]
        # Fabrics per region, an A2A container in each, mapped both ways with the replication policy.
        fabrics = {f.inputs["fabricName"]: f.inputs["properties"]["customDetails"]
                   for f in plan.by_type(RS + "ReplicationFabric")
                   if f.inputs["resourceName"] == vault.inputs["vaultName"]}
        assert fabrics[item.inputs["fabricName"]] == {"instanceType": "Azure", "location": source}
        assert sorted(d["location"] for d in fabrics.values()) == sorted([source, target])
        container = plan.by_id(a2a["recoveryContainerId"])
        assert container is not None and container.inputs["properties"] == {"providerSpecificInput": [
            {"instanceType": "A2A"}]}
        assert fabrics[container.inputs["parentResourcePath"].rsplit("/", 1)[-1]]["location"] == target
        policy = plan.by_id(item.inputs["properties"]["policyId"])
        assert policy is not None and policy.type == RS + "ReplicationPolicy"
        container_maps = [m for m in plan.by_type(RS + "ReplicationProtectionContainerMapping")
                          if m.inputs["resourceName"] == vault.inputs["vaultName"]]
        forward = [m for m in container_maps if m.inputs["fabricName"] == item.inputs["fabricName"]
                   and m.inputs["protectionContainerName"] == item.inputs["protectionContainerName"]]
        assert [m.inputs["properties"]["targetProtectionContainerId"] for m in forward] == [str(container.id)]
        assert {m.inputs["properties"]["policyId"] for m in container_maps} == {str(policy.id)}
        assert len(container_maps) == 2   # and back, for failback
        # The OS disk, staged through a Standard general-purpose v2 cache account in the source region.
        (disk,) = a2a["vmManagedDisks"]
        assert disk["diskId"].endswith(f"/resourceGroups/{vm.inputs['resourceGroupName']}/providers/"
                                       f"Microsoft.Compute/disks/{vm.inputs['storageProfile']['osDisk']['name']}")
        cache = plan.by_id(disk["primaryStagingAzureStorageAccountId"])
        assert cache is not None and cache.inputs["location"] == source
        assert cache.inputs["kind"] == "StorageV2" and cache.inputs["sku"]["name"].startswith("Standard_")
        assert disk["recoveryResourceGroupId"] == a2a["recoveryResourceGroupId"]
        assert a2a["recoveryResourceGroupId"].endswith("/resourceGroups/" + vault.inputs["resourceGroupName"])
        # A zonal VM keeps its zone only where the target region has zones (UK West has none).
        zone = a2a.get("recoveryAvailabilityZone")
        assert zone == (vm.inputs["zones"][0] if target == "uksouth" else None), (vm.name, zone)
        # The vault's identity may write to the cache; the private vault is reached by a private endpoint.
        grants = [g for g in plan.by_type(T + "authorization:RoleAssignment") if g.inputs["scope"] == str(cache.id)]
        assert {g.inputs["roleDefinitionId"].rsplit("/", 1)[-1] for g in grants} == set(CACHE_ROLES)
        assert any(c["privateLinkServiceId"] == str(vault.id) and c["groupIds"] == ["AzureSiteRecovery"]
                   for pe in plan.by_type(T + "network:PrivateEndpoint")
                   for c in pe.inputs["privateLinkServiceConnections"])
    return len(tier1)


@pytest.mark.slow
def test_every_tier1_vm_is_replicated_to_the_other_region_under_pulumi_mocks(demo_plan: Plan) -> None:
    assert check_replication(demo_plan) >= 4
    # Tier 2 and 3 VMs are backed up, not replicated.
    replicated = _replication_of(demo_plan)
    assert all(str(vm.id) not in replicated for vm in demo_plan.by_type(VM) if vm.tags.get("tier") != "tier-1")
    assert evaluate(demo_plan) == []


@pytest.mark.slow
def test_a_tier1_vm_in_the_secondary_region_replicates_to_the_primary_under_pulumi_mocks(tmp_path: Path) -> None:
    estate = copy_demo(tmp_path / "estate", {"lob_systems.yaml": [
        ("tier: tier-1, cost_centre: FIN-REVS,", "tier: tier-1, cost_centre: FIN-REVS, region: ukwest,")]})
    plan = run_plan(load_estate(estate, policy=False))
    revs = [vm for vm in plan.by_type(VM) if vm.tags.get("system") == "revs-benefits"]
    assert revs and {vm.inputs["location"] for vm in revs} == {"ukwest"}
    check_replication(plan)
    zones = {_a2a(_replication_of(plan)[str(vm.id)]).get("recoveryAvailabilityZone") for vm in revs}
    assert zones == {"1", "2", "3"}   # into UK South, which has availability zones
    assert evaluate(plan) == []


@pytest.mark.slow
def test_second_estate_replicates_its_tier1_vms_under_pulumi_mocks() -> None:
    plan = run_plan(load_estate(REPO / "tests" / "estates" / "glenmoray", policy=False))
    assert check_replication(plan) >= 1
    assert evaluate(plan) == []


# ---- the rules -------------------------------------------------------------------------------------


def _res(typ: str, name: str, props: dict[str, Any]) -> PolicyResource:
    return PolicyResource(type=typ, name=name, urn=f"urn:test::{name}", props=props, id=f"/ids/{name}")


def _vm(name: str, tier: str, location: str = "uksouth") -> PolicyResource:
    return _res(VM, name, {"vmName": name, "location": location, "tags": {"tier": tier}})


def _item(name: str, vm: PolicyResource, network: PolicyResource) -> PolicyResource:
    return _res(RS + "ReplicationProtectedItem", name, {"properties": {"providerSpecificDetails": {
        "instanceType": "A2A", "fabricObjectId": vm.id, "recoveryAzureNetworkId": network.id}}})


def test_replication_rule_is_registered_with_its_metadata() -> None:
    assert "infra.policy.tier1_vm_replicated" in {r.check_id for r in RULES}
    assert check("infra.policy.tier1_vm_replicated").remediation


def test_a_tier1_vm_without_a_protected_item_is_caught() -> None:
    vm1, vm2, vm3 = _vm("vm-revs-01", "tier-1"), _vm("vm-revs-02", "tier-1"), _vm("vm-gis-01", "tier-3")
    dr_net = _res(T + "network:VirtualNetwork", "vnet-revs-dr", {"location": "ukwest"})
    resources = [vm1, vm2, vm3, dr_net, _item("asr-revs-01", vm1, dr_net)]
    found = list(rules.tier1_vm_replicated(resources))
    assert [(r.name, "not replicated" in m) for r, m in found] == [("vm-revs-02", True)]
    # At a real preview ids are unknown: the item's properties made from the VM count.
    preview_vm = PolicyResource(type=VM, name="vm-revs-02", urn="urn:test::vm-revs-02",
                                props={"location": "uksouth", "tags": {"tier": "tier-1"}})
    preview_item = PolicyResource(type=RS + "ReplicationProtectedItem", name="asr-02", urn="urn:test::asr-02",
                                  props={"properties": {}},
                                  property_dependencies={"properties": ("urn:test::vm-revs-02",)})
    assert list(rules.tier1_vm_replicated([preview_vm, preview_item])) == []


def test_replication_into_the_vms_own_region_is_caught() -> None:
    vm = _vm("vm-revs-01", "tier-1")
    same = _res(T + "network:VirtualNetwork", "vnet-revs-dr", {"location": "uksouth"})
    other = _res(T + "network:VirtualNetwork", "vnet-revs-dr2", {"location": "ukwest"})
    assert list(rules.dr_region_differs([vm, other, _item("asr-ok", vm, other)])) == []
    ((res, message),) = rules.dr_region_differs([vm, same, _item("asr-bad", vm, same)])
    assert res.name == "asr-bad" and "uksouth" in message and "own region" in message
