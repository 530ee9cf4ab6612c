"""One naming convention for every Azure resource the program creates (Cloud Adoption Framework style).

    <type-abbrev>-<org>-<workload>-<env>-<region-abbrev>[-<instance>]     e.g. vnet-hdc-planning-prod-uks

Azure's per-type limits are enforced here, not discovered at deploy time:
- storage accounts: 3-24 characters, lower-case letters and digits only (no hyphens), globally unique;
- Key Vaults: 3-24 characters, letters, digits and hyphens, starting with a letter, no `--`;
- policy assignments at management-group scope: 24 characters at most;
- VM computer names: 15 characters for Windows (NetBIOS), 64 for Linux.
When a name would be too long the workload part is shortened and a 4-character hash of the full
name is added, so two long workloads never collide and the same input always gives the same name.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from .config import EstateInputError

# Region abbreviations (CAF's short forms). Unknown regions keep a derived short form so a non-UK
# region still gets a valid name and the location policy, not the naming code, reports it.
REGION_ABBREV = {
    "uksouth": "uks", "ukwest": "ukw", "westeurope": "weu", "northeurope": "neu",
    "eastus": "eus", "eastus2": "eus2", "westus": "wus", "francecentral": "frc", "germanywestcentral": "gwc",
}


@dataclass(frozen=True)
class Kind:
    abbrev: str
    max_len: int
    min_len: int = 1
    hyphens: bool = True      # False: letters and digits only (storage accounts)
    lower: bool = True


# CAF abbreviations: https://learn.microsoft.com/azure/cloud-adoption-framework/ready/azure-best-practices/resource-abbreviations
KINDS: dict[str, Kind] = {
    "resource_group": Kind("rg", 90),
    "virtual_network": Kind("vnet", 64),
    "subnet": Kind("snet", 80),
    "nsg": Kind("nsg", 80),
    "peering": Kind("peer", 80),
    "hub_connection": Kind("vhc", 80),
    "virtual_wan": Kind("vwan", 80),
    "virtual_hub": Kind("vhub", 80),
    "ddos_plan": Kind("ddos", 80),
    "key_vault": Kind("kv", 24, 3),
    "storage_account": Kind("st", 24, 3, hyphens=False),
    "log_analytics": Kind("log", 63, 4),
    "recovery_vault": Kind("rsv", 50, 2),
    "backup_policy": Kind("bkpol", 150),
    "virtual_machine": Kind("vm", 64),
    "nic": Kind("nic", 80),
    "os_disk": Kind("osdisk", 80),
    "disk_encryption_set": Kind("des", 80),
    "app_service_plan": Kind("asp", 60),
    "web_app": Kind("app", 60, 2),
    "sql_server": Kind("sql", 63),
    "sql_database": Kind("sqldb", 128),
    "private_endpoint": Kind("pep", 80),
    "diagnostic_setting": Kind("diag", 260),
    "budget": Kind("budget", 63),
    "policy_assignment": Kind("pa", 24),
    "management_group": Kind("mg", 90),
    "action_group": Kind("ag", 260),
    # Connectivity (infra/wan.py) and identity (infra/identity.py).
    "azure_firewall": Kind("afw", 56),
    "firewall_policy": Kind("afwp", 80),
    "public_ip": Kind("pip", 80),
    "vpn_gateway": Kind("vpng", 80),             # Virtual WAN VPN gateway (Microsoft.Network/vpnGateways)
    "vnet_gateway": Kind("vgw", 80),             # virtual network gateway (Microsoft.Network/virtualNetworkGateways)
    "local_network_gateway": Kind("lgw", 80),
    "vpn_site": Kind("vst", 80),
    "vpn_connection": Kind("vcn", 80),           # Microsoft.Network/vpnGateways/vpnConnections
    "connection": Kind("con", 80),               # Microsoft.Network/connections (hub-vnet IPsec connections)
    "route_table": Kind("rt", 80),
    "dns_resolver": Kind("dnspr", 80),
    "private_dns_link": Kind("pdnslink", 80),
    "managed_identity": Kind("id", 128, 3),
}

_SLUG = re.compile(r"[^a-z0-9-]+")


def _hash4(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:4]


def region_abbrev(region: str) -> str:
    if region in REGION_ABBREV:
        return REGION_ABBREV[region]
    # A derived short form: first letter of each run of letters plus any digits (e.g. "brazilsouth" -> "bra")
    return re.sub(r"[^a-z0-9]", "", region.lower())[:3] or "xx"


def slug(text: str) -> str:
    return _SLUG.sub("-", text.lower()).strip("-").replace("--", "-")


def fit(kind: Kind, parts: list[str], shorten: int, full: str) -> str:
    """Join parts with the kind's separator; shorten parts[shorten] (+hash) until the name fits."""
    sep = "-" if kind.hyphens else ""
    clean = [p if kind.hyphens else re.sub(r"[^a-z0-9]", "", p) for p in parts]
    name = sep.join(p for p in clean if p)
    if len(name) <= kind.max_len:
        return name
    tag = _hash4(full)
    rest = len(name) - len(clean[shorten])
    budget = kind.max_len - rest - len(tag) - len(sep)
    if budget < 1:
        raise EstateInputError(f"cannot fit a {kind.abbrev} name into {kind.max_len} characters: {full}")
    clean[shorten] = clean[shorten][:budget].rstrip("-") + sep + tag
    name = sep.join(p for p in clean if p)
    assert len(name) <= kind.max_len, name
    return name


