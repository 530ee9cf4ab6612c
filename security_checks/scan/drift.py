"""Declared versus observed: turn one nmap scan into scan.* findings.

The estate declares which hosts answer, on which ports, which of those are management interfaces,
and which zone every address is in. A scan observes hosts, open ports, TLS/SSH/SMB/HTTP details.
Everything here is a pure function of (estate, parsed XML, what was scanned), so a live scan and
an imported ITHC file are judged the same way.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from ..checks import make_finding
from ..findings import EvidenceRef, Finding, Severity, Status
from ..model.schema import DeclaredHost, Estate, Port, ZoneKind
from . import exposure, versions
from .nmapxml import HostResult, PortResult, ScanResult

PLAINTEXT_SERVICES = {"telnet", "ftp", "login", "rlogin", "shell", "rsh", "exec", "rexec", "tftp", "pop3", "imap"}
PLAINTEXT_PORTS = {("tcp", 21), ("tcp", 23), ("tcp", 512), ("tcp", 513), ("tcp", 514), ("udp", 69),
                   ("tcp", 110), ("tcp", 143)}
USER_KINDS = {ZoneKind.USER, ZoneKind.GUEST, ZoneKind.PUBLIC}
WEAK_TLS_VERSIONS = {"SSLv2", "SSLv3", "TLSv1.0", "TLSv1.1"}
WEAK_SSH = {
    "kex_algorithms": ("diffie-hellman-group1-sha1", "diffie-hellman-group14-sha1",
                       "diffie-hellman-group-exchange-sha1", "gss-gex-sha1", "gss-group1-sha1"),
    "server_host_key_algorithms": ("ssh-dss",),
    "encryption_algorithms": ("3des-cbc", "arcfour", "arcfour128", "arcfour256", "blowfish-cbc", "cast128-cbc",
                              "aes128-cbc", "aes192-cbc", "aes256-cbc", "rijndael-cbc@lysator.liu.se", "none"),
    "mac_algorithms": ("hmac-md5", "hmac-md5-96", "hmac-sha1-96", "hmac-md5-etm@openssh.com",
                       "hmac-md5-96-etm@openssh.com", "hmac-sha1-96-etm@openssh.com", "umac-32@openssh.com",
                       "none"),
}
GRADES = "ABCDEF"


@dataclass
class AddressInfo:
    """What the estate says about an address."""

    zone: str | None = None
    zone_kind: ZoneKind | None = None
    site: str | None = None
    declared: DeclaredHost | None = None
    firewall: str | None = None         # the address is an interface of this firewall
    firewall_host: DeclaredHost | None = None
    platform: str | None = None         # an address the cloud platform reserves (Azure: .0-.3 of a subnet)


@dataclass
class ScanContext:
    """What this scan covered and from where; addresses in `ignore` (the scanner itself) are skipped.

    `sources` are the scanner's own addresses (a lab scanner's legs, or what nmap marked
    `localhost-response`): the zone a packet left from is the zone of the leg on the target's own
    network, else of the only zone the scanner sits in. `source_zone` states it outright (an
    import whose scanner is not in the file). `knowledge` is the offline vulnerability data.
    """

    scanned: list[ipaddress.IPv4Network | ipaddress.IPv6Network]
    evidence: list[EvidenceRef]
    ignore: set[str] = field(default_factory=set)
    vantage: str = ""
    now: datetime = field(default_factory=lambda: datetime.now(UTC))
    sources: list[str] = field(default_factory=list)
    source_zone: str | None = None
    knowledge: versions.Knowledge | None = None


class EstateIndex:
    """Address look-ups over the estate: declared hosts, VLAN zones, firewall interfaces."""

    def __init__(self, estate: Estate):
        self.estate = estate
        self.hosts: dict[str, DeclaredHost] = {h.address: h for h in estate.declared_hosts}
        self.vlans = [(ipaddress.ip_network(v.cidr), s, v) for s in estate.sites for v in s.vlans]
        self.lobs = [(ipaddress.ip_network(lob.address_space), lob) for lob in estate.lob_systems if lob.address_space]
        # The same VLANs as integer ranges, for info(): `ip in net` is a Python call per VLAN per address.
        self._vlan_ranges = [(net.version, int(net.network_address), int(net.broadcast_address), site, vlan)
                             for net, site, vlan in self.vlans]
        # A VLAN's gateway belongs to the firewall that guards its site.
        self.fw_interfaces: dict[str, str] = {}
        for net, site, vlan in self.vlans:
            if site.firewall:
                gw = vlan.gateway or str(next(net.hosts()))
                self.fw_interfaces[gw] = site.firewall
        for fw in estate.firewalls:
            if fw.management_address:
                self.fw_interfaces[fw.management_address] = fw.name

    def info(self, address: str) -> AddressInfo:
        ip = ipaddress.ip_address(address)
        out = AddressInfo(declared=self.hosts.get(address))
        if out.declared:
            out.zone = out.declared.zone
            out.site = out.declared.site
        else:
            n = int(ip)   # an ITHC import asks for thousands of hosts
            for version, first, last, site, vlan in self._vlan_ranges:
                if first <= n <= last and version == ip.version:
                    out.zone, out.site = vlan.zone, site.name
                    break
            else:
                for net, lob in self.lobs:
                    if ip in net:
                        out.zone = "azure"
                        # Azure reserves the first four addresses of every subnet (.1 is its gateway).
                        if int(ip) - int(net.network_address) < 4:
                            out.platform = f"Azure-reserved address in the {lob.name} spoke"
                        break
        if out.zone:
            try:
                out.zone_kind = self.estate.zone(out.zone).kind
            except KeyError:
                out.zone_kind = None
        fw = self.fw_interfaces.get(address)
        if fw:
            out.firewall = fw
            out.firewall_host = next((h for h in self.estate.declared_hosts
                                      if h.role == "firewall" and h.name == fw), None)
        return out


def asset_for(address: str, info: AddressInfo) -> str:
    return f"host:{info.declared.name}" if info.declared else f"host:{address}"


def _declared_port(host: DeclaredHost | None, p: PortResult) -> Port | None:
    if host is None:
        return None
    return next((d for d in host.ports if d.port == p.port and d.protocol == p.protocol), None)


def scanner_addresses(result: ScanResult) -> list[str]:
    """The scanner's own addresses, as nmap marks them when it scans its own host."""
    return [h.address for h in result.hosts if h.reason == "localhost-response"]


