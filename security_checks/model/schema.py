"""The estate model: the one typed description of the council's estate.

Every engine reads this (Pulumi, Ansible's inventory, the scanners, the compliance checks), so its
field names are part of the product's interface: change them only with a migration note in the
schema documentation (inventory/README.md).

The schema checks shape and local rules (a CIDR is a CIDR, a VLAN id is 1-4094). Rules that need
the whole estate (a firewall rule naming an unknown zone, overlapping ranges) live in
`crossref.py`, so both kinds of problem are reported together, each with file and line.
"""

from __future__ import annotations

import enum
import ipaddress
import re
from datetime import date, time
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator, model_validator

# A name used as a key and in resource names: lower-case, digits and hyphens (CAF style).
Slug = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9-]{0,39}$")]


def required_when(**condition: tuple[str | bool, ...]) -> dict[str, Any]:
    """Field metadata: the field must be given when another field has one of these values
    (`required_when(hosting=("paas", "iaas"))`). One declaration, read both by the validator
    (Strict._conditions) and by the schema reference (docs.py), so the two cannot disagree."""
    return {"required_when": {k: list(v) for k, v in condition.items()}}


def only_when(**condition: tuple[str | bool, ...]) -> dict[str, Any]:
    """Field metadata: the field may be given only when another field has one of these values."""
    return {"only_when": {k: list(v) for k, v in condition.items()}}


def _value(v: Any) -> Any:
    return v.value if isinstance(v, enum.Enum) else v


def condition_text(condition: dict[str, list[Any]]) -> str:
    """`hosting is paas or iaas`, as both the error message and the reference say it."""
    def word(v: Any) -> str:
        return str(v).lower() if isinstance(v, bool) else str(v)
    return " and ".join(f"{k} is {' or '.join(word(v) for v in vs)}" for k, vs in condition.items())


class Strict(BaseModel):
    """Base for every model: unknown keys are errors, so a typo never silently drops a setting."""

    model_config = ConfigDict(extra="forbid", frozen=False, str_strip_whitespace=True)

    @model_validator(mode="after")
    def _conditions(self) -> Any:
        for name, f in type(self).model_fields.items():
            extra = f.json_schema_extra if isinstance(f.json_schema_extra, dict) else {}
            given = getattr(self, name) not in (None, "", [])
            for kind in ("required_when", "only_when"):
                raw = extra.get(kind)
                if not isinstance(raw, dict):
                    continue
                cond: dict[str, list[Any]] = {k: list(v) for k, v in raw.items() if isinstance(v, list)}
                holds = all(_value(getattr(self, k)) in vs for k, vs in cond.items())
                if kind == "required_when" and holds and not given:
                    raise ValueError(f"{name} is required when {condition_text(cond)}")
                if kind == "only_when" and given and not holds:
                    now = ", ".join(f"{k} is {_value(getattr(self, k))}" for k in cond)
                    raise ValueError(f"{name} is only for when {condition_text(cond)} (here {now})")
        return self


