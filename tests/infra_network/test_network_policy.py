"""The network policy rules: each catches a planted violation and passes the demo.

Two levels: the rule functions over hand-built resources (as CrossGuard would hand them over), and
planted mistakes in a copy of the demo estate, built under Pulumi's mock runtime (which stands in
for the engine, Azure and the Meraki dashboard) and through `estate infra plan` itself.
"""

from __future__ import annotations

import ipaddress
import random
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from infra.plan import Plan, evaluate_plan, run_under_mocks
from infra.policy import network_rules as nr
from infra.policy.rules import PolicyResource
from infra.standards import IPSEC_POLICY
from security_checks.model.loader import load_estate

from .conftest import DEMO, REPO, _network_program, copy_demo, network_plan

ESTATE = REPO / ".venv" / "bin" / "estate"


def res(typ: str, name: str, props: dict[str, Any], rid: str | None = None) -> PolicyResource:
    return PolicyResource(type=typ, name=name, urn=f"urn:test::{name}", props=props, id=rid or f"id-{name}")


def net(name: str, vlans: dict[int, str]) -> PolicyResource:
    return res(nr.MERAKI_NETWORK, name, {"name": name, "tags": [f"vlan{i}-{p}" for i, p in vlans.items()]})


def ssid(name: str, network: str, auth: str, vlan: int, **extra: Any) -> PolicyResource:
    return res(nr.MERAKI_SSID, f"{network}-{name}", {"name": name, "networkId": f"id-{network}", "authMode": auth,
                                                      "defaultVlanId": vlan, "useVlanTagging": True, **extra})


SITE = net("site-a", {10: "corporate", 40: "guest-wifi", 50: "public-wifi", 70: "psn-dmz"})


# ---- rule functions over hand-built resources ----------------------------------------------------


def test_ssid_vlan_segregation_rule() -> None:
    good = [SITE, ssid("Free", "site-a", "open", 50, lanIsolationEnabled=True), ssid("Guest", "site-a", "psk", 40),
            ssid("Corp", "site-a", "8021x-radius", 10)]
    assert list(nr.ssid_vlan_segregation(good)) == []
    bad = [SITE, ssid("Free", "site-a", "open", 10), ssid("Guest", "site-a", "psk", 70),
           ssid("Corp", "site-a", "8021x-radius", 10)]
    found = {(r.props["name"], m) for r, m in nr.ssid_vlan_segregation(bad)}
    assert {name for name, _ in found} == {"Free", "Guest"}
    assert any("corporate VLAN at site-a" in m for _, m in found) and any("psn-dmz" in m for _, m in found)


def test_public_ssid_isolation_rule() -> None:
    assert list(nr.public_ssid_isolation([SITE, ssid("Free", "site-a", "open-enhanced", 50,
                                                     lanIsolationEnabled=True)])) == []
    found = list(nr.public_ssid_isolation([SITE, ssid("Free", "site-a", "open", 50, lanIsolationEnabled=False),
                                           ssid("Corp", "site-a", "8021x-radius", 10)]))
    assert [r.props["name"] for r, _ in found] == ["Free"]


def test_corporate_ssid_no_psk_rule() -> None:
    assert list(nr.corporate_ssid_no_psk([SITE, ssid("Corp", "site-a", "8021x-radius", 10,
                                                     radiusServers=[{"host": "10.0.0.1"}])])) == []
    planted = [SITE, ssid("Corp", "site-a", "psk", 10), ssid("Guest", "site-a", "psk", 40)]
    found = list(nr.corporate_ssid_no_psk(planted))
    assert [r.props["name"] for r, _ in found] == ["Corp"]


def _site(name: str, prefixes: list[str], role: str = "site", **tags: str) -> PolicyResource:
    return res(nr.VPN_SITE, name, {"addressSpace": {"addressPrefixes": prefixes},
                                   "tags": {"estate-role": role, "estate-site": name, **tags}})


