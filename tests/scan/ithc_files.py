# ruff: noqa: E501  (the XML and JSON below are laid out as the tools write them: one element per line)
"""Scan files in the tools' real public formats, written for the tests (addresses filled per estate).

- nmap XML as `nmap -sS -sV --script ssl-cert,ssh2-enum-algos,http-security-headers -oX` writes it
  (nmap.dtd: <nmaprun><host><status reason="localhost-response"/>..<ports><port><service
  product= version= extrainfo=><cpe>cpe:/a:...</cpe></service>);
- Nessus v2 (NessusClientData_v2: Policy, Report/ReportHost/HostProperties/ReportItem with pluginID,
  cve, cvss3_vector, plugin_output, plugin_type), including a credentialed local patch check and a
  Policy preference holding a password;
- OpenVAS/Greenbone GMP report XML (report/report/results/result with host, port, nvt oid, refs,
  severities, qod, description), including a package (credentialed) result and a Log result;
- NVD CVE API 2.0 and CPE Match API 2.0 responses for the feed builder.
Plugin ids and OIDs follow the tools' numbering; the CVEs, affected and fixed versions are the published
ones (NVD) for OpenSSH, nginx, SMBv1 and OpenSSL; the vectors are as a tool would carry them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

PASSWORD = "Harrowdale-Scan-2026!"   # must never reach the store, reports or evidence


def nmap_server(server: str, scanner: str | None, *, ssh: str = "7.4p1", ssh_extra: str = "protocol 2.0",
                ssh_version_suffix: str = "") -> bytes:
    """The issue's server: telnet, OpenSSH (7.4 by default), self-signed TLS without HSTS, RDP, HTTP."""
    own = ""
    if scanner:
        own = (f'<host starttime="1" endtime="2"><status state="up" reason="localhost-response" reason_ttl="0"/>'
               f'<address addr="{scanner}" addrtype="ipv4"/><ports><extraports state="closed" count="5">'
               f'</extraports></ports></host>')
    version = f"{ssh}{' ' + ssh_version_suffix if ssh_version_suffix else ''}"
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE nmaprun>
<?xml-stylesheet href="file:///usr/share/nmap/nmap.xsl" type="text/xsl"?>
<nmaprun scanner="nmap" args="nmap -sS -sV --script ssl-cert,ssh2-enum-algos,http-security-headers -oX scan.xml {server}" start="1764672000" startstr="Wed Dec  2 10:40:00 2026" version="7.93" xmloutputversion="1.05">
<scaninfo type="syn" protocol="tcp" numservices="6" services="22-23,80,443,3389,8443"/>
<verbose level="0"/><debugging level="0"/>
{own}
<host starttime="1764672001" endtime="1764672060"><status state="up" reason="arp-response" reason_ttl="0"/>
<address addr="{server}" addrtype="ipv4"/><address addr="52:54:00:12:34:56" addrtype="mac"/>
<hostnames/>
<ports>
<port protocol="tcp" portid="22"><state state="open" reason="syn-ack" reason_ttl="64"/><service name="ssh" product="OpenSSH" version="{version}" extrainfo="{ssh_extra}" ostype="Linux" method="probed" conf="10"><cpe>cpe:/a:openbsd:openssh:{ssh}</cpe><cpe>cpe:/o:linux:linux_kernel</cpe></service><script id="ssh2-enum-algos" output="&#xa;  kex_algorithms: (0)&#xa;"/></port>
<port protocol="tcp" portid="23"><state state="open" reason="syn-ack" reason_ttl="64"/><service name="telnet" product="Linux telnetd" ostype="Linux" method="probed" conf="10"><cpe>cpe:/o:linux:linux_kernel</cpe></service></port>
<port protocol="tcp" portid="80"><state state="open" reason="syn-ack" reason_ttl="64"/><service name="http" product="nginx" version="1.18.0" method="probed" conf="10"><cpe>cpe:/a:igor_sysoev:nginx:1.18.0</cpe></service></port>
<port protocol="tcp" portid="443"><state state="open" reason="syn-ack" reason_ttl="64"/><service name="http" product="Apache httpd" version="2.4.6" extrainfo="(CentOS) OpenSSL/1.0.2k-fips" tunnel="ssl" method="probed" conf="10"><cpe>cpe:/a:apache:http_server:2.4.6</cpe></service><script id="ssl-cert" output="Subject: commonName=intranet"><table key="subject"><elem key="commonName">intranet</elem></table><table key="issuer"><elem key="commonName">intranet</elem></table><table key="pubkey"><elem key="type">rsa</elem><elem key="bits">2048</elem></table><elem key="sig_algo">sha256WithRSAEncryption</elem><table key="validity"><elem key="notBefore">2026-01-01T00:00:00</elem><elem key="notAfter">2036-01-01T00:00:00</elem></table></script><script id="http-security-headers" output="&#xa;  Cache_Control: &#xa;    Header: Cache-Control: no-cache&#xa;"/></port>
<port protocol="tcp" portid="3389"><state state="open" reason="syn-ack" reason_ttl="128"/><service name="ms-wbt-server" product="Microsoft Terminal Services" ostype="Windows" method="probed" conf="10"><cpe>cpe:/o:microsoft:windows</cpe></service></port>
</ports>
</host>
<runstats><finished time="1764672060" timestr="Wed Dec  2 10:41:00 2026" summary="Nmap done" elapsed="60.00" exit="success"/><hosts up="2" down="0" total="2"/></runstats>
</nmaprun>
""".encode()


def nessus(hosts: dict[str, str], outside: str) -> bytes:
    """A credentialed internal scan: hosts = {"smb": addr, "linux": addr}; `outside` is in no scope."""
    return f"""<?xml version="1.0" ?>
