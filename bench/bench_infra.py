"""Benchmark: the offline infrastructure plan of a large synthetic council.

100 sites (six VLANs each, every one on the WAN) and 60 LOB systems (20 IaaS, 20 PaaS, 20 SaaS),
generated into a temporary estate directory from the demo's organisation, zones and Wi-Fi. The
whole program runs (tenancy, hub, LOB systems, WAN, Wi-Fi) under Pulumi's mock runtime, then the
policy rules, in a fresh subprocess: `estate infra plan` as a user would run it. Measures wall
time and the subprocess's peak memory (ru_maxrss). Goal: at most 30 s.

    .venv/bin/python -m bench infra        # writes bench/results/infra.json
"""

from __future__ import annotations

import json
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "inventory" / "demo"
RESULTS = REPO / "bench" / "results" / "infra.json"
SITES = 100
LOB_SYSTEMS = 60
GOAL_SECONDS = 30.0

VLANS = [(10, "corporate", "corporate", "corporate"), (20, "voice", "voice", "voice"),
         (40, "guest", "guest-wifi", "guest-wifi"), (50, "public", "public-wifi", "public-wifi"),
         (60, "iot", "iot", "iot"), (99, "management", "management", "management")]


def site(i: int) -> dict[str, object]:
    # A /20 per site inside 10.0.0.0/13: clear of the hub (10.100/16) and the spokes (10.200/16).
    base = (i // 16, (i % 16) * 16)
    return {
        "name": f"site-{i:03d}", "title": f"Synthetic site {i}", "kind": "library" if i % 3 else "depot",
        "ranges": [f"10.{base[0]}.{base[1]}.0/20"], "staff": 20,
        "wan": {"kind": "internet-vpn", "provider": "Synthetic Broadband", "bandwidth_mbps": 500,
                "public_ip": f"{'198.51.100' if i < 200 else '203.0.113'}.{i % 200 + 1}", "bgp_asn": 64600 + i},
        "vlans": [{"id": vid, "name": name, "purpose": purpose, "zone": zone,
                   "cidr": f"10.{base[0]}.{base[1] + k}.0/24"} for k, (vid, name, purpose, zone) in enumerate(VLANS)],
    }


def lob(i: int) -> dict[str, object]:
    hosting = ("iaas", "paas", "saas")[i % 3]
    entry: dict[str, object] = {
        "name": f"system-{i:02d}", "title": f"Synthetic system {i}", "supplier": "Synthetic Ltd", "hosting": hosting,
        "classification": "OFFICIAL-SENSITIVE" if i % 2 else "OFFICIAL", "owner": f"Owner {i}",
        "tier": ("tier-1", "tier-2", "tier-3")[i % 3 if hosting != "iaas" else (i // 3) % 3],
        "cost_centre": f"CC-{i:02d}",
    }
    if hosting == "saas":
        entry["saas_fqdns"] = [f"council{i}.supplier.example.com"]
    else:
        entry["address_space"] = f"10.200.{i + 1}.0/24"
        entry["reachable_from"] = ["corporate"]
        entry["ports"] = [{"port": 443, "service": "https", "tls": True}]
    if hosting == "iaas":
        entry["os"] = "rhel-9" if i % 2 else "windows-server-2022"
        entry["vm_count"] = 2
    return entry


def generate(dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    for name in ("organisation.yaml", "zones.yaml", "wifi.yaml"):
        shutil.copyfile(DEMO / name, dest / name)
    (dest / "sites.yaml").write_text(yaml.safe_dump({"sites": [site(i) for i in range(SITES)]}, sort_keys=False))
    (dest / "lob_systems.yaml").write_text(
        yaml.safe_dump({"lob_systems": [lob(i) for i in range(LOB_SYSTEMS)]}, sort_keys=False))
    return dest


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bench-infra-") as tmp:
        estate = generate(Path(tmp) / "estate")
        cmd = [str(REPO / ".venv" / "bin" / "estate"), "infra", "plan", "--estate", str(estate),
               "--home", str(Path(tmp) / "home"), "--format", "json"]
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        seconds = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode not in (0, 1):
        sys.exit(f"estate infra plan failed ({proc.returncode}): {proc.stderr.strip()[-2000:]}")
    doc = json.loads(proc.stdout)
    result = {
        "benchmark": "infra-plan",
        "sites": SITES, "lob_systems": LOB_SYSTEMS,
        "resources": doc["resource_count"], "violations": len(doc["violations"]),
        "seconds": round(seconds, 2), "cpu_seconds": round((after.ru_utime + after.ru_stime)
                                                           - (before.ru_utime + before.ru_stime), 2),
        "peak_rss_mb": round(after.ru_maxrss / 1024, 1),
        "goal_seconds": GOAL_SECONDS, "within_goal": seconds <= GOAL_SECONDS,
        "machine": {"python": platform.python_version(), "cpus": __import__("os").cpu_count(),
                    "load_average": __import__("os").getloadavg()[0],
                    "note": "shared 2-core machine; wall time varies with other users' load"},
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