def _network(value: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    try:
        return ipaddress.ip_network(value, strict=True)
    except ValueError as exc:
        raise ValueError(f"not a network address with prefix ({exc})") from None


def _check_cidr(value: str) -> str:
    _network(value)
    return value


def _check_host_or_cidr(value: str) -> str:
    try:
        ipaddress.ip_network(value, strict=True)
    except ValueError:
        try:
            ipaddress.ip_address(value)
        except ValueError:
            raise ValueError(f"{value!r} is not an address or a network with prefix") from None
    return value


Cidr = Annotated[str, Field(description="network with prefix, e.g. 10.10.0.0/16")]


# --------------------------------------------------------------------------------------------
# Organisation
# --------------------------------------------------------------------------------------------


class Nation(StrEnum):
    ENGLAND = "england"
    WALES = "wales"
    SCOTLAND = "scotland"
    NORTHERN_IRELAND = "northern-ireland"


# The public-sector network a council's nation connects it to, unless the estate names its own.
NATION_NETWORK = {"england": "PSN", "wales": "PSN", "scotland": "SWAN", "northern-ireland": "NIGB"}


class PublicNetwork(Strict):
    """The public-sector network the council connects to, when it is not its nation's default (PSN in
    England and Wales, SWAN in Scotland, NIGB in Northern Ireland): a Welsh council on PSBA, say."""

    name: Annotated[str, StringConstraints(pattern=r"^[A-Za-z][A-Za-z0-9-]{1,15}$")] = Field(
        description="short name shown in every report, finding and rule description, e.g. PSBA")
    title: str = Field("", description="full name for people, e.g. Public Sector Broadband Aggregation")


class Contact(Strict):
    role: str
    name: str
    email: str


class RemediationTimescales(Strict):
    """Days from opening a RAP item to its target date, by severity: the council's own policy."""

    source: str = Field(description="the council policy these come from, shown beside every target date")
    critical: int = Field(14, ge=1, le=14, description="Cyber Essentials v3.3: critical fixes within 14 days")
    high: int = Field(14, ge=1, le=14, description="Cyber Essentials v3.3: high fixes within 14 days")
    medium: int = Field(30, ge=1)
    low: int = Field(90, ge=1)
    info: int = Field(180, ge=1)


class Organisation(Strict):
    name: str
    short_name: Slug = Field(description="prefix used in resource names, e.g. 'hbc'")
    nation: Nation
    domain: str
    ce_version: Literal["3.3", "3.2"] = Field("3.3", description="Cyber Essentials requirements in force")
    contacts: list[Contact] = []
    advisory_feed: str | None = Field(
        None, description="the council's offline advisory feed (JSON, estate-advisories/1), relative to the estate "
                          "directory; patch compliance matches installed versions against it (--advisory-feed "
                          "overrides)")
    remediation_timescales: RemediationTimescales | None = Field(
        None, description="RAP target dates; default: 14 days for critical and high (Cyber Essentials v3.3), "
                          "30 medium, 90 low, 180 info")
    public_network: PublicNetwork | None = Field(
        None, description="the council's public-sector network when not its nation's default (PSN in England and "
                          "Wales, SWAN in Scotland, NIGB in Northern Ireland)")
    max_waiver_months: int = Field(
        12, ge=1, le=60, description="longest a waiver may run from approved_on to expires; a longer one is "
                                     "reported by the estate-hygiene step (estate.waiver_period_too_long)")

    @property
    def public_sector_network(self) -> str:
        """The network's short name: as declared (public_network.name), else the nation's default."""
        if self.public_network is not None:
            return self.public_network.name
        return NATION_NETWORK[self.nation.value]


# --------------------------------------------------------------------------------------------
# Azure tenancy
# --------------------------------------------------------------------------------------------


class SubscriptionPlacement(StrEnum):
    MANAGEMENT = "management"
    CONNECTIVITY = "connectivity"
    IDENTITY = "identity"
    SECURITY = "security"
    CORP = "corp"
    ONLINE = "online"
    SANDBOX = "sandbox"
    DECOMMISSIONED = "decommissioned"
    QUARANTINE = "quarantine"


class Subscription(Strict):
    name: Slug
    id: str = Field(description="subscription GUID")
    placement: SubscriptionPlacement
    cost_centre: str

    @field_validator("id")
    @classmethod
    def _guid(cls, v: str) -> str:
        if not re.fullmatch(r"[0-9a-f]{8}-([0-9a-f]{4}-){3}[0-9a-f]{12}", v):
            raise ValueError("not a GUID (8-4-4-4-12 lower-case hex)")
        return v


class EntraGroups(Strict):
    """Object ids of the Entra ID groups that receive roles; names are for people."""

    infrastructure_engineers: str
    security_group: str
    auditors: str


class WanDesign(StrEnum):
    VIRTUAL_WAN = "virtual-wan"
    HUB_VNET = "hub-vnet"


class PsnLink(Strict):
    """The public-sector network (PSN / SWAN) connection: its own VPN site and connection in the Azure hub."""

    provider: str = "PSN service provider"
    public_ip: str = Field(description="the PSN provider's VPN peer address")
    bgp_asn: int | None = Field(None, ge=64512, le=65534)
    # Azure needs the peer's BGP address as well as its ASN before a connection can run BGP; without
    # it the connection uses static routes to the PSN prefixes (infra/wan.py).
    bgp_peering_address: str | None = Field(None, description="the PSN provider's BGP peer address")
    bandwidth_mbps: int = Field(100, gt=0)
    address_prefixes: list[Cidr] = Field([], description="PSN service ranges, besides the psn-zone VLANs")

    _v_ip = field_validator("public_ip")(lambda v: str(ipaddress.ip_address(v)))
    _v_bgp_ip = field_validator("bgp_peering_address")(lambda v: v if v is None else str(ipaddress.ip_address(v)))
    _v_prefixes = field_validator("address_prefixes")(lambda v: [_check_cidr(c) for c in v])


class Connectivity(Strict):
    design: WanDesign = WanDesign.VIRTUAL_WAN
    hub_address_space: Cidr
    secondary_hub: bool = Field(False, description="a second hub in the secondary region")
    secondary_hub_address_space: Cidr | None = Field(None, json_schema_extra=required_when(secondary_hub=(True,)))
    firewall_tier: Literal["Basic", "Standard", "Premium"] = "Standard"
    tls_inspection: bool = False
    ddos_protection: bool = Field(False, description="DDoS Network Protection: about GBP 2,300 a month")
    breakout_allowed_fqdns: list[str] = []
    breakout_allowed_categories: list[str] = []
    dns_resolver_address_space: Cidr | None = None
    identity_address_space: Cidr | None = Field(None, description="identity VNet (NPS RADIUS servers)")
    psn: PsnLink | None = Field(None, description="the PSN/SWAN connection terminated in the primary hub")
    meraki_organization_id: str | None = Field(None, description="existing Meraki organisation; created if absent")

    _v_hub = field_validator("hub_address_space", "secondary_hub_address_space",
                             "dns_resolver_address_space", "identity_address_space")(
        lambda v: v if v is None else _check_cidr(v))

    @model_validator(mode="after")
    def _secondary(self) -> Connectivity:
        # Azure Firewall: TLS inspection is a Premium feature, web categories need Standard or above.
        if self.tls_inspection and self.firewall_tier != "Premium":
            raise ValueError("tls_inspection needs firewall_tier Premium")
        if self.breakout_allowed_categories and self.firewall_tier == "Basic":
            raise ValueError("breakout_allowed_categories need firewall_tier Standard or Premium")
        return self


class Budget(Strict):
    name: Slug
    scope: Literal["tenant"] | Slug = Field(description="'tenant' or a subscription name")
    monthly_gbp: int = Field(gt=0)
    alert_thresholds: list[int] = [80, 100]
    contact_emails: list[str]


class BreakGlassAccount(Strict):
    """An emergency-access account conditional access may leave out on purpose (Microsoft advises two)."""

    account: str = Field(description="user principal name or Entra object id")
    reason: str = Field(min_length=10, description="why it is excluded: who holds its credential, how its use is "
                                                   "alerted")


class Azure(Strict):
    tenant_id: str
    primary_region: Literal["uksouth", "ukwest"] = "uksouth"
    secondary_region: Literal["uksouth", "ukwest"] = "ukwest"
    allowed_regions: list[str] = ["uksouth", "ukwest"]
    management_group_prefix: Slug
    subscriptions: list[Subscription]
    entra_groups: EntraGroups
    connectivity: Connectivity
    budgets: list[Budget] = []
    log_retention_days: int = Field(365, ge=30, le=730)
    evidence_retention_days: int = Field(2555, ge=1, description="seven years by default")
    break_glass_accounts: list[BreakGlassAccount] = Field(
        [], max_length=4, description="the only accounts the MFA and legacy-authentication policies may exclude; "
                                      "any other exclusion is a finding")
    entra_export: str | None = Field(
        None, description="directory of Microsoft Graph JSON exports of the tenant (conditional access policies, "
                          "MFA registration), relative to the estate directory; the identity step judges MFA from "
                          "it (--entra-export overrides)")
    intune_export: str | None = Field(
        None, description="Intune managed-devices export, relative to the estate directory: Microsoft Graph "
                          "deviceManagement/managedDevices JSON or the admin centre's CSV; the mdm step judges the "
                          "devices Ansible does not reach from it (--intune-export overrides)")


# --------------------------------------------------------------------------------------------
# Zones, sites, VLANs
# --------------------------------------------------------------------------------------------


class ZoneKind(StrEnum):
    USER = "user"            # staff devices
    SERVER = "server"
    VOICE = "voice"
    GUEST = "guest"          # guest Wi-Fi: visitors with a key
    PUBLIC = "public"        # free public Wi-Fi
    IOT = "iot"
    MANAGEMENT = "management"
    PSN = "psn"              # the public-sector network connection (PSN / SWAN)
    PUPIL = "pupil"          # pupils' and students' devices: never reach the council's own zones
    BUILDING_MANAGEMENT = "building-management"  # BMS, HVAC, door access: reach only their controllers
    CCTV = "cctv"            # cameras: reach only their recorders
    INTERNET = "internet"
    CLOUD = "cloud"          # Azure spokes


# Zones whose devices may talk only to their own controllers (a BMS head-end, an NVR, a Wi-Fi or
# IoT controller): a camera or a boiler that reaches anything else is a way in.
CONTROLLED_ZONES = (ZoneKind.IOT, ZoneKind.BUILDING_MANAGEMENT, ZoneKind.CCTV)
# The council's own zones, which a pupil network must never reach.
CORPORATE_ZONES = (ZoneKind.USER, ZoneKind.SERVER, ZoneKind.VOICE, ZoneKind.MANAGEMENT, ZoneKind.PSN,
                   ZoneKind.CLOUD)


class Zone(Strict):
    name: Slug
    kind: ZoneKind
    description: str = ""
    controllers: list[Slug] = Field(
        [], description="iot, building-management and cctv zones: the declared hosts (declared_hosts names) its "
                        "devices may reach; a firewall rule letting the zone reach anything else is a finding")

    @property
    def untrusted(self) -> bool:
        """Guest and public zones must reach nothing but the internet breakout."""
        return self.kind in (ZoneKind.GUEST, ZoneKind.PUBLIC)


class VlanPurpose(StrEnum):
    CORPORATE = "corporate"
    VOICE = "voice"
    GUEST_WIFI = "guest-wifi"
    PUBLIC_WIFI = "public-wifi"
    IOT = "iot"
    MANAGEMENT = "management"
    SERVERS = "servers"
    PSN_DMZ = "psn-dmz"
    PUPILS = "pupils"                          # pupils' and students' devices and Wi-Fi (schools)
    BUILDING_MANAGEMENT = "building-management"
    CCTV = "cctv"


# The zone kinds a VLAN of each purpose may sit in: a pupil VLAN in a staff zone is a pupil on the
# corporate network, whatever the firewall rules say. Purposes not listed may sit in any zone.
PURPOSE_ZONE_KINDS: dict[VlanPurpose, tuple[ZoneKind, ...]] = {
    VlanPurpose.PUPILS: (ZoneKind.PUPIL,),
    VlanPurpose.IOT: (ZoneKind.IOT,),
    VlanPurpose.BUILDING_MANAGEMENT: (ZoneKind.BUILDING_MANAGEMENT, ZoneKind.IOT),
    VlanPurpose.CCTV: (ZoneKind.CCTV, ZoneKind.IOT),
    VlanPurpose.VOICE: (ZoneKind.VOICE,),
    VlanPurpose.GUEST_WIFI: (ZoneKind.GUEST, ZoneKind.PUBLIC),
    VlanPurpose.PUBLIC_WIFI: (ZoneKind.PUBLIC, ZoneKind.GUEST),
}


class Vlan(Strict):
    id: int = Field(ge=1, le=4094)
    name: Slug
    purpose: VlanPurpose
    cidr: Cidr
    zone: Slug = Field(description="the security zone this VLAN belongs to")
    gateway: str | None = Field(None, description="default gateway address; first host if absent")

    _v_cidr = field_validator("cidr")(_check_cidr)

    @property
    def network(self) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
        return _network(self.cidr)


class SiteKind(StrEnum):
    HQ = "hq"
    CIVIC_CENTRE = "civic-centre"
    OFFICE = "office"
    DEPOT = "depot"
    LIBRARY = "library"
    LEISURE_CENTRE = "leisure-centre"
    COMMUNITY_HUB = "community-hub"
    SCHOOL_ADMIN = "school-admin"
    CONTACT_CENTRE = "contact-centre"
    SCHOOL = "school"
    CARE_HOME = "care-home"


class WanLink(Strict):
    kind: Literal["sd-wan", "mpls", "internet-vpn", "fibre-leased-line"]
    provider: str
    bandwidth_mbps: int = Field(gt=0)
    public_ip: str | None = Field(None, description="the site's VPN peer address (documentation ranges in the demo)")
    bgp_asn: int | None = Field(None, ge=64512, le=65534, description="private ASN for BGP over the VPN")
    breakout: Literal["central", "local"] = "central"

    @field_validator("public_ip")
    @classmethod
    def _ip(cls, v: str | None) -> str | None:
        if v is not None:
            ipaddress.ip_address(v)
        return v


class Site(Strict):
    name: Slug
    title: str
    kind: SiteKind
    address: str = ""
    ranges: list[Cidr] = Field(min_length=1, description="the site's summary ranges")
    wan: WanLink
    firewall: Slug | None = Field(None, description="the firewall that guards this site")
    vlans: list[Vlan] = []
    staff: int = Field(0, ge=0)

    _v_ranges = field_validator("ranges")(lambda v: [_check_cidr(c) for c in v])


# --------------------------------------------------------------------------------------------
# Wi-Fi
# --------------------------------------------------------------------------------------------


class SsidPurpose(StrEnum):
    CORPORATE = "corporate"
    GUEST = "guest"
    PUBLIC = "public"
    PUPILS = "pupils"      # bridged to a pupils VLAN
    IOT = "iot"            # devices without 802.1X (sensors, care-home call systems): an iot-kind zone
    VOICE = "voice"


# The VLAN purposes an SSID of each purpose may be bridged to (checked at every site it is on).
SSID_VLAN_PURPOSES: dict[SsidPurpose, tuple[VlanPurpose, ...]] = {
    SsidPurpose.PUPILS: (VlanPurpose.PUPILS,),
    SsidPurpose.IOT: (VlanPurpose.IOT, VlanPurpose.BUILDING_MANAGEMENT, VlanPurpose.CCTV),
    SsidPurpose.VOICE: (VlanPurpose.VOICE,),
    SsidPurpose.GUEST: (VlanPurpose.GUEST_WIFI, VlanPurpose.PUBLIC_WIFI),
    SsidPurpose.PUBLIC: (VlanPurpose.PUBLIC_WIFI, VlanPurpose.GUEST_WIFI),
}


class SsidSecurity(StrEnum):
    WPA2_ENTERPRISE = "wpa2-enterprise"
    WPA3_ENTERPRISE = "wpa3-enterprise"
    WPA2_WPA3_ENTERPRISE = "wpa2-wpa3-enterprise"
    WPA2_PSK = "wpa2-psk"
    WPA3_SAE = "wpa3-sae"
    OPEN = "open"
    OPEN_ENHANCED = "open-enhanced"  # OWE: encrypted but open


class Splash(Strict):
    enabled: bool = False
    terms_url: str | None = None
    redirect_url: str | None = None


class Ssid(Strict):
    name: str = Field(min_length=1, max_length=32)
    purpose: SsidPurpose
    security: SsidSecurity
    vlan: Slug = Field(description="name of the VLAN at each site the SSID is bridged to")
    client_isolation: bool = False
    splash: Splash = Splash()
    bandwidth_limit_kbps: int | None = Field(None, gt=0)
    content_filtering: bool = False
    psk_rotation_days: int | None = Field(None, gt=0, description="guest key rotation period")
    sites: list[Slug] | Literal["all"] = "all"
    radius_servers: list[str] = Field([], description="names of identity servers for 802.1X")


# --------------------------------------------------------------------------------------------
# Line-of-business systems
# --------------------------------------------------------------------------------------------


class Hosting(StrEnum):
    SAAS = "saas"
    PAAS = "paas"
    IAAS = "iaas"


class Classification(StrEnum):
    OFFICIAL = "OFFICIAL"
    OFFICIAL_SENSITIVE = "OFFICIAL-SENSITIVE"


class Tier(StrEnum):
    """Recovery tier: RPO / RTO. Tier 1 systems get DR to the secondary region."""

    TIER1 = "tier-1"   # RPO 1 h, RTO 4 h
    TIER2 = "tier-2"   # RPO 24 h, RTO 24 h
    TIER3 = "tier-3"   # RPO 24 h, RTO 72 h

    @property
    def rpo_hours(self) -> int:
        return {"tier-1": 1, "tier-2": 24, "tier-3": 24}[self.value]

    @property
    def rto_hours(self) -> int:
        return {"tier-1": 4, "tier-2": 24, "tier-3": 72}[self.value]

    @property
    def needs_dr(self) -> bool:
        return self is Tier.TIER1


class Port(Strict):
    port: int = Field(ge=1, le=65535)
    protocol: Literal["tcp", "udp"] = "tcp"
    service: str
    tls: bool = False
    management: bool = Field(False, description="an administrative interface: management zones only")


class OperatingSystem(StrEnum):
    WINDOWS_SERVER_2022 = "windows-server-2022"
    WINDOWS_SERVER_2019 = "windows-server-2019"
    RHEL_9 = "rhel-9"
    RHEL_8 = "rhel-8"
    UBUNTU_2204 = "ubuntu-22.04"
    UBUNTU_2404 = "ubuntu-24.04"
    DEBIAN_12 = "debian-12"
    # Past end of support, recordable so the estate can say what it runs; patch.unsupported_os flags them.
    WINDOWS_SERVER_2012_R2 = "windows-server-2012-r2"
    UBUNTU_2004 = "ubuntu-20.04"
    CENTOS_7 = "centos-7"


class LobSystem(Strict):
    name: Slug
    title: str
    supplier: str
    hosting: Hosting
    os: OperatingSystem | None = Field(None, description="the VMs' operating system",
                                       json_schema_extra={**required_when(hosting=("iaas",)),
                                                          **only_when(hosting=("iaas",))})
    vm_count: int = Field(0, ge=0, description="IaaS only")
    classification: Classification
    owner: str = Field(description="information asset owner (IAO)")
    tier: Tier
    cost_centre: str
    region: str = "uksouth"
    address_space: Cidr | None = Field(None, description="the system's spoke VNet",
                                       json_schema_extra={**required_when(hosting=("paas", "iaas")),
                                                          **only_when(hosting=("paas", "iaas"))})
    ports: list[Port] = []
    reachable_from: list[Slug] = Field([], description="zones allowed to reach the ports")
    saas_fqdns: list[str] = Field([], description="SaaS: names that need DNS and conditional access")
    mfa_enforced: bool = Field(True, description="MFA for every user, where the service offers it")
    sign_in: Literal["entra", "own"] = Field(
        "entra", description="entra: users sign in through Entra ID, so conditional access applies; own: the "
                             "service's own accounts")
    sign_in_mfa: str = Field("", description="sign_in own: how the service enforces MFA for every user (the setting, "
                                             "who checked it, when)")
    entra_app_id: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{8}-([0-9a-f]{4}-){3}[0-9a-f]{12}$")] | None = \
        Field(None, description="sign_in entra: the enterprise application's appId (lower-case GUID), so an "
                                "exclusion of it from the MFA policy is seen")
    subscription: Slug | None = Field(None, description="landing-zone subscription; corp by default")
    public_ip: bool = Field(False, description="IaaS: give each VM a public IP (the infra policy refuses it in corp)")

    @model_validator(mode="after")
    def _shape(self) -> LobSystem:
        # os and address_space: required_when / only_when on the fields (Strict._conditions).
        if self.hosting is Hosting.IAAS and self.vm_count < 1:
            raise ValueError("IaaS systems need vm_count of at least 1")
        if self.address_space:
            _check_cidr(self.address_space)
        return self