<NessusClientData_v2>
<Policy><policyName>ITHC internal credentialed</policyName>
<Preferences><ServerPreferences>
<preference><name>TARGET</name><value>{hosts['smb']},{hosts['linux']},{outside}</value></preference>
</ServerPreferences>
<PluginsPreferences>
<item><pluginName>SSH settings</pluginName><pluginId>14273</pluginId><fullName>SSH settings[password]:SSH password (unsafe!) :</fullName><preferenceName>SSH password (unsafe!) :</preferenceName><preferenceType>password</preferenceType><preferenceValues></preferenceValues><selectedValue>{PASSWORD}</selectedValue></item>
</PluginsPreferences></Preferences>
<FamilySelection><FamilyItem><FamilyName>Debian Local Security Checks</FamilyName><Status>enabled</Status></FamilyItem></FamilySelection>
</Policy>
<Report name="Harrowdale ITHC 2026 internal" xmlns:cm="http://www.nessus.org/cm">
<ReportHost name="{hosts['smb']}"><HostProperties>
<tag name="HOST_END">Wed Dec  2 11:02:11 2026</tag><tag name="operating-system">Microsoft Windows Server 2012 R2 Standard</tag>
<tag name="host-ip">{hosts['smb']}</tag><tag name="netbios-name">FILE01</tag><tag name="Credentialed_Scan">false</tag>
<tag name="HOST_START">Wed Dec  2 10:45:03 2026</tag></HostProperties>
<ReportItem port="0" svc_name="general" protocol="tcp" severity="0" pluginID="19506" pluginName="Nessus Scan Information" pluginFamily="Settings">
<description>This plugin displays information about the Nessus scan.</description><plugin_type>summary</plugin_type><risk_factor>None</risk_factor>
<plugin_output>Nessus version : 10.6.4
Scan type : Normal
Credentialed checks : no</plugin_output></ReportItem>
<ReportItem port="445" svc_name="cifs" protocol="tcp" severity="4" pluginID="97833" pluginName="MS17-010: Security Update for Microsoft Windows SMB Server (ETERNALBLUE) (ETERNALCHAMPION) (ETERNALROMANCE) (ETERNALSYNERGY) (WannaCry) (EternalRocks) (Petya) (uncredentialed check)" pluginFamily="Windows">
<cve>CVE-2017-0143</cve><cve>CVE-2017-0144</cve><cve>CVE-2017-0145</cve><cve>CVE-2017-0146</cve><cve>CVE-2017-0147</cve><cve>CVE-2017-0148</cve>
<cvss3_base_score>8.1</cvss3_base_score><cvss3_vector>CVSS:3.0/AV:N/AC:H/PR:N/UI:N/S:U/C:H/I:H/A:H</cvss3_vector>
<cvss_vector>CVSS2#AV:N/AC:L/Au:N/C:C/I:C/A:C</cvss_vector>
<description>The remote Windows host is affected by multiple vulnerabilities in SMBv1.</description>
<plugin_type>remote</plugin_type><risk_factor>High</risk_factor>
<solution>Microsoft has released a set of patches for Windows Vista, 2008, 7, 2008 R2, 2012, 8.1, RT 8.1, 2012 R2, 10, and 2016. Disable SMBv1.</solution>
<synopsis>The remote Windows host is affected by multiple vulnerabilities.</synopsis>
<plugin_output>Sent:
00000000  00 00 00 4a ff 53 4d 42 25 00 00 00 00 18 01 28
Received:
00000000  00 00 00 23 ff 53 4d 42 25 05 02 00 c0 98 01 28</plugin_output></ReportItem>
<ReportItem port="8080" svc_name="www" protocol="tcp" severity="3" pluginID="34970" pluginName="Apache Tomcat Manager Common Administrative Credentials" pluginFamily="CGI abuses">
<description>It is possible to log into the remote Tomcat Manager with default credentials.</description>
<plugin_type>remote</plugin_type><risk_factor>High</risk_factor><solution>Change the password for the account.</solution>
<plugin_output>
It was possible to log in with the following credentials:

  URL      : http://{hosts['smb']}:8080/manager/html
  Username : tomcat
  Password: {PASSWORD}
