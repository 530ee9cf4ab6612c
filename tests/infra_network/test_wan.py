"""The WAN under Pulumi's mock runtime (stands in for the engine and Azure Resource Manager)."""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Any

from infra import wan
from infra.plan import REDACTED, evaluate_plan
from infra.policy.network_rules import RULES as NETWORK_RULES
from security_checks.model.loader import load_estate
from security_checks.network import reach as network_reach

from .conftest import DEMO, copy_demo, network_plan

N = "azure-native:network:"


def _by_name(plan: Any, typ: str) -> dict[str, Any]:
    return {r.inputs.get(wan_name_key(typ)): r for r in plan.by_type(typ)}


def wan_name_key(typ: str) -> str:
    return {"VpnSite": "vpnSiteName", "VpnConnection": "connectionName", "LocalNetworkGateway":
            "localNetworkGatewayName", "VirtualNetworkGatewayConnection": "virtualNetworkGatewayConnectionName",
            }[typ.rsplit(":", 1)[-1]]


def test_a_vpn_site_and_connection_per_council_site_under_pulumi_mocks(demo_plan: Any, demo_loaded: Any) -> None:
    estate = demo_loaded.estate
    sites = _by_name(demo_plan, N + "VpnSite")
    conns = _by_name(demo_plan, N + "VpnConnection")
    assert set(sites) == {f"vst-hdc-{s.name}-prod-uks" for s in estate.sites} | {"vst-hdc-psn-prod-uks"}
    assert set(conns) == {f"vcn-hdc-{s.name}-prod-uks" for s in estate.sites} | {"vcn-hdc-psn-prod-uks"}
    for site in estate.sites:
        vst = sites[f"vst-hdc-{site.name}-prod-uks"]
        link = vst.inputs["vpnSiteLinks"][0]
        assert link["ipAddress"] == site.wan.public_ip
        assert link["bgpProperties"]["asn"] == site.wan.bgp_asn
        assert link["linkProperties"]["linkSpeedInMbps"] == site.wan.bandwidth_mbps
        assert vst.inputs["addressSpace"]["addressPrefixes"] == site.ranges
        assert vst.tags["estate-role"] == "site"
        conn = conns[f"vcn-hdc-{site.name}-prod-uks"]
        # Each connection points at its own site, not a neighbour's.
        assert conn.inputs["remoteVpnSite"]["id"] == vst.id


def test_every_site_vpn_is_ikev2_with_strong_proposals_under_pulumi_mocks(demo_plan: Any) -> None:
    for conn in demo_plan.by_type(N + "VpnConnection"):
        assert conn.inputs["vpnConnectionProtocolType"] == "IKEv2"
        (policy,) = conn.inputs["ipsecPolicies"]
        assert policy["ikeEncryption"] in ("AES256", "GCMAES256")
        assert policy["ikeIntegrity"] in ("SHA256", "SHA384")
        assert policy["dhGroup"] in ("DHGroup14", "DHGroup24", "ECP384")
        assert policy["ipsecEncryption"] == "GCMAES256"
        assert policy["pfsGroup"] not in ("None", "PFS1", "PFS2")
        # The link settings carry the pre-shared key, so the whole property is a secret.
        assert conn.inputs["vpnLinkConnections"] == REDACTED


def test_virtual_wan_psn_uses_routing_intent_and_no_hub_route_table_under_pulumi_mocks(
        demo_plan: Any, demo_loaded: Any) -> None:
    """Routing intent and custom hub route tables cannot be combined (Azure's documented limitation),
    so the PSN connection stays on the hub's default routing and the firewall isolates it."""
    estate = demo_loaded.estate
    assert not demo_plan.by_type(N + "HubRouteTable")
    (fw,) = demo_plan.by_type(N + "AzureFirewall")
    (intent,) = demo_plan.by_type(N + "RoutingIntent")
    policies = {p["name"]: p for p in intent.inputs["routingPolicies"]}
    assert policies["PrivateTraffic"]["destinations"] == ["PrivateTraffic"]
    assert policies["PrivateTraffic"]["nextHop"] == fw.id
    conns = _by_name(demo_plan, N + "VpnConnection")
    for conn in conns.values():
        assert "routingConfiguration" not in conn.inputs   # routing intent manages every connection's tables
    # Exactly the sources the firewall rules towards the psn zone allow: CIV-004 and CIV-011.
    reach = network_reach.psn_reach(estate)
    assert reach.rules == ("CIV-004", "CIV-011")
    assert set(reach.zones) == {"corporate", "azure"}
    # The PSN's VPN site advertises the PSN prefixes and nothing else.
    psn_site = _by_name(demo_plan, N + "VpnSite")["vst-hdc-psn-prod-uks"]
    assert psn_site.inputs["addressSpace"]["addressPrefixes"] == list(reach.psn_prefixes)
    assert psn_site.tags["estate-role"] == "psn" and "untrusted-prefixes" not in psn_site.tags
    assert conns["vcn-hdc-psn-prod-uks"].inputs["remoteVpnSite"]["id"] == psn_site.id


