"""The network diagram a PSN application needs: sites, WAN links, hubs, zones, the PSN connection and
the internet breakout, drawn from the estate model (never hand-drawn, so never stale).

`diagram_data(estate)` is the diagram as plain data (JSON for the PSN submission and for tools);
`render(data, path)` draws it with Graphviz (`dot`) as SVG and PNG. The drawing is laid out left to
right: sites -> the Azure hub(s) -> the internet breakout, the PSN and the Azure spokes. The PSN
link is drawn thick and purple, the breakout dashed green, untrusted Wi-Fi in orange with "internet
only" on it, pupils' and device networks (kept to their own zone) in teal. Sites come grouped by
kind, HQ first. A small estate draws each site as a box of its VLANs; past DETAILED_SITES sites (a
council of 40+ sites drew one column 12,815 px tall) each site is one compact card, the cards of a
kind in a grid of rows, and each kind joins its WAN hub with one line, so the drawing stays near A3
proportions and readable when printed.
"""

from __future__ import annotations

import html
import math
from itertools import pairwise
from pathlib import Path
from typing import Any

from ..fsutil import SHARED_FILE, atomic_write
from ..model.schema import CONTROLLED_ZONES, Estate, Hosting, VlanPurpose, WanDesign, ZoneKind
from .reach import psn_reach, vpn_sites, wifi_sites

SCHEMA = "estate.network-diagram/1"

# Colours: one meaning each, and a legend on the drawing says which.
COLOUR = {
    "trusted": "#dbe8f6", "trusted_edge": "#2c5d8f",
    "untrusted": "#fde3c8", "untrusted_edge": "#c25a00",
    "segregated": "#cdeeea", "segregated_edge": "#1f6f6a",
    "psn": "#e7dcf3", "psn_edge": "#5b2a86",
    "breakout": "#2e7d32", "hub": "#eef3ee", "site": "#fafafa", "vpn": "#2c5d8f",
}


# Networks kept to their own zone: pupils never reach the council's zones, devices only their
# controllers. Drawn apart from the trusted VLANs: a reviewer who saw a pupil VLAN coloured as
# corporate would read it as trusted, which is the opposite of what the estate requires.
SEGREGATED_PURPOSES = (VlanPurpose.PUPILS, VlanPurpose.IOT, VlanPurpose.BUILDING_MANAGEMENT, VlanPurpose.CCTV)
SEGREGATED_ZONES = (ZoneKind.PUPIL, *CONTROLLED_ZONES)


def _trust(purpose: VlanPurpose, zone_kind: ZoneKind | None) -> str:
    if zone_kind is ZoneKind.PSN or purpose is VlanPurpose.PSN_DMZ:
        return "psn"
    if purpose in (VlanPurpose.GUEST_WIFI, VlanPurpose.PUBLIC_WIFI) or zone_kind in (ZoneKind.GUEST, ZoneKind.PUBLIC):
        return "untrusted"
    if purpose in SEGREGATED_PURPOSES or zone_kind in SEGREGATED_ZONES:
        return "segregated"
    return "trusted"


# Beyond this many sites, compact cards in a grid (see the module docstring).
DETAILED_SITES = 16
# Site kinds in the order a reader looks for them: the HQ first, then offices, then the rest.
KIND_ORDER = ("hq", "civic-centre", "office", "contact-centre", "depot", "library", "leisure-centre",
              "community-hub", "school-admin", "school", "care-home")
KIND_TITLE = {"hq": "Headquarters", "civic-centre": "Civic centre", "office": "Offices",
              "contact-centre": "Contact centres", "depot": "Depots", "library": "Libraries",
              "leisure-centre": "Leisure centres", "community-hub": "Community hubs",
              "school-admin": "Schools (admin)", "school": "Schools", "care-home": "Care homes"}


def _kind_rank(kind: str) -> int:
    return KIND_ORDER.index(kind) if kind in KIND_ORDER else len(KIND_ORDER)


