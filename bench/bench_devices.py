"""`estate devices audit` against bare `ansible-playbook --check` on the same hosts, in the same run,
over both transports (chroot, SSH) and at two sizes (1 and 20 lab hosts).

Both audit the same hosts through the same estate inventory plugin, with the same forks
(playbooks/ansible.cfg's `forks`, recorded; 20, so 20 hosts run at once on both sides). Rounds
alternate which side goes first (bare-estate, estate-bare, ...) so a load that rises or falls, and the
SSH ControlPersist connections one run leaves warm for the next, fall on both alike. The figure is the
ratio of medians (goal: at most 1.15x): what estate adds over the bare tool. Hosts are the lab's overlay
roots (security_checks/lab/ssh_host.py) with the demo's planted drift: chroot endpoints entered with
community.general.chroot, and SSH hosts (a real sshd per network namespace essh-N, key log-in as
`ansible`, sudo), owned by the bench while it measures (another run's clean-up leaves them alone) and
removed afterwards. A run in which a host was unreachable or not audited (its sshd died, say) is
recorded as not valid rather than counted.

Where the time goes: estate = start-up (Python, typer, pydantic: measured alone as `estate devices
audit --help`) + the same ansible-playbook run under ansible-runner + turning events into findings and
committing them. The record keeps each part, so a change in the ratio says which part moved.

Per run the bench takes wall seconds, CPU seconds and peak RSS from wait4 on that one command: CPU is
user+sys of the command and every descendant it waited for (ansible-playbook, its forks, the modules);
peak RSS is that of the largest of those processes. Two ratios are recorded: wall-clock, the one the
goal names, and CPU. Neither is free of load: ansible-playbook's main process polls its workers in a
sleep loop, so its CPU grows with the wall time a loaded machine stretches; the load average is kept
before, after and at the end of every run.

BENCH_DEVICES_ROUNDS (default 3) rounds at 1 host; BENCH_DEVICES_ROUNDS_20 (default 1) at 20 hosts;
BENCH_DEVICES_SIZES (default 1,20) and BENCH_DEVICES_TRANSPORTS (default chroot,ssh) which configurations.
"""

from __future__ import annotations

import configparser
import json
import os
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


def forks() -> int:
    """The forks both commands run with: playbooks/ansible.cfg's, read by ansible-playbook from its working
    directory and by estate through ANSIBLE_CONFIG (the bench sets neither ANSIBLE_FORKS nor -f)."""
    cfg = configparser.ConfigParser(interpolation=None)
    cfg.read(REPO / "playbooks" / "ansible.cfg")
    return cfg.getint("defaults", "forks", fallback=5)


def _timed(cmd: list[str], cwd: Path, env: dict[str, str], out: Path | None = None) -> dict[str, Any]:
    """Wall seconds, CPU seconds (user+sys of the command and every descendant it waited for) and peak
    RSS (of the largest process among them), from wait4 on this one command."""
    t = time.monotonic()
    with open(out or os.devnull, "wb") as sink:
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=sink, stderr=subprocess.DEVNULL)
        _, status, ru = os.wait4(proc.pid, 0)
    wall = time.monotonic() - t
    proc.returncode = os.waitstatus_to_exitcode(status)
    return {"wall": wall, "cpu": ru.ru_utime + ru.ru_stime, "rss_mb": ru.ru_maxrss / 1024, "rc": proc.returncode,
            "load": round(os.getloadavg()[0], 2)}


def _estate_reached_all(out: Path, names: set[str]) -> str | None:
    """Why an estate run does not count (a host unreachable, a host without findings), or None."""
    try:
        findings = json.loads(out.read_text())["findings"]
    except (OSError, ValueError, KeyError):
        return "no JSON output"
    bad = {f["asset"] for f in findings if f["check_id"] == "devices.unreachable"}
    seen = {f["asset"].removeprefix("host:") for f in findings}
    if bad or names - seen:
        return f"unreachable or unaudited: {sorted(bad | (names - seen))[:5]}"
    return None


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


