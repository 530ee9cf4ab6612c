"""One result of a vulnerability scanner (Nessus, OpenVAS/Greenbone), as the importers read it.

Both tools report per host and port: a plugin (Nessus plugin id, OpenVAS NVT OID) with its name,
CVEs, a CVSS v3 vector where the tool has one, the tool's own severity, and output that shows why
it fired. That is what an ITHC tester delivers and what the Remediation Action Plan is built from.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache

# The tool's own rating where there is no CVSS v3 vector: Nessus 0-4, OpenVAS threat names.
TOOL_SEVERITY = {"0": "info", "1": "low", "2": "medium", "3": "high", "4": "critical",
                 "log": "info", "none": "info", "debug": "info", "false positive": "info", "low": "low",
                 "medium": "medium", "high": "high", "critical": "critical", "alarm": "high"}
_CVE = re.compile(r"^CVE-\d{4}-\d{4,}$")
_V3 = re.compile(r"^CVSS:3\.[01]/")


@dataclass
class VulnResult:
    tool: str                   # nessus | openvas
    host: str                   # the address as the tool reports it
    plugin_id: str              # Nessus pluginID, OpenVAS NVT OID
    name: str
    port: int = 0               # 0: a host-level result (Nessus port 0, OpenVAS general/tcp)
    protocol: str = "tcp"
    service: str = ""
    hostname: str = ""
    family: str = ""
    severity: str = "info"      # the tool's rating: info, low, medium, high, critical
    cvss_vector: str | None = None
    cves: list[str] = field(default_factory=list)
    output: str = ""            # plugin output / OpenVAS result description, secrets masked by the reader
    solution: str = ""
    credentialed: bool = False  # a local check with credentials (a patch audit), not a remote guess
    detection: str = ""         # how the tool decided: remote, local, remote_banner, package ...

    @property
    def key(self) -> str:
        return f"{self.protocol}/{self.port}" if self.port else "host"

    @property
    def informational(self) -> bool:
        return self.severity == "info" and not self.cves


def clean_cves(values: list[str]) -> list[str]:
    return sorted({v.strip().upper() for v in values if _CVE.match(v.strip().upper())})


@cache
def clean_vector(value: str | None) -> str | None:
    """A CVSS v3 vector, or None (v2 vectors and blanks are not v3 evidence)."""
    if not value:
        return None
    value = value.strip()
    if not _V3.match(value):
        return None
    try:
        from cvss import CVSS3

        CVSS3(value)
    except Exception:  # a vector the cvss library cannot read is no v3 evidence, not a reason to refuse the file
        return None
    return value
