"""Network policy rules: Wi-Fi segregation, site address plan, VPN crypto and PSN isolation.

Same shape as infra/policy/rules.py (resource rules over `(type, props)`, stack rules over every
resource), so they run both offline (`estate infra plan`) and in the CrossGuard pack. They read
only what the deployed resources carry, as a real preview would:

- a Meraki network's tags carry its site's VLAN plan, `vlan<id>-<purpose>` (infra/wifi.py);
- a VPN site / local network gateway carries `estate-role` (site or psn) and, for a council site,
  `untrusted-prefixes` (its guest and public Wi-Fi ranges) (infra/wan.py);
- the PSN UDR is tagged `estate-role: psn` (hub-vnet) and the GatewaySubnet names it as its route
  table; in Virtual WAN the PSN's isolation is the hub's routing intent plus the hub firewall
  policy's rule collections (infra/wan.py `Breakout`).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from ..standards import (
    APPROVED_DH_GROUPS,
    APPROVED_IKE_ENCRYPTION,
    APPROVED_IKE_INTEGRITY,
    APPROVED_IPSEC_ENCRYPTION,
    APPROVED_IPSEC_INTEGRITY,
    APPROVED_PFS_GROUPS,
    NETWORK_NAME_TAG,
    PSN_ROLE_TAG,
    ROUTE_TABLE_PSN,
)
from .rules import PolicyResource, Rule

N = "azure-native:network:"
VPN_CONNECTION = N + "VpnConnection"
GATEWAY_CONNECTION = N + "VirtualNetworkGatewayConnection"
VPN_SITE = N + "VpnSite"
LOCAL_GATEWAY = N + "LocalNetworkGateway"
HUB_ROUTE_TABLE = N + "HubRouteTable"
ROUTE_TABLE = N + "RouteTable"
SUBNET = N + "Subnet"
GATEWAY_SUBNET = "gatewaysubnet"
FIREWALL_SUBNET = "azurefirewallsubnet"
ROUTING_INTENT = N + "RoutingIntent"
VIRTUAL_HUB = N + "VirtualHub"
VPN_GATEWAY = N + "VpnGateway"
AZURE_FIREWALL = N + "AzureFirewall"
RULE_COLLECTION_GROUP = N + "FirewallPolicyRuleCollectionGroup"
# The route tables every virtual hub has; any other is a custom one.
BUILTIN_HUB_TABLES = frozenset({"defaultroutetable", "noneroutetable"})
# Firewall rule addresses that mean any source or destination.
ANY_ADDRESS = frozenset({"*", "any", "internet", "0.0.0.0/0", "::/0"})
MERAKI_NETWORK = "meraki:networks/base:base"
MERAKI_SSID = "meraki:networks/wirelessSsids:WirelessSsids"

# VLAN purposes untrusted Wi-Fi must never be bridged to.
PROTECTED_PURPOSES = frozenset({"corporate", "psn-dmz"})
MANAGEMENT_PURPOSE = "management"
OPEN_AUTH = frozenset({"open", "open-enhanced"})
PSK_AUTH = frozenset({"psk", "ipsk-without-radius", "ipsk-with-radius"})
VLAN_TAG = re.compile(r"^vlan(\d{1,4})-([a-z-]+)$")
UNTRUSTED_TAG = "untrusted-prefixes"
PSN_WORD = re.compile(r"\bPSN\b")

Net = ipaddress.IPv4Network | ipaddress.IPv6Network


def _lower(v: Any) -> str:
    return str(v).strip().lower() if v is not None else ""


def _nets(values: Iterable[Any]) -> list[Net]:
    out = []
    for v in values:
        try:
            out.append(ipaddress.ip_network(str(v).strip(), strict=False))
        except ValueError:
            continue
    return out


def _overlap(a: Sequence[Net], b: Sequence[Net]) -> list[tuple[Net, Net]]:
    return [(x, y) for x in a for y in b if x.version == y.version and x.overlaps(y)]


# ---- Wi-Fi -----------------------------------------------------------------------------------------


def vlan_plan(network: PolicyResource) -> dict[int, str]:
    """VLAN id -> purpose, from a Meraki network's `vlan<id>-<purpose>` tags."""
    tags = network.props.get("tags")
    out: dict[int, str] = {}
    for tag in tags if isinstance(tags, list) else []:
        m = VLAN_TAG.match(str(tag))
        if m:
            out[int(m.group(1))] = m.group(2)
    return out