@dataclass(frozen=True)
class Namer:
    """Names for one organisation and environment; `region` defaults to the primary region."""

    org: str
    env: str
    region: str = "uksouth"

    def name(self, kind: str, workload: str, *, region: str | None = None, instance: str | int | None = None) -> str:
        k = KINDS[kind]
        parts = [k.abbrev, slug(self.org), slug(workload), slug(self.env), region_abbrev(region or self.region)]
        if instance is not None:
            parts.append(f"{int(instance):02d}" if isinstance(instance, int) else slug(str(instance)))
        full = "-".join(parts)
        name = fit(k, parts, 2, full)
        validate(kind, name)
        return name

    def policy_assignment(self, short: str) -> str:
        """Policy assignment names at management-group scope: at most 24 characters, no region or env."""
        k = KINDS["policy_assignment"]
        parts = [slug(self.org), slug(short)]
        name = fit(k, parts, 1, "-".join(parts))
        validate("policy_assignment", name)
        return name

    def management_group(self, prefix: str, path: str) -> str:
        """Management group ids: <prefix>-<path>, e.g. hdc-landingzones-corp (90 characters at most)."""
        name = fit(KINDS["management_group"], [slug(prefix), slug(path)], 1, f"{prefix}-{path}")
        validate("management_group", name)
        return name

    def computer_name(self, workload: str, index: int, *, windows: bool) -> str:
        """The VM's host name: 15 characters for Windows (NetBIOS), letters, digits and hyphens."""
        limit = 15 if windows else 63
        parts = [slug(workload), f"{index:02d}"]
        return fit(Kind("", limit), parts, 0, f"{self.org}-{workload}-{index}")


_RULES: dict[str, re.Pattern[str]] = {
    "storage_account": re.compile(r"^[a-z0-9]{3,24}$"),
    "key_vault": re.compile(r"^[a-zA-Z](?!.*--)[a-zA-Z0-9-]{1,22}[a-zA-Z0-9]$"),
    "policy_assignment": re.compile(r"^[^<>*%&:\\?.+/]{1,24}$"),
}


def validate(kind: str, name: str) -> None:
    """Raise EstateInputError (a ValueError) when `name` breaks Azure's rules for `kind` (length and characters)."""
    k = KINDS[kind]
    if not k.min_len <= len(name) <= k.max_len:
        raise EstateInputError(f"{kind} name {name!r} is {len(name)} characters; Azure allows {k.min_len}-{k.max_len}")
    pattern = _RULES.get(kind)
    if pattern and not pattern.fullmatch(name):
        raise EstateInputError(f"{kind} name {name!r} breaks Azure's naming rules")
    if k.hyphens and not re.fullmatch(r"[a-z0-9][a-z0-9-]*[a-z0-9]|[a-z0-9]", name):
        raise EstateInputError(f"{kind} name {name!r} must be lower-case letters, digits and single hyphens")
