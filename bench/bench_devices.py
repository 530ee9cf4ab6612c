"""`estate devices audit` against bare `ansible-playbook --check` on the same hosts, in the same run,
over both transports (chroot, SSH) and at two sizes (1 and 20 lab hosts).

Both audit the same hosts through the same estate inventory plugin; rounds alternate so machine noise
falls on both. The figure is the ratio of medians (goal: at most 1.15x): what estate adds over the bare
tool. Hosts are the lab's overlay roots (security_checks/lab/ssh_host.py) with the demo's planted
drift: chroot endpoints entered with community.general.chroot, and SSH hosts (a real sshd per network
namespace, key log-in as `ansible`, sudo).

Where the time goes: estate = start-up (Python, typer, pydantic: measured alone as `estate devices
audit --help`) + the same ansible-playbook run under ansible-runner + turning events into findings and
committing them. The record keeps each part, so a change in the ratio says which part moved.

Two ratios are recorded: wall-clock, the one the goal names, and CPU (user+sys of the command and
all its children). On a shared 2-core machine the wall-clock figure swings by tens of percent from
other people's load; the CPU figure is what estate itself costs and is stable run to run.

BENCH_DEVICES_ROUNDS (default 3) rounds at 1 host; BENCH_DEVICES_ROUNDS_20 (default 1) at 20 hosts.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
BIN = REPO / ".venv" / "bin"
RESULTS = Path(__file__).parent / "results" / "devices.json"
ROUNDS = {1: int(os.environ.get("BENCH_DEVICES_ROUNDS", "3")), 20: int(os.environ.get("BENCH_DEVICES_ROUNDS_20", "1"))}


def _timed(cmd: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.monotonic()
    subprocess.run(cmd, cwd=cwd, env=env, check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.monotonic() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def _estate(base: Path, hosts: list[dict[str, Any]]) -> Path:
    """A copy of the demo whose Linux endpoints are exactly these hosts."""
    estate = base / "estate"
    shutil.copytree(REPO / "inventory" / "demo", estate)
    path = estate / "endpoints.yaml"
    data = yaml.safe_load(path.read_text())
    group = next(g for g in data["endpoint_groups"] if g["name"] == "linux-endpoints")
    group["hosts"] = hosts
    # Windows groups list no hosts in the demo; only the Linux play runs, in both commands alike.
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return estate


def measure(transport: str, size: int, work: Path) -> dict[str, Any]:
    from security_checks.lab.ssh_host import down_ssh_hosts, environment, up_chroot_roots, up_ssh_hosts

    home = work / f"{transport}-{size}"
    home.mkdir()
    if transport == "ssh":
        lab = up_ssh_hosts(home, size)
        hosts = [{"name": h.name, "address": h.address, "connection": {"kind": "ssh", "user": "ansible"}}
                 for h in lab]
    else:
        lab = up_chroot_roots(home, size)
        hosts = [{"name": h.name, "address": h.root, "connection": {"kind": "chroot"}} for h in lab]
    try:
        estate = _estate(home, hosts)
        env = {**os.environ, "ESTATE_HOME": str(home), "ESTATE_DIR": str(estate),
               "PATH": f"{BIN}:{os.environ['PATH']}", "ANSIBLE_NOCOLOR": "1", **environment(home)}
        bare_cmd = [str(BIN / "ansible-playbook"), "baseline.yml", "--check", "--diff"]
        estate_cmd = [str(BIN / "estate"), "devices", "audit", "--estate", str(estate), "--home", str(home),
                      "--format", "json", "--fail-on", "none"]
        runs: dict[str, list[tuple[float, float]]] = {"bare": [], "estate": [], "startup": []}
        for _ in range(ROUNDS[size]):
            runs["bare"].append(_timed(bare_cmd, REPO / "playbooks", env))
            runs["estate"].append(_timed(estate_cmd, REPO, env))
            runs["startup"].append(_timed([*estate_cmd[:3], "--help"], REPO, env))
    finally:
        down_ssh_hosts(home)
    med = {k: statistics.median(w for w, _ in v) for k, v in runs.items()}
    cpu = {k: statistics.median(c for _, c in v) for k, v in runs.items()}
    overhead = med["estate"] - med["bare"]
    return {"transport": transport, "hosts": size, "rounds": ROUNDS[size],
            "bare_seconds": [round(w, 2) for w, _ in runs["bare"]],
            "estate_seconds": [round(w, 2) for w, _ in runs["estate"]],
            "startup_seconds": [round(w, 2) for w, _ in runs["startup"]],
            "ratio_of_medians": round(med["estate"] / med["bare"], 3),
            "cpu_ratio_of_medians": round(cpu["estate"] / cpu["bare"], 3),
            "estate_overhead_seconds": round(overhead, 2),
            "of_which_startup_seconds": round(med["startup"], 2),
            "met": med["estate"] / med["bare"] <= 1.15}


def main() -> None:
    if os.geteuid() != 0:
        print("bench devices: needs root (chroot and SSH lab hosts); nothing measured")
        return
    sys.path.insert(0, str(REPO))
    work = Path(tempfile.mkdtemp(prefix="bench-devices-"))
    sizes = [int(x) for x in os.environ.get("BENCH_DEVICES_SIZES", "1,20").split(",")]
    results: list[dict[str, Any]] = []
    try:
        for size in sizes:
            for transport in ("chroot", "ssh"):
                r = measure(transport, size, work)
                results.append(r)
                _record(results, complete=False)   # each configuration kept as soon as it is measured
                print(f"devices audit, {transport} x{size}: estate {statistics.median(r['estate_seconds']):.1f}s vs "
                      f"bare {statistics.median(r['bare_seconds']):.1f}s: ratio {r['ratio_of_medians']:.2f} "
                      f"(CPU {r['cpu_ratio_of_medians']:.2f}); estate's own {r['estate_overhead_seconds']:.1f}s, "
                      f"of which start-up {r['of_which_startup_seconds']:.1f}s")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    _record(results, complete=True)


def _record(results: list[dict[str, Any]], *, complete: bool) -> None:
    result = {"benchmark": "estate devices audit vs ansible-playbook --check --diff (same hosts, same run)",
              "goal": "<= 1.15", "cpus": os.cpu_count(), "load_average": [round(x, 2) for x in os.getloadavg()],
              "complete": complete, "results": results,
              "note": "shared 2-core machine; lab hosts carry the demo's planted drift, so both runs see it"}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
