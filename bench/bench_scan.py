"""Benchmark: `estate scan` of the lab against bare nmap with the same options, in the same run.

Needs root (it builds the lab if it is not up, and removes it afterwards only then). Each round
runs, back to back:
- estate: the lab scan as `estate scan --scope lab` does it (scope checks, scapy ARP discovery,
  one nmap per on-link network in parallel through python-nmap, XML parsing, comparison with the
  estate, evidence written to a store run);
- bare: the same nmap options over the same networks, one nmap per network in parallel, nmap
  doing its own (ARP) host discovery, output discarded: what a person would run by hand.
The ratio is the median estate time over the median bare time (goal: at most 1.10). The
segregation matrix (scapy probes between every pair of lab zones) is timed too.

    sudo .venv/bin/python -m bench scan          # writes bench/results/scan.json
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results" / "scan.json"
ROUNDS = 5
GOAL_RATIO = 1.10


def _bare_commands(evidence: Path) -> list[list[str]]:
    """The nmap commands the estate scan ran, as bare nmap over whole networks (nmap discovers)."""
    out = []
    for cmd_file in sorted(evidence.rglob("command.json")):
        data = json.loads(cmd_file.read_text())
        netns = data["netns"]
        networks: dict[str, list[str]] = {}
        for cmd in data["commands"]:
            # Drop -Pn and the host list (our ARP results); give nmap the network instead.
            opts = [a for a in cmd[1:] if a != "-Pn"]
            hosts = [a for a in opts if a[0].isdigit() and "." in a and "/" not in a and "," not in a]
            opts = [a for a in opts if a not in hosts]
            net = _network_of(hosts[0], data) if hosts else None
            if net:
                networks.setdefault(net, opts)
                out.append(["ip", "netns", "exec", netns, "nmap", *opts, net])
    return out


def _network_of(host: str, data: dict[str, object]) -> str | None:
    import ipaddress

    for cidr in data.get("networks", []):  # type: ignore[union-attr]
        if ipaddress.ip_address(host) in ipaddress.ip_network(cidr):
            return str(cidr)
    return None


def main() -> None:
    if os.geteuid() != 0:
        print("bench scan: needs root (the lab); skipped")
        return
    from security_checks.lab import build
    from security_checks.lab.topology import build_lab
    from security_checks.model.loader import load_estate
    from security_checks.scan.segregation import run_matrix
    from security_checks.scan.steps import scan_lab
    from security_checks.store import Store

    loaded = load_estate(REPO / "inventory" / "demo")
    tmp = Path(tempfile.mkdtemp(prefix="bench-scan-"))
    home = tmp / "home"
    brought = not build.status(home)["up"]
    if brought:
        build.up(loaded, home)
    lab = build_lab(loaded.estate)
    store = Store(home)
    estate_times, bare_times, matrix_times = [], [], []
    try:
        commands: list[list[str]] = []

        def bare() -> None:
            t0 = time.perf_counter()
            with ThreadPoolExecutor(max_workers=16) as pool:
                list(pool.map(lambda c: subprocess.run(c, capture_output=True, check=True), commands))
            bare_times.append(time.perf_counter() - t0)

        for i in range(ROUNDS):
            # Alternate which goes first, so warm caches (ARP, page cache) favour neither side.
            if i % 2 == 1 and commands:
                bare()
            t0 = time.perf_counter()
            with store.run("bench", estate_dir="demo", estate_digest=loaded.digest) as run:
                findings, _notes = scan_lab(loaded, lab, run, build.owner_home(home))
                run_id = run.id
            estate_times.append(time.perf_counter() - t0)
            evidence = store.evidence_dir(run_id)
            for cmd_file in evidence.rglob("command.json"):
                data = json.loads(cmd_file.read_text())
                data["networks"] = lab.scanner_vantage(data["netns"])["networks"]
                cmd_file.write_text(json.dumps(data))
            commands = _bare_commands(evidence)
            if i % 2 == 0:
                bare()
            t0 = time.perf_counter()
            with store.run("bench", estate_dir="demo", estate_digest=loaded.digest) as run:
                matrix, _f = run_matrix(loaded, lab, run)
            matrix_times.append(time.perf_counter() - t0)
    finally:
        store.close()
        if brought:
            build.down(home)
    ratio = statistics.median(estate_times) / statistics.median(bare_times)
    result = {
        "what": "estate lab scan (standard profile) vs bare nmap with the same options; segregation matrix",
        "rounds": ROUNDS,
        "estate_scan_seconds": [round(t, 2) for t in estate_times],
        "bare_nmap_seconds": [round(t, 2) for t in bare_times],
        "ratio_median": round(ratio, 3),
        "goal_ratio": GOAL_RATIO,
        "meets_goal": ratio <= GOAL_RATIO,
        "matrix_seconds": [round(t, 2) for t in matrix_times],
        "matrix_probes": len(matrix["flows"]),
        "findings_per_scan": len(findings),
        "nmap_jobs": len(commands),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "note": "shared 2-core machine: figures vary with other load"},
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
