"""OpenVAS / Greenbone report XML (GMP `get_reports`, the XML report format), as Greenbone documents it.

    <report id="..." format_id="a994b278-..." extension="xml">      (or <get_reports_response><report>)
      <report id="...">
        <results>
          <result id="...">
            <name>...</name>
            <host>10.0.0.5<hostname>srv01</hostname></host>
            <port>22/tcp</port>                                     (general/tcp: a host-level result)
            <nvt oid="1.3.6.1.4.1.25623.1.0.NNNNNN">
              <name>...</name><family>...</family>
              <severities score="9.8"><severity type="cvss_base_v3"><value>CVSS:3.1/...</value></severity></severities>
              <refs><ref type="cve" id="CVE-..."/><ref type="url" id="https://..."/></refs>
              <solution type="VendorFix">...</solution>
            </nvt>
            <threat>High</threat> <severity>9.8</severity>
            <qod><value>97</value><type>package</type></qod>         (package: a credentialed patch check)
            <description>Installed version: ... Fixed version: ...</description>

Results are read wherever they sit under the root (GMP nests one report in another). Older
Greenbone versions put the vector in <cvss_base_vector> or the tags: a v3 one is taken from there.
"""

from __future__ import annotations

import re
from xml.etree.ElementTree import Element

from .nmapxml import BadScanXml, safe_root
from .secrets import scrub
from .vulnresult import TOOL_SEVERITY, VulnResult, clean_cves, clean_vector

# Greenbone's QoD types for results that come from a login to the host (local package checks).
CREDENTIALED_QOD = {"package", "package_unreliable", "registry", "executable_version",
                    "executable_version_unreliable"}
_PORT = re.compile(r"^(\d+)/(tcp|udp|sctp)$")
_TAG_VECTOR = re.compile(r"cvss_base_vector=(CVSS:3\.[01]/[^|]+)")


def parse(data: bytes, *, source: str) -> list[VulnResult]:
    root = safe_root(data, source)
    if root.tag not in ("report", "get_reports_response"):
        raise BadScanXml(f"{source}: the root element is <{root.tag}>, not <report>: not an OpenVAS report")
    results = root.findall(".//results/result")
    if not results and root.find(".//results") is None:
        raise BadScanXml(f"{source}: an OpenVAS report with no <results>: was it exported with the XML format?")
    return [_result(r, source, i) for i, r in enumerate(results, 1)]


def _result(el: Element, source: str, n: int) -> VulnResult:
    host_el = el.find("host")
    host = (host_el.text or "").strip() if host_el is not None else ""
    if not host:
        raise BadScanXml(f"{source}: result {n} ({el.get('id', 'no id')}): no <host> address")
    nvt = el.find("nvt")
    if nvt is None or not nvt.get("oid"):
        raise BadScanXml(f"{source}: result {n} on {host}: no <nvt oid=...>")
    port_text = (el.findtext("port") or "").strip()
    m = _PORT.match(port_text)
    port, protocol = (int(m.group(1)), m.group(2)) if m else (0, port_text.split("/")[-1] if "/" in port_text
                                                                  else "tcp")
    vector = None
    for sev in nvt.findall("severities/severity"):
        if sev.get("type", "").startswith("cvss_base_v3"):
            vector = clean_vector(sev.findtext("value"))
            break
    if vector is None:
        vector = clean_vector(nvt.findtext("cvss_base_vector"))
    if vector is None:
        tag = _TAG_VECTOR.search(nvt.findtext("tags") or "")
        vector = clean_vector(tag.group(1)) if tag else None
    cves = [r.get("id", "") for r in nvt.findall("refs/ref") if r.get("type", "").lower() == "cve"]
    cves += [c.strip() for c in (nvt.findtext("cve") or "").split(",")]  # older reports: <cve>a, b</cve>
    qod = (el.findtext("qod/type") or "").strip()
    threat = (el.findtext("threat") or "").strip().lower()
    solution = nvt.find("solution")
    return VulnResult(
        tool="openvas", host=host, hostname=(host_el.findtext("hostname") or "").strip() if host_el is not None else "",
        plugin_id=nvt.get("oid", ""), name=(el.findtext("name") or nvt.findtext("name") or "").strip(),
        port=port, protocol=protocol or "tcp", family=(nvt.findtext("family") or "").strip(),
        severity=TOOL_SEVERITY.get(threat, "info"), cvss_vector=vector, cves=clean_cves(cves),
        output=scrub((el.findtext("description") or "").strip()),
        solution=scrub((solution.text or "").strip()) if solution is not None else "",
        credentialed=qod in CREDENTIALED_QOD, detection=qod)