def _ssids_with_plan(resources: Sequence[PolicyResource]) -> Iterable[tuple[PolicyResource, str]]:
    """Each SSID with the purpose of the VLAN it is bridged to ('' when the plan does not say)."""
    plans = {r.id: vlan_plan(r) for r in resources if r.type == MERAKI_NETWORK and r.id}
    for ssid in resources:
        if ssid.type != MERAKI_SSID:
            continue
        plan = plans.get(str(ssid.props.get("networkId")), {})
        if ssid.props.get("useVlanTagging") is False:
            # Untagged: the SSID lands on the access point's native VLAN, which the plan does not name.
            yield ssid, ""
            continue
        vlan = ssid.props.get("defaultVlanId") or ssid.props.get("vlanId")
        try:
            purpose = plan.get(int(vlan), "") if vlan is not None else ""
        except (TypeError, ValueError):
            purpose = ""
        yield ssid, purpose


def ssid_vlan_segregation(resources: Sequence[PolicyResource]) -> Iterable[tuple[PolicyResource, str]]:
    names = _network_names(resources)
    for ssid, purpose in _ssids_with_plan(resources):
        auth = _lower(ssid.props.get("authMode"))
        if purpose in PROTECTED_PURPOSES and (auth in OPEN_AUTH or auth in PSK_AUTH):
            kind = "public (open)" if auth in OPEN_AUTH else "guest (pre-shared key)"
            yield ssid, (f"{kind} SSID {ssid.props.get('name')!r} is bridged to VLAN "
                         f"{_vlan_id(ssid)}, a {purpose} VLAN at "
                         f"{names.get(str(ssid.props.get('networkId')), 'its network')}")


def _vlan_id(ssid: PolicyResource) -> Any:
    vlan = ssid.props.get("defaultVlanId")
    return int(vlan) if isinstance(vlan, int | float) else vlan


def _network_names(resources: Sequence[PolicyResource]) -> dict[str | None, str]:
    return {r.id: str(r.props.get("name") or r.name) for r in resources if r.type == MERAKI_NETWORK}


def public_ssid_isolation(resources: Sequence[PolicyResource]) -> Iterable[tuple[PolicyResource, str]]:
    for ssid, purpose in _ssids_with_plan(resources):
        auth = _lower(ssid.props.get("authMode"))
        if (auth in OPEN_AUTH or purpose == "public-wifi") and ssid.props.get("lanIsolationEnabled") is not True:
            yield ssid, (f"public SSID {ssid.props.get('name')!r} has no client isolation "
                         "(lanIsolationEnabled is not true)")


def corporate_ssid_no_psk(resources: Sequence[PolicyResource]) -> Iterable[tuple[PolicyResource, str]]:
    for ssid, purpose in _ssids_with_plan(resources):
        auth = _lower(ssid.props.get("authMode"))
        corporate = purpose == "corporate" or bool(ssid.props.get("radiusServers"))
        if corporate and (auth in PSK_AUTH or ssid.props.get("psk")):
            yield ssid, (f"corporate SSID {ssid.props.get('name')!r} uses a pre-shared key ({auth}); "
                         "corporate Wi-Fi is 802.1X against RADIUS only")


def guest_ssid_segregation(resources: Sequence[PolicyResource]) -> Iterable[tuple[PolicyResource, str]]:
    """A guest SSID keeps its visitors apart: never bridged to a management VLAN (where the switches',
    access points' and firewalls' own interfaces are), and with client isolation, so one visitor's
    device cannot reach another's ("Wireless client isolation",
    https://documentation.meraki.com/MR/Firewall_and_Traffic_Shaping/Wireless_Client_Isolation).
    Guest is what the site's VLAN plan says (guest-wifi) or, on a management VLAN, any SSID without
    802.1X (open or pre-shared key): its users are not known to the council."""
    names = _network_names(resources)
    for ssid, purpose in _ssids_with_plan(resources):
        auth = _lower(ssid.props.get("authMode"))
        label = f"SSID {ssid.props.get('name')!r}"
        if purpose == MANAGEMENT_PURPOSE and (auth in OPEN_AUTH or auth in PSK_AUTH):
            kind = "public (open)" if auth in OPEN_AUTH else "guest (pre-shared key)"
            yield ssid, (f"{kind} {label} is bridged to VLAN {_vlan_id(ssid)}, the management VLAN at "
                         f"{names.get(str(ssid.props.get('networkId')), 'its network')}: visitors' devices "
                         "would reach the network devices' own interfaces")
        # Open SSIDs without isolation are public_ssid_isolation's: one finding per fault.
        if purpose == "guest-wifi" and auth not in OPEN_AUTH and ssid.props.get("lanIsolationEnabled") is not True:
            yield ssid, (f"guest {label} has no client isolation (lanIsolationEnabled is not true): one "
                         "visitor's device can reach another's")


# ---- address plan ------------------------------------------------------------------------------------


def _site_prefixes(r: PolicyResource) -> list[Net]:
    if r.type == VPN_SITE:
        return _nets((r.props.get("addressSpace") or {}).get("addressPrefixes") or [])
    if r.type == LOCAL_GATEWAY:
        return _nets((r.props.get("localNetworkAddressSpace") or {}).get("addressPrefixes") or [])
    return []