# --------------------------------------------------------------------------------------------
# Endpoints
# --------------------------------------------------------------------------------------------


class EndpointOs(StrEnum):
    WINDOWS_11 = "windows-11"
    WINDOWS_10 = "windows-10"
    DEBIAN_12 = "debian-12"
    UBUNTU_2204 = "ubuntu-22.04"
    UBUNTU_2404 = "ubuntu-24.04"
    MACOS_14 = "macos-14"
    IOS = "ios"
    ANDROID = "android"
    # Platforms councils run through an MDM (Intune, Google Admin) rather than Ansible.
    IPADOS = "ipados"
    CHROMEOS = "chromeos"
    MACOS_13 = "macos-13"
    MACOS_15 = "macos-15"
    # Past end of support, recordable so the estate can say what it has; patch.unsupported_os flags them.
    UBUNTU_2004 = "ubuntu-20.04"
    CENTOS_7 = "centos-7"
    WINDOWS_SERVER_2012_R2 = "windows-server-2012-r2"

    @property
    def family(self) -> str:
        if self.value.startswith("windows"):
            return "windows"
        if self.value in ("debian-12", "ubuntu-20.04", "ubuntu-22.04", "ubuntu-24.04", "centos-7"):
            return "linux"
        if self.value == "ipados":
            return "ios"
        return self.value.split("-")[0]