def _untrusted(estate: Any) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    return [v.network for s in estate.sites for v in s.vlans if v.zone in ("guest-wifi", "public-wifi")]


def test_firewall_policy_allows_psn_only_from_declared_zones_under_pulumi_mocks(
        demo_plan: Any, demo_loaded: Any) -> None:
    estate = demo_loaded.estate
    reach = network_reach.psn_reach(estate)
    psn = [ipaddress.ip_network(p) for p in reach.psn_prefixes]
    untrusted = _untrusted(estate)
    assert untrusted
    (group,) = demo_plan.by_type(N + "FirewallPolicyRuleCollectionGroup")
    collections = {c["name"]: c for c in group.inputs["ruleCollections"]}
    deny, allow = collections["psn-deny-untrusted"], collections["psn-declared-zones"]
    # The explicit deny for guest and public Wi-Fi is evaluated before the allow.
    assert deny["action"]["type"] == "Deny" and allow["action"]["type"] == "Allow"
    assert deny["priority"] < allow["priority"]
    to_psn = next(r for r in deny["rules"] if r["name"] == "guest-public-wifi-to-psn")
    assert {ipaddress.ip_network(p) for p in to_psn["sourceAddresses"]} == set(untrusted)
    assert to_psn["destinationAddresses"] == list(reach.psn_prefixes)
    assert to_psn["ipProtocols"] == ["Any"] and to_psn["destinationPorts"] == ["*"]
    # The allow: each declared rule, its own sources, to the PSN prefixes, on its declared ports only.
    rules = {r["name"]: r for r in allow["rules"]}
    assert set(rules) == {"civ-004-tcp", "civ-011-tcp"}
    assert rules["civ-004-tcp"]["sourceAddresses"] == ["10.10.10.0/25"]
    assert rules["civ-004-tcp"]["ipProtocols"] == ["TCP"] and rules["civ-004-tcp"]["destinationPorts"] == ["443"]
    assert {p for r in rules.values() for p in r["sourceAddresses"]} == set(reach.prefixes)
    for rule in rules.values():
        assert rule["destinationAddresses"] == list(reach.psn_prefixes)
        sources = [ipaddress.ip_network(p) for p in rule["sourceAddresses"]]
        assert not any(s.overlaps(u) for s in sources for u in untrusted)
    # No other network rule in the policy touches the PSN.
    for name, collection in collections.items():
        if name in ("psn-deny-untrusted", "psn-declared-zones"):
            continue
        for rule in collection["rules"]:
            dests = [ipaddress.ip_network(d) for d in rule.get("destinationAddresses", [])]
            assert not any(d.overlaps(p) for d in dests for p in psn), (name, rule["name"])


def test_firewall_policy_breakout_and_private_dns_under_pulumi_mocks(demo_plan: Any, demo_loaded: Any) -> None:
    conn = demo_loaded.estate.azure.connectivity
    (policy,) = demo_plan.by_type(N + "FirewallPolicy")
    assert policy.inputs["sku"] == {"tier": "Standard"} and policy.inputs["threatIntelMode"] == "Deny"
    (group,) = demo_plan.by_type(N + "FirewallPolicyRuleCollectionGroup")
    rules = {r["name"]: r for c in group.inputs["ruleCollections"] for r in c["rules"]}
    assert rules["allowed-fqdns"]["targetFqdns"] == conn.breakout_allowed_fqdns
    assert rules["allowed-categories"]["webCategories"] == conn.breakout_allowed_categories
    assert rules["civ-004-tcp"]["sourceAddresses"][0] == "10.10.10.0/25"
    (fw,) = demo_plan.by_type(N + "AzureFirewall")
    assert fw.inputs["sku"] == {"name": "AZFW_Hub", "tier": "Standard"}
    (intent,) = demo_plan.by_type(N + "RoutingIntent")
    assert {p["name"]: p["nextHop"] for p in intent.inputs["routingPolicies"]} == {
        "InternetTraffic": fw.id, "PrivateTraffic": fw.id}
    zones = {z.inputs["privateZoneName"] for z in demo_plan.by_type("azure-native:privatedns:PrivateZone")}
    assert zones == set(network_reach.PRIVATE_DNS_ZONES.values())
    links = demo_plan.by_type("azure-native:privatedns:VirtualNetworkLink")
    assert {link.inputs["privateZoneName"] for link in links} == zones
    (resolver,) = demo_plan.by_type("azure-native:dnsresolver:DnsResolver")
    assert resolver.inputs["location"] == "uksouth"