def compare(estate: Estate, result: ScanResult, ctx: ScanContext) -> list[Finding]:
    index = EstateIndex(estate)
    findings: list[Finding] = []
    seen_up: set[str] = set()
    own = set(scanner_addresses(result))
    if own - set(ctx.sources):
        ctx.sources = [*ctx.sources, *sorted(own - set(ctx.sources))]
    for host in result.hosts:
        # The scanner itself is never an undeclared host, whichever of its addresses answered.
        if host.address in ctx.ignore or host.address in own or host.state != "up":
            continue
        seen_up.add(host.address)
        findings.extend(_host_findings(index, host, result, ctx))
    findings.extend(_declared_down(index, result, ctx, seen_up))
    return dedupe(findings)


def _fail(check: str, asset: str, key: str, info: AddressInfo, ctx: ScanContext, observed: str, expected: str,
          severity: Severity | None = None, **details: object) -> Finding:
    return make_finding(check, asset, Status.FAIL, key=key, observed=observed, expected=expected,
                        evidence=ctx.evidence, site=info.site, zone=info.zone, severity=severity,
                        details={"vantage": ctx.vantage, **details})


def _pass(check: str, asset: str, key: str, info: AddressInfo, ctx: ScanContext, observed: str, expected: str,
          **details: object) -> Finding:
    return make_finding(check, asset, Status.PASS, key=key, observed=observed, expected=expected,
                        evidence=ctx.evidence, site=info.site, zone=info.zone,
                        details={"vantage": ctx.vantage, **details})


