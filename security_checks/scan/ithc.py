"""An ITHC tester's vulnerability results (Nessus, OpenVAS) as findings, so the RAP is built from them.

Each result the tool rates low or worse (or that names a CVE) becomes one scan.ithc_result finding
on the estate's asset for that address: the plugin or NVT id, its CVEs, the CVSS v3 vector (which
sets the severity, as the ITHC scores it; without one the tool's own rating), host, port, the
start of the plugin output, and the SHA-256 of the file it came from. The whole plugin output
(secrets taken out) is stored once, in the import's evidence file, as item `evidence_item` of its
"items": copied into each finding as well, it tripled what an import of a tester's 50 MB file
wrote (the finding's row, the database journal, the run's manifest) for text no report shows.
Informational results (the tool's "None"/"Log": OS identification, traceroute...) are kept in the
evidence and counted, not made findings: they are not things to remediate.

A host in the file that lies outside every authorised scan scope (or inside a scope's exclusion)
is reported as scan.host_out_of_scope, and its results are kept like any other: a tester's
report is never silently trimmed to what we expected to see.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

import pydantic_core

from ..checks import make_finding
from ..findings import EvidenceRef, Finding, Severity, Status
from ..model.schema import Estate
from .drift import EstateIndex, asset_for
from .vulnresult import VulnResult

OBSERVED_CHARS = 400   # of the plugin output, in the finding's observed text; the whole is in the evidence
TOOLS = {"nessus": "Nessus", "openvas": "OpenVAS"}


def out_of_scope(estate: Estate, addresses: Iterable[str], *, evidence: list[EvidenceRef], source: str,
                 sha256: str) -> list[Finding]:
    """scan.host_out_of_scope for each address no scan scope authorises (or one excludes)."""
    scopes = [(s, [ipaddress.ip_network(c) for c in s.cidrs], [ipaddress.ip_network(e, strict=False)
                                                                  for e in s.exclusions])
              for s in estate.scan_scopes]
    index = EstateIndex(estate)
    out = []
    for address in sorted(set(addresses), key=_sort_key):
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            continue   # a host name the tool could not resolve: reported with its results, not judged here
        inside = [(s, ex) for s, cidrs, ex in scopes if any(ip in c for c in cidrs)]
        excluded = [(s, e) for s, ex in inside for e in ex if ip in e]
        if inside and len(excluded) < len(inside):
            continue
        if excluded:
            why = "; ".join(f"inside exclusion {e} of scan scope {s.name}" for s, e in excluded)
        else:
            why = "outside every authorised scan scope (scan_scopes)"
        info = index.info(address)
        out.append(make_finding(
            "scan.host_out_of_scope", asset_for(address, info), Status.FAIL, observed=f"{source} has results for "
            f"{address}, {why}", expected="a scan file covers only addresses the estate authorised for scanning",
            evidence=evidence, site=info.site, zone=info.zone,
            details={"address": address, "file": source, "file_sha256": sha256, "reason": why}))
    return out


def _sort_key(address: str) -> tuple[int, str]:
    try:
        ip = ipaddress.ip_address(address)
        return ip.version, f"{int(ip):040d}"
    except ValueError:
        return 9, address


def findings(estate: Estate, results: list[VulnResult], *, evidence: list[EvidenceRef], source: str,
             sha256: str) -> tuple[list[Finding], int]:
    """(findings, how many informational results were left to the evidence)."""
    index = EstateIndex(estate)
    out: dict[str, Finding] = {}
    informational = 0
    places: dict[str, tuple[str, str | None, str | None]] = {}   # one look-up per host, not per result
    for item, r in enumerate(results):
        if r.informational:
            informational += 1
            continue
        place = places.get(r.host)
        if place is None:
            try:
                info = index.info(r.host)
                place = places[r.host] = (asset_for(r.host, info), info.site, info.zone)
            except ValueError:
                place = places[r.host] = (f"host:{r.host}", None, None)
        f = _finding(r, item, *place, evidence, source, sha256)
        fid = f.id
        prev = out.get(fid)
        if prev is None or (f.cvss_score or 0) > (prev.cvss_score or 0):
            out[fid] = f
    out.update({f.id: f for f in out_of_scope(estate, (r.host for r in results), evidence=evidence, source=source,
                                              sha256=sha256)})
    return list(out.values()), informational


def _finding(r: VulnResult, item: int, asset: str, site: str | None, zone: str | None, evidence: list[EvidenceRef],
             source: str, sha256: str) -> Finding:
    tool = TOOLS.get(r.tool, r.tool)
    output = r.output   # masked by the reader (nessus.py, openvas.py): secrets never get this far
    excerpt = _excerpt(output)
    basis = "credentialed check (installed versions read on the host)" if r.credentialed else \
        f"remote check{f' ({r.detection})' if r.detection else ''}"
    where = f"{r.host} {r.key}" + (f" ({r.service})" if r.service else "")
    observed = f"{tool} {r.plugin_id} on {where}: {r.name}" + (f" [{', '.join(r.cves[:6])}"
                                                                f"{' ...' if len(r.cves) > 6 else ''}]"
                                                                if r.cves else "")
    if excerpt:
        observed += f" -- {excerpt}"
    return make_finding(
        "scan.ithc_result", asset, Status.FAIL, key=f"{r.tool}:{r.plugin_id} {r.key}", observed=observed,
        expected="no vulnerability the tester's tool reports", title=f"{tool}: {r.name}"[:200], evidence=evidence,
        site=site, zone=zone, cvss_vector=r.cvss_vector,
        # Rated by the CVSS v3 vector, as the ITHC scores it; without one, by the tool's own rating.
        severity=None if r.cvss_vector else Severity(r.severity if r.severity != "info" else "low"),
        remediation=r.solution or None,
        details={"tool": r.tool, "plugin_id": r.plugin_id, "plugin_name": r.name, "family": r.family,
                 "cves": r.cves, "cvss_vector": r.cvss_vector, "tool_severity": r.severity, "host": r.host,
                 "hostname": r.hostname, "port": r.port, "protocol": r.protocol, "service": r.service,
                 "output_chars": len(output), "evidence_item": item,
                 "credentialed": r.credentialed, "evidence_basis": basis, "file": source, "file_sha256": sha256})



def _excerpt(output: str) -> str:
    """The start of the output, whitespace folded, at most OBSERVED_CHARS (then "...")."""
    # Folding a patch audit's whole output (kilobytes, 20,000 times) to keep 400 characters is most of
    # the cost; folding a prefix gives the same start whenever it folds to more than the limit.
    head = output[:OBSERVED_CHARS * 2]
    folded = " ".join(head.split())
    if len(folded) <= OBSERVED_CHARS and len(head) < len(output):
        folded = " ".join(output.split())
    return folded[:OBSERVED_CHARS] + ("..." if len(folded) > OBSERVED_CHARS else "")


def evidence_json(results: list[VulnResult], *, kind: str, source: str, sha256: str) -> bytes:
    """Every result of the file (informational ones too, secrets masked): the evidence kept for the import.

    The file itself is not kept: a Nessus file's Policy section can hold the credentials of a
    credentialed scan. Its SHA-256 identifies the tester's original."""
    rows = [vars(r) for r in results]   # cves, a tuple, is written as a JSON array
    # pydantic's encoder (Rust, UTF-8) writes a tester's 50 MB of results in half the time of json.dumps.
    return pydantic_core.to_json({"format": kind, "file": source, "sha256": sha256, "results": len(rows),
                                  "note": "the original file is not stored (scan policies can hold credentials); "
                                          "compare its SHA-256 with the tester's delivery", "items": rows})