def test_site_range_overlap_rule() -> None:
    ok = [_site("a", ["10.1.0.0/16"]), _site("b", ["10.2.0.0/16"]), _site("psn", ["10.1.70.0/24"], role="psn")]
    assert list(nr.site_range_overlap(ok)) == []
    found = list(nr.site_range_overlap([_site("a", ["10.1.0.0/16"]), _site("b", ["10.2.0.0/16", "10.1.128.0/17"])]))
    assert len(found) == 1 and "10.1.128.0/17 of b overlaps 10.1.0.0/16 of a" in found[0][1]


def test_site_range_overlap_blames_the_same_site_whatever_the_registration_order() -> None:
    # Pulumi registers resources from several threads: the plan's order varies from run to run.
    sites = [_site("site-001", ["10.9.0.0/16"]), _site("site-000", ["10.9.0.0/16"]), _site("z", ["10.8.0.0/16"])]
    orders = (sites, sites[::-1], sites[1:] + sites[:1])
    blamed = {tuple(r.name for r, _ in nr.site_range_overlap(order)) for order in orders}
    assert blamed == {("site-001",)}


def test_site_range_overlap_matches_pairwise_check() -> None:
    """The O(n log n) sweep flags a site exactly when some other site overlaps it (random plans)."""
    rng = random.Random(7)
    for _ in range(200):
        sites = []
        for i in range(rng.randint(2, 12)):
            prefixes = []
            for _ in range(rng.randint(1, 2)):
                length = rng.randint(12, 20)
                addr = rng.randrange(0, 2**32) & ~((1 << (32 - length)) - 1) & 0x0FFFFFFF | 0x0A000000
                prefixes.append(str(ipaddress.ip_network((addr, length))))
            sites.append(_site(f"s{i}", prefixes))
        flagged = {r.name for r, _ in nr.site_range_overlap(sites)}
        nets = {s.name: [ipaddress.ip_network(p) for p in s.props["addressSpace"]["addressPrefixes"]] for s in sites}
        overlapping = {a for a in nets for b in nets if a != b
                       and any(x.overlaps(y) for x in nets[a] for y in nets[b])}
        # Each overlapping pair is reported on at least one of its two sites.
        pairs = {(a, b) for a in nets for b in nets if a < b and any(x.overlaps(y) for x in nets[a] for y in nets[b])}
        assert all(a in flagged or b in flagged for a, b in pairs)
        assert flagged <= overlapping


def test_vpn_ikev2_proposals_rule() -> None:
    good = {"vpnConnectionProtocolType": "IKEv2", "ipsecPolicies": [{
        "ikeEncryption": "AES256", "ikeIntegrity": "SHA384", "dhGroup": "ECP384", "ipsecEncryption": "GCMAES256",
        "ipsecIntegrity": "GCMAES256", "pfsGroup": "ECP384"}], "vpnLinkConnections": "[secret]"}
    assert list(nr.vpn_ikev2_proposals(nr.VPN_CONNECTION, good)) == []
    weak = {**good, "ipsecPolicies": [{**good["ipsecPolicies"][0], "dhGroup": "DHGroup2", "pfsGroup": "None"}]}
    assert len(list(nr.vpn_ikev2_proposals(nr.VPN_CONNECTION, weak))) == 2
    ikev1 = {"connectionType": "IPsec", "connectionProtocol": "IKEv1", "ipsecPolicies": good["ipsecPolicies"]}
    assert list(nr.vpn_ikev2_proposals(nr.GATEWAY_CONNECTION, ikev1)) == ["connection uses IKEv1, not IKEv2"]
    default = {"vpnLinkConnections": [{"name": "l1", "vpnConnectionProtocolType": "IKEv2"}]}
    assert any("no custom IPsec" in m for m in nr.vpn_ikev2_proposals(nr.VPN_CONNECTION, default))
    assert any("not visible" in m for m in nr.vpn_ikev2_proposals(nr.VPN_CONNECTION, {"vpnLinkConnections": "x"}))
    # What infra/wan.py deploys passes.
    link = {"name": "l", "vpnConnectionProtocolType": "IKEv2", "ipsecPolicies": [
        {nr_key(k): v for k, v in IPSEC_POLICY.items()}]}
    assert list(nr.vpn_ikev2_proposals(nr.VPN_CONNECTION, {"vpnLinkConnections": [link]})) == []