def site_range_overlap(resources: Sequence[PolicyResource]) -> Iterable[tuple[PolicyResource, str]]:
    """Council sites' VPN address spaces must not overlap (each is routed to one site).

    Sorted sweep, O(n log n): with networks ordered by first address, one overlaps an earlier
    one exactly when it starts before the furthest end seen so far. The PSN's prefixes are more
    specific routes by design and are left out; sites are compared per region (one local network
    gateway per hub in the hub-vnet design).
    """
    entries: list[tuple[int, int, int, str, Net, PolicyResource]] = []
    for r in resources:
        if r.type not in (VPN_SITE, LOCAL_GATEWAY) or _lower(r.tags.get("estate-role")) == PSN_ROLE_TAG:
            continue
        group = _lower(r.props.get("location")) if r.type == LOCAL_GATEWAY else "virtual-wan"
        for net in _site_prefixes(r):
            entries.append((net.version, int(net.network_address), int(net.broadcast_address), group, net, r))
    # The resource name breaks ties (identical ranges): resources arrive in whatever order Pulumi's
    # threads registered them, and the same overlap must blame the same site on every run.
    entries.sort(key=lambda e: (e[3], e[0], e[1], -e[2], e[5].name))
    furthest: tuple[int, Net, PolicyResource] | None = None
    current: tuple[str, int] | None = None
    for version, start, end, group, net, r in entries:
        if current != (group, version):
            current, furthest = (group, version), None
        if furthest is not None and start <= furthest[0] and furthest[2] is not r:
            other = furthest[2]
            yield r, (f"{net} of {r.tags.get('estate-site') or r.name} overlaps {furthest[1]} of "
                      f"{other.tags.get('estate-site') or other.name}")
        if furthest is None or end > furthest[0]:
            furthest = (end, net, r)


# ---- VPN crypto ---------------------------------------------------------------------------------------


def _ipsec_messages(label: str, protocol: Any, policies: Any) -> Iterable[str]:
    if protocol != "IKEv2":
        yield f"{label} uses {protocol or 'the default protocol (IKEv1 allowed)'}, not IKEv2"
    if not policies:
        yield f"{label} has no custom IPsec/IKE policy: Azure's default proposals include weak ones"
        return
    checks = (("ikeEncryption", APPROVED_IKE_ENCRYPTION), ("ikeIntegrity", APPROVED_IKE_INTEGRITY),
              ("dhGroup", APPROVED_DH_GROUPS), ("ipsecEncryption", APPROVED_IPSEC_ENCRYPTION),
              ("ipsecIntegrity", APPROVED_IPSEC_INTEGRITY), ("pfsGroup", APPROVED_PFS_GROUPS))
    for policy in policies:
        policy = policy if isinstance(policy, Mapping) else {}
        for key, approved in checks:
            if policy.get(key) not in approved:
                yield f"{label}: {key} {policy.get(key)!r} is not approved ({', '.join(sorted(approved))})"


def vpn_ikev2_proposals(type_token: str, props: Mapping[str, Any]) -> Iterable[str]:
    if type_token == VPN_CONNECTION:
        links = props.get("vpnLinkConnections")
        # The connection-level protocol and policy apply to the connection as a whole; infra/wan.py
        # sets both levels. The links carry the pre-shared key, so a plan that redacts secrets shows
        # them as one opaque value: then the connection level is what can be checked.
        if props.get("vpnConnectionProtocolType") is not None or props.get("ipsecPolicies"):
            yield from _ipsec_messages("connection", props.get("vpnConnectionProtocolType"),
                                       props.get("ipsecPolicies"))
        elif not isinstance(links, list):
            yield ("VPN connection's link settings are not visible and it declares no connection-level "
                   "protocol or IPsec policy: cannot show IKEv2 with approved proposals")
        if isinstance(links, list):
            if not links:
                yield "VPN connection has no link connections"
            for link in links:
                link = link if isinstance(link, Mapping) else {}
                yield from _ipsec_messages(f"link {link.get('name', '?')!r}",
                                           link.get("vpnConnectionProtocolType"), link.get("ipsecPolicies"))
    elif type_token == GATEWAY_CONNECTION and props.get("connectionType") == "IPsec":
        yield from _ipsec_messages("connection", props.get("connectionProtocol"), props.get("ipsecPolicies"))


# ---- PSN isolation ------------------------------------------------------------------------------------


def _untrusted(resources: Sequence[PolicyResource]) -> list[tuple[Net, str]]:
    """(range, site) for every site's guest and public Wi-Fi ranges, in address order.

    Sorted, not in resource order: the engine registers resources in no fixed order, and the
    messages list these ranges, so the same plan must give the same messages (a violation's
    finding id is made from its message, and the RAP follows findings by id from run to run).
    """
    out = []
    for r in resources:
        if r.type in (VPN_SITE, LOCAL_GATEWAY) and _lower(r.tags.get("estate-role")) != PSN_ROLE_TAG:
            value = r.tags.get(UNTRUSTED_TAG)
            for net in _nets(str(value).split() if value else []):
                out.append((net, str(r.tags.get("estate-site") or r.name)))
    return sorted(out, key=lambda item: (item[0].version, int(item[0].network_address), item[0].prefixlen, item[1]))


