"""Patch evaluation at council scale: 10,000 endpoints x 1,500 installed packages (15 million rows)
against a generated advisory set, through the same vectorised engine `estate assess` uses
(security_checks.compliance.patch_eval.evaluate) plus the per-host summary.

Goal: at most 10 s and 2 GB. Generation time is reported separately and not counted. Peak memory is
the process's maximum resident set (generation included). Figures depend on the machine (shared,
2 cores here): compare runs on the same machine only.
"""

from __future__ import annotations

import json
import resource
import time
from datetime import date, timedelta
from pathlib import Path

import numpy as np

from security_checks.compliance.advisories import Advisory, Feed
from security_checks.compliance.patch_eval import Fleet, evaluate

HOSTS = 10_000
PACKAGES_PER_HOST = 1_500
UNIVERSE = 5_000           # distinct package names across the fleet
BASE = 1_200               # packages every host has (the distribution's base)
VERSIONS_PER_PACKAGE = 4
ADVISORIES = 3_000
ADVISED_PACKAGES = 1_200
TODAY = date(2026, 11, 22)
VECTORS = ["CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", "CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:H/I:H/A:H",
           "CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:N/A:N", "CVSS:3.1/AV:N/AC:H/PR:N/UI:R/S:U/C:L/I:L/A:N", None]
RESULTS = Path(__file__).resolve().parent / "results" / "patch.json"


def version(k: int) -> str:
    return f"2.{k // 2}.{k % 2}-1+deb12u{k}"


def generate(seed: int = 7) -> tuple[Fleet, Feed]:
    rng = np.random.default_rng(seed)
    packages = [f"pkg{i:05d}" for i in range(UNIVERSE)]
    versions = [version(k) for k in range(VERSIONS_PER_PACKAGE + 2)]
    extra = PACKAGES_PER_HOST - BASE
    pool = UNIVERSE - BASE
    host = np.repeat(np.arange(HOSTS, dtype=np.int64), PACKAGES_PER_HOST)
    base = np.tile(np.arange(BASE, dtype=np.int64), (HOSTS, 1))
    start = (np.arange(HOSTS, dtype=np.int64) * 37) % pool
    extras = BASE + (start[:, None] + np.arange(extra, dtype=np.int64)[None, :]) % pool
    pkg = np.concatenate([base, extras], axis=1).reshape(-1)
    ver = rng.integers(0, VERSIONS_PER_PACKAGE, size=pkg.size, dtype=np.int64)
    fleet = Fleet(hosts=[f"pc-{i:05d}" for i in range(HOSTS)], host_os=["debian-12"] * HOSTS, packages=packages,
                  versions=versions, host=host, pkg=pkg, ver=ver)
    advised = rng.choice(UNIVERSE, size=ADVISED_PACKAGES, replace=False)
    advisories = []
    for i in range(ADVISORIES):
        p = int(advised[i % ADVISED_PACKAGES])
        advisories.append(Advisory(
            id=f"DSA-{9000 + i}-1", cve=[f"BENCH-{i}"], package=packages[p],
            fixed_version=version(int(rng.integers(1, VERSIONS_PER_PACKAGE + 1))),
            cvss_vector=VECTORS[i % len(VECTORS)], released=TODAY - timedelta(days=int(rng.integers(0, 60)))))
    return fleet, Feed(format="estate-advisories/1", feed_date=TODAY, source="bench", advisories=advisories)


def main() -> None:
    t0 = time.perf_counter()
    fleet, feed = generate()
    generated = time.perf_counter() - t0
    t1 = time.perf_counter()
    missing = evaluate(fleet, feed, TODAY)
    per_host = missing.per_host()
    pairs = missing.rows.size   # host x package findings
    seconds = time.perf_counter() - t1
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result = {
        "hosts": HOSTS, "packages_per_host": PACKAGES_PER_HOST, "rows": fleet.rows, "advisories": len(feed.advisories),
        "missing_fix_rows": len(missing), "overdue_rows": missing.overdue_count,
        "hosts_with_overdue": int((per_host["overdue"] > 0).sum()), "host_package_findings": int(pairs),
        "generate_seconds": round(generated, 2), "evaluate_seconds": round(seconds, 2),
        "peak_rss_mb": round(peak_mb), "goal": {"seconds": 10, "rss_mb": 2048},
        "met": seconds <= 10 and peak_mb <= 2048,
        "machine": "shared CI-like VM, 2 cores; timings vary with load",
    }
    print(json.dumps(result, indent=2))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    tmp = RESULTS.with_suffix(".tmp")
    tmp.write_text(json.dumps(result, indent=2) + "\n")
    tmp.replace(RESULTS)


if __name__ == "__main__":
    main()