def nr_key(snake: str) -> str:
    head, *rest = snake.split("_")
    return head + "".join(p.title() for p in rest)


UNTRUSTED = {"untrusted-prefixes": "10.1.40.0/24 10.1.50.0/23"}


RT_ID = "/subscriptions/0/resourceGroups/rg/providers/Microsoft.Network/routeTables/rt-psn-uksouth"


def _psn_udr(*prefixes: str, bgp_off: bool = False, hop: str = "10.100.0.68",
             hop_type: str = "VirtualAppliance") -> PolicyResource:
    return res(nr.ROUTE_TABLE, "rt", {"routeTableName": "rt-psn-uksouth", "disableBgpRoutePropagation": bgp_off,
                                      "routes": [{"name": f"r{i}", "addressPrefix": p, "nextHopType": hop_type,
                                                  "nextHopIpAddress": hop} for i, p in enumerate(prefixes)],
                                      "tags": {"estate-role": "psn"}}, rid=RT_ID)


def _hub_subnet(name: str, prefix: str, route_table: str | None = None) -> PolicyResource:
    props: dict[str, Any] = {"subnetName": name, "addressPrefix": prefix}
    if route_table:
        props["routeTable"] = {"id": route_table}
    return res(nr.SUBNET, f"hub-{name.lower()}", props)


def _hub_vnet(udr: PolicyResource, gateway_rt: str | None = RT_ID,
              *extra: PolicyResource) -> list[PolicyResource]:
    """The hub-vnet design's PSN pieces: the UDR, the hub subnets, a council site, the PSN's local network
    gateway and the firewall policy's declared flow (the revenues users to the PSN)."""
    psn = res(nr.LOCAL_GATEWAY, "lgw-psn", {"localNetworkAddressSpace": {"addressPrefixes": ["10.1.70.0/24"]},
                                            "tags": {"estate-role": "psn", "estate-site": "psn"}})
    return [udr, _hub_subnet("GatewaySubnet", "10.100.0.0/26", gateway_rt),
            _hub_subnet("AzureFirewallSubnet", "10.100.0.64/26"), _site("a", ["10.1.0.0/16"], **UNTRUSTED), psn,
            _rule_group([_net_rule("corp-to-psn", ["10.1.10.0/25"], ["10.1.70.0/24"])],
                        [_net_rule("guest-to-psn", ["10.1.40.0/24", "10.1.50.0/23"], ["10.1.70.0/24"])]), *extra]


def test_psn_route_isolation_rule_hub_vnet() -> None:
    assert _isolation(_hub_vnet(_psn_udr("10.1.70.0/24", "10.1.10.0/25"))) == []
    # Joined by name when the table's id is not known (as in a preview).
    unknown_id = res(nr.ROUTE_TABLE, "rt", {**_psn_udr("10.1.70.0/24").props}, rid="")
    assert _isolation(_hub_vnet(unknown_id)) == []
    # The old design's table: BGP propagation off, which the GatewaySubnet does not allow.
    assert _isolation(_hub_vnet(_psn_udr("10.1.10.0/25", bgp_off=True))) == [
        ("rt", "PSN route table rt-psn-uksouth disables BGP route propagation (disableBgpRoutePropagation is "
               "true): Microsoft requires it enabled on the GatewaySubnet (\"If BGP route propagation is set to "
               "disabled, the gateway won't function\"); isolate the PSN in the firewall policy")]
    # A wider route (the site's whole range) takes in its guest and public Wi-Fi, and is no declared zone's.
    found = [m for _, m in _isolation(_hub_vnet(_psn_udr("10.1.0.0/16")))]
    assert found == ["PSN route table routes 10.1.0.0/16, which includes a's guest/public Wi-Fi range "
                     "10.1.40.0/24: only declared zones may reach the PSN",
                     "PSN route table routes 10.1.0.0/16, which includes a's guest/public Wi-Fi range "
                     "10.1.50.0/23: only declared zones may reach the PSN",
                     "PSN route table rt-psn-uksouth route 'r0' is for 10.1.0.0/16, neither a PSN prefix, a "
                     "declared zone's (a firewall policy allow rule's to or from the PSN) nor an Azure spoke's"]
    # A default route: takes in every guest range, and Microsoft does not support it on the GatewaySubnet.
    found = [m for _, m in _isolation(_hub_vnet(_psn_udr("0.0.0.0/0")))]
    assert len(found) == 3 and "0.0.0.0/0 destination on the GatewaySubnet" in found[2]