def _route_destinations(r: PolicyResource) -> list[Net]:
    if r.type == HUB_ROUTE_TABLE:
        return _nets(d for route in r.props.get("routes") or [] for d in (route or {}).get("destinations") or [])
    return _nets((route or {}).get("addressPrefix") for route in r.props.get("routes") or [])


def _last(ref: Any) -> str:
    """The name at the end of an ARM id (or the value itself), lower case."""
    return _lower(ref).rstrip("/").rsplit("/", 1)[-1]


def psn_route_isolation(resources: Sequence[PolicyResource]) -> Iterable[tuple[PolicyResource, str]]:
    """Only declared zones can reach the PSN, and the design that says so can deploy.

    - hub-vnet: the PSN route table (a UDR) is associated with the GatewaySubnet, keeps BGP route
      propagation enabled (Microsoft: the gateway does not function with it disabled), and routes only
      the PSN's and the declared zones' prefixes, to the hub firewall, none of them a guest or public
      Wi-Fi range or 0.0.0.0/0;
    - virtual-wan: the PSN's hub has routing intent with a PrivateTraffic policy through the hub
      firewall, and no custom hub route table beside it (Azure refuses routing intent with custom
      route tables, so that plan cannot deploy);
    - both: no PSN prefix too broad (taking in a site's Wi-Fi, an Azure VNet or a whole site range:
      blamed on the line declaring it), no firewall policy allow rule between the PSN prefixes and a
      guest or public Wi-Fi range
      (the sites' `untrusted-prefixes`, and the sources the policy itself denies towards the PSN), and
      none from any source to the PSN.
    """
    untrusted = _untrusted(resources)
    # Messages use the council's own name for the network (SWAN in Scotland), from the PSN peer's tag.
    name = next((str(r.tags[NETWORK_NAME_TAG]) for r in resources
                 if _lower(r.tags.get("estate-role")) == PSN_ROLE_TAG and r.tags.get(NETWORK_NAME_TAG)), "PSN")
    for res, message in (*_psn_too_broad(resources), *_psn_route_tables(resources, untrusted),
                         *_psn_routing_intent(resources), *_psn_firewall_rules(resources, untrusted)):
        yield res, PSN_WORD.sub(name, message) if name != "PSN" else message


def _psn_peers(resources: Sequence[PolicyResource]) -> list[PolicyResource]:
    return [r for r in resources
            if r.type in (VPN_SITE, LOCAL_GATEWAY) and _lower(r.tags.get("estate-role")) == PSN_ROLE_TAG]


def _too_broad(resources: Sequence[PolicyResource]) -> list[tuple[PolicyResource, Net, list[str]]]:
    """(PSN peer, prefix, what of the council's own it takes in) for each PSN prefix that is too
    broad: it overlaps a site's guest or public Wi-Fi range or an Azure VNet or hub, or takes in a
    council site's whole range. Such a prefix makes the council's own networks "the PSN" to every
    other rule, so it is judged once, here, and left out of the PSN's prefixes everywhere else."""
    own: list[tuple[Net, str, bool]] = []   # (range, what it is, whether a mere overlap counts)
    for r in resources:
        if r.type in (VPN_SITE, LOCAL_GATEWAY) and _lower(r.tags.get("estate-role")) != PSN_ROLE_TAG:
            site = str(r.tags.get("estate-site") or r.name)
            value = r.tags.get(UNTRUSTED_TAG)
            own += [(n, f"{site}'s guest/public Wi-Fi range {n}", True)
                    for n in _nets(str(value).split() if value else [])]
            own += [(n, f"{site}'s site range {n}", False) for n in _site_prefixes(r)]
        elif r.type == N + "VirtualNetwork":
            name = r.props.get("virtualNetworkName") or r.name
            own += [(n, f"Azure VNet {name} {n}", True)
                    for n in _nets((r.props.get("addressSpace") or {}).get("addressPrefixes") or [])]
        elif r.type == VIRTUAL_HUB:
            own += [(n, f"virtual hub {r.props.get('virtualHubName') or r.name} {n}", True)
                    for n in _nets([r.props.get("addressPrefix")])]
    out: list[tuple[PolicyResource, Net, list[str]]] = []
    for peer in sorted(_psn_peers(resources), key=lambda r: r.name):
        for net in _site_prefixes(peer):
            hits = sorted({what for n, what, overlap in own if n.version == net.version
                           and ((overlap and n.overlaps(net)) or _within(n, net))})
            if hits:
                out.append((peer, net, hits))
    return out


