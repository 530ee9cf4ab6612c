"""Read nmap XML safely and completely.

nmap's XML is the evidence of a scan, and XML from elsewhere (an ITHC tester, a site scanner) is
untrusted input: defusedxml refuses entity expansion, external entities and DTDs, and a size cap
refuses a file too big to be a scan of our estate. python-nmap is not used for reading because it
drops `<extraports>` (how many ports were filtered) and flattens NSE output tables.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any
from xml.etree.ElementTree import Element, ParseError

import defusedxml.ElementTree as DET
from defusedxml import DefusedXmlException

MAX_XML_BYTES = 64 * 1024 * 1024
_BARE_DOCTYPE = re.compile(rb"\A((?:<\?xml[^>]*\?>)?\s*)<!DOCTYPE nmaprun>")


class BadScanXml(Exception):
    """The XML is not a usable nmap scan; the message is one line for the user."""


@dataclass
class Script:
    id: str
    output: str
    data: Any  # nested dict/list from <table>/<elem>


@dataclass
class PortResult:
    protocol: str
    port: int
    state: str
    reason: str = ""
    service: str = ""
    product: str = ""
    version: str = ""
    tunnel: str = ""
    scripts: dict[str, Script] = field(default_factory=dict)
    # Service detection (-sV) beyond name/product/version: what the version matcher reads.
    extrainfo: str = ""
    ostype: str = ""
    devicetype: str = ""
    cpes: list[str] = field(default_factory=list)

    @property
    def key(self) -> str:
        return f"{self.protocol}/{self.port}"

    @property
    def is_open(self) -> bool:
        return self.state == "open"


@dataclass
class HostResult:
    address: str
    state: str
    mac: str = ""
    reason: str = ""
    ports: list[PortResult] = field(default_factory=list)
    extraports: list[dict[str, Any]] = field(default_factory=list)

    def port(self, protocol: str, number: int) -> PortResult | None:
        for p in self.ports:
            if p.protocol == protocol and p.port == number:
                return p
        return None


@dataclass
class ScanResult:
    args: str
    version: str
    start: int
    hosts: list[HostResult]
    scanned: dict[str, set[int]]  # protocol -> ports nmap was asked to scan (from <scaninfo>)
    finished: bool

    def host(self, address: str) -> HostResult | None:
        for h in self.hosts:
            if h.address == address:
                return h
        return None


# The first element after the prolog (XML declaration, comments, processing instructions, DOCTYPE).
_FIRST_TAG = re.compile(rb"\s*<([A-Za-z_][\w.:-]*)")
_PROLOG_ITEM = re.compile(rb"\s*(<\?.*?\?>|<!--.*?-->|<!DOCTYPE[^>\[]*(\[.*?\])?\s*>)", re.DOTALL)


def root_tag(data: bytes) -> str:
    """The document element's name, read from the start of the file without parsing it ("" if none)."""
    head = data[:65536]
    pos = 3 if head.startswith(b"\xef\xbb\xbf") else 0
    while (m := _PROLOG_ITEM.match(head, pos)) is not None:
        pos = m.end()
    tag = _FIRST_TAG.match(head, pos)
    return tag.group(1).decode("ascii", "replace") if tag else ""


def check_size(data: bytes, source: str) -> None:
    if len(data) > MAX_XML_BYTES:
        raise BadScanXml(f"{source}: {len(data)} bytes is over the {MAX_XML_BYTES // (1024 * 1024)} MiB limit "
                         "for a scan file")


def safe_root(data: bytes, source: str) -> Element:
    """The root element of untrusted scan XML, or BadScanXml: no DTD, entity or external reference."""
    check_size(data, source)
    # nmap itself writes a bare `<!DOCTYPE nmaprun>` (no subset, no external id): that one line is
    # dropped; any other DTD (an internal subset, SYSTEM/PUBLIC references) is refused below.
    data = _BARE_DOCTYPE.sub(rb"\1", data, count=1)
    try:
        root: Element = DET.fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        raise BadScanXml(f"{source}: refused: {type(exc).__name__} (DTDs, entities and external references "
                         "are not accepted in scan files)") from None
    except ParseError as exc:
        raise BadScanXml(f"{source}: not well-formed XML ({exc}); truncated?") from None
    except LookupError as exc:
        # expat asks Python's codec registry for the encoding the XML declaration names; an unknown
        # name ("TF-8") surfaces as LookupError, which is bad input like any other.
        raise BadScanXml(f"{source}: its XML declaration names an encoding this reader does not know ({exc}); "
                         "nmap, Nessus and OpenVAS write UTF-8") from None
    return root