def test_psn_route_table_must_be_on_the_gateway_subnet() -> None:
    (found,) = _isolation(_hub_vnet(_psn_udr("10.1.70.0/24"), None))
    assert found == ("rt", "PSN route table rt-psn-uksouth is not associated with the GatewaySubnet (with no "
                           "subnet): a route table does nothing until a subnet uses it, so traffic through the VPN "
                           "gateway to and from the PSN would not go through the hub firewall")
    elsewhere = _hub_subnet("snet-other", "10.100.1.0/26", RT_ID)
    (found,) = _isolation(_hub_vnet(_psn_udr("10.1.70.0/24"), None, elsewhere))
    assert "(only with snet-other)" in found[1]
    # Another table on the GatewaySubnet does not count.
    (found,) = _isolation(_hub_vnet(_psn_udr("10.1.70.0/24"), RT_ID.replace("rt-psn", "rt-other")))
    assert "not associated with the GatewaySubnet" in found[1]


def test_psn_route_table_routes_go_to_the_firewall() -> None:
    found = _isolation(_hub_vnet(_psn_udr("10.1.70.0/24", hop="10.100.0.4")))
    assert [m for _, m in found] == ["PSN route table rt-psn-uksouth route 'r0' goes to 10.100.0.4, which is not "
                                     "in AzureFirewallSubnet: not the hub firewall"]
    found = _isolation(_hub_vnet(_psn_udr("10.1.70.0/24", hop="", hop_type="VirtualNetworkGateway")))
    assert [m for _, m in found] == ["PSN route table rt-psn-uksouth route 'r0' goes to 'VirtualNetworkGateway', "
                                     "not the hub firewall (VirtualAppliance): traffic to or from the PSN would "
                                     "bypass the firewall policy"]


def _net_rule(name: str, sources: list[str], dests: list[str]) -> dict[str, Any]:
    return {"ruleType": "NetworkRule", "name": name, "sourceAddresses": sources, "destinationAddresses": dests,
            "ipProtocols": ["TCP"], "destinationPorts": ["443"]}


def _rule_group(allow: list[dict[str, Any]], deny: list[dict[str, Any]] | None = None) -> PolicyResource:
    collections = [{"name": "psn-declared-zones", "priority": 110, "action": {"type": "Allow"}, "rules": allow}]
    if deny:
        collections.append({"name": "psn-deny-untrusted", "priority": 100, "action": {"type": "Deny"},
                            "rules": deny})
    return res(nr.RULE_COLLECTION_GROUP, "rules", {"ruleCollections": collections})


def _virtual_wan_hub(intent_policies: list[dict[str, Any]] | None, *extra: PolicyResource,
                     psn_routing: dict[str, Any] | None = None) -> list[PolicyResource]:
    """A hub with its firewall, the PSN and one council site, as the Virtual WAN design builds them."""
    out = [res(nr.VIRTUAL_HUB, "hub", {"virtualHubName": "vhub-1"}, rid="/hubs/vhub-1"),
           res(nr.VPN_GATEWAY, "gw", {"gatewayName": "vpng-1", "virtualHub": {"id": "/hubs/vhub-1"}}),
           res(nr.AZURE_FIREWALL, "afw", {"virtualHub": {"id": "/hubs/vhub-1"}}, rid="/azureFirewalls/afw-1"),
           _site("a", ["10.1.0.0/16"], **UNTRUSTED), _site("psn", ["10.1.70.0/24"], role="psn"),
           res(nr.VPN_CONNECTION, "conn-a", {"remoteVpnSite": {"id": "id-a"}, "gatewayName": "vpng-1"}),
           res(nr.VPN_CONNECTION, "conn-psn", {"remoteVpnSite": {"id": "id-psn"}, "gatewayName": "vpng-1",
                                               **({"routingConfiguration": psn_routing} if psn_routing else {})}),
           _rule_group([_net_rule("corp-to-psn", ["10.1.10.0/25"], ["10.1.70.0/24"])],
                       [_net_rule("guest-to-psn", ["10.1.40.0/24", "10.1.50.0/23"], ["10.1.70.0/24"])])]
    if intent_policies is not None:
        out.append(res(nr.ROUTING_INTENT, "intent", {"virtualHubName": "vhub-1", "routingPolicies": intent_policies}))
    return out + list(extra)