def _psn_nets(resources: Sequence[PolicyResource]) -> list[Net]:
    """The PSN's prefixes, less the too-broad ones (reported by _psn_too_broad)."""
    broad = {net for _peer, net, _hits in _too_broad(resources)}
    return [net for r in _psn_peers(resources) for net in _site_prefixes(r) if net not in broad]


def _psn_too_broad(resources: Sequence[PolicyResource]) -> Iterable[tuple[PolicyResource, str]]:
    seen: set[Net] = set()
    for peer, net, hits in _too_broad(resources):
        if net in seen:
            continue   # hub-vnet: one local network gateway per hub, the same prefix
        seen.add(net)
        shown = ", ".join(hits[:4]) + (f" and {len(hits) - 4} more" if len(hits) > 4 else "")
        yield replace(peer, subject=str(net)), (
            f"PSN prefix {net} is too broad: it takes in the council's own {shown}; list only the PSN's own "
            "service ranges, or every rule towards the PSN also reaches these")


def _psn_route_tables(resources: Sequence[PolicyResource],
                      untrusted: list[tuple[Net, str]]) -> Iterable[tuple[PolicyResource, str]]:
    tables = [r for r in resources
              if (r.type == HUB_ROUTE_TABLE and _lower(r.props.get("routeTableName") or r.props.get("name"))
                  == ROUTE_TABLE_PSN)
              or (r.type == ROUTE_TABLE and _lower(r.tags.get("estate-role")) == PSN_ROLE_TAG)]
    broad = {net for _peer, net, _hits in _too_broad(resources)}
    for table in tables:
        for dest in _route_destinations(table):
            if dest in broad:
                continue   # reported once, on the line declaring the prefix (_psn_too_broad)
            for net, site in untrusted:
                if dest.version == net.version and dest.overlaps(net):
                    yield table, (f"PSN route table routes {dest}, which includes {site}'s guest/public Wi-Fi "
                                  f"range {net}: only declared zones may reach the PSN")
        if table.type == ROUTE_TABLE:
            yield from _psn_udr(table, resources)


def _psn_udr(table: PolicyResource, resources: Sequence[PolicyResource]) -> Iterable[tuple[PolicyResource, str]]:
    """hub-vnet: the PSN UDR on the GatewaySubnet, BGP propagation on, routes only for the PSN's and the
    declared zones' prefixes, through the hub firewall."""
    name = str(table.props.get("routeTableName") or table.name)
    subnets = [r for r in resources if r.type == SUBNET and _uses_table(r, table)]
    names = sorted({str(r.props.get("subnetName") or r.name) for r in subnets})
    if not any(_lower(n) == GATEWAY_SUBNET for n in names):
        where = f"only with {', '.join(names)}" if names else "with no subnet"
        yield table, (f"PSN route table {name} is not associated with the GatewaySubnet ({where}): a route "
                      "table does nothing until a subnet uses it, so traffic through the VPN gateway to and "
                      "from the PSN would not go through the hub firewall")
    if table.props.get("disableBgpRoutePropagation") is True:
        yield table, (f"PSN route table {name} disables BGP route propagation (disableBgpRoutePropagation is "
                      "true): Microsoft requires it enabled on the GatewaySubnet (\"If BGP route propagation "
                      "is set to disabled, the gateway won't function\"); isolate the PSN in the firewall "
                      "policy")
    psn = [net for r in resources if r.type in (VPN_SITE, LOCAL_GATEWAY)
           and _lower(r.tags.get("estate-role")) == PSN_ROLE_TAG for net in _site_prefixes(r)]
    # The GatewaySubnet has one route table: it also sends the Azure spokes' own address spaces to the
    # firewall (infra/wan.py), so the sites' traffic to a spoke and the spoke's replies take one path.
    spokes = _nets(p for r in resources if r.type == N + "VirtualNetwork"
                   for p in (r.props.get("addressSpace") or {}).get("addressPrefixes") or [])
    declared = psn + _declared_psn_peers(resources, psn) + spokes
    firewall_nets = _nets(r.props.get("addressPrefix") for r in resources
                          if r.type == SUBNET and _lower(r.props.get("subnetName")) == FIREWALL_SUBNET)
    for route in table.props.get("routes") or []:
        route = route if isinstance(route, Mapping) else {}
        label = f"PSN route table {name} route {route.get('name', '?')!r}"
        for dest in _nets([route.get("addressPrefix")]):
            if dest.prefixlen == 0:
                yield table, (f"{label} is for {dest}: Microsoft does not support user-defined routes with a "
                              "0.0.0.0/0 destination on the GatewaySubnet, and only the PSN and declared zones "
                              "belong in this table")
            elif psn and not any(_within(dest, d) for d in declared):
                yield table, (f"{label} is for {dest}, neither a PSN prefix, a declared zone's (a firewall "
                              "policy allow rule's to or from the PSN) nor an Azure spoke's")
        if _lower(route.get("nextHopType")) != "virtualappliance":
            yield table, (f"{label} goes to {route.get('nextHopType')!r}, not the hub firewall "
                          "(VirtualAppliance): traffic to or from the PSN would bypass the firewall policy")
            continue
        hop = _nets([route.get("nextHopIpAddress")])
        if hop and firewall_nets and not any(_within(h, f) for h in hop for f in firewall_nets):
            yield table, (f"{label} goes to {route.get('nextHopIpAddress')}, which is not in "
                          "AzureFirewallSubnet: not the hub firewall")