</plugin_output></ReportItem>
</ReportHost>
<ReportHost name="{hosts['linux']}"><HostProperties>
<tag name="host-ip">{hosts['linux']}</tag><tag name="host-fqdn">intranet.example.internal</tag>
<tag name="Credentialed_Scan">true</tag><tag name="operating-system">Linux Kernel 6.1.0-18-amd64 on Debian 12</tag>
</HostProperties>
<ReportItem port="0" svc_name="general" protocol="tcp" severity="3" pluginID="185389" pluginName="Debian DSA-5532-1 : openssl - security update" pluginFamily="Debian Local Security Checks">
<cve>CVE-2023-5363</cve><cvss3_base_score>7.5</cvss3_base_score><cvss3_vector>CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N</cvss3_vector>
<description>The remote Debian 12 host has packages installed that are affected by a vulnerability as referenced in the dsa-5532 advisory.</description>
<plugin_type>local</plugin_type><risk_factor>High</risk_factor><solution>Upgrade the openssl packages.</solution>
<patch_publication_date>2023/10/24</patch_publication_date>
<plugin_output>
Remote package installed : libssl3_3.0.11-1~deb12u1
Should be                : libssl3_3.0.11-1~deb12u2
Remote package installed : openssl_3.0.11-1~deb12u1
Should be                : openssl_3.0.11-1~deb12u2
</plugin_output></ReportItem>
<ReportItem port="22" svc_name="ssh" protocol="tcp" severity="0" pluginID="10267" pluginName="SSH Server Type and Version Information" pluginFamily="Service detection">
<plugin_type>remote</plugin_type><risk_factor>None</risk_factor><plugin_output>SSH version : SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u1</plugin_output></ReportItem>
</ReportHost>
<ReportHost name="{outside}"><HostProperties><tag name="host-ip">{outside}</tag></HostProperties>
<ReportItem port="443" svc_name="www" protocol="tcp" severity="2" pluginID="51192" pluginName="SSL Certificate Cannot Be Trusted" pluginFamily="General">
<cvss3_base_score>6.5</cvss3_base_score><cvss3_vector>CVSS:3.0/AV:N/AC:L/PR:N/UI:N/S:U/C:L/I:L/A:N</cvss3_vector>
<plugin_type>remote</plugin_type><risk_factor>Medium</risk_factor><solution>Purchase or generate a proper SSL certificate for this service.</solution>
<plugin_output>The following certificate was at the top of the certificate chain sent by the remote host, but it is signed by an unknown certificate authority.</plugin_output></ReportItem>
</ReportHost>
</Report>
</NessusClientData_v2>
""".encode()


def openvas(hosts: dict[str, str], outside: str) -> bytes:
    """A Greenbone report: hosts = {"ssh": addr, "print": addr}; `outside` is in no scope."""
    def result(rid: str, host: str, port: str, name: str, oid: str, threat: str, severity: str,
               vector: str | None, cves: list[str], qod: tuple[str, str], description: str, family: str,
               solution: str = "") -> str:
        refs = "".join(f'<ref type="cve" id="{c}"/>' for c in cves) + '<ref type="url" id="https://www.openssh.com/security.html"/>'
        sev = (f'<severities score="{severity}"><severity type="cvss_base_v3"><origin/><date>2024-07-01T19:15:00Z'
               f'</date><score>{severity}</score><value>{vector}</value></severity></severities>' if vector else "")
        return (f'<result id="{rid}"><name>{name}</name><owner><name>tester</name></owner><modification_time>'
                f'2026-12-02T10:30:00Z</modification_time><comment></comment><creation_time>2026-12-02T10:30:00Z'
                f'</creation_time><host>{host}<asset asset_id="a-{rid}"/><hostname></hostname></host>'
                f'<port>{port}</port><nvt oid="{oid}"><type>nvt</type><name>{name}</name><family>{family}</family>'
                f'<cvss_base>{severity}</cvss_base>{sev}<tags>summary={name}|solution_type=VendorFix</tags>'
                f'<solution type="VendorFix">{solution}</solution><refs>{refs}</refs></nvt>'
                f'<scan_nvt_version>2024-07-02T05:05:42Z</scan_nvt_version><threat>{threat}</threat>'
                f'<severity>{severity}</severity><qod><value>{qod[0]}</value><type>{qod[1]}</type></qod>'
                f'<description>{description}</description><original_threat>{threat}</original_threat>'
                f'<original_severity>{severity}</original_severity></result>')
    results = "".join([
        result("r1", hosts["ssh"], "22/tcp", "OpenSSH 8.5p1 - 9.7p1 RCE Vulnerability (regreSSHion)",
               "1.3.6.1.4.1.25623.1.0.114673", "High", "8.1", "CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:H/I:H/A:H",
               ["CVE-2024-6387"], ("80", "remote_banner"),
               "Installed version: 9.2p1\nFixed version:     9.8p1\nInstallation\npath / port:       22/tcp",
               "General", "Update to version 9.8p1 or later."),
        result("r2", hosts["print"], "general/tcp", "Debian: Security Advisory (DSA-5778-1)",
               "1.3.6.1.4.1.25623.1.1.2.2024.5778", "High", "8.2", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:L/A:H",
               ["CVE-2024-47175", "CVE-2024-47176"], ("97", "package"),
               "Vulnerable package: cups-filters\nInstalled version: cups-filters-1.28.17-3\n"
               "Fixed version:     &gt;=cups-filters-1.28.17-3+deb12u1", "Debian Local Security Checks",
               "Please install the updated package(s)."),
        result("r3", hosts["ssh"], "general/tcp", "OS Detection Consolidation and Reporting",
               "1.3.6.1.4.1.25623.1.0.105937", "Log", "0.0", None, [], ("80", "remote_banner"),
               "Best matching OS:\nOS: Debian GNU/Linux 12", "Product detection"),
        result("r4", outside, "161/udp", "Report default community names of the SNMP Agent",
               "1.3.6.1.4.1.25623.1.0.10264", "Medium", "5.3", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:L/I:N/A:N",
               [], ("80", "remote_vul"), f"SNMP Agent responded as expected when using the community: {PASSWORD}",
               "SNMP", "Change the default community."),
    ])
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<report id="8f7e2a1c-5b43-4d2e-9c11-0a6f3d2e7b10" format_id="a994b278-1f62-11e1-96ac-406186ea4fc5" extension="xml" content_type="text/xml">
<owner><name>tester</name></owner><name>2026-12-02T10:20:00Z</name><comment></comment>
<creation_time>2026-12-02T10:20:00Z</creation_time><modification_time>2026-12-02T10:40:00Z</modification_time>
<writable>0</writable><in_use>0</in_use><task id="t1"><name>ITHC internal</name></task>
<report_format id="a994b278-1f62-11e1-96ac-406186ea4fc5"><name>XML</name></report_format>
<report id="8f7e2a1c-5b43-4d2e-9c11-0a6f3d2e7b10">
<gmp><version>22.4</version></gmp><scan_run_status>Done</scan_run_status>
<hosts><count>3</count></hosts>
<results start="1" max="100">{results}</results>
<result_count>4<full>4</full><filtered>4</filtered></result_count>
</report>
</report>
""".encode()