VIA_FIREWALL = [{"name": "InternetTraffic", "destinations": ["Internet"], "nextHop": "/azureFirewalls/afw-1"},
                {"name": "PrivateTraffic", "destinations": ["PrivateTraffic"], "nextHop": "/azureFirewalls/afw-1"}]


def _isolation(resources: list[PolicyResource]) -> list[tuple[str, str]]:
    return [(r.name, m) for r, m in nr.psn_route_isolation(resources)]


def test_psn_route_isolation_rule_virtual_wan_routing_intent() -> None:
    assert _isolation(_virtual_wan_hub(VIA_FIREWALL)) == []
    # The built-in default table may carry static routes to the firewall beside routing intent.
    default = res(nr.HUB_ROUTE_TABLE, "default", {"virtualHubName": "vhub-1", "routeTableName": "defaultRouteTable"})
    assert _isolation(_virtual_wan_hub(VIA_FIREWALL, default)) == []
    # A custom hub route table beside routing intent: Azure refuses it, the plan cannot deploy.
    custom = res(nr.HUB_ROUTE_TABLE, "psn-rt", {"virtualHubName": "vhub-1", "routeTableName": "psn",
                                                "routes": [{"destinations": ["10.1.10.0/25"]}]}, rid="/rt/psn")
    found = _isolation(_virtual_wan_hub(VIA_FIREWALL, custom, psn_routing={"associatedRouteTable": {"id": "/rt/psn"}}))
    assert [name for name, _ in found] == ["psn-rt", "conn-psn"]
    assert "cannot deploy" in found[0][1] and "custom route table 'psn'" in found[1][1]
    # On another hub, without routing intent, a custom table is that hub's business.
    elsewhere = res(nr.HUB_ROUTE_TABLE, "other-rt", {"virtualHubName": "vhub-2", "routeTableName": "branches"})
    assert _isolation(_virtual_wan_hub(VIA_FIREWALL, elsewhere)) == []


def test_psn_route_isolation_rule_needs_private_traffic_through_the_firewall() -> None:
    (found,) = _isolation(_virtual_wan_hub(None))
    assert found[0] == "conn-psn" and "no routing intent" in found[1]
    internet_only = VIA_FIREWALL[:1]
    (found,) = _isolation(_virtual_wan_hub(internet_only))
    assert found[0] == "intent" and "no PrivateTraffic policy" in found[1]
    via_nva = [VIA_FIREWALL[0], {**VIA_FIREWALL[1], "nextHop": "/networkVirtualAppliances/sdwan"}]
    assert [name for name, _ in _isolation(_virtual_wan_hub(via_nva))] == ["intent"]