def test_demo_network_has_no_policy_violation_under_pulumi_mocks(demo_plan: Any) -> None:
    assert evaluate_plan(demo_plan, NETWORK_RULES) == []


def test_hub_vnet_design_uses_local_gateways_and_a_udr_under_pulumi_mocks(tmp_path: Path) -> None:
    estate_dir = copy_demo(tmp_path / "estate", {"organisation.yaml": [
        ("design: virtual-wan", "design: hub-vnet"),
        ("hub_address_space: 10.100.0.0/23", "hub_address_space: 10.100.0.0/23\n    firewall_tier: Premium\n"
                                              "    tls_inspection: true"),
        ("    firewall_tier: Standard\n    tls_inspection: false\n", ""),
    ]})
    plan = network_plan(estate_dir)
    estate = load_estate(estate_dir).estate
    assert not plan.by_type(N + "VpnSite")
    lngs = _by_name(plan, N + "LocalNetworkGateway")
    assert set(lngs) == {f"lgw-hdc-{s.name}-prod-uks" for s in estate.sites} | {"lgw-hdc-psn-prod-uks"}
    assert lngs["lgw-hdc-civic-centre-prod-uks"].inputs["gatewayIpAddress"] == "203.0.113.10"
    for conn in plan.by_type(N + "VirtualNetworkGatewayConnection"):
        assert conn.inputs["connectionProtocol"] == "IKEv2"
        assert conn.inputs["ipsecPolicies"][0]["pfsGroup"] == "ECP384"
        assert conn.inputs["sharedKey"] == REDACTED
    (udr,) = [t for t in plan.by_type(N + "RouteTable") if t.inputs["tags"].get("estate-role") == "psn"]
    # BGP propagation stays on: Microsoft says the gateway won't function on a GatewaySubnet without it.
    assert udr.inputs["disableBgpRoutePropagation"] is False
    assert {r["nextHopType"] for r in udr.inputs["routes"]} == {"VirtualAppliance"}
    # To the firewall's private IP: the first usable host of AzureFirewallSubnet (10.100.0.64/26).
    assert {r["nextHopIpAddress"] for r in udr.inputs["routes"]} == {"10.100.0.68"}
    reach = network_reach.psn_reach(estate)
    # The PSN's and declared prefixes, and the spokes' (here the identity VNet): one path both ways.
    spokes = {estate.azure.connectivity.identity_address_space}
    assert {r["addressPrefix"] for r in udr.inputs["routes"]} == {*reach.psn_prefixes, *reach.prefixes, *spokes}
    # The table is the GatewaySubnet's (and only its): unattached, it would do nothing. The NPS subnet
    # has its spoke table (everything to the firewall).
    attached = {s.inputs["subnetName"]: s.inputs.get("routeTable") for s in plan.by_type(N + "Subnet")}
    assert attached["GatewaySubnet"] == {"id": udr.id}
    assert {name for name, rt in attached.items() if rt} == {"GatewaySubnet", "snet-nps"}
    assert attached["snet-nps"] != {"id": udr.id}
    # The UDR is the hub-vnet design's: no routing intent or hub route table here.
    assert not plan.by_type(N + "RoutingIntent") and not plan.by_type(N + "HubRouteTable")
    (group,) = plan.by_type(N + "FirewallPolicyRuleCollectionGroup")
    assert {"psn-deny-untrusted", "psn-declared-zones"} <= {c["name"] for c in group.inputs["ruleCollections"]}
    # TLS inspection (this copy turns it on): the policy reads the CA from the network vault through
    # its own identity, which holds Key Vault Secrets User on that vault before the policy is written.
    (policy,) = plan.by_type(N + "FirewallPolicy")
    (identity,) = plan.by_type("azure-native:managedidentity:UserAssignedIdentity")
    assert policy.inputs["sku"]["tier"] == "Premium"
    assert policy.inputs["identity"] == {"type": "UserAssigned", "userAssignedIdentities": [identity.id]}
    ca = policy.inputs["transportSecurity"]["certificateAuthority"]
    assert ca["name"] == "tls-inspection-ca" and ca["keyVaultSecretId"].endswith("secrets/tls-inspection-ca")
    (vault,) = [v for v in plan.by_type("azure-native:keyvault:Vault")
                if ca["keyVaultSecretId"] == f"https://{v.inputs['vaultName']}.vault.azure.net/secrets/tls-inspection-ca"]
    grants = [g for g in plan.by_type("azure-native:authorization:RoleAssignment")
              if g.inputs.get("roleDefinitionId", "").endswith(wan.KV_SECRETS_USER)]
    assert len(grants) == 1 and grants[0].inputs["principalType"] == "ServicePrincipal"
    assert grants[0].inputs["scope"] == vault.id
    subnets = {s.inputs["subnetName"]: s.inputs["addressPrefix"] for s in plan.by_type(N + "Subnet")}
    assert subnets["GatewaySubnet"] == "10.100.0.0/26" and subnets["AzureFirewallSubnet"] == "10.100.0.64/26"
    (policy,) = plan.by_type(N + "FirewallPolicy")
    assert policy.inputs["sku"] == {"tier": "Premium"} and "transportSecurity" in policy.inputs
    assert evaluate_plan(plan, NETWORK_RULES) == []