def _within(inner: Net, outer: Net) -> bool:
    return inner.version == outer.version and inner.subnet_of(outer)  # type: ignore[arg-type]


def _uses_table(subnet: PolicyResource, table: PolicyResource) -> bool:
    attached = subnet.props.get("routeTable")
    ref = attached.get("id") if isinstance(attached, Mapping) else None
    if not ref:
        return False
    if table.id and "/" in str(table.id):
        return _lower(ref) == _lower(table.id)
    return _last(ref) == _lower(table.props.get("routeTableName") or table.name)


def _declared_psn_peers(resources: Sequence[PolicyResource], psn: Sequence[Net]) -> list[Net]:
    """The prefixes the firewall policy allows to the PSN (sources) or from it (destinations)."""
    out: list[Net] = []
    for _group, _collection, action, rule in _firewall_rules(resources):
        if action != "allow":
            continue
        _, sources = _addresses(rule, "sourceAddresses")
        _, dests = _addresses(rule, "destinationAddresses")
        if _overlap(dests, psn):
            out += sources
        if _overlap(sources, psn):
            out += dests
    return out


def _psn_routing_intent(resources: Sequence[PolicyResource]) -> Iterable[tuple[PolicyResource, str]]:
    """Virtual WAN: routing intent through the firewall on the PSN's hub, and no custom route table."""
    hub_names = {_lower(r.id): _lower(r.props.get("virtualHubName") or r.props.get("name"))
                 for r in resources if r.type == VIRTUAL_HUB and r.id}
    intents: dict[str, list[PolicyResource]] = {}
    for r in resources:
        if r.type == ROUTING_INTENT:
            intents.setdefault(_lower(r.props.get("virtualHubName")), []).append(r)
    for table in resources:
        if table.type != HUB_ROUTE_TABLE:
            continue
        hub = _lower(table.props.get("virtualHubName"))
        name = _lower(table.props.get("routeTableName") or table.props.get("name"))
        if hub in intents and name not in BUILTIN_HUB_TABLES:
            yield table, (f"custom hub route table {name!r} on hub {hub}, which has routing intent: Azure does "
                          "not allow custom route tables with routing intent (every connection is associated "
                          "with the defaultRouteTable), so this cannot deploy; isolate the PSN in the hub "
                          "firewall policy instead")
    gateways = {_lower(r.props.get("gatewayName") or r.name):
                hub_names.get(_lower((r.props.get("virtualHub") or {}).get("id")))
                or _last((r.props.get("virtualHub") or {}).get("id"))
                for r in resources if r.type == VPN_GATEWAY}
    firewalls = {_lower(r.id) for r in resources if r.type == AZURE_FIREWALL and r.id}
    psn_sites = {_lower(r.id) for r in resources
                 if r.type == VPN_SITE and _lower(r.tags.get("estate-role")) == PSN_ROLE_TAG and r.id}
    for conn in resources:
        if conn.type != VPN_CONNECTION or _lower((conn.props.get("remoteVpnSite") or {}).get("id")) not in psn_sites:
            continue
        psn_hub = gateways.get(_lower(conn.props.get("gatewayName")))
        if not psn_hub:
            continue   # its gateway is not in view: nothing to join on
        if psn_hub not in intents:
            yield conn, (f"PSN connection's hub {psn_hub} has no routing intent: without a PrivateTraffic policy "
                         "through the hub firewall, every branch and spoke on the hub reaches the PSN directly")
            continue
        if not any(_private_via_firewall(intent, firewalls) for intent in intents[psn_hub]):
            yield intents[psn_hub][0], (f"routing intent on hub {psn_hub} (the PSN's) has no PrivateTraffic policy "
                                        "through the hub firewall: traffic to the PSN would bypass the firewall policy")
        associated = _last(((conn.props.get("routingConfiguration") or {}).get("associatedRouteTable") or {})
                           .get("id"))
        if associated and associated not in BUILTIN_HUB_TABLES:
            yield conn, (f"PSN connection is associated with the custom route table {associated!r} on a hub "
                         "with routing intent, which Azure does not allow")


def _private_via_firewall(intent: PolicyResource, firewalls: set[str]) -> bool:
    for policy in intent.props.get("routingPolicies") or []:
        policy = policy if isinstance(policy, Mapping) else {}
        if "privatetraffic" not in {_lower(d) for d in policy.get("destinations") or []}:
            continue
        hop = _lower(policy.get("nextHop"))
        if hop in firewalls or (not firewalls and "/azurefirewalls/" in hop):
            return True
    return False