def test_psn_route_isolation_rule_reads_the_firewall_policy() -> None:
    site, psn_site = _site("a", ["10.1.0.0/16"], **UNTRUSTED), _site("psn", ["10.1.70.0/24"], role="psn")
    deny = [_net_rule("guest-to-psn", ["10.1.40.0/24", "10.1.50.0/23", "10.9.40.0/24"], ["10.1.70.0/24"])]
    ok = _rule_group([_net_rule("corp-to-psn", ["10.1.10.0/25"], ["10.1.70.0/24"]),
                      _net_rule("corp-web", ["10.1.0.0/16"], ["192.0.2.0/24"])], deny)
    assert list(nr.psn_route_isolation([site, psn_site, ok])) == []
    planted = _rule_group([_net_rule("guest-to-psn", ["10.1.40.0/24"], ["10.1.70.10/32"]),
                           _net_rule("anyone", ["*"], ["10.1.70.0/24"]),
                           _net_rule("site-wide", ["10.1.0.0/16"], ["*"]),
                           _net_rule("other-site", ["10.9.0.0/16"], ["10.1.70.0/24"]),
                           _net_rule("psn-out", ["10.1.70.0/24"], ["10.1.50.0/24"])], deny)
    messages = [m for _, m in nr.psn_route_isolation([site, psn_site, planted])]
    assert len(messages) == 6
    guest, anyone, wide, wide_back, other, out = messages
    assert guest.startswith("firewall policy rule 'guest-to-psn' (psn-declared-zones) allows traffic to the PSN "
                            "from a's guest/public Wi-Fi range 10.1.40.0/24")
    assert "allows any source to the PSN" in anyone
    # Site-wide to any: takes guest and public Wi-Fi to the PSN, and (the PSN being inside the site's
    # range) the PSN to them.
    assert "to the PSN from" in wide and "10.1.40.0/24" in wide and "10.1.50.0/23" in wide
    assert "'site-wide'" in wide_back and "allows the PSN to reach" in wide_back
    # A range known only from the policy's own deny towards the PSN counts as untrusted too.
    assert "the 'psn-deny-untrusted' deny rule's guest/public Wi-Fi range 10.9.40.0/24" in other
    assert "allows the PSN to reach a's guest/public Wi-Fi range 10.1.50.0/23" in out


# ---- planted mistakes in a copy of the demo estate ------------------------------------------------

WIFI_MISTAKES = {"wifi.yaml": [
    # The public SSID on the corporate VLAN, without client isolation; the corporate SSID on a key.
    ("    vlan: public\n    client_isolation: true\n", "    vlan: corporate\n    client_isolation: false\n"),
    ("    security: wpa2-wpa3-enterprise       # 802.1X (EAP-TLS) against the NPS servers\n",
     "    security: wpa2-psk\n"),
]}
WAN_MISTAKES = {
    # register-office also claims half of schools-admin's range.
    "sites.yaml": [("    ranges: [10.21.0.0/16]", "    ranges: [10.21.0.0/16, 10.20.128.0/17]")],
    # A firewall rule lets guest Wi-Fi reach the PSN, so the PSN route table would carry guest ranges.
    "firewalls.yaml": [("      - {id: CIV-998,", "      - {id: CIV-012, name: guest to PSN, from_zone: guest-wifi, "
                        "to_zone: psn, destination: psn-gateway, services: [https], action: allow, owner: Nobody, "
                        "justification: planted mistake, review_by: 2027-03-31}\n      - {id: CIV-998,")],
}


def _violations(plan: Any) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for v in evaluate_plan(plan, nr.RULES):
        out.setdefault(v.check_id, []).append(v)
    return out


def test_planted_wifi_mistakes_are_caught_under_pulumi_mocks(tmp_path: Path) -> None:
    plan = network_plan(copy_demo(tmp_path / "estate", WIFI_MISTAKES))
    found = _violations(plan)
    assert set(found) == {"infra.policy.ssid_vlan_segregation", "infra.policy.public_ssid_isolation",
                          "infra.policy.corporate_ssid_no_psk"}
    segregation = [v.message for v in found["infra.policy.ssid_vlan_segregation"]]
    assert any("'Harrowdale Free WiFi' is bridged to VLAN 10, a corporate VLAN at hdc-civic-centre" in m
               for m in segregation)
    assert len(found["infra.policy.public_ssid_isolation"]) == 12          # every site now carries it
    assert all("HDC-Corporate" in v.message for v in found["infra.policy.corporate_ssid_no_psk"])
    ssid_resource = plan.by_urn(found["infra.policy.public_ssid_isolation"][0].urn)
    file, _line = plan.origin(ssid_resource)
    assert file.endswith("wifi.yaml")