def _rounds(home: Path, hosts: list[dict[str, Any]], size: int) -> tuple[dict[str, list[dict[str, Any]]], list[str]]:
    """ROUNDS[size] rounds of both commands on these hosts, alternating which goes first."""
    from security_checks.lab.ssh_host import environment

    names = {str(h["name"]) for h in hosts}
    estate = _estate(home, hosts)
    env = {**os.environ, "ESTATE_HOME": str(home), "ESTATE_DIR": str(estate),
           "PATH": f"{BIN}:{os.environ['PATH']}", "ANSIBLE_NOCOLOR": "1", **environment(home)}
    bare_cmd = [str(BIN / "ansible-playbook"), "baseline.yml", "--check", "--diff"]
    estate_cmd = [str(BIN / "estate"), "devices", "audit", "--estate", str(estate), "--home", str(home),
                  "--format", "json", "--fail-on", "none"]
    out = home / "estate-output.json"
    runs: dict[str, list[dict[str, Any]]] = {"bare": [], "estate": [], "startup": []}
    problems: list[str] = []
    for i in range(ROUNDS[size]):
        # Alternate which goes first, so a load that rises or falls through a round, and the SSH
        # ControlPersist connections one run leaves warm for the next, fall on both sides alike.
        for side in (("bare", "estate") if i % 2 == 0 else ("estate", "bare")):
            if side == "bare":
                r = _timed(bare_cmd, REPO / "playbooks", env)
                if r["rc"] not in (0, 2):   # 4: a host unreachable; others: the playbook failed
                    problems.append(f"round {i + 1} bare: ansible-playbook exit {r['rc']}")
            else:
                r = _timed(estate_cmd, REPO, env, out)
                why = _estate_reached_all(out, names)
                if r["rc"] != 0 or why:
                    problems.append(f"round {i + 1} estate: exit {r['rc']}" + (f", {why}" if why else ""))
            runs[side].append(r)
        runs["startup"].append(_timed([*estate_cmd[:3], "--help"], REPO, env))
    return runs, problems


def measure(transport: str, size: int, work: Path) -> dict[str, Any]:
    from security_checks.lab.ssh_host import chroot_roots, ssh_hosts

    home = work / f"{transport}-{size}"
    home.mkdir()
    # The hosts are this run's for the whole measurement (another run's clean-up leaves them alone).
    with (ssh_hosts if transport == "ssh" else chroot_roots)(home, size) as lab:
        if transport == "ssh":
            hosts = [{"name": h.name, "address": h.address, "connection": {"kind": "ssh", "user": "ansible"}}
                     for h in lab]
        else:
            hosts = [{"name": h.name, "address": h.root, "connection": {"kind": "chroot"}} for h in lab]
        load_before = [round(x, 2) for x in os.getloadavg()]
        runs, problems = _rounds(home, hosts, size)

    def med(side: str, key: str) -> float:
        return statistics.median(r[key] for r in runs[side])

    overhead = med("estate", "wall") - med("bare", "wall")
    return {"transport": transport, "hosts": size, "rounds": ROUNDS[size], "forks": forks(),
            "load_average_before": load_before, "load_average_after": [round(x, 2) for x in os.getloadavg()],
            "bare_seconds": [round(r["wall"], 2) for r in runs["bare"]],
            "estate_seconds": [round(r["wall"], 2) for r in runs["estate"]],
            "startup_seconds": [round(r["wall"], 2) for r in runs["startup"]],
            "bare_cpu_seconds": [round(r["cpu"], 2) for r in runs["bare"]],
            "estate_cpu_seconds": [round(r["cpu"], 2) for r in runs["estate"]],
            "startup_cpu_seconds": [round(r["cpu"], 2) for r in runs["startup"]],
            "load_at_end_of_each_run": {k: [r["load"] for r in v] for k, v in runs.items() if k != "startup"},
            "bare_peak_rss_mb": round(med("bare", "rss_mb"), 1),
            "estate_peak_rss_mb": round(med("estate", "rss_mb"), 1),
            "ratio_of_medians": round(med("estate", "wall") / med("bare", "wall"), 3),
            "cpu_ratio_of_medians": round(med("estate", "cpu") / med("bare", "cpu"), 3),
            "estate_overhead_seconds": round(overhead, 2),
            "of_which_startup_seconds": round(med("startup", "wall"), 2),
            "valid": not problems, "problems": problems,
            "met": not problems and med("estate", "wall") / med("bare", "wall") <= 1.15}


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
            for transport in os.environ.get("BENCH_DEVICES_TRANSPORTS", "chroot,ssh").split(","):
                r = measure(transport, size, work)
                results.append(r)
                _record(results, complete=False)   # each configuration kept as soon as it is measured
                print(f"devices audit, {transport} x{size} (forks {r['forks']}): estate "
                      f"{statistics.median(r['estate_seconds']):.1f}s vs bare "
                      f"{statistics.median(r['bare_seconds']):.1f}s: ratio {r['ratio_of_medians']:.2f} "
                      f"(CPU {r['cpu_ratio_of_medians']:.2f}); peak RSS "
                      f"{r['estate_peak_rss_mb']:.0f} vs {r['bare_peak_rss_mb']:.0f} MB; estate's own "
                      f"{r['estate_overhead_seconds']:.1f}s, of which start-up "
                      f"{r['of_which_startup_seconds']:.1f}s; load "
                      f"{r['load_average_before'][0]}..{r['load_average_after'][0]}"
                      + ("" if r["valid"] else f"; NOT VALID: {'; '.join(r['problems'])}"), flush=True)
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