def _mbps(value: int) -> str:
    return f"{value // 1000} Gb/s" if value >= 1000 and value % 1000 == 0 else f"{value} Mb/s"


def diagram_data(estate: Estate) -> dict[str, Any]:
    """The network as plain data: what the drawing shows, for the PSN submission and tools."""
    conn = estate.azure.connectivity
    zone_kinds = {z.name: z.kind for z in estate.zones}
    ssids = wifi_sites(estate)
    vpn = {s.name for s in vpn_sites(estate)}
    reach = psn_reach(estate)
    psn = estate.organisation.public_sector_network
    sites: list[dict[str, Any]] = []
    for site in estate.sites:
        by_vlan = {v.name: [s.name for _, s, v2 in ssids.get(site.name, []) if v2.name == v.name] for v in site.vlans}
        sites.append({
            "name": site.name, "title": site.title, "kind": site.kind.value, "ranges": list(site.ranges),
            "firewall": site.firewall, "staff": site.staff,
            "wan": {"kind": site.wan.kind, "provider": site.wan.provider, "bandwidth_mbps": site.wan.bandwidth_mbps,
                    "public_ip": site.wan.public_ip, "bgp_asn": site.wan.bgp_asn, "breakout": site.wan.breakout,
                    "vpn_to_hub": site.name in vpn},
            "vlans": [{"id": v.id, "name": v.name, "purpose": v.purpose.value, "cidr": v.cidr, "zone": v.zone,
                       "trust": _trust(v.purpose, zone_kinds.get(v.zone)), "ssids": by_vlan.get(v.name, [])}
                      for v in site.vlans],
        })
    hubs = [{"region": estate.azure.primary_region, "role": "primary", "address_space": conn.hub_address_space}]
    if conn.secondary_hub and conn.secondary_hub_address_space:
        hubs.append({"region": estate.azure.secondary_region, "role": "secondary",
                     "address_space": conn.secondary_hub_address_space})
    spokes = [lob for lob in estate.lob_systems if lob.hosting is not Hosting.SAAS and lob.address_space]
    links = [{"from": f"site:{s['name']}", "to": f"hub:{estate.azure.primary_region}", "kind": "vpn",
              "label": f"IPsec IKEv2, {_mbps(s['wan']['bandwidth_mbps'])}"} for s in sites if s["wan"]["vpn_to_hub"]]
    if conn.psn:
        links.append({"from": f"hub:{estate.azure.primary_region}", "to": "psn", "kind": "psn",
                      "label": f"{psn} connection, own IPsec connection"})
    links.append({"from": f"hub:{estate.azure.primary_region}", "to": "internet", "kind": "breakout",
                  "label": "internet breakout through Azure Firewall"})
    if spokes:
        links.append({"from": f"hub:{estate.azure.primary_region}", "to": "azure-spokes", "kind": "spoke",
                      "label": f"{len(spokes)} LOB spokes"})
    return {
        "schema": SCHEMA,
        "organisation": estate.organisation.name,
        "public_sector_network": psn,
        "design": conn.design.value,
        "hubs": hubs,
        "firewall": {"product": "Azure Firewall", "tier": conn.firewall_tier, "tls_inspection": conn.tls_inspection,
                     "allowed_fqdns": list(conn.breakout_allowed_fqdns),
                     "allowed_categories": list(conn.breakout_allowed_categories)},
        "dns_resolver_address_space": conn.dns_resolver_address_space,
        "psn": {"name": psn, "provider": conn.psn.provider if conn.psn else None,
                "peer": conn.psn.public_ip if conn.psn else None, "prefixes": list(reach.psn_prefixes),
                "allowed_zones": list(reach.zones), "allowed_prefixes": list(reach.prefixes),
                "firewall_rules": list(reach.rules),
                # How the hub keeps the PSN apart (infra/wan.py): Virtual WAN allows no custom
                # route table beside routing intent, so there the firewall policy does it alone.
                "isolation": ("routing intent through the hub firewall; firewall policy allows declared zones only"
                              if conn.design is WanDesign.VIRTUAL_WAN else
                              "PSN route table on the GatewaySubnet to the hub firewall; firewall policy allows "
                              "declared zones only")},
        "spokes": [{"name": lob.name, "hosting": lob.hosting.value, "address_space": lob.address_space}
                   for lob in spokes],
        "sites": sites,
        "links": links,
    }


