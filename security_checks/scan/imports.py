"""`estate scan import`: a scan file from elsewhere (nmap, Nessus v2, OpenVAS), judged against the estate.

Read and parsed before the run opens (so hostile or broken input stores nothing), then judged in
the scan-import step: nmap XML as a live scan is (drift, TLS/SSH/SMB/HTTP, versions, management
exposure), a vulnerability scanner's results as ITHC findings. Every format reports hosts outside
the authorised scopes, and every finding names the file's SHA-256.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field, replace
from pathlib import Path

from ..findings import Finding
from ..model.loader import LoadedEstate
from ..step import EvidenceSink
from . import ithc, nessus, openvas
from .drift import ScanContext, compare, scanner_addresses
from .intake import ScanFile
from .nmapxml import ScanResult, parse
from .versions import Knowledge
from .vulnresult import VulnResult

KINDS = {"nmap": "nmap XML", "nessus": "Nessus v2", "openvas": "OpenVAS report"}


@dataclass
class Parsed:
    file: ScanFile
    nmap: ScanResult | None = None
    results: list[VulnResult] = field(default_factory=list)

    @property
    def hosts(self) -> int:
        if self.nmap is not None:
            return len(self.nmap.hosts)
        return len({r.host for r in self.results})


def parse_file(file: ScanFile) -> Parsed:
    """Parse by kind; BadScanXml (one line naming the file) for anything unusable."""
    if file.kind == "nmap":
        return Parsed(file, nmap=parse(file.data, source=file.source))
    reader = nessus.parse if file.kind == "nessus" else openvas.parse
    results = reader(file.data, source=file.source)
    # A tester's file is not kept (its scan policy can hold credentials: the evidence is its results),
    # so its bytes, up to 64 MiB, are not held for the rest of the run either.
    return Parsed(replace(file, data=b""), results=results)


def judge(loaded: LoadedEstate, run: EvidenceSink, parsed: Parsed, *, knowledge: Knowledge | None = None,
          source_zone: str | None = None) -> tuple[list[Finding], str]:
    """(findings, summary) of an imported file; its evidence written to the run."""
    f = parsed.file
    name = Path(f.source).name
    if parsed.nmap is not None:
        ref = run.write_evidence("scan/import/nmap.xml", f.data, f"imported nmap XML ({name}, sha256 {f.sha256})")
        result = parsed.nmap
        scanned = [ipaddress.ip_network(h.address) for h in result.hosts]
        ctx = ScanContext(scanned=scanned, evidence=[ref], vantage=f"import:{name}", source_zone=source_zone,
                          knowledge=knowledge)
        found = compare(loaded.estate, result, ctx)
        for x in found:
            x.details.setdefault("file_sha256", f.sha256)
        own = set(scanner_addresses(result))
        found += ithc.out_of_scope(loaded.estate, (h.address for h in result.hosts
                                                   if h.state == "up" and h.address not in own),
                                   evidence=[ref], source=name, sha256=f.sha256)
        return found, f"{name} ({KINDS[f.kind]}, sha256 {f.sha256[:12]}): {len(result.hosts)} hosts"
    ref = run.write_evidence(f"scan/import/{f.kind}-results.json",
                             ithc.evidence_json(parsed.results, kind=f.kind, source=name, sha256=f.sha256),
                             f"imported {KINDS[f.kind]} results ({name}, sha256 {f.sha256}), secrets removed")
    found, informational = ithc.findings(loaded.estate, parsed.results, evidence=[ref], source=name,
                                         sha256=f.sha256)
    return found, (f"{name} ({KINDS[f.kind]}, sha256 {f.sha256[:12]}): {parsed.hosts} hosts, "
                   f"{len(parsed.results)} results, {informational} informational (kept in the evidence)")