def test_planted_wan_mistakes_are_caught_under_pulumi_mocks(tmp_path: Path) -> None:
    plan = network_plan(copy_demo(tmp_path / "estate", WAN_MISTAKES))
    found = _violations(plan)
    assert set(found) == {"infra.policy.site_range_overlap", "infra.policy.psn_route_isolation"}
    (overlap,) = found["infra.policy.site_range_overlap"]
    assert overlap.message == "10.20.128.0/17 of register-office overlaps 10.20.0.0/16 of schools-admin"
    file, _line = plan.origin(plan.by_urn(overlap.urn))
    assert file.endswith("sites.yaml")
    psn = " ".join(v.message for v in found["infra.policy.psn_route_isolation"])
    assert "10.10.40.0/24" in psn and "civic-centre" in psn
    # The engine registers resources in no fixed order; the messages (and so the finding ids made
    # from them) must not follow it. The guest ranges are listed in address order.
    def messages(resources: list[Any]) -> list[tuple[str, str, str]]:
        shuffled = Plan(stack=plan.stack, resources=resources, origins=plan.origins, loaded=plan.loaded)
        return sorted((v.check_id, v.urn, v.message) for v in evaluate_plan(shuffled, nr.RULES))

    assert messages(list(reversed(plan.resources))) == messages(plan.resources)
    assert messages(random.Random(7).sample(plan.resources, len(plan.resources))) == messages(plan.resources)
    (civ012,) = [v.message for v in found["infra.policy.psn_route_isolation"] if "'civ-012-tcp'" in v.message]
    listed = re.findall(r"range (\d+\.\d+\.\d+\.\d+/\d+)", civ012)
    assert len(listed) > 1 and listed == sorted(listed, key=ipaddress.ip_network)


GUEST_TO_PSN = {"firewalls.yaml": WAN_MISTAKES["firewalls.yaml"]}
HUB_VNET = {"organisation.yaml": [("design: virtual-wan", "design: hub-vnet")]}
# CIV-004's source widened from the revenues users to the whole civic centre range (guest Wi-Fi and all).
WIDER_PSN_SOURCE = {"firewalls.yaml": [("{name: revs-psn-users, addresses: [10.10.10.0/25]}",
                                        "{name: revs-psn-users, addresses: [10.10.0.0/16]}")]}


def test_planted_hub_route_table_beside_routing_intent_is_caught_under_pulumi_mocks() -> None:
    """The old design (a custom psn hub route table) added back to the virtual-wan plan, as a program
    would register it: Azure would refuse it beside routing intent, and the rule says so."""
    loaded = load_estate(DEMO, policy=False)
    network = _network_program(loaded)

    def program() -> Any:
        import pulumi_azure_native as az

        result = network()
        namer, region = result[0].namer, loaded.estate.azure.primary_region
        az.network.HubRouteTable(
            "planted-psn-rt", route_table_name="psn", labels=["psn"], routes=[],
            virtual_hub_name=namer.name("virtual_hub", "connectivity", region=region),
            resource_group_name=namer.name("resource_group", "connectivity", region=region))
        return result

    resources, result = run_under_mocks(program)
    plan = Plan(stack="test", resources=resources, origins=dict(result[0].origins), loaded=loaded)
    assert plan.by_type(nr.ROUTING_INTENT)
    found = _violations(plan)
    assert set(found) == {"infra.policy.psn_route_isolation"}
    (violation,) = found["infra.policy.psn_route_isolation"]
    assert violation.resource_type == nr.HUB_ROUTE_TABLE and violation.resource_name == "planted-psn-rt"
    assert "which has routing intent" in violation.message and "cannot deploy" in violation.message


def test_planted_guest_wifi_allow_to_psn_is_caught_under_pulumi_mocks(tmp_path: Path) -> None:
    plan = network_plan(copy_demo(tmp_path / "estate", GUEST_TO_PSN))
    assert not plan.by_type(nr.HUB_ROUTE_TABLE)
    found = _violations(plan)
    assert set(found) == {"infra.policy.psn_route_isolation"}
    (violation,) = found["infra.policy.psn_route_isolation"]
    assert violation.resource_type == nr.RULE_COLLECTION_GROUP
    assert violation.message.startswith("firewall policy rule 'civ-012-tcp' (psn-declared-zones) allows traffic "
                                        "to the PSN from civic-centre's guest/public Wi-Fi range 10.10.40.0/24")
    file, _line = plan.origin(plan.by_urn(violation.urn))
    assert file.endswith("firewalls.yaml")