# ---- drawing ---------------------------------------------------------------------------------------


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _vlan_table(title: str, vlans: list[dict[str, Any]], fill: str, edge: str) -> str:
    rows = [f'<TR><TD COLSPAN="3" BGCOLOR="{edge}"><FONT COLOR="white"><B>{_e(title)}</B></FONT></TD></TR>']
    for v in vlans:
        ssid = f'<BR/><I>SSID: {_e(", ".join(v["ssids"]))}</I>' if v["ssids"] else ""
        rows.append(f'<TR><TD ALIGN="LEFT">VLAN {v["id"]}</TD><TD ALIGN="LEFT">{_e(v["name"])}{ssid}</TD>'
                    f'<TD ALIGN="LEFT">{_e(v["cidr"])}</TD></TR>')
    return (f'<<TABLE BORDER="1" CELLBORDER="0" CELLSPACING="0" CELLPADDING="3" BGCOLOR="{fill}" '
            f'COLOR="{edge}">{"".join(rows)}</TABLE>>')


def to_dot(data: dict[str, Any]) -> Any:
    """The Graphviz graph for the diagram data."""
    import graphviz

    psn = data["public_sector_network"]
    region = data["hubs"][0]["region"]
    g = graphviz.Digraph("network", graph_attr={
        "rankdir": "LR", "fontname": "DejaVu Sans", "fontsize": "20", "labelloc": "t", "nodesep": "0.25",
        "ranksep": "1.3", "newrank": "true", "splines": "spline", "pad": "0.4",
        "label": f"{data['organisation']}: network and {psn} connection (from the estate model)",
    }, node_attr={"fontname": "DejaVu Sans", "fontsize": "11", "shape": "box", "style": "rounded,filled",
                  "fillcolor": "white"}, edge_attr={"fontname": "DejaVu Sans", "fontsize": "10"})

    sites = sorted(data["sites"], key=lambda s: _kind_rank(s["kind"]))   # stable: the estate's order within a kind
    compact = len(sites) > DETAILED_SITES
    # A label on an edge takes a rank of its own in a left-to-right layout: in the compact drawing
    # labels are placed after layout (xlabel), which keeps the hub narrow beside the grid.
    lab = "xlabel" if compact else "label"
    if compact:
        g.attr(nodesep="0.15", ranksep="0.5", forcelabels="true")
        _site_grid(g, sites, psn)
    for site in [] if compact else sites:
        sid = f"site_{site['name']}"
        with g.subgraph(name=f"cluster_{sid}") as c:
            c.attr(label=f"{site['title']}\n{', '.join(site['ranges'])}", style="rounded,filled",
                   fillcolor=COLOUR["site"], color="#888888", fontsize="12", labeljust="l")
            router = site["firewall"] or "site router"
            wan = site["wan"]
            c.node(f"{sid}_router", f"{router}\n{wan['kind']} · {wan['provider']}", fillcolor="white")
            for trust, title in (("trusted", "trusted VLANs"), ("psn", f"{psn} DMZ"),
                                 ("segregated", "segregated: pupils, devices (own zone only)"),
                                 ("untrusted", "guest / public Wi-Fi: internet only")):
                vlans = [v for v in site["vlans"] if v["trust"] == trust]
                if not vlans:
                    continue
                c.node(f"{sid}_{trust}", _vlan_table(title, vlans, COLOUR[trust], COLOUR[f"{trust}_edge"]),
                       shape="plain")
                style = "dashed" if trust == "untrusted" else "solid"
                c.edge(f"{sid}_{trust}", f"{sid}_router", color=COLOUR[f"{trust}_edge"], style=style,
                       arrowhead="none")

    for hub in data["hubs"]:
        hid = f"hub_{hub['region']}"
        with g.subgraph(name=f"cluster_{hid}") as c:
            design = "Virtual WAN hub" if data["design"] == "virtual-wan" else "hub VNet"
            c.attr(label=f"Azure {design}, {hub['region']} ({hub['role']})\n{hub['address_space']}",
                   style="rounded,filled", fillcolor=COLOUR["hub"], color="#4f7f52", fontsize="13")
            c.node(f"{hid}_vpngw", "VPN gateway\nIKEv2, AES-256-GCM, ECP384 + PFS\nkeys in Key Vault")
            c.node(f"{hid}_fw", f"Azure Firewall ({data['firewall']['tier']})\nfirewall policy, threat intel deny"
                                + ("\nTLS inspection" if data["firewall"]["tls_inspection"] else ""))
            steer = "routing intent" if data["design"] == "virtual-wan" else "route table (UDR)"
            c.edge(f"{hid}_vpngw", f"{hid}_fw", color="#4f7f52", **{lab: steer})
            if hub["role"] == "primary":
                if data["psn"]["peer"]:
                    zones = ", ".join(data["psn"]["allowed_zones"]) or "none"
                    rules = ", ".join(data["psn"]["firewall_rules"])
                    c.node(f"{hid}_psnrt", f"{psn} firewall rules\nonly: {zones}\n(rules {rules})",
                           fillcolor=COLOUR["psn"], color=COLOUR["psn_edge"], penwidth="2")
                    c.edge(f"{hid}_fw", f"{hid}_psnrt", color=COLOUR["psn_edge"], penwidth="2")
                if data["dns_resolver_address_space"]:
                    c.node(f"{hid}_dns",
                           f"DNS private resolver\nprivatelink zones\n{data['dns_resolver_address_space']}")
                    c.edge(f"{hid}_fw", f"{hid}_dns", style="invis")

    if compact:
        _grid_links(g, sites, f"hub_{region}_vpngw")
    for site in [] if compact else sites:
        sid = f"site_{site['name']}"
        wan = site["wan"]
        if wan["vpn_to_hub"]:
            g.edge(f"{sid}_router", f"hub_{region}_vpngw",
                   label=f"{_mbps(wan['bandwidth_mbps'])} · {wan['public_ip']}", color=COLOUR["vpn"])

    fw = f"hub_{region}_fw"
    firewall = data["firewall"]
    g.node("internet", f"Internet\nallowed: {len(firewall['allowed_fqdns'])} FQDN patterns,\n"
                       f"{len(firewall['allowed_categories'])} web categories", shape="ellipse",
           fillcolor="#e8f5e9", color=COLOUR["breakout"])
    g.edge(fw, "internet", **{lab: "internet breakout (filtered)"}, color=COLOUR["breakout"], style="dashed",
           penwidth="2", fontcolor=COLOUR["breakout"])
    if data["psn"]["peer"]:
        prefixes = ", ".join(data["psn"]["prefixes"])
        g.node("psn", f"{psn}\n{data['psn']['provider']}\npeer {data['psn']['peer']}\n{prefixes}",
               shape="box3d", style="filled", fillcolor=COLOUR["psn"], color=COLOUR["psn_edge"], penwidth="2")
        g.edge(f"hub_{region}_psnrt", "psn", **{lab: f"{psn} connection (IPsec, its own connection)"},
               color=COLOUR["psn_edge"], penwidth="3", fontcolor=COLOUR["psn_edge"])
    if data["spokes"]:
        spaces = sorted({s["address_space"] for s in data["spokes"]})
        shown = ", ".join(spaces[:3]) + (f" … (+{len(spaces) - 3})" if len(spaces) > 3 else "")
        g.node("spokes", f"Azure landing-zone spokes\n{len(data['spokes'])} LOB systems (PaaS/IaaS)\n{shown}",
               shape="component", fillcolor="#f1f8ff")
        g.edge(fw, "spokes", color="#4f7f52", **{lab: "hub connections"})
    for hub in data["hubs"][1:]:
        g.edge(f"hub_{region}_fw", f"hub_{hub['region']}_fw", style="dotted", dir="both", **{lab: "hub-to-hub"})

    legend = ('<<TABLE BORDER="0" CELLBORDER="1" CELLSPACING="0" CELLPADDING="4">'
              '<TR><TD COLSPAN="2"><B>Legend</B></TD></TR>'
              f'<TR><TD BGCOLOR="{COLOUR["trusted"]}">   </TD><TD ALIGN="LEFT">'
              'trusted VLANs (corporate, voice, servers, management)</TD></TR>'
              f'<TR><TD BGCOLOR="{COLOUR["segregated"]}">   </TD><TD ALIGN="LEFT">segregated: pupils (never the '
              "council's zones), IoT, building management, CCTV (their controllers only)</TD></TR>"
              f'<TR><TD BGCOLOR="{COLOUR["untrusted"]}">   </TD><TD ALIGN="LEFT">guest / public Wi-Fi: internet only, '
              f'never {_e(psn)}</TD></TR>'
              f'<TR><TD BGCOLOR="{COLOUR["psn"]}">   </TD><TD ALIGN="LEFT">{_e(psn)}: reachable only from the '
              'declared zones</TD></TR>'
              f'<TR><TD><FONT COLOR="{COLOUR["breakout"]}"><B>- - -</B></FONT></TD>'
              '<TD ALIGN="LEFT">internet breakout (dashed green)</TD></TR>'
              f'<TR><TD><FONT COLOR="{COLOUR["vpn"]}"><B>———</B></FONT></TD>'
              '<TD ALIGN="LEFT">site VPN (IPsec IKEv2, blue)</TD></TR>'
              f'<TR><TD><FONT COLOR="{COLOUR["psn_edge"]}"><B>━━━</B></FONT></TD>'
              f'<TD ALIGN="LEFT">{_e(psn)} connection (thick purple)</TD></TR>'
              '</TABLE>>')
    g.node("legend", legend, shape="plain")
    g.edge("legend", "internet", style="invis")
    return g


