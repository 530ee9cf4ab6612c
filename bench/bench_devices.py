"""`estate devices audit` against bare `ansible-playbook --check` on the same chroot, in the same run.

Both audit the demo endpoint lab-debian-01 (a debootstrap chroot, as root) through the same
estate inventory plugin; rounds alternate so machine noise falls on both. The figure is the ratio
of medians (goal: at most 1.15x): what estate adds (ansible-runner, event handling, findings, the
store) over the bare tool. Absolute seconds depend on the machine and are recorded for context.

Two ratios are recorded: wall-clock, the one the goal names, and CPU (user+sys of the command and
all its children). On a shared 2-core machine the wall-clock figure swings by tens of percent from
other people's load; the CPU figure is what estate itself costs and is stable run to run.
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BIN = REPO / ".venv" / "bin"
RESULTS = Path(__file__).parent / "results" / "devices.json"
ROUNDS = int(os.environ.get("BENCH_DEVICES_ROUNDS", "3"))


def main() -> None:
    if os.geteuid() != 0:
        print("bench devices: needs root (chroot endpoint); nothing measured")
        return
    sys.path.insert(0, str(REPO))
    from security_checks.lab.endpoint import ensure_lab_endpoint

    home = Path(tempfile.mkdtemp(prefix="bench-devices-"))
    ensure_lab_endpoint(home)
    env = {**os.environ, "ESTATE_HOME": str(home), "ESTATE_DIR": str(REPO / "inventory" / "demo"),
           "PATH": f"{BIN}:{os.environ['PATH']}", "ANSIBLE_NOCOLOR": "1"}
    bare_cmd = [str(BIN / "ansible-playbook"), "baseline.yml", "--check", "--diff"]
    estate_cmd = [str(BIN / "estate"), "devices", "audit", "--home", str(home), "--format", "json",
                  "--fail-on", "none"]
    bare: list[float] = []
    estate: list[float] = []
    bare_cpu: list[float] = []
    estate_cpu: list[float] = []
    for _ in range(ROUNDS):
        for cmd, cwd, out, cpu in ((bare_cmd, REPO / "playbooks", bare, bare_cpu),
                                   (estate_cmd, REPO, estate, estate_cpu)):
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            t = time.monotonic()
            subprocess.run(cmd, cwd=cwd, env=env, check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            out.append(time.monotonic() - t)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu.append((after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime))
    ratio = statistics.median(estate) / statistics.median(bare)
    cpu_ratio = statistics.median(estate_cpu) / statistics.median(bare_cpu)
    result = {"benchmark": "estate devices audit vs ansible-playbook --check --diff (same chroot, same run)",
              "rounds": ROUNDS, "bare_seconds": [round(x, 2) for x in bare],
              "estate_seconds": [round(x, 2) for x in estate], "ratio_of_medians": round(ratio, 3),
              "bare_cpu_seconds": [round(x, 2) for x in bare_cpu],
              "estate_cpu_seconds": [round(x, 2) for x in estate_cpu], "cpu_ratio_of_medians": round(cpu_ratio, 3),
              "load_average": [round(x, 2) for x in os.getloadavg()],
              "goal": "<= 1.15", "met": ratio <= 1.15, "cpus": os.cpu_count(),
              "note": "shared 2-core machine; the endpoint is a non-compliant chroot, so both runs see drift"}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(f"devices audit: estate {statistics.median(estate):.1f}s vs bare {statistics.median(bare):.1f}s "
          f"(median of {ROUNDS}): ratio {ratio:.2f} (goal <= 1.15); CPU ratio {cpu_ratio:.2f}")
    subprocess.run(["rm", "-rf", str(home)], check=False)


if __name__ == "__main__":
    main()