class Connection(Strict):
    """How Ansible reaches the group. Secrets are referenced, never written here."""

    kind: Literal["winrm", "psrp", "ssh", "chroot", "local", "none"] = "none"
    user: str | None = None
    port: int | None = None
    password_env: str | None = Field(None, description="name of the environment variable holding it")

    @field_validator("password_env")
    @classmethod
    def _env_name(cls, v: str | None) -> str | None:
        if v is not None and not re.fullmatch(r"[A-Z][A-Z0-9_]*", v):
            raise ValueError("must be an environment variable NAME (secrets never live in the estate)")
        return v


class EndpointHost(Strict):
    name: str
    address: str | None = None
    site: Slug | None = None
    connection: Connection | None = Field(None, description="overrides the group's connection for this host")
    serial_number: str | None = Field(None, description="matches the device in an MDM export when names differ")


class EsuYear(Strict):
    """One year of Extended Security Updates bought (Windows 10, Windows Server 2012 R2 via Arc)."""

    year: int = Field(ge=1, le=3, description="1, 2 or 3: the year of the programme")
    ends: date = Field(description="last day that year's updates cover")


class EndpointGroup(Strict):
    name: Slug
    os: EndpointOs
    count: int = Field(ge=0)
    managed_by: Literal["intune", "configmgr", "ansible", "intune+ansible", "google-admin", "unmanaged"]
    sites: list[Slug] | Literal["all"] = "all"
    connection: Connection = Connection()
    hosts: list[EndpointHost] = Field([], description="hosts Ansible manages directly")
    local_admins: list[str] = Field([], description="members of local Administrators / sudo, exactly")
    removable_admins: list[str] = Field(
        [], description="Windows: undeclared Administrators members apply may remove; any other undeclared member "
                        "is reported, never removed (Entra ID role SIDs and the built-in Administrator are kept)")
    extended_security_updates: bool | list[EsuYear] = Field(
        False, description="Extended Security Updates bought: the years, each with its end date (true: every year "
                           "the supplier sells, to the date in the end-of-life data)")

    minimum_os_version: str | None = Field(
        None, description="MDM platforms (iOS/iPadOS, Android, macOS, ChromeOS): the lowest OS version the council "
                          "supports; an older device in the MDM export fails mdm.os_supported")

    @property
    def esu_until(self) -> date | None:
        """The last day covered by the ESU years bought (None: none bought, or `true` with no dates)."""
        if isinstance(self.extended_security_updates, list) and self.extended_security_updates:
            return max(y.ends for y in self.extended_security_updates)
        return None

    @property
    def has_esu(self) -> bool:
        return bool(self.extended_security_updates)

    @property
    def mdm_managed(self) -> bool:
        return self.managed_by in ("intune", "intune+ansible", "google-admin")