def test_planted_wider_psn_route_in_hub_vnet_is_caught_under_pulumi_mocks(tmp_path: Path) -> None:
    clean = network_plan(copy_demo(tmp_path / "clean", HUB_VNET))
    (table,) = [t for t in clean.by_type(nr.ROUTE_TABLE) if t.inputs["tags"].get("estate-role") == "psn"]
    assert _violations(clean) == {}
    # The PSN route table is the GatewaySubnet's, with BGP propagation on (Microsoft requires it there).
    (gateway_subnet,) = [s for s in clean.by_type(nr.SUBNET) if s.inputs["subnetName"] == "GatewaySubnet"]
    assert gateway_subnet.inputs["routeTable"] == {"id": table.id}
    assert table.inputs["disableBgpRoutePropagation"] is False
    plan = network_plan(copy_demo(tmp_path / "estate", {**HUB_VNET, **WIDER_PSN_SOURCE}))
    found = _violations(plan)
    assert set(found) == {"infra.policy.psn_route_isolation"}
    by_type: dict[str, list[str]] = {}
    for v in found["infra.policy.psn_route_isolation"]:
        by_type.setdefault(v.resource_type, []).append(v.message)
    assert ("PSN route table routes 10.10.0.0/16, which includes civic-centre's guest/public Wi-Fi range "
            "10.10.40.0/24: only declared zones may reach the PSN") in by_type[nr.ROUTE_TABLE]
    assert any("'civ-004-tcp'" in m and "10.10.50.0/23" in m for m in by_type[nr.RULE_COLLECTION_GROUP])


def test_planted_unattached_psn_route_table_in_hub_vnet_is_caught_under_pulumi_mocks(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The hub-vnet program with the PSN route table built but left off the GatewaySubnet (as it once
    was): in Azure it would route nothing, and the rule says so."""
    from infra import wan

    add = wan.HubVnetSubnets.add

    def without_route_table(self: Any, subnet_name: str, *, route_table: Any = None) -> Any:
        return add(self, subnet_name)

    monkeypatch.setattr(wan.HubVnetSubnets, "add", without_route_table)
    plan = network_plan(copy_demo(tmp_path / "estate", HUB_VNET))
    (gateway_subnet,) = [s for s in plan.by_type(nr.SUBNET) if s.inputs["subnetName"] == "GatewaySubnet"]
    assert "routeTable" not in gateway_subnet.inputs
    found = _violations(plan)
    assert set(found) == {"infra.policy.psn_route_isolation"}
    (violation,) = found["infra.policy.psn_route_isolation"]
    assert violation.resource_type == nr.ROUTE_TABLE
    assert violation.message.startswith("PSN route table rt-hdc-psn-prod-uks is not associated with the GatewaySubnet "
                                        "(with no subnet)")
    file, _line = plan.origin(plan.by_urn(violation.urn))
    assert file.endswith("organisation.yaml")


@pytest.mark.slow
def test_estate_infra_plan_exits_1_naming_each_planted_mistake(tmp_path: Path) -> None:
    """The whole program through the real command line (Pulumi engine stood in for by mocks)."""
    estate_dir = copy_demo(tmp_path / "estate", {
        "wifi.yaml": [("    vlan: public\n", "    vlan: corporate\n")],
        "sites.yaml": WAN_MISTAKES["sites.yaml"]})
    proc = subprocess.run([str(ESTATE), "infra", "plan", "--estate", str(estate_dir), "--home", str(tmp_path / "h")],
                          capture_output=True, text=True, cwd=REPO, timeout=600)
    assert proc.returncode == 1, proc.stderr[-2000:]
    text = proc.stdout + proc.stderr
    assert "infra.policy.ssid_vlan_segregation" in text and "Harrowdale Free WiFi" in text
    assert "infra.policy.site_range_overlap" in text and "register-office" in text and "schools-admin" in text
    assert "Traceback" not in text
