"""Declared versus observed, from nmap XML as an ITHC tester would hand it over (no packets sent)."""

from __future__ import annotations

import ipaddress

from security_checks.findings import Status
from security_checks.scan.drift import ScanContext, compare
from security_checks.scan.nmapxml import parse

XML = b"""<?xml version="1.0"?>
<!DOCTYPE nmaprun>
<nmaprun scanner="nmap" args="nmap -sS -sV" start="1795300000" version="7.93">
<scaninfo type="syn" protocol="tcp" numservices="4" services="22,445,631,3389"/>
<host><status state="up" reason="arp-response"/><address addr="10.10.30.21" addrtype="ipv4"/>
<ports><extraports state="closed" count="1"><extrareasons reason="reset" count="1"/></extraports>
<port protocol="tcp" portid="445"><state state="open" reason="syn-ack"/><service name="microsoft-ds"/></port>
<port protocol="tcp" portid="3389"><state state="open" reason="syn-ack"/><service name="ms-wbt-server"/></port>
</ports>
<hostscript><script id="smb-protocols"
 output="&#xa;  dialects: &#xa;    NT LM 0.12 (SMBv1) [dangerous, but default]&#xa;    2.0.2&#xa;">
<table key="dialects"><elem>NT LM 0.12 (SMBv1) [dangerous, but default]</elem><elem>2.0.2</elem></table>
</script></hostscript>
</host>
<host><status state="up" reason="arp-response"/><address addr="10.10.10.55" addrtype="ipv4"/>
<ports><port protocol="tcp" portid="22"><state state="open" reason="syn-ack"/><service name="ssh"/></port>
</ports></host>
<runstats><finished time="1795300010" elapsed="10"/></runstats>
</nmaprun>"""


def test_itcheck_style_xml_becomes_findings(loaded):
    result = parse(XML)
    # As `estate scan import` does: what was scanned is the hosts the file reports.
    ctx = ScanContext(scanned=[ipaddress.ip_network(h.address) for h in result.hosts], evidence=[])
    got = {(f.check_id, f.asset, f.key): f for f in compare(loaded.estate, result, ctx)}
    assert got[("scan.weak_smb", "host:print-01", "tcp/445")].status is Status.FAIL
    assert got[("scan.weak_smb", "host:print-01", "tcp/445")].cvss_score == 8.8
    assert got[("scan.undeclared_port", "host:print-01", "tcp/3389")].status is Status.FAIL
    assert got[("scan.declared_service_ok", "host:print-01", "tcp/445")].status is Status.PASS
    # print-01 declares 631: closed in the extraports summary, so the declared service is down.
    assert got[("scan.declared_service_down", "host:print-01", "tcp/631")].status is Status.FAIL
    # A staff laptop in the corporate zone is not "undeclared", but SSH on it is a management exposure.
    assert ("scan.undeclared_host", "host:10.10.10.55", "") not in got
    assert got[("scan.management_exposed", "host:10.10.10.55", "tcp/22")].status is Status.FAIL


def test_declared_service_down_needs_the_port_to_have_been_scanned(loaded):
    result = parse(XML)
    ctx = ScanContext(scanned=[ipaddress.ip_network("10.10.30.0/24")], evidence=[])
    got = {(f.check_id, f.asset, f.key) for f in compare(loaded.estate, result, ctx)}
    # file-01 (10.10.30.20) was in range but not in the file: host down for its declared 445.
    assert ("scan.declared_service_down", "host:file-01", "tcp/445") in got
    # voip-01's udp/5060 was never scanned (no UDP scaninfo): nothing said about it.
    assert ("scan.declared_service_down", "host:voip-01", "udp/5060") not in got