def _host_findings(index: EstateIndex, host: HostResult, result: ScanResult, ctx: ScanContext) -> Iterable[Finding]:
    info = index.info(host.address)
    asset = asset_for(host.address, info)
    open_ports = [p for p in host.ports if p.is_open]
    # Endpoints in user, guest and public zones are managed as groups, not declared one by one.
    if info.declared is None and info.firewall is None and not info.platform and info.zone_kind not in USER_KINDS:
        listed = ", ".join(p.key for p in open_ports) or "no open ports"
        yield _fail("scan.undeclared_host", asset, "", info, ctx, f"host {host.address} is up ({listed})",
                    "only declared hosts, firewall interfaces and scanners answer", mac=host.mac)
    for p in open_ports:
        declared = _declared_port(info.declared, p)
        svc = f"{p.service or 'unknown'}{' ' + p.product if p.product else ''}".strip()
        if declared is None:
            yield _fail("scan.undeclared_port", asset, p.key, info, ctx, f"{p.key} open ({svc}) on {host.address}",
                        "no port open that declared_hosts does not list", service=p.service)
        else:
            yield _pass("scan.declared_service_ok", asset, p.key, info, ctx, f"{p.key} open ({svc})",
                        f"{p.key} {declared.service} answers")
        if p.service in PLAINTEXT_SERVICES or (not p.service and (p.protocol, p.port) in PLAINTEXT_PORTS):
            yield _fail("scan.plaintext_protocol", asset, p.key, info, ctx,
                        f"{p.service or 'plaintext service'} on {p.key} at {host.address}",
                        "no plaintext login protocols", service=p.service)
        exposed = _exposed(index, host.address, p, declared, info, ctx)
        if exposed is not None:
            yield exposed
        if ctx.knowledge is not None:
            for ident in versions.identify(p.product, p.version, p.extrainfo, p.cpes):
                yield from versions.judge(asset, p.key, ident, ctx.knowledge, evidence=ctx.evidence, site=info.site,
                                          zone=info.zone, vantage=ctx.vantage)
        yield from _tls(asset, p, info, ctx)
        yield from _ssh(asset, p, info, ctx)
        yield from _smb(asset, p, info, ctx)
        yield from _http(asset, p, info, ctx)


def _source(index: EstateIndex, target: str, ctx: ScanContext) -> tuple[str | None, str | None]:
    """(zone, address) the scan reached `target` from, when the scan says; (None, None) otherwise."""
    if ctx.source_zone:
        return ctx.source_zone, None
    if not ctx.sources:
        return None, None
    ip = ipaddress.ip_address(target)
    legs = [(a, index.info(a)) for a in ctx.sources]
    for net, _site, _vlan in index.vlans:
        if ip in net:
            # On the target's own link the scanner's leg there is the source (nmap picks that interface).
            for a, info in legs:
                if ipaddress.ip_address(a) in net:
                    return info.zone, a
            break
    zones = {info.zone for _a, info in legs if info.zone}
    if len(zones) == 1:
        return zones.pop(), next(a for a, info in legs if info.zone)
    return None, None


def _allowlisted(index: EstateIndex, address: str | None) -> bool:
    if address is None:
        return False
    ip = ipaddress.ip_address(address)
    return any(ip in ipaddress.ip_network(entry, strict=False)
               for fw in index.estate.firewalls for entry in fw.management_allowlist)


def _exposed(index: EstateIndex, address: str, p: PortResult, declared: Port | None, info: AddressInfo,
             ctx: ScanContext) -> Finding | None:
    """scan.management_exposed: an administrative service answering a scan from outside the management
    zone and allow-list (host in another zone than the scanner), or on a host in a user zone."""
    firewall_admin = info.firewall_host is not None and any(
        d.management and d.port == p.port and d.protocol == p.protocol for d in info.firewall_host.ports)
    label = exposure.kind(p, declared, firewall_admin=firewall_admin,
                          role=info.declared.role if info.declared else None)
    if label is None:
        return None
    src_zone, src_addr = _source(index, address, ctx)
    src_kind = _zone_kind(index, src_zone)
    expected = "administrative services answer only the management zone and its allow-list"
    where = f"{address} ({info.zone_kind.value + ' zone ' + info.zone if info.zone_kind and info.zone else 'no zone'})"
    svc = f"{p.service or 'unknown'}{' ' + p.product if p.product else ''}".strip()
    # Reach within the host's own zone does not cross a firewall: judged only for user-zone hosts,
    # whose neighbours are the people the interface must be kept from.
    if (src_zone is not None and src_zone != info.zone and src_kind is not ZoneKind.MANAGEMENT
            and not _allowlisted(index, src_addr)):
        return _fail("scan.management_exposed", asset_for(address, info), p.key, info, ctx,
                     f"{label} ({p.key}, {svc}) on {where} answers a scan from "
                     f"{src_kind.value + ' zone ' if src_kind else 'zone '}{src_zone}", expected,
                     severity=exposure.severity(src_kind), service=label, source_zone=src_zone,
                     source_address=src_addr)
    if info.zone_kind in USER_KINDS and src_kind is not ZoneKind.MANAGEMENT and not _allowlisted(index, src_addr):
        return _fail("scan.management_exposed", asset_for(address, info), p.key, info, ctx,
                     f"management interface {p.key} ({svc}) answers on {address} in {info.zone_kind.value} "
                     f"zone {info.zone}", "management interfaces only in the management zone and allow-list",
                     service=label, source_zone=src_zone)
    return None


