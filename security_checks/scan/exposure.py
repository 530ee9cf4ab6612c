"""Management exposure by service: which open ports are ways to administer a host, and how bad it is
that a scan reached one from where it stood.

An administrative service (SSH, RDP, WinRM, telnet, SNMP, VNC, IPMI and the out-of-band consoles
iLO/iDRAC, hypervisor consoles, firewall admin ports) should answer only to the management zone
and the management allow-list, whatever zone the host itself is in. SMB and a printer's web admin
page are dual-use: a file server's declared SMB share and a print server's declared ports are its
job, so they count only when the estate does not declare them on that host.

Severity follows where the packets came from (the scan's vantage): the internet or guest/public
Wi-Fi is critical, a user zone high, anything else (server, IoT, voice, cloud) medium.
"""

from __future__ import annotations

import re

from ..findings import Severity
from ..model.schema import Port, ZoneKind
from .nmapxml import PortResult

# nmap service names -> what a person calls them.
SERVICES = {
    "ssh": "SSH", "telnet": "telnet", "ms-wbt-server": "RDP", "wsman": "WinRM", "wsmans": "WinRM",
    "winrm": "WinRM", "snmp": "SNMP", "vnc": "VNC", "vnc-http": "VNC", "asf-rmcp": "IPMI", "ipmi": "IPMI",
    "vmware-auth": "hypervisor console (VMware)", "login": "rlogin", "shell": "rsh", "exec": "rexec",
}
PORTS = {
    ("tcp", 22): "SSH", ("tcp", 23): "telnet", ("tcp", 3389): "RDP", ("tcp", 5985): "WinRM",
    ("tcp", 5986): "WinRM", ("udp", 161): "SNMP", ("tcp", 5900): "VNC", ("udp", 623): "IPMI",
    ("tcp", 623): "IPMI", ("tcp", 902): "hypervisor console (VMware)", ("tcp", 8006): "hypervisor console (Proxmox)",
    ("tcp", 17988): "iLO virtual media", ("tcp", 17990): "iLO remote console", ("tcp", 5120): "iDRAC virtual media",
    ("tcp", 8443): "admin web interface", ("tcp", 10443): "admin web interface",
    ("tcp", 512): "rexec", ("tcp", 513): "rlogin", ("tcp", 514): "rsh",
}
SMB = {"microsoft-ds", "netbios-ssn", "smb"}
SMB_PORTS = {("tcp", 445), ("tcp", 139)}
_CONSOLE = re.compile(r"lights-out|\bilo\b|idrac|remote access controller|\bipmi\b|supermicro|\bbmc\b|"
                      r"vmware esxi|vcenter|vsphere|proxmox|xenserver|citrix hypervisor|hyper-v|"
                      r"fortigate|fortios|sonicwall|pan-os|cisco asa", re.IGNORECASE)
_PRINTER = re.compile(r"printer|jetdirect|laserjet|officejet|embedded web server|web image monitor|lexmark|"
                      r"xerox|ricoh|kyocera|brother|konica|canon|sharp|epson", re.IGNORECASE)
_WEB = {"http", "https", "http-alt", "https-alt", "http-proxy", "ssl/http"}


def kind(p: PortResult, declared: Port | None, *, firewall_admin: bool, role: str | None) -> str | None:
    """What administrative service this open port is, or None when it is not one."""
    if (declared is not None and declared.management) or firewall_admin:
        return f"{SERVICES.get(p.service) or PORTS.get((p.protocol, p.port)) or 'management interface'}"
    product = f"{p.product} {p.extrainfo}"
    web = p.service in _WEB or p.tunnel == "ssl" or "http" in p.service
    if web and _CONSOLE.search(product):
        return f"out-of-band or appliance console ({p.product})"
    if p.service in SERVICES:
        return SERVICES[p.service]
    if not p.service and (p.protocol, p.port) in PORTS:
        return PORTS[(p.protocol, p.port)]
    if (p.protocol, p.port) in PORTS and p.service not in ("http", "https", "ssl", "sip", "mqtt"):
        return PORTS[(p.protocol, p.port)]
    # Dual-use: what the host declares on that port is its job, not an exposure.
    if declared is not None:
        return None
    if p.service in SMB or (not p.service and (p.protocol, p.port) in SMB_PORTS):
        return "SMB"
    if web and (role == "printer" or p.devicetype == "printer" or _PRINTER.search(product)):
        return "printer admin page"
    return None


def severity(vantage_kind: ZoneKind | None) -> Severity:
    if vantage_kind in (ZoneKind.INTERNET, ZoneKind.PUBLIC, ZoneKind.GUEST):
        return Severity.CRITICAL
    if vantage_kind is ZoneKind.USER:
        return Severity.HIGH
    return Severity.MEDIUM