class UnsupportedSoftware(Strict):
    name: str
    reason: str
    package: str | None = Field(None, description="Debian package name")
    windows_display_name: str | None = None


# --------------------------------------------------------------------------------------------
# Firewalls
# --------------------------------------------------------------------------------------------


class FirewallZone(Strict):
    zone: Slug
    interfaces: list[str] = []
    vlans: list[Slug] = Field([], description="VLAN names at the firewall's site")


class AddressObject(Strict):
    name: Slug
    addresses: list[str] = Field(min_length=1)

    _v = field_validator("addresses")(lambda v: [_check_host_or_cidr(a) for a in v])


class Service(Strict):
    name: Slug
    protocol: Literal["tcp", "udp", "icmp"]
    ports: list[int] = []

    @field_validator("ports")
    @classmethod
    def _ports(cls, v: list[int]) -> list[int]:
        for p in v:
            if not 1 <= p <= 65535:
                raise ValueError(f"port {p} is not between 1 and 65535")
        return v


class FirewallRule(Strict):
    id: str
    name: str
    from_zone: Slug
    to_zone: Slug
    source: Slug | Literal["any"] = "any"
    destination: Slug | Literal["any"] = "any"
    services: list[Slug] | Literal["any"] = Field(description="service names, or any")
    action: Literal["allow", "deny"]
    log: bool = True
    owner: str
    justification: str = Field(min_length=3)
    review_by: date