def _cve(cid: str, published: str, vector: str, description: str, matches: list[dict[str, Any]]) -> dict[str, Any]:
    return {"cve": {
        "id": cid, "sourceIdentifier": "cve@mitre.org", "published": published, "lastModified": published,
        "vulnStatus": "Analyzed", "descriptions": [{"lang": "en", "value": description}],
        "metrics": {"cvssMetricV31": [{"source": "nvd@nist.gov", "type": "Primary", "cvssData": {
            "version": "3.1", "vectorString": vector}}]},
        "configurations": [{"nodes": [{"operator": "OR", "negate": False, "cpeMatch": matches}]}]}}


def nvd_files(directory: Path) -> tuple[Path, Path]:
    """(NVD CVE API 2.0 response, NVD CPE Match API 2.0 response) with the real OpenSSH and nginx ranges."""
    ssh = "cpe:2.3:a:openbsd:openssh:*:*:*:*:*:*:*:*"
    vulns = [
        _cve("CVE-2023-38408", "2023-07-20T03:15:10.170", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
             "The PKCS#11 feature in ssh-agent in OpenSSH before 9.3p2 has an insufficiently trustworthy search path.",
             [{"vulnerable": True, "criteria": ssh, "versionEndExcluding": "9.3p2", "matchCriteriaId": "M-1"},
              {"vulnerable": True, "criteria": "cpe:2.3:a:openbsd:openssh:9.3:p1:*:*:*:*:*:*",
               "matchCriteriaId": "M-2"}]),
        _cve("CVE-2021-41617", "2021-09-26T19:15:07.397", "CVSS:3.1/AV:L/AC:H/PR:L/UI:N/S:U/C:H/I:H/A:H",
             "sshd in OpenSSH 6.2 through 8.x before 8.8 ... allows privilege escalation.",
             [{"vulnerable": True, "criteria": ssh, "versionStartIncluding": "6.2", "versionEndExcluding": "8.8",
               "matchCriteriaId": "M-3"},
              {"vulnerable": False, "criteria": "cpe:2.3:o:fedoraproject:fedora:35:*:*:*:*:*:*:*",
               "matchCriteriaId": "M-4"}]),
        _cve("CVE-2024-6387", "2024-07-01T13:15:06.467", "CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:H/I:H/A:H",
             "A security regression (CVE-2006-5051) was discovered in OpenSSH's server (sshd).",
             [{"vulnerable": True, "criteria": ssh, "versionEndExcluding": "4.4p1", "matchCriteriaId": "M-5"},
              {"vulnerable": True, "criteria": ssh, "versionStartIncluding": "8.5p1", "versionEndExcluding": "9.8p1",
               "matchCriteriaId": "M-6"}]),
        _cve("CVE-2018-15473", "2018-08-17T19:29:00.227", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:L/I:N/A:N",
             "OpenSSH through 7.7 is prone to a user enumeration vulnerability.",
             [{"vulnerable": True, "criteria": ssh, "versionEndIncluding": "7.7", "matchCriteriaId": "M-7"}]),
        # An abbreviated save: the bounds are in the CPE match response only.
        _cve("CVE-2021-23017", "2021-06-01T13:15:07.853", "CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:H/I:L/A:H",
             "A security issue in nginx resolver was identified, which might allow an attacker to cause 1-byte "
             "memory overwrite.",
             [{"vulnerable": True, "criteria": "cpe:2.3:a:f5:nginx:*:*:*:*:*:*:*:*", "matchCriteriaId": "M-8"}]),
    ]
    cves = directory / "nvd-cves.json"
    cves.write_text(json.dumps({"resultsPerPage": len(vulns), "startIndex": 0, "totalResults": len(vulns),
                                "format": "NVD_CVE", "version": "2.0", "timestamp": "2026-11-20T06:00:00.000",
                                "vulnerabilities": vulns}, indent=1))
    match = directory / "nvd-cpematch.json"
    match.write_text(json.dumps({"resultsPerPage": 1, "startIndex": 0, "totalResults": 1, "format": "NVD_CPEMatchString",
                                 "version": "2.0", "timestamp": "2026-11-20T06:00:00.000", "matchStrings": [
                                     {"matchString": {"matchCriteriaId": "M-8",
                                                      "criteria": "cpe:2.3:a:f5:nginx:*:*:*:*:*:*:*:*",
                                                      "versionStartIncluding": "0.6.18",
                                                      "versionEndExcluding": "1.20.1",
                                                      "lastModified": "2021-06-10T12:00:00.000",
                                                      "cpeLastModified": "2021-06-10T12:00:00.000",
                                                      "created": "2021-06-01T13:00:00.000", "status": "Active",
                                                      "matches": [{"cpeName": "cpe:2.3:a:f5:nginx:1.18.0:*:*:*:*:*:*:*",
                                                                   "cpeNameId": "N-1"}]}}]}, indent=1))
    return cves, match
