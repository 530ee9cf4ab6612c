"""The findings store's throughput for 100,000 findings: PostgreSQL beside SQLite, in the same run.

Each back-end gets the same two runs of N_FINDINGS synthetic findings (60% failing, as in
bench_report), made through the one runner as a command makes them, into a new home; PostgreSQL is
a real server started here (tests/pgserver.py: Debian's postgresql on loopback, over TCP with a
password as an operator connects), durable like SQLite's synchronous=FULL: fsync on, unlike the tests.
The first run opens 60,000 Remediation Action Plan items, the second moves them all on, so both
commit paths (inserts, then updates) are measured.

Figures per back-end: the commit (the one transaction: run, findings, verdicts, evidence index, RAP),
findings committed per second, the whole run as the command sees it, reading the run's findings
back (decoded), and the counting query behind `estate runs`. Recorded side by side with the ratio
PostgreSQL / SQLite; there is no goal to meet: the figure tells a council what the shared store costs.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

N_FINDINGS = 100_000
TODAY = date(2026, 11, 22)
RESULTS = Path(__file__).resolve().parent / "results" / "store.json"


def _measure(home: Path, database: str | None) -> dict[str, float]:
    from bench.bench_report import _findings
    from security_checks.model.loader import load_estate
    from security_checks.runner import Job, Runner
    from security_checks.step import Step, StepContext, StepResult
    from security_checks.store import Store, now
    from security_checks.store.db import select_database

    select_database(database)
    loaded = load_estate(Path(__file__).resolve().parents[1] / "inventory" / "demo")
    commits: list[float] = []
    original = Store.commit

    def timed(self: Store, c: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return original(self, c)
        finally:
            commits.append(time.perf_counter() - t0)

    Store.commit = timed  # type: ignore[method-assign]
    out: dict[str, float] = {}
    run_ids: list[str] = []
    try:
        for seed, label in ((1, "first"), (2, "second")):
            chosen = _findings(seed, N_FINDINGS)

            def step(ctx: StepContext, chosen: list[Any] = chosen) -> StepResult:
                ref = ctx.run.write_evidence("scan/bench.xml", "<nmaprun/>", "nmap XML")
                return StepResult([f.model_copy(update={"evidence": [ref]}) for f in chosen], f"{len(chosen)}")

            while run_ids and now().strftime("%Y%m%dT%H%M%SZ") == run_ids[-1][:16]:
                time.sleep(0.05)   # run ids sort by the second they started
            job = Job("assess", (Step("bench", step, "findings chosen by the benchmark", ("*",)),),
                      "benchmark run", full_scope=True)
            t0 = time.perf_counter()
            run_ids.append(Runner(loaded, home, today=TODAY).run(job).run.id)
            out[f"{label}_run_seconds"] = round(time.perf_counter() - t0, 2)
            out[f"{label}_commit_seconds"] = round(commits[-1], 2)
            out[f"{label}_commit_findings_per_second"] = round(N_FINDINGS / commits[-1])
    finally:
        Store.commit = original  # type: ignore[method-assign]
    with Store(home) as store:
        out["read_findings_seconds"] = round(_timed(lambda: store.findings(run_ids[-1])), 2)
        out["status_counts_seconds"] = round(_timed(lambda: store.status_counts(run_ids)), 3)
        out["rap_items_seconds"] = round(_timed(lambda: store.rap_items(with_history=True)), 2)
    select_database(None)
    return out


def _timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main() -> None:
    from tests.pgserver import pg_bin, running

    if pg_bin() is None:
        print("skipped: PostgreSQL is not installed (deps/apt-packages.txt)")
        return
    result: dict[str, Any] = {"benchmark": f"the findings store: two runs of {N_FINDINGS} findings (60% failing) "
                              "through the runner, SQLite and PostgreSQL in the same run", "findings": N_FINDINGS}
    with tempfile.TemporaryDirectory(prefix="estate-bench-store-") as tmp:
        result["sqlite"] = _measure(Path(tmp) / "sqlite", None)
        with running(durable=True) as server:
            result["postgresql_version"] = server.bin_dir.parent.name
            result["postgresql"] = _measure(Path(tmp) / "postgresql", server.url(server.create_database("bench")))
    sq, pg = result["sqlite"], result["postgresql"]
    result["ratio_postgresql_to_sqlite"] = {k: round(pg[k] / sq[k], 2) for k in sq
                                            if not k.endswith("per_second") and sq[k]}
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    for name in ("sqlite", "postgresql"):
        r = result[name]
        print(f"{name:>10}: commit {r['first_commit_seconds']} s / {r['second_commit_seconds']} s "
              f"({r['first_commit_findings_per_second']:,} / {r['second_commit_findings_per_second']:,} findings/s), "
              f"read back {r['read_findings_seconds']} s")


if __name__ == "__main__":
    main()
