"""Run nmap (through python-nmap) for an authorised scan, inside a lab namespace when asked.

Only `run()` starts nmap, and it takes an Authorisation from scope.py: every target is re-checked
against it, so nothing outside the authorised networks can reach the command line. The raw XML
is returned for evidence; nmapxml.py parses it.

Timing is tuned for default-deny networks, where closed ports never answer: one retry, short RTT
timeouts, a minimum packet rate and a per-host time limit keep a firewalled target from making a
scan crawl. The `vulners` script is never used (it sends what it finds to an internet service).
"""

from __future__ import annotations

import ipaddress
import os
import shlex
import threading
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from ..fsutil import atomic_write
from .scope import Authorisation, ScopeRefused

NSE_SCRIPTS = ("ssl-enum-ciphers", "ssl-cert", "ssh2-enum-algos", "smb-protocols", "http-security-headers")
FORBIDDEN_SCRIPTS = ("vulners",)
TIMING = ["-n", "-T4", "--max-retries", "1", "--min-rate", "3000", "--initial-rtt-timeout", "50ms",
          "--max-rtt-timeout", "200ms", "--host-timeout", "120s", "--script-timeout", "30s"]
COMMON_UDP = (53, 69, 123, 161, 500, 5060)
NMAP_SERVICES = Path("/usr/share/nmap/nmap-services")


@dataclass
class NmapJob:
    targets: list[str]
    arguments: list[str]

    def command(self, nmap: str = "nmap") -> list[str]:
        return [nmap, "-oX", "-", *self.arguments, *self.targets]


@cache
def top_tcp_ports(n: int = 1000) -> list[int]:
    """nmap's own top-N TCP ports, from its frequency table (what --top-ports uses)."""
    rows: list[tuple[float, int]] = []
    for line in NMAP_SERVICES.read_text().splitlines():
        if line.startswith("#") or not line.strip():
            continue
        parts = line.split()
        if len(parts) >= 3 and parts[1].endswith("/tcp"):
            rows.append((float(parts[2]), int(parts[1].split("/")[0])))
    rows.sort(reverse=True)
    return sorted(p for _, p in rows[:n])


def _compress(ports: set[int]) -> str:
    out: list[str] = []
    seq = sorted(ports)
    i = 0
    while i < len(seq):
        j = i
        while j + 1 < len(seq) and seq[j + 1] == seq[j] + 1:
            j += 1
        out.append(str(seq[i]) if i == j else f"{seq[i]}-{seq[j]}")
        i = j + 1
    return ",".join(out)


def build(auth: Authorisation, targets: list[str], *, tcp: set[int], udp: set[int], privileged: bool,
          exclude: list[str] | None = None, skip_discovery: bool = False,
          extra_tcp_top: int | None = None) -> list[NmapJob]:
    """The nmap jobs for a profile: discovery (-sn); or a TCP job (SYN or connect scan, version
    detection, NSE scripts) and, when privileged and UDP ports are declared, a UDP job without
    version detection (UDP version probes against silent ports wait out every timeout)."""
    _check_targets(auth, targets)
    args = list(TIMING)
    if exclude:
        args += ["--exclude", ",".join(exclude)]
    if auth.profile == "discovery":
        return [NmapJob(targets, [*args, "-sn"])]
    if skip_discovery:
        args += ["-Pn"]
    tcp_ports = set(tcp)
    if auth.profile == "deep":
        tcp_ports = set(range(1, 65536))
        udp = set(udp) | set(COMMON_UDP)
    elif extra_tcp_top:
        tcp_ports |= set(top_tcp_ports(extra_tcp_top))
    jobs = []
    version = ["--version-light", *_fast_versiondb()] if auth.profile == "standard" else ["--version-all"]
    tcp_args = [*args, "-sS" if privileged else "-sT", "-p", _compress(tcp_ports), "-sV", *version,
                "--script", ",".join(NSE_SCRIPTS)]
    _check_scripts(tcp_args)
    jobs.append(NmapJob(targets, tcp_args))
    if udp and privileged:  # UDP scans need raw sockets
        jobs.append(NmapJob(targets, [*args, "-sU", "-p", _compress(set(udp))]))
    return jobs