def test_secondary_hub_reuses_vpn_sites_under_pulumi_mocks(tmp_path: Path) -> None:
    estate_dir = copy_demo(tmp_path / "estate", {"organisation.yaml": [
        ("secondary_hub: false", "secondary_hub: true")]})
    plan = network_plan(estate_dir)
    sites = len(load_estate(estate_dir).estate.sites)
    assert len(plan.by_type(N + "VpnGateway")) == 2
    assert len(plan.by_type(N + "VpnSite")) == sites + 1          # one per site, plus the PSN, once
    assert len(plan.by_type(N + "VpnConnection")) == 2 * sites + 1   # every site to both hubs; PSN primary only
    assert {f.inputs["location"] for f in plan.by_type(N + "AzureFirewall")} == {"uksouth", "ukwest"}


def test_psn_reach_follows_the_firewall_policy() -> None:
    estate = load_estate(DEMO).estate
    reach = network_reach.psn_reach(estate)
    assert reach.psn_prefixes == ("10.10.70.0/24",)
    spokes = {lob.address_space for lob in estate.lob_systems if lob.address_space}
    assert set(reach.prefixes) == {"10.10.10.0/25"} | spokes


def test_hub_vnet_creation_order_has_no_cycle_under_pulumi_mocks(tmp_path: Path, monkeypatch: Any) -> None:
    """Firewall subnets -> firewall -> PSN route table -> GatewaySubnet -> VPN gateway, as the engine
    would order them (the dependencies each registration declares, recorded from the mock monitor)."""
    from infra import plan as plan_module

    deps: dict[str, set[str]] = {}
    original = plan_module._recording_monitor

    def recording(mocks: Any, sink: Any) -> Any:
        monitor = original(mocks, sink)
        register = monitor.RegisterResource

        def register_and_record(request: Any) -> Any:
            response = register(request)
            urns = set(request.dependencies)
            for prop in request.propertyDependencies.values():
                urns |= set(prop.urns)
            deps[response.urn] = urns
            return response

        monitor.RegisterResource = register_and_record
        return monitor

    monkeypatch.setattr(plan_module, "_recording_monitor", recording)
    plan = network_plan(copy_demo(tmp_path / "estate", {"organisation.yaml": [
        ("design: virtual-wan", "design: hub-vnet")]}))
    urn = {r.name: r.urn for r in plan.resources}
    # Registration order is a topological order: every dependency was registered first, so no cycle.
    seen: set[str] = set()
    for r in plan.resources:
        assert deps[r.urn] <= seen, (r.name, deps[r.urn] - seen)
        seen.add(r.urn)
    (udr,) = [t for t in plan.by_type(N + "RouteTable") if t.inputs["tags"].get("estate-role") == "psn"]
    (firewall,) = plan.by_type(N + "AzureFirewall")
    (gateway,) = plan.by_type(N + "VirtualNetworkGateway")
    assert urn["hub-azurefirewallsubnet"] in deps[firewall.urn]
    assert firewall.urn in deps[udr.urn]
    assert {udr.urn, urn["hub-azurefirewallmanagementsubnet"]} <= deps[urn["hub-gatewaysubnet"]]
    assert urn["hub-gatewaysubnet"] in deps[gateway.urn]