def _zone_kind(index: EstateIndex, zone: str | None) -> ZoneKind | None:
    if zone is None:
        return None
    try:
        return index.estate.zone(zone).kind
    except KeyError:
        return None


def _tls(asset: str, p: PortResult, info: AddressInfo, ctx: ScanContext) -> Iterable[Finding]:
    script = p.scripts.get("ssl-enum-ciphers")
    if script and isinstance(script.data, dict):
        versions = [k for k in script.data if k.startswith(("SSL", "TLS"))]
        weak = sorted(v for v in versions if v in WEAK_TLS_VERSIONS)
        grade = str(script.data.get("least strength", "")) or "?"
        bad_grade = grade in GRADES and GRADES.index(grade) > 0
        observed = f"protocols {', '.join(versions) or 'none'}; least strength {grade}"
        if weak or bad_grade:
            yield _fail("scan.weak_tls", asset, p.key, info, ctx, observed, "TLS 1.2 or later only, all suites grade A",
                        weak_versions=weak, least_strength=grade)
        elif versions:
            yield _pass("scan.weak_tls", asset, p.key, info, ctx, observed, "TLS 1.2 or later only, grade A")
    cert = p.scripts.get("ssl-cert")
    if cert and isinstance(cert.data, dict) and cert.data:
        yield _certificate(asset, p, cert.data, info, ctx)


def _certificate(asset: str, p: PortResult, data: dict[str, object], info: AddressInfo, ctx: ScanContext) -> Finding:
    problems: list[str] = []
    validity = data.get("validity") if isinstance(data.get("validity"), dict) else {}
    not_before = _nmap_time(validity.get("notBefore")) if isinstance(validity, dict) else None
    not_after = _nmap_time(validity.get("notAfter")) if isinstance(validity, dict) else None
    if not_after and not_after < ctx.now:
        problems.append(f"expired {not_after:%Y-%m-%d}")
    elif not_after and not_after < ctx.now + timedelta(days=30):
        problems.append(f"expires within 30 days ({not_after:%Y-%m-%d})")
    if not_before and not_before > ctx.now:
        problems.append(f"not valid until {not_before:%Y-%m-%d}")
    subject, issuer = data.get("subject"), data.get("issuer")
    if subject and subject == issuer:
        problems.append("self-signed")
    sig = str(data.get("sig_algo", "")).lower()
    if "md5" in sig or "sha1" in sig:
        problems.append(f"signature {sig}")
    pubkey = data.get("pubkey") if isinstance(data.get("pubkey"), dict) else {}
    if isinstance(pubkey, dict) and pubkey.get("type") == "rsa":
        try:
            if int(str(pubkey.get("bits", "0"))) < 2048:
                problems.append(f"RSA key of {pubkey.get('bits')} bits")
        except ValueError:
            pass
    cn = subject.get("commonName", "") if isinstance(subject, dict) else ""
    observed = "; ".join(problems) if problems else f"CN={cn}, valid to {not_after:%Y-%m-%d}" if not_after else "ok"
    expected = "CA-issued, in date for 30+ days, SHA-256, RSA >= 2048 or EC"
    if problems:
        return _fail("scan.certificate", asset, p.key, info, ctx, observed, expected, problems=problems)
    return _pass("scan.certificate", asset, p.key, info, ctx, observed, expected)