def _firewall_rules(resources: Sequence[PolicyResource]) -> Iterable[
        tuple[PolicyResource, str, str, Mapping[str, Any]]]:
    """(rule collection group, collection name, action, network rule) for every network rule."""
    for group in resources:
        if group.type != RULE_COLLECTION_GROUP:
            continue
        for collection in group.props.get("ruleCollections") or []:
            collection = collection if isinstance(collection, Mapping) else {}
            action = _lower((collection.get("action") or {}).get("type"))
            for rule in collection.get("rules") or []:
                if isinstance(rule, Mapping) and rule.get("ruleType") == "NetworkRule":
                    yield group, str(collection.get("name") or "?"), action, rule


def _addresses(rule: Mapping[str, Any], key: str) -> tuple[bool, list[Net]]:
    """(whether the side is any address, its networks)."""
    values = [str(v).strip() for v in rule.get(key) or []]
    return any(v.lower() in ANY_ADDRESS for v in values), _nets(v for v in values if v.lower() not in ANY_ADDRESS)


def _untrusted_by_site(resources: Sequence[PolicyResource]) -> list[tuple[Net, str, PolicyResource]]:
    """(range, site, the site's VPN site or local network gateway) for each guest and public Wi-Fi
    range, once per site and range (hub-vnet has one local network gateway per hub), in address order."""
    seen: dict[tuple[Net, str], PolicyResource] = {}
    for r in sorted(resources, key=lambda r: r.name):
        if r.type in (VPN_SITE, LOCAL_GATEWAY) and _lower(r.tags.get("estate-role")) != PSN_ROLE_TAG:
            value = r.tags.get(UNTRUSTED_TAG)
            for net in _nets(str(value).split() if value else []):
                seen.setdefault((net, str(r.tags.get("estate-site") or r.name)), r)
    return sorted(((net, site, r) for (net, site), r in seen.items()),
                  key=lambda item: (item[0].version, int(item[0].network_address), item[0].prefixlen, item[1]))


def untrusted_wifi_in_trusted_zone(resources: Sequence[PolicyResource]) -> Iterable[tuple[PolicyResource, str]]:
    """No guest or public Wi-Fi range is a source of a private allow rule in the hub firewall policy.

    The program gives guest, public and internet zones no private flow (infra/wan.py `estate_flows`);
    a guest or public Wi-Fi VLAN placed in a trusted zone brings its range into that zone's allow-lists
    (LOB systems, DNS, RADIUS) all the same. Blamed on the site's VPN resource, built from the site
    whose VLAN it is. Flows to the PSN are psn_route_isolation's.
    """
    untrusted = _untrusted_by_site(resources)
    if not untrusted:
        return
    psn = _psn_nets(resources)
    rules = [(collection, rule) for _group, collection, action, rule in _firewall_rules(resources)
             if action == "allow" and not _towards_psn(rule, psn)]
    for net, site, res in untrusted:
        hits = sorted({f"{rule.get('name')!r} ({collection})" for collection, rule in rules
                       if _overlap(_addresses(rule, "sourceAddresses")[1], [net])})
        if hits:
            shown = ", ".join(hits[:5]) + (f" and {len(hits) - 5} more" if len(hits) > 5 else "")
            yield res, (f"{site}'s guest/public Wi-Fi range {net} is a source of the firewall policy's private "
                        f"allow rule(s) {shown}: its VLAN sits in a trusted zone; put guest and public Wi-Fi "
                        "VLANs in a guest or public zone")


SENSITIVE = "official-sensitive"
CLASSIFICATION_TAG = "data-classification"


def untrusted_wifi_to_sensitive(resources: Sequence[PolicyResource]) -> Iterable[tuple[PolicyResource, str]]:
    """No firewall policy allow rule lets a guest or public Wi-Fi range reach a system marked
    OFFICIAL-SENSITIVE (its spoke VNet's data-classification tag). Visitors' devices are unknown to the
    council; OFFICIAL-SENSITIVE data is reached only from managed devices. Blamed on the system's spoke,
    built from its entry in the LOB catalogue, whatever put the range in the rule."""
    untrusted = _untrusted_by_site(resources)
    spokes = [(vnet, _nets((vnet.props.get("addressSpace") or {}).get("addressPrefixes") or []))
              for vnet in sorted(resources, key=lambda r: r.name)
              if vnet.type == N + "VirtualNetwork" and _lower(vnet.tags.get(CLASSIFICATION_TAG)) == SENSITIVE]
    if not untrusted or not spokes:
        return
    rules = [(collection, rule) for _group, collection, action, rule in _firewall_rules(resources)
             if action == "allow"]
    for vnet, space in spokes:
        system = vnet.tags.get("system") or vnet.name
        for net, site, _res in untrusted:
            hits = sorted({f"{rule.get('name')!r} ({collection})" for collection, rule in rules
                           if _overlap(_addresses(rule, "sourceAddresses")[1], [net])
                           and (_addresses(rule, "destinationAddresses")[0]
                                or _overlap(_addresses(rule, "destinationAddresses")[1], space))})
            if hits:
                yield vnet, (f"{site}'s guest/public Wi-Fi range {net} reaches OFFICIAL-SENSITIVE system {system} "
                             f"through firewall policy allow rule(s) {', '.join(hits)}: only managed devices may "
                             "reach OFFICIAL-SENSITIVE data")