# The physical name input of each Azure resource type the hub, identity and WAN code create, and
# its kind in infra/naming.py's KINDS.
PHYSICAL_NAMES: dict[str, tuple[str, str]] = {
    N + "AzureFirewall": ("azureFirewallName", "azure_firewall"),
    N + "FirewallPolicy": ("firewallPolicyName", "firewall_policy"),
    N + "PublicIPAddress": ("publicIpAddressName", "public_ip"),
    N + "VpnGateway": ("gatewayName", "vpn_gateway"),
    N + "VirtualNetworkGateway": ("virtualNetworkGatewayName", "vnet_gateway"),
    N + "LocalNetworkGateway": ("localNetworkGatewayName", "local_network_gateway"),
    N + "VpnSite": ("vpnSiteName", "vpn_site"),
    N + "VpnConnection": ("connectionName", "vpn_connection"),
    N + "VirtualNetworkGatewayConnection": ("virtualNetworkGatewayConnectionName", "connection"),
    N + "HubVirtualNetworkConnection": ("connectionName", "hub_connection"),
    N + "VirtualNetworkPeering": ("virtualNetworkPeeringName", "peering"),
    N + "RouteTable": ("routeTableName", "route_table"),
    N + "VirtualNetwork": ("virtualNetworkName", "virtual_network"),
    N + "NetworkSecurityGroup": ("networkSecurityGroupName", "nsg"),
    N + "NetworkInterface": ("networkInterfaceName", "nic"),
    "azure-native:dnsresolver:DnsResolver": ("dnsResolverName", "dns_resolver"),
    "azure-native:privatedns:VirtualNetworkLink": ("virtualNetworkLinkName", "private_dns_link"),
    "azure-native:managedidentity:UserAssignedIdentity": ("resourceName", "managed_identity"),
    "azure-native:recoveryservices:Vault": ("vaultName", "recovery_vault"),
    "azure-native:recoveryservices:ProtectionPolicy": ("policyName", "backup_policy"),
    "azure-native:compute:VirtualMachine": ("vmName", "virtual_machine"),
    "azure-native:resources:ResourceGroup": ("resourceGroupName", "resource_group"),
    "azure-native:keyvault:Vault": ("vaultName", "key_vault"),
}


def test_every_network_resource_follows_the_naming_convention_under_pulumi_mocks(
        demo_plan: Any, tmp_path: Path) -> None:
    """One convention (infra/naming.py) for every Azure physical name, in both WAN designs:
    <abbrev>-<org>-<workload>-<env>-<region>, within Azure's limits for the kind."""
    from infra.naming import KINDS, REGION_ABBREV, validate

    hub_vnet = network_plan(copy_demo(tmp_path / "estate", {"organisation.yaml": [
        ("design: virtual-wan", "design: hub-vnet"),
        ("hub_address_space: 10.100.0.0/23", "hub_address_space: 10.100.0.0/23\n    firewall_tier: Premium\n"
                                              "    tls_inspection: true"),
        ("    firewall_tier: Standard\n    tls_inspection: false\n", ""),
    ]}))
    seen: set[str] = set()
    for plan in (demo_plan, hub_vnet):
        for typ, (key, kind) in PHYSICAL_NAMES.items():
            for r in plan.by_type(typ):
                name = r.inputs[key]
                if typ == N + "VirtualNetworkPeering" and name is None:
                    continue
                validate(kind, name)
                abbrev = KINDS[kind].abbrev
                assert re.fullmatch(rf"{abbrev}-hdc-[a-z0-9-]+-prod-({'|'.join(REGION_ABBREV.values())})(-\d\d)?",
                                    name), (typ, r.name, name)
                seen.add(typ)
    # Every type above occurs in one design or the other, so none of the checks is vacuous.
    assert seen == set(PHYSICAL_NAMES)
    # Per-site resources carry the site's name, hub resources the workload.
    sites = {r.inputs["vpnSiteName"] for r in demo_plan.by_type(N + "VpnSite")}
    assert "vst-hdc-civic-centre-prod-uks" in sites
    assert {r.inputs["azureFirewallName"] for r in demo_plan.by_type(N + "AzureFirewall")} >= {
        "afw-hdc-connectivity-prod-uks"}
    (rt,) = [t for t in hub_vnet.by_type(N + "RouteTable") if t.inputs["tags"].get("estate-role") == "psn"]
    assert rt.inputs["routeTableName"] == "rt-hdc-psn-prod-uks"
