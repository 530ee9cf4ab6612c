"""`estate firewalls audit` against bare `ansible-playbook firewalls.yml --check --diff`, same roles and host,
in the same run.

Both audit fw-civic on the FortiOS REST API stand-in (tests/firewalls/fortios_standin.py, a stand-in
for a FortiGate, with its planted drift) through the same estate inventory plugin; rounds alternate
so machine noise falls on both. The figure is the ratio of medians (goal: at most 1.10): what estate
adds (ansible-runner, reading the configuration back, the comparison, findings, the firmware step,
the store) over the bare tool. Wall-clock and CPU (user+sys of the command and its children) are
recorded, as for the device audit: on a shared machine the CPU figure is the stable one.
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
RESULTS = Path(__file__).parent / "results" / "firewalls.json"
ROUNDS = int(os.environ.get("BENCH_FIREWALLS_ROUNDS", "3"))
GOAL = 1.10


def main() -> None:
    sys.path.insert(0, str(REPO))
    from security_checks.firewalls.declared import declared_firewall
    from security_checks.model.loader import load_estate
    from tests.firewalls.conftest import TOKEN, fortigate_estate
    from tests.firewalls.fortios_standin import FortiGate, serve
    from tests.firewalls.planted import certificate, converged, plant_drift

    work = Path(tempfile.mkdtemp(prefix="bench-firewalls-"))
    cert, key = certificate(work)
    gate = FortiGate(token=TOKEN)
    server, port = serve(gate, cert, key)
    est = fortigate_estate(work / "estate", port)
    loaded = load_estate(est)
    declared = declared_firewall(loaded, loaded.estate.firewall("fw-civic"))
    converged(gate, declared)
    plant_drift(gate, declared)
    home = work / "home"
    env = {**os.environ, "ESTATE_HOME": str(home), "ESTATE_DIR": str(est), "PATH": f"{BIN}:{os.environ['PATH']}",
           "ANSIBLE_NOCOLOR": "1", "ESTATE_FORTIOS_TOKEN_FW_CIVIC": TOKEN, "ESTATE_FIREWALL_CA": str(cert)}
    bare_cmd = [str(BIN / "ansible-playbook"), "firewalls.yml", "--limit", "fw-civic", "--check", "--diff"]
    estate_cmd = [str(BIN / "estate"), "firewalls", "audit", "--limit", "fw-civic", "--estate", str(est), "--home",
                  str(home), "--format", "json", "--fail-on", "none"]
    bare: list[float] = []
    estate: list[float] = []
    bare_cpu: list[float] = []
    estate_cpu: list[float] = []
    try:
        for _ in range(ROUNDS):
            for cmd, cwd, out, cpu in ((bare_cmd, REPO / "playbooks", bare, bare_cpu),
                                       (estate_cmd, REPO, estate, estate_cpu)):
                before = resource.getrusage(resource.RUSAGE_CHILDREN)
                t = time.monotonic()
                subprocess.run(cmd, cwd=cwd, env=env, check=False, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
                out.append(time.monotonic() - t)
                after = resource.getrusage(resource.RUSAGE_CHILDREN)
                cpu.append((after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime))
    finally:
        server.shutdown()
        server.server_close()
    writes = [r for r in gate.writes() if r.path.startswith("/api/v2/cmdb/")]
    ratio = statistics.median(estate) / statistics.median(bare)
    cpu_ratio = statistics.median(estate_cpu) / statistics.median(bare_cpu)
    result = {"benchmark": "estate firewalls audit vs ansible-playbook firewalls.yml --check --diff "
                           "(fw-civic on the FortiOS stand-in, same run)",
              "rounds": ROUNDS, "bare_seconds": [round(x, 2) for x in bare],
              "estate_seconds": [round(x, 2) for x in estate], "ratio_of_medians": round(ratio, 3),
              "bare_cpu_seconds": [round(x, 2) for x in bare_cpu],
              "estate_cpu_seconds": [round(x, 2) for x in estate_cpu], "cpu_ratio_of_medians": round(cpu_ratio, 3),
              "configuration_writes": len(writes), "load_average": [round(x, 2) for x in os.getloadavg()],
              "goal": f"<= {GOAL}", "met": ratio <= GOAL, "cpus": os.cpu_count(),
              "note": "shared 2-core machine; check mode on both sides, so the stand-in must see no write"}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(f"firewalls audit: estate {statistics.median(estate):.1f}s vs bare {statistics.median(bare):.1f}s "
          f"(median of {ROUNDS}): ratio {ratio:.2f} (goal <= {GOAL}); CPU ratio {cpu_ratio:.2f}; "
          f"{len(writes)} configuration write(s)")
    subprocess.run(["rm", "-rf", str(work)], check=False)


if __name__ == "__main__":
    main()
