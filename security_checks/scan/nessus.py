"""Nessus v2 (`.nessus`, root `<NessusClientData_v2>`), read as Tenable documents the format.

    <NessusClientData_v2>
      <Policy>...</Policy>          (scan settings; may hold credentials: never read or stored)
      <Report name="...">
        <ReportHost name="10.0.0.5">
          <HostProperties><tag name="host-ip">10.0.0.5</tag><tag name="host-fqdn">...</tag>
                          <tag name="Credentialed_Scan">true</tag>...</HostProperties>
          <ReportItem port="22" svc_name="ssh" protocol="tcp" severity="2" pluginID="90317"
                      pluginName="..." pluginFamily="...">
            <cve>CVE-...</cve>  <cvss3_vector>CVSS:3.0/...</cvss3_vector>  <plugin_output>...
            <plugin_type>remote | local | combined</plugin_type>  <solution>...</solution>
          </ReportItem>

The file is streamed (iterparse) and each ReportHost dropped once read, so a 50 MB file does not
become a tree ten times its size. defusedxml refuses DTDs, entities and external references.
"""

from __future__ import annotations

import io
from xml.etree.ElementTree import Element, ParseError

import defusedxml.ElementTree as DET
from defusedxml import DefusedXmlException

from .nmapxml import BadScanXml, check_size, root_tag
from .secrets import scrub
from .vulnresult import TOOL_SEVERITY, VulnResult, clean_cves, clean_vector


def parse(data: bytes, *, source: str) -> list[VulnResult]:
    check_size(data, source)
    root = root_tag(data)
    if root != "NessusClientData_v2":
        raise BadScanXml(f"{source}: the root element is <{root}>, not <NessusClientData_v2>: not a Nessus v2 file")
    out: list[VulnResult] = []
    hosts = 0
    try:
        for _event, el in DET.iterparse(io.BytesIO(data), events=("end",), forbid_dtd=True, forbid_entities=True,
                                        forbid_external=True):
            if el.tag == "Policy":
                el.clear()   # scan settings, credentials included: not evidence of anything found
            elif el.tag == "ReportHost":
                hosts += 1
                out.extend(_host(el, source))
                el.clear()
    except DefusedXmlException as exc:
        raise BadScanXml(f"{source}: refused: {type(exc).__name__} (DTDs, entities and external references "
                         "are not accepted in scan files)") from None
    except ParseError as exc:
        raise BadScanXml(f"{source}: not well-formed XML ({exc}); truncated?") from None
    if not hosts:
        raise BadScanXml(f"{source}: a Nessus v2 file with no <ReportHost>: nothing to import")
    return out


def _host(el: Element, source: str) -> list[VulnResult]:
    props = {t.get("name", ""): (t.text or "").strip() for t in el.findall("HostProperties/tag")}
    address = props.get("host-ip") or el.get("name", "")
    if not address:
        raise BadScanXml(f"{source}: a <ReportHost> has no name or host-ip")
    credentialed = props.get("Credentialed_Scan", "").lower() == "true"
    out = []
    for item in el.findall("ReportItem"):
        plugin = item.get("pluginID", "")
        if not plugin:
            raise BadScanXml(f"{source}: host {address}: a <ReportItem> has no pluginID")
        try:
            port = int(item.get("port", "0") or 0)
        except ValueError:
            raise BadScanXml(f"{source}: host {address}: plugin {plugin}: port {item.get('port')!r} "
                             "is not a number") from None
        plugin_type = (item.findtext("plugin_type") or "").strip()
        out.append(VulnResult(
            tool="nessus", host=address, hostname=props.get("host-fqdn", "") or props.get("netbios-name", ""),
            plugin_id=plugin, name=item.get("pluginName", "") or (item.findtext("plugin_name") or ""),
            port=port, protocol=item.get("protocol", "tcp") or "tcp", service=item.get("svc_name", ""),
            family=item.get("pluginFamily", ""),
            severity=TOOL_SEVERITY.get(item.get("severity", "0").strip().lower(), "info"),
            cvss_vector=clean_vector(item.findtext("cvss3_vector")),
            cves=clean_cves([c.text or "" for c in item.findall("cve")]),
            output=scrub((item.findtext("plugin_output") or "").strip()),
            solution=scrub((item.findtext("solution") or "").strip()),
            credentialed=credentialed and plugin_type == "local", detection=plugin_type))
    return out