def _towards_psn(rule: Mapping[str, Any], psn: Sequence[Net]) -> bool:
    """Whether a firewall rule's destination is (or takes in) the PSN: psn_route_isolation's to judge."""
    dst_any, dests = _addresses(rule, "destinationAddresses")
    return bool(psn) and (dst_any or bool(_overlap(dests, psn)))


def _psn_firewall_rules(resources: Sequence[PolicyResource],
                        untrusted: list[tuple[Net, str]]) -> Iterable[tuple[PolicyResource, str]]:
    psn = _psn_nets(resources)
    if not psn:
        return
    rules = list(_firewall_rules(resources))
    labelled: list[tuple[Net, str]] = []
    known: set[Net] = set()
    for net, site in untrusted:     # one local network gateway per hub in hub-vnet: once each
        if net not in known:
            known.add(net)
            labelled.append((net, f"{site}'s"))
    for _group, collection, action, rule in rules:
        # What the policy itself denies towards the PSN is untrusted too, whichever site it is at.
        src_any, sources = _addresses(rule, "sourceAddresses")
        dst_any, dests = _addresses(rule, "destinationAddresses")
        # (A deny from the PSN's own prefixes, towards untrusted ranges, is the other direction.)
        if action == "deny" and not src_any and (dst_any or _overlap(dests, psn)) and not _overlap(sources, psn):
            for net in sources:
                if net not in known:
                    known.add(net)
                    labelled.append((net, f"the {collection!r} deny rule's"))
    for group, collection, action, rule in rules:
        if action != "allow":
            continue
        label = f"firewall policy rule {rule.get('name')!r} ({collection})"
        src_any, sources = _addresses(rule, "sourceAddresses")
        dst_any, dests = _addresses(rule, "destinationAddresses")
        to_psn = dst_any or bool(_overlap(dests, psn))
        from_psn = src_any or bool(_overlap(sources, psn))
        if to_psn and src_any:
            yield group, f"{label} allows any source to the PSN: only declared zones may reach the PSN"
            continue
        if to_psn:
            hits = [(net, site) for net, site in labelled if _overlap(sources, [net])]
            if hits:
                yield group, (f"{label} allows traffic to the PSN from "
                              + ", ".join(f"{site} guest/public Wi-Fi range {net}" for net, site in hits)
                              + ": only declared zones may reach the PSN")
        if from_psn and not src_any:
            hits = [(net, site) for net, site in labelled if dst_any or _overlap(dests, [net])]
            if hits:
                yield group, (f"{label} allows the PSN to reach "
                              + ", ".join(f"{site} guest/public Wi-Fi range {net}" for net, site in hits)
                              + ": the PSN may reach declared zones only")


RULES: list[Rule] = [
    Rule("infra.policy.ssid_vlan_segregation", "Public and guest SSIDs never on corporate or PSN VLANs",
         stack=ssid_vlan_segregation),
    Rule("infra.policy.public_ssid_isolation", "Client isolation on every public SSID",
         stack=public_ssid_isolation),
    Rule("infra.policy.corporate_ssid_no_psk", "No pre-shared key on a corporate SSID",
         stack=corporate_ssid_no_psk),
    Rule("infra.policy.guest_ssid_segregation",
         "Guest SSIDs never on a management VLAN, always with client isolation", stack=guest_ssid_segregation),
    Rule("infra.policy.site_range_overlap", "No overlapping site address ranges", stack=site_range_overlap),
    Rule("infra.policy.vpn_ikev2_proposals", "Every site VPN on IKEv2 with approved proposals",
         resource=vpn_ikev2_proposals, types=(VPN_CONNECTION, GATEWAY_CONNECTION)),
    Rule("infra.policy.psn_route_isolation", "The PSN reachable only from declared zones",
         stack=psn_route_isolation),
    Rule("infra.policy.untrusted_wifi_in_trusted_zone",
         "Guest and public Wi-Fi ranges in no private allow rule (never in a trusted zone)",
         stack=untrusted_wifi_in_trusted_zone),
    Rule("infra.policy.untrusted_wifi_to_sensitive", "Guest and public Wi-Fi reach no OFFICIAL-SENSITIVE system",
         stack=untrusted_wifi_to_sensitive),
]
