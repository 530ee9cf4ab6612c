"""`estate serve` under load: 5,000 requests at 50 concurrent keep-alive connections against a small
report site (an index page, stylesheet, script, image, JSON and an evidence file), nine rounds after a
warm-up of 1,000, first on loopback without authentication (the default), then with HTTP Basic (a
cost-12 bcrypt user, as `estate serve --hash-password` writes; its credential is verified once and
then remembered).

Goal: p99 latency under 50 ms at 50 concurrent. Recorded per round: p50/p95/p99/max latency and
requests/s; per configuration: the server's peak RSS (VmHWM). The headline round is the median by p99.

The load comes from wrk (Debian package `wrk`, in deps/apt-packages.txt), a separate C process, so
the client costs the server as little CPU as possible on a 2-core machine; the benchmark is skipped
when wrk is missing. wrk runs for a duration, not a count: its Lua script stops each thread after its
share of the requests and marks a file, and the benchmark then interrupts wrk (SIGINT makes it print
its summary at once). Requests/s is the count over the wall time until both threads finished.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REQUESTS = 5_000
WARMUP = 1_000
CONCURRENCY = 50
WRK_THREADS = 2
ROUNDS = 9
GOAL_P99_MS = 50.0
REPO = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).resolve().parent / "results" / "serve.json"
PATHS = ["/", "/assets/report.css", "/assets/report.js", "/assets/logo.svg", "/data/summary.json",
         "/evidence/scan/nmap.xml"]

LUA = r"""
local paths = {%(paths)s}
local limit = tonumber(os.getenv("BENCH_LIMIT"))
local marks = os.getenv("BENCH_MARKS")
local auth = os.getenv("BENCH_AUTH")
local n, i = 0, 0
request = function()
  i = i + 1
  local headers = {}
  if auth and auth ~= "" then headers["Authorization"] = auth end
  return wrk.format("GET", paths[(i %% #paths) + 1], headers)
end
response = function(status, headers, body)
  n = n + 1
  if n == limit then
    local f = io.open(marks, "a"); f:write("done\n"); f:close()
    wrk.thread:stop()
  end
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('BENCH {"requests": %%d, "p50_us": %%d, "p95_us": %%d, "p99_us": %%d, "max_us": %%d, '
    .. '"errors": %%d, "non_2xx": %%d}\n', summary.requests, latency:percentile(50), latency:percentile(95),
    latency:percentile(99), latency.max, e.connect + e.read + e.write + e.timeout, e.status))
end
"""


def build_site(root: Path) -> None:
    (root / "assets").mkdir(parents=True)
    (root / "data").mkdir()
    (root / "evidence" / "scan").mkdir(parents=True)
    rows = "".join(f"<tr><td>host-{i}</td><td>scan.telnet</td><td>high</td><td>open 23/tcp</td></tr>\n"
                   for i in range(300))
    (root / "index.html").write_text(f"<!doctype html><html><head><link rel=stylesheet href=assets/report.css>"
                                     f"</head><body><h1>Dashboard</h1><table>{rows}</table></body></html>\n")
    (root / "assets" / "report.css").write_text("table{border-collapse:collapse}td{padding:2px 6px}\n" * 80)
    (root / "assets" / "report.js").write_text("document.querySelectorAll('tr').forEach(r => r.hidden = false);\n"
                                               * 60)
    (root / "assets" / "logo.svg").write_text('<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10">'
                                              '<rect width="10" height="10"/></svg>\n')
    (root / "data" / "summary.json").write_text(json.dumps({"findings": [{"id": i, "status": "fail"}
                                                                         for i in range(1500)]}))
    (root / "evidence" / "scan" / "nmap.xml").write_text("<nmaprun>" + "<host/>" * 15_000 + "</nmaprun>\n")


def start_server(site: Path, *args: str) -> tuple[subprocess.Popen[str], int]:
    env = {k: v for k, v in os.environ.items() if k != "ESTATE_SERVE_TOKEN"}
    proc = subprocess.Popen(
        [sys.executable, "-c", "from security_checks.cli.app import main; main()", "serve", "--site", str(site),
         "--port", "0", *args],
        cwd=REPO, env={**env, "PYTHONPATH": str(REPO)}, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    line = proc.stderr.readline()
    found = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
    if not found:
        proc.kill()
        raise SystemExit(f"bench serve: the server did not start: {line}{proc.stderr.read()}")
    return proc, int(found.group(1))


def stop_server(proc: subprocess.Popen[str]) -> None:
    proc.terminate()  # not SIGINT: a shell without job control starts background jobs with SIGINT ignored
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    if proc.stderr:
        proc.stderr.close()


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return float("nan")


def run_wrk(port: int, script: Path, requests: int, auth: str, work: Path) -> dict[str, float]:
    marks = work / "marks"
    marks.unlink(missing_ok=True)
    env = {**os.environ, "BENCH_LIMIT": str(requests // WRK_THREADS), "BENCH_MARKS": str(marks), "BENCH_AUTH": auth}
    t0 = time.perf_counter()
    wrk = subprocess.Popen(["wrk", f"-t{WRK_THREADS}", f"-c{CONCURRENCY}", "-d300s", "--timeout", "10s",
                            "-s", str(script), f"http://127.0.0.1:{port}/"],
                           env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    elapsed = None
    while wrk.poll() is None and time.perf_counter() - t0 < 240:
        if marks.exists() and marks.read_text().count("done") >= WRK_THREADS:
            elapsed = time.perf_counter() - t0
            break
        time.sleep(0.002)
    wrk.send_signal(signal.SIGINT)  # wrk prints its summary when interrupted
    out, _ = wrk.communicate(timeout=30)
    line = next((ln for ln in out.splitlines() if ln.startswith("BENCH ")), None)
    if line is None or elapsed is None:
        raise SystemExit(f"bench serve: wrk did not finish {requests} requests:\n{out}")
    got = json.loads(line.removeprefix("BENCH "))
    return {"requests": got["requests"], "seconds": round(elapsed, 3),
            "requests_per_second": round(got["requests"] / elapsed),
            "p50_ms": got["p50_us"] / 1000, "p95_ms": got["p95_us"] / 1000, "p99_ms": got["p99_us"] / 1000,
            "max_ms": got["max_us"] / 1000, "errors": got["errors"], "non_2xx": got["non_2xx"]}


def measure(site: Path, script: Path, work: Path, auth_header: str, *args: str) -> dict[str, Any]:
    import http.client

    proc, port = start_server(site, *args)
    try:
        if auth_header:  # the one bcrypt check, before the load: the credential is then remembered
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            conn.request("GET", "/", headers={"Authorization": auth_header})
            assert conn.getresponse().status == 200
            conn.close()
        run_wrk(port, script, WARMUP, auth_header, work)
        rounds = [run_wrk(port, script, REQUESTS, auth_header, work) for _ in range(ROUNDS)]
        rss = peak_rss_mb(proc.pid)
    finally:
        stop_server(proc)
    headline = sorted(rounds, key=lambda r: r["p99_ms"])[len(rounds) // 2]
    return {"median_round": headline, "rounds": rounds, "server_peak_rss_mb": rss,
            "p99_ms_median": statistics.median(r["p99_ms"] for r in rounds)}


def main() -> None:
    if shutil.which("wrk") is None:
        print("bench serve: needs wrk (apt-get install wrk, listed in deps/apt-packages.txt); skipped")
        return
    import bcrypt

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        site = work / "site"
        build_site(site)
        script = work / "bench.lua"
        script.write_text(LUA % {"paths": ", ".join(f'"{p}"' for p in PATHS)})
        password = b"bench-password-of-some-length"
        users = work / "users"
        users.write_text(f"auditor:{bcrypt.hashpw(password, bcrypt.gensalt(rounds=12)).decode()}\n")
        loopback = measure(site, script, work, "")
        basic = measure(site, script, work, "Basic " + base64.b64encode(b"auditor:" + password).decode(),
                        "--auth-file", str(users))
        site_kb = round(sum(p.stat().st_size for p in site.rglob("*") if p.is_file()) / 1024)
    met = loopback["median_round"]["p99_ms"] < GOAL_P99_MS
    result = {
        "benchmark": f"estate serve: {REQUESTS} requests at {CONCURRENCY} concurrent keep-alive connections "
                     f"(wrk -t{WRK_THREADS}), {ROUNDS} rounds after {WARMUP} warm-up, {len(PATHS)} files "
                     f"({site_kb} KiB) in turn",
        "server": "estate serve defaults: 64 connections, 4 worker threads, 30 s timeout",
        "loopback_no_auth": loopback,
        "basic_auth": basic,
        "goal": {"p99_ms": GOAL_P99_MS},
        "met": met,
        "cpus": os.cpu_count(),
        "load_average": [round(x, 1) for x in os.getloadavg()],
        "note": "shared 2-core machine under other load; wrk and the server share the two cores",
    }
    print(json.dumps(result, indent=2))
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