def parse(data: bytes, *, source: str = "nmap XML") -> ScanResult:
    root = safe_root(data, source)
    if root.tag != "nmaprun":
        raise BadScanXml(f"{source}: the root element is <{root.tag}>, not <nmaprun>: not an nmap XML file")
    scanned: dict[str, set[int]] = {}
    for info in root.findall("scaninfo"):
        scanned.setdefault(info.get("protocol", "tcp"), set()).update(_port_list(info.get("services", ""), source))
    hosts = [_host(h, source) for h in root.findall("host")]
    finished = root.find("runstats/finished") is not None
    try:
        start = int(root.get("start", "0"))
    except ValueError:
        raise BadScanXml(f"{source}: nmaprun start is not a number") from None
    return ScanResult(args=root.get("args", ""), version=root.get("version", ""), start=start, hosts=hosts,
                      scanned=scanned, finished=finished)


def _port_list(spec: str, source: str) -> set[int]:
    out: set[int] = set()
    for part in filter(None, spec.split(",")):
        try:
            if "-" in part:
                lo, hi = part.split("-", 1)
                if int(hi) - int(lo) > 65535:
                    raise ValueError
                out.update(range(int(lo), int(hi) + 1))
            else:
                out.add(int(part))
        except ValueError:
            raise BadScanXml(f"{source}: scaninfo services {part!r} is not a port list") from None
    return out


def _host(el: Element, source: str) -> HostResult:
    status = el.find("status")
    address = ""
    mac = ""
    for a in el.findall("address"):
        if a.get("addrtype") in ("ipv4", "ipv6"):
            address = a.get("addr", "")
        elif a.get("addrtype") == "mac":
            mac = a.get("addr", "")
    if not address:
        raise BadScanXml(f"{source}: a <host> has no IP address")
    host = HostResult(address=address, state=status.get("state", "") if status is not None else "",
                      reason=status.get("reason", "") if status is not None else "", mac=mac)
    ports = el.find("ports")
    if ports is not None:
        for ex in ports.findall("extraports"):
            host.extraports.append({"state": ex.get("state", ""), "count": int(ex.get("count", "0") or 0)})
        for p in ports.findall("port"):
            state = p.find("state")
            svc = p.find("service")
            try:
                number = int(p.get("portid", ""))
            except ValueError:
                raise BadScanXml(f"{source}: host {address}: portid {p.get('portid')!r} is not a number") from None
            pr = PortResult(
                protocol=p.get("protocol", "tcp"), port=number,
                state=state.get("state", "") if state is not None else "",
                reason=state.get("reason", "") if state is not None else "",
                service=svc.get("name", "") if svc is not None else "",
                product=svc.get("product", "") if svc is not None else "",
                version=svc.get("version", "") if svc is not None else "",
                tunnel=svc.get("tunnel", "") if svc is not None else "",
                extrainfo=svc.get("extrainfo", "") if svc is not None else "",
                ostype=svc.get("ostype", "") if svc is not None else "",
                devicetype=svc.get("devicetype", "") if svc is not None else "",
                cpes=[c.text.strip() for c in svc.findall("cpe") if c.text] if svc is not None else [])
            for s in p.findall("script"):
                pr.scripts[s.get("id", "")] = Script(id=s.get("id", ""), output=s.get("output", ""), data=_table(s))
            host.ports.append(pr)
    # SMB scripts are host scripts in nmap's XML; hang them on the SMB port they describe.
    smb_port = host.port("tcp", 445) or host.port("tcp", 139)
    for s in el.findall("hostscript/script"):
        if smb_port is not None and s.get("id", "").startswith("smb"):
            smb_port.scripts[s.get("id", "")] = Script(id=s.get("id", ""), output=s.get("output", ""), data=_table(s))
    return host


def _table(el: Element) -> Any:
    """NSE structured output: <table key=...> and <elem key=...> as dicts (keyed) or lists."""
    children = [c for c in el if c.tag in ("table", "elem")]
    if not children:
        return {}
    keyed = all(c.get("key") is not None for c in children)
    if keyed:
        out: dict[str, Any] = {}
        for c in children:
            out[c.get("key", "")] = _table(c) if c.tag == "table" else (c.text or "")
        return out
    return [(_table(c) if c.tag == "table" else (c.text or "")) for c in children]


def merge(results: list[ScanResult]) -> ScanResult:
    """One view of several runs over the same targets (the TCP and UDP passes of one scan)."""
    if len(results) == 1:
        return results[0]
    hosts: dict[str, HostResult] = {}
    scanned: dict[str, set[int]] = {}
    for r in results:
        for proto, ports in r.scanned.items():
            scanned.setdefault(proto, set()).update(ports)
        for h in r.hosts:
            if h.address not in hosts:
                hosts[h.address] = HostResult(address=h.address, state=h.state, mac=h.mac, reason=h.reason)
            merged = hosts[h.address]
            if h.state == "up":
                merged.state = "up"
            merged.mac = merged.mac or h.mac
            merged.ports.extend(h.ports)
            merged.extraports.extend({**e, "protocol": next(iter(r.scanned), "tcp")} for e in h.extraports)
    return ScanResult(args=" ; ".join(r.args for r in results), version=results[0].version,
                      start=min(r.start for r in results), hosts=list(hosts.values()), scanned=scanned,
                      finished=all(r.finished for r in results))