class Firewall(Strict):
    name: Slug
    vendor: Literal["fortinet", "nftables", "azure-firewall", "palo-alto", "cisco-asa"]
    model: str = ""
    site: Slug
    management_address: str | None = None
    management_mfa: bool = False
    management_allowlist: list[str] = []
    default_inbound: Literal["deny", "allow"] = "deny"
    zones: list[FirewallZone] = Field(min_length=1)
    address_objects: list[AddressObject] = []
    services: list[Service] = []
    rules: list[FirewallRule] = []


# --------------------------------------------------------------------------------------------
# Declared hosts: what should answer, where. Scans compare what they find with this.
# --------------------------------------------------------------------------------------------


class DeclaredHost(Strict):
    name: Slug
    address: str
    zone: Slug
    site: Slug | None = None
    role: Literal["server", "appliance", "firewall", "gateway", "printer", "access-point", "selftest"]
    lob: Slug | None = Field(None, description="the LOB system this host serves")
    ports: list[Port] = []
    owner: str = ""

    @field_validator("address")
    @classmethod
    def _addr(cls, v: str) -> str:
        ipaddress.ip_address(v)
        return v


# --------------------------------------------------------------------------------------------
# Authorised scan scopes
# --------------------------------------------------------------------------------------------

Day = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
DAYS: tuple[Day, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class TimeWindow(Strict):
    days: list[Day] = Field(min_length=1)
    start: time
    end: time

    @model_validator(mode="after")
    def _order(self) -> TimeWindow:
        if self.start == self.end:
            raise ValueError("start and end are the same: the window would be empty")
        return self


class ScanScope(Strict):
    name: Slug
    cidrs: list[Cidr] = Field(min_length=1)
    exclusions: list[str] = []
    windows: list[TimeWindow] = Field([], description="when scans may run (Europe/London); empty: any time")
    authorised_by: str
    authorised_on: date
    expires: date | None = None
    max_profile: Literal["discovery", "standard", "deep"] = "standard"
    purpose: str = ""
    loopback: bool = Field(False, description="a self-test scope on this machine's loopback")
    lab: bool = Field(False, description="addresses that exist only in the lab's network namespaces")

    _v_cidrs = field_validator("cidrs")(lambda v: [_check_cidr(c) for c in v])
    _v_excl = field_validator("exclusions")(lambda v: [_check_host_or_cidr(c) for c in v])

    def minutes_left(self, day: Day, at: time) -> int | None:
        """Whole minutes from `at` on `day` (Europe/London) until this scope's window closes, or None
        when no window holds that moment (to the second); a scope without windows is open all week.
        The one reading of windows: the scan's refusal (scan/scope.py in_window) and the schedules
        both use it. A window running past midnight belongs to the day it starts on."""
        if not self.windows:
            return 7 * 24 * 60
        yesterday = DAYS[(DAYS.index(day) - 1) % 7]

        def secs(t: time) -> int:
            return t.hour * 3600 + t.minute * 60 + t.second

        t = secs(at)
        best: int | None = None
        for w in self.windows:
            start, end = secs(w.start), secs(w.end)
            left = None
            if start < end:
                if day in w.days and start <= t <= end:
                    left = end - t
            elif day in w.days and t >= start:
                left = 24 * 3600 - t + end
            elif yesterday in w.days and t <= end:
                left = end - t
            if left is not None and (best is None or left > best):
                best = left
        return None if best is None else best // 60


# --------------------------------------------------------------------------------------------
# Reviewed decisions kept with the estate: accepted risks and manual attestations
# --------------------------------------------------------------------------------------------


class Waiver(Strict):
    """A failing finding accepted as a risk. Matches by finding id, or by check and asset patterns."""

    finding: str | None = Field(None, pattern=r"^F-[0-9a-f]{16}$")
    check: str | None = Field(None, description="check id; shell-style wildcards allowed")
    asset: str | None = Field(None, description="asset; shell-style wildcards allowed")
    justification: str = Field(min_length=10)
    approved_by: str
    approved_on: date
    expires: date
    reference: str = Field("", description="risk register or change ticket")

    @model_validator(mode="after")
    def _target(self) -> Waiver:
        if not self.finding and not self.check:
            raise ValueError("a waiver needs a finding id or a check (optionally with an asset)")
        if self.expires <= self.approved_on:
            raise ValueError("expires must be after approved_on")
        return self


class Attestation(Strict):
    """A person's statement that a manual requirement is met, with the evidence they rely on."""

    requirement: str = Field(description="catalogue reference, e.g. CE3.3:UAC-1")
    statement: str = Field(min_length=10)
    attested_by: str
    attested_on: date
    expires: date | None = None
    evidence: list[str] = Field([], description="files under the estate directory, e.g. attestations/leavers.pdf")


# --------------------------------------------------------------------------------------------
# Scheduled runs and who hears about them (estate schedule install, estate notify)
# --------------------------------------------------------------------------------------------


class Schedule(Strict):
    """A run the council wants done regularly, installed as a systemd timer or an AWX schedule.
    A scan's start must fall inside an authorised window of every scope it scans (checked when the
    estate is validated), and the run is stopped when that window closes."""

    name: Slug
    job: Literal["assess", "scan", "devices-audit", "infra-plan"] = Field(
        description="assess (the whole assessment), scan (one scope: needs scope), devices-audit, infra-plan")
    scope: Slug | None = Field(None, description="the scan scope, for job: scan")
    days: list[Day] = Field(min_length=1, description="weekdays the run starts on")
    at: time = Field(description="start time, Europe/London")
    profile: Literal["discovery", "standard", "deep"] = "standard"
    notify: bool = Field(True, description="run `estate notify` after the run, whether it passed or failed")

    @model_validator(mode="after")
    def _scope(self) -> Schedule:
        if (self.job == "scan") != (self.scope is not None):
            raise ValueError("scope is needed for job: scan and only for it")
        return self


class EmailNotice(Strict):
    to: list[str] = Field(min_length=1)
    sender: str = Field(description="the From address")
    smtp_host: str
    smtp_port: int = Field(587, ge=1, le=65535)
    # STARTTLS is always used: the notice names findings and dates an eavesdropper should not read.
    ca_file: str | None = Field(None, description="CA bundle for the SMTP server's certificate (PEM), relative to "
                                                  "the estate directory; default: the system's trust store")
    username_env: str | None = Field(None, description="environment variable holding the SMTP user name")
    password_env: str | None = Field(None, description="environment variable holding the SMTP password")


class WebhookNotice(Strict):
    kind: Literal["teams", "slack"]
    url_env: str = Field(description="environment variable holding the webhook URL (the URL is a secret: whoever "
                                     "has it can post to the channel)")


class Notifications(Strict):
    """Where `estate notify` sends what changed since the previous run, and how much it may say."""

    detail: Literal["counts", "titles", "assets"] = Field(
        "counts", description="counts: numbers only; titles: also check titles; assets: also the assets named")
    email: EmailNotice | None = None
    webhooks: list[WebhookNotice] = []
    due_within_days: int = Field(7, ge=1, le=90, description="RAP items due within this many days are reported")
    waiver_warning_days: int = Field(30, ge=1, le=180, description="waivers expiring within this many days")


# --------------------------------------------------------------------------------------------
# The estate
# --------------------------------------------------------------------------------------------


class Estate(Strict):
    organisation: Organisation
    azure: Azure
    zones: list[Zone] = Field(min_length=1)
    sites: list[Site] = Field(min_length=1)
    ssids: list[Ssid] = []
    lob_systems: list[LobSystem] = []
    endpoint_groups: list[EndpointGroup] = []
    unsupported_software: list[UnsupportedSoftware] = []
    firewalls: list[Firewall] = []
    declared_hosts: list[DeclaredHost] = []
    scan_scopes: list[ScanScope] = []
    waivers: list[Waiver] = []
    attestations: list[Attestation] = []
    schedules: list[Schedule] = []
    notifications: Notifications | None = None

    # -- look-ups used by every engine ---------------------------------------------------------

    def zone(self, name: str) -> Zone:
        for z in self.zones:
            if z.name == name:
                return z
        raise KeyError(name)

    def site(self, name: str) -> Site:
        for s in self.sites:
            if s.name == name:
                return s
        raise KeyError(name)

    def firewall(self, name: str) -> Firewall:
        for f in self.firewalls:
            if f.name == name:
                return f
        raise KeyError(name)

    def scope(self, name: str) -> ScanScope:
        for s in self.scan_scopes:
            if s.name == name:
                return s
        raise KeyError(name)

    def ssid_sites(self, ssid: Ssid) -> list[Site]:
        if ssid.sites == "all":
            return [s for s in self.sites if any(v.name == ssid.vlan for v in s.vlans)]
        return [s for s in self.sites if s.name in ssid.sites]

    def vlans_in_zone(self, zone: str) -> list[tuple[Site, Vlan]]:
        return [(s, v) for s in self.sites for v in s.vlans if v.zone == zone]


# The sections an estate directory may contain, with whether each is a list (merged across files)
# or a single mapping (must appear in exactly one file).
SECTIONS: dict[str, bool] = {
    name: field.annotation is not None and str(field.annotation).startswith("list")
    for name, field in Estate.model_fields.items()
}