def _nmap_time(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _ssh(asset: str, p: PortResult, info: AddressInfo, ctx: ScanContext) -> Iterable[Finding]:
    script = p.scripts.get("ssh2-enum-algos")
    if not script or not isinstance(script.data, dict):
        return
    weak: list[str] = []
    listed = 0
    for kind, bad in WEAK_SSH.items():
        offered = script.data.get(kind, [])
        if isinstance(offered, list):
            listed += len(offered)
            weak.extend(a for a in offered if a in bad)
    if not listed:
        # ssh2-enum-algos ran but read no algorithm lists (a timeout, a server that hung up): no pass.
        yield make_finding("scan.weak_ssh", asset, Status.NOT_ASSESSED, key=p.key, evidence=ctx.evidence,
                           observed="ssh2-enum-algos returned no algorithm lists", site=info.site, zone=info.zone,
                           expected="no SHA-1 key exchange, DSA keys, CBC/RC4 ciphers or MD5/96-bit MACs",
                           details={"vantage": ctx.vantage})
        return
    if weak:
        yield _fail("scan.weak_ssh", asset, p.key, info, ctx, f"offers {', '.join(weak)}",
                    "no SHA-1 key exchange, DSA keys, CBC/RC4 ciphers or MD5/96-bit MACs", weak=weak)
    else:
        yield _pass("scan.weak_ssh", asset, p.key, info, ctx, "only modern algorithms offered",
                    "no weak SSH algorithms")


def _smb(asset: str, p: PortResult, info: AddressInfo, ctx: ScanContext) -> Iterable[Finding]:
    # smb-protocols is a host script in nmap; the scanner copies its result onto port 445.
    script = p.scripts.get("smb-protocols")
    if not script:
        return
    dialects = script.data.get("dialects", []) if isinstance(script.data, dict) else []
    listed = [str(d) for d in dialects] if isinstance(dialects, list) else []
    if any("NT LM 0.12" in d or "SMBv1" in d for d in listed) or "SMBv1" in script.output:
        yield _fail("scan.weak_smb", asset, p.key, info, ctx, f"dialects {', '.join(listed)}",
                    "SMB 2.x/3.x only", dialects=listed)
    elif listed:
        yield _pass("scan.weak_smb", asset, p.key, info, ctx, f"dialects {', '.join(listed)}", "no SMBv1")


def _http(asset: str, p: PortResult, info: AddressInfo, ctx: ScanContext) -> Iterable[Finding]:
    script = p.scripts.get("http-security-headers")
    if not script:
        return
    https = p.tunnel == "ssl" or p.service in ("https", "https-alt") or "ssl" in p.service
    text = script.output
    missing = []
    if https and ("Strict_Transport_Security" not in text or "HSTS not configured" in text):
        missing.append("Strict-Transport-Security")
    if "X_Frame_Options" not in text and "frame-ancestors" not in text:
        missing.append("X-Frame-Options")
    if "X_Content_Type_Options" not in text:
        missing.append("X-Content-Type-Options")
    expected = ("HSTS, X-Frame-Options (or CSP frame-ancestors), X-Content-Type-Options" if https
                else "X-Frame-Options (or CSP frame-ancestors), X-Content-Type-Options")
    if missing:
        yield _fail("scan.http_headers", asset, p.key, info, ctx, f"missing {', '.join(missing)}", expected,
                    missing=missing)
    else:
        yield _pass("scan.http_headers", asset, p.key, info, ctx, "security headers present", expected)


def _declared_down(index: EstateIndex, result: ScanResult, ctx: ScanContext, seen_up: set[str]) -> Iterable[Finding]:
    for dh in index.estate.declared_hosts:
        ip = ipaddress.ip_address(dh.address)
        if dh.address in ctx.ignore or not any(ip in n for n in ctx.scanned):
            continue
        info = index.info(dh.address)
        asset = asset_for(dh.address, info)
        host = result.host(dh.address)
        for port in dh.ports:
            key = f"{port.protocol}/{port.port}"
            if port.port not in result.scanned.get(port.protocol, set()):
                continue  # this scan did not look at that port
            if host is None or host.state != "up":
                yield _fail("scan.declared_service_down", asset, key, info, ctx, f"host {dh.address} did not answer",
                            f"{key} {port.service} answers")
                continue
            pr = host.port(port.protocol, port.port)
            state = pr.state if pr else _extra_state(host, port.protocol)
            if state == "open":
                continue  # reported as declared_service_ok above
            if state in ("closed", ""):
                yield _fail("scan.declared_service_down", asset, key, info, ctx, f"{key} is {state or 'closed'}",
                            f"{key} {port.service} answers")
            else:
                yield make_finding("scan.declared_service_down", asset, Status.NOT_ASSESSED, key=key,
                                   observed=f"{key} is {state} from {ctx.vantage or 'this scanner'}",
                                   expected=f"{key} {port.service} answers", evidence=ctx.evidence,
                                   site=info.site, zone=info.zone, details={"vantage": ctx.vantage})


def _extra_state(host: HostResult, protocol: str) -> str:
    # A port nmap scanned but did not list is in the host's <extraports> summary (usually one state).
    states = [e["state"] for e in host.extraports if e.get("protocol", protocol) == protocol]
    return states[0] if len(states) == 1 else ("closed" if "closed" in states else (states[0] if states else ""))


def dedupe(findings: list[Finding]) -> list[Finding]:
    out: dict[str, Finding] = {}
    for f in findings:
        prev = out.get(f.id)
        # The same port seen twice (two vantage points): a failure outweighs a pass.
        if prev is None or (f.failing and not prev.failing):
            out[f.id] = f
    return list(out.values())