def _grid_columns(n: int) -> int:
    # About A3 landscape proportions with the hub beside the grid: 3 cards across up to ~50 sites.
    return max(3, round(math.sqrt(n * 0.25)))


def _site_card(site: dict[str, Any]) -> str:
    """One site on a small card: name, ranges, WAN link, its VLANs as chips coloured by trust (the
    legend says which colour is which; the SSIDs are in the diagram data)."""
    wan = site["wan"]
    peer = f" · {_e(wan['public_ip'])}" if wan["public_ip"] else ""
    chips = "".join(f'<TD BGCOLOR="{COLOUR[v["trust"]]}"><FONT POINT-SIZE="8">{v["id"]} {_e(v["name"][:12])}'
                    "</FONT></TD>" for v in site["vlans"])
    vlans = (f'<TR><TD ALIGN="LEFT"><TABLE BORDER="0" CELLBORDER="1" CELLSPACING="1" CELLPADDING="1">'
             f"<TR>{chips}</TR></TABLE></TD></TR>") if chips else ""
    firewall = f" · {_e(site['firewall'])}" if site["firewall"] else ""
    return (f'<TABLE BORDER="1" CELLBORDER="0" CELLSPACING="0" CELLPADDING="1" BGCOLOR="white" COLOR="#888888">'
            f'<TR><TD ALIGN="LEFT"><B>{_e(site["title"])}</B></TD></TR>'
            f'<TR><TD ALIGN="LEFT"><FONT POINT-SIZE="8">{_e(", ".join(site["ranges"]))}{firewall}</FONT></TD></TR>'
            f'<TR><TD ALIGN="LEFT"><FONT POINT-SIZE="8">{_e(wan["kind"])} · {_e(wan["provider"])} · '
            f'{_mbps(wan["bandwidth_mbps"])}{peer}</FONT></TD></TR>{vlans}</TABLE>')