SERVICE_PROBES = Path("/usr/share/nmap/nmap-service-probes")
NULL_PROBE_WAIT_MS = 2000


def _fast_versiondb() -> list[str]:
    """nmap's own service probes with a 2 s wait for a greeting instead of 6 s (standard profile).

    Services that speak only when spoken to (HTTP, TLS, SMB) wait out the first probe in full;
    6 s per port dominates a lab or site scan. Slow greeters (SMTP greet_pause) may then be named
    by a later probe instead: the deep profile keeps nmap's defaults.
    """
    if not SERVICE_PROBES.exists():
        return []
    target = Path(os.environ.get("TMPDIR", "/tmp")) / "estate-nmap" / "nmap-service-probes"
    with _VERSIONDB_LOCK:
        # One scan builds a job per network: the 2.5 MB file is read and compared once, and again
        # only when it or nmap's own file changes (same inode, size and mtime: unchanged).
        key = (str(target), _stat_key(SERVICE_PROBES), _stat_key(target))
        if _VERSIONDB_CHECKED.get(str(target)) != key:
            text = SERVICE_PROBES.read_text(errors="replace")
            fast = text.replace("totalwaitms 6000", f"totalwaitms {NULL_PROBE_WAIT_MS}", 1)
            if not target.exists() or target.read_text(errors="replace") != fast:
                # A copy of nmap's own public data file, which nmap (any user's) reads.
                atomic_write(target, fast, mode=0o644, durable=False)
            _VERSIONDB_CHECKED[str(target)] = (str(target), _stat_key(SERVICE_PROBES), _stat_key(target))
    return ["--versiondb", str(target)]


_VERSIONDB_LOCK = threading.Lock()
_VERSIONDB_CHECKED: dict[str, tuple[str, tuple[int, int, int] | None, tuple[int, int, int] | None]] = {}


def _stat_key(path: Path) -> tuple[int, int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns)


def _check_targets(auth: Authorisation, targets: list[str]) -> None:
    if not targets:
        raise ScopeRefused("nothing to scan")
    for t in targets:
        net = ipaddress.ip_network(t, strict=False)
        if not any(net.version == n.version and net.subnet_of(n) for n in auth.networks):  # type: ignore[arg-type]
            raise ScopeRefused(f"{t} is not among the authorised targets of scope {auth.scope.name!r}")


def _check_scripts(args: list[str]) -> None:
    joined = " ".join(args).lower()
    for bad in FORBIDDEN_SCRIPTS:
        if bad in joined:
            raise ValueError(f"the {bad} NSE script is never run: it sends scan results to an internet service")


def wrapper(netns: str, directory: Path) -> Path:
    """A one-line nmap that runs inside `netns` (python-nmap wants a path to an nmap binary)."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"nmap-{netns}"
    body = f"#!/bin/sh\nexec ip netns exec {shlex.quote(netns)} nmap \"$@\"\n"
    if not path.exists() or path.read_text() != body:
        # Parallel nmap jobs share the wrapper: publish it whole and executable in one rename, or
        # another thread can run a half-written or not-yet-executable file ("nmap not found").
        # Only the scanning user runs it.
        atomic_write(path, body, mode=0o700, durable=False)
    return path


def run(auth: Authorisation, job: NmapJob, *, wrapper_dir: Path | None = None) -> bytes:
    """Run the job (in the authorisation's namespace, if any) and return nmap's XML."""
    import nmap  # python-nmap

    _check_targets(auth, job.targets)
    _check_scripts(job.arguments)
    binary = "nmap"
    if auth.netns:
        binary = str(wrapper(auth.netns, wrapper_dir or Path(os.environ.get("TMPDIR", "/tmp")) / "estate-nmap"))
    scanner = nmap.PortScanner(nmap_search_path=(binary,))
    scanner.scan(hosts=" ".join(job.targets), arguments=shlex.join(job.arguments))
    xml = scanner.get_nmap_last_output()
    return xml.encode() if isinstance(xml, str) else bytes(xml)