def _groups(sites: list[dict[str, Any]]) -> list[tuple[str, bool, list[dict[str, Any]]]]:
    """(kind, joins the hub by VPN, sites): one group per kind and WAN hub, HQ first."""
    out: dict[tuple[str, bool], list[dict[str, Any]]] = {}
    for site in sites:
        out.setdefault((site["kind"], site["wan"]["vpn_to_hub"]), []).append(site)
    return [(kind, vpn, members) for (kind, vpn), members in out.items()]


def _group_id(kind: str, vpn: bool) -> str:
    return f"sites_{kind}_{'vpn' if vpn else 'carrier'}".replace("-", "_")


def _site_grid(g: Any, sites: list[dict[str, Any]], psn: str) -> None:
    """Each group one node: a table of site cards in rows of _grid_columns. Graphviz then places
    a handful of group nodes instead of 40 clusters (which it stacked into one tall column)."""
    columns = _grid_columns(len(sites))
    ids = []
    for kind, vpn, members in _groups(sites):
        total = _mbps(sum(s["wan"]["bandwidth_mbps"] for s in members))
        head = f"{KIND_TITLE.get(kind, kind)} ({len(members)}): " + (
            f"IPsec IKEv2 VPN to the hub, {total} in all" if vpn else "carrier WAN, no VPN to the hub")
        rows = []
        for start in range(0, len(members), columns):
            cells = "".join(f'<TD VALIGN="TOP" ALIGN="LEFT">{_site_card(s)}</TD>'
                            for s in members[start:start + columns])
            rows.append(f"<TR>{cells}</TR>")
        label = (f'<<TABLE BORDER="1" CELLBORDER="0" CELLSPACING="4" CELLPADDING="0" BGCOLOR="#f4f4f4" '
                 f'COLOR="#888888"><TR><TD COLSPAN="{columns}" ALIGN="LEFT"><FONT POINT-SIZE="13"><B>{_e(head)}'
                 f'</B></FONT></TD></TR>{"".join(rows)}</TABLE>>')
        gid = _group_id(kind, vpn)
        g.node(gid, label, shape="plain")
        ids.append(gid)
    # HQ first: the groups in one column, in this order (flat edges fix the order within a rank).
    with g.subgraph() as same:
        same.attr(rank="same")
        for a, b in pairwise(ids):
            same.edge(a, b, style="invis")


def _grid_links(g: Any, sites: list[dict[str, Any]], vpngw: str) -> None:
    """One line per group that joins the hub by VPN (the group's heading says how)."""
    for kind, vpn, _members in _groups(sites):
        if vpn:
            g.edge(_group_id(kind, vpn), vpngw, color=COLOUR["vpn"], penwidth="2")


def render(data: dict[str, Any], out: Path, formats: tuple[str, ...] = ("svg", "png")) -> list[Path]:
    """Draw the diagram as `out` with each format's suffix; each file appears whole or not at all."""
    graph = to_dot(data)
    written = []
    rendered = {fmt: graph.pipe(format=fmt, engine="dot") for fmt in formats}  # all before any write
    for fmt, content in rendered.items():
        target = out.with_suffix(f".{fmt}")
        # A diagram for people to share (the PSN submission), not a secret: world-readable.
        atomic_write(target, content, mode=SHARED_FILE)
        written.append(target)
    return written


