"""ITHC imports and offline version matching at the size a tester delivers.

- import: a generated 50 MB Nessus v2 file (about 1,750 hosts, 12 results each with 2 KB of plugin
  output like a patch audit's, one in fifty quoting a password to mask; an eighth of them
  informational, some with CVEs and v3 vectors, one host in 17 outside every scope) read with
  the bounded read, detected, parsed (streamed through expat) and judged into findings with their
  scrubbed evidence, as the scan-import step does (the store's commit is the report benchmark's);
- command: `estate scan import` of the same file end to end, in a new process as a user runs it
  (text output): start-up, the bounded read, parsing, judging, the run's commit (findings, RAP items,
  verdicts, evidence index, in one transaction) and the stored findings read back and printed;
  three runs, the median recorded, each beside a bare expat parse of the file (the machine's speed
  at that moment);
- match: 10,000 open ports' service detection (OpenSSH, Apache + OpenSSL, nginx, Samba, IIS...)
  identified and judged against a generated feed of 3,000 cpe advisories over 40 products and the
  real end-of-support data, as a scan's comparison does.

Goal: each at most 5 s. Each phase runs in its own fresh process, so its peak resident memory is
its own (data generation, done first and not timed, is not in it). Wall and CPU seconds are both
recorded: on this shared 2-core machine other work often holds both cores, and the CPU time is
then the fairer figure. Compare runs on the same machine only.

    .venv/bin/python -m bench ithc          # writes bench/results/ithc.json
"""

from __future__ import annotations

import json
import multiprocessing
import os
import platform
import random
import resource
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results" / "ithc.json"
GOAL_S = 5.0
COMMAND_RUNS = 3   # the median is recorded: one run alone says as much about the VM's neighbours as about us
TARGET_BYTES = 50 * 1024 * 1024
PORTS = 10_000
ADVISORIES = 3_000
PRODUCTS = 40
VECTORS = ["CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", "CVSS:3.0/AV:N/AC:H/PR:N/UI:N/S:U/C:H/I:H/A:H",
           "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:L/I:L/A:N", "CVSS:3.1/AV:L/AC:H/PR:L/UI:N/S:U/C:H/I:H/A:H"]


def nessus_file(path: Path, seed: int = 19) -> int:
    """Write a Nessus v2 file of about 50 MB; returns its size."""
    rng = random.Random(seed)
    # Plugin output as a credentialed patch audit writes it (package lines); one in fifty also quotes
    # a credential that must be masked.
    pad = ("Remote package installed : libexample_1.2.3-1~deb12u1\nShould be : libexample_1.2.3-1~deb12u2\n") * 20
    secret = "\nIt was possible to log in with: Username : admin  Password: not-a-real-one\n"
    with path.open("w") as f:
        f.write('<?xml version="1.0" ?>\n<NessusClientData_v2>\n<Policy><policyName>bench</policyName></Policy>\n'
                '<Report name="bench" xmlns:cm="http://www.nessus.org/cm">\n')
        host = 0
        while f.tell() < TARGET_BYTES:
            host += 1
            addr = f"10.10.{30 + host // 250 % 40}.{host % 250 + 1}" if host % 17 else f"192.0.2.{host % 250 + 1}"
            f.write(f'<ReportHost name="{addr}"><HostProperties><tag name="host-ip">{addr}</tag>'
                    '<tag name="Credentialed_Scan">true</tag></HostProperties>\n')
            for item in range(12):
                sev = rng.choice("00012234")
                quoted = secret if item == 5 and host % 4 == 0 else ""
                plugin = 100000 + rng.randrange(4000)
                cves = "".join(f"<cve>CVE-2024-{rng.randrange(1000, 60000)}</cve>" for _ in range(rng.randrange(3)))
                vector = f"<cvss3_vector>{rng.choice(VECTORS)}</cvss3_vector>" if sev != "0" else ""
                f.write(f'<ReportItem port="{rng.choice((0, 22, 80, 443, 445, 3389))}" svc_name="general" '
                        f'protocol="tcp" severity="{sev}" pluginID="{plugin}" pluginName="Bench plugin {plugin} '
                        f'item {item}" pluginFamily="Debian Local Security Checks">{cves}{vector}'
                        f'<plugin_type>{"local" if item % 2 else "remote"}</plugin_type>'
                        f'<solution>Upgrade the packages.</solution><plugin_output>{pad}{quoted}</plugin_output>'
                        '</ReportItem>\n')
            f.write("</ReportHost>\n")
        f.write("</Report>\n</NessusClientData_v2>\n")
        return f.tell()


class _Sink:
    """The run's evidence directory, as the runner gives a step (a temporary one here)."""

    def __init__(self, root: Path) -> None:
        self.id = "bench"
        self.root = root

    @property
    def evidence_dir(self) -> Path:
        return self.root

    def write_evidence(self, relpath: str, data: bytes | str, description: str = "") -> Any:
        from security_checks.findings import EvidenceRef

        p = self.root / relpath
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data.encode() if isinstance(data, str) else data)
        return EvidenceRef(path=relpath, description=description)

    def copy_evidence(self, src: Path, relpath: str, description: str = "") -> Any:
        return self.write_evidence(relpath, src.read_bytes(), description)


def _import_phase(path: str, out: Any) -> None:
    from security_checks.model.loader import load_estate
    from security_checks.runner import collections_deferred
    from security_checks.scan import imports, intake

    loaded = load_estate(REPO / "inventory" / "demo")
    with tempfile.TemporaryDirectory() as tmp:
        start, cpu = time.perf_counter(), time.process_time()
        # As the command does: it parses, and the runner judges, with collections deferred.
        with collections_deferred():
            data = intake.read_file(Path(path))
            parsed = imports.parse_file(intake.open_scan(data, path))
            findings, summary = imports.judge(loaded, _Sink(Path(tmp)), parsed)
        elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    out.put({"seconds": round(elapsed, 2), "cpu_seconds": round(cpu, 2), "peak_rss_mb": _peak_mb(),
             "results": len(parsed.results), "findings": len(findings), "summary": summary})


def _command(path: Path) -> dict[str, Any]:
    """`estate scan import FILE` in a new process: wall and CPU seconds and peak RSS of that process alone."""
    import subprocess
    import sys

    with tempfile.TemporaryDirectory() as home:
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        start = time.perf_counter()
        cli = "import sys; from security_checks.cli.app import main; sys.exit(main())"
        proc = subprocess.Popen([sys.executable, "-c", cli, "scan", "import", str(path), "--home", home,
                                 "--fail-on", "none"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                env=env, cwd=REPO)
        assert proc.stderr is not None
        err = proc.stderr.read()
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        elapsed = time.perf_counter() - start
        if proc.returncode != 0:
            raise RuntimeError(f"estate scan import failed ({proc.returncode}): {err.decode()[-2000:]}")
    return {"seconds": round(elapsed, 2), "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 2),
            "peak_rss_mb": usage.ru_maxrss // 1024}


def _reference(path: Path) -> float:
    """CPU seconds of a bare expat parse of the same file in a new process (no handlers: the C parser
    alone). Not a goal: the machine's speed at that moment. On this shared VM the same code runs up to
    twice as slow when the host's other guests are busy, and the load average inside the VM does not
    show it; this figure does (0.23 s quiet, 0.5 s busy), so a slow run can be told from a slow machine.
    The ratio to it is recorded too, but it is no constant: the command also allocates, writes and
    fsyncs, which slow down differently (13-22 over one day's runs)."""
    import subprocess
    import sys

    code = "import sys; from xml.parsers import expat; expat.ParserCreate().Parse(open(sys.argv[1], 'rb').read(), True)"
    proc = subprocess.Popen([sys.executable, "-c", code, str(path)])
    _, status, usage = os.wait4(proc.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError("the reference parse failed")
    return usage.ru_utime + usage.ru_stime


def _commands(path: Path, runs: int) -> dict[str, Any]:
    """The command `runs` times, each beside a reference parse: every run's figures, and the median run's."""
    each = []
    for _ in range(runs):
        before = _reference(path)
        run = _command(path)
        reference = (before + _reference(path)) / 2
        each.append({**run, "reference_cpu_seconds": round(reference, 2),
                     "cpu_per_reference": round(run["cpu_seconds"] / reference, 1)})
    median = sorted(each, key=lambda r: r["cpu_seconds"])[len(each) // 2]
    return {**median, "runs": [{k: r[k] for k in ("seconds", "cpu_seconds", "reference_cpu_seconds",
                                                  "cpu_per_reference")} for r in each]}


def _feed(rng: random.Random) -> Any:
    from security_checks.compliance.advisories import Feed

    products = ["openbsd:openssh", "apache:http_server", "f5:nginx", "openssl:openssl", "samba:samba",
                "microsoft:internet_information_services"] + [f"vendor{i}:product{i}" for i in range(PRODUCTS - 6)]
    advisories = []
    for i in range(ADVISORIES):
        major = rng.randrange(1, 10)
        start = f"{major}.{rng.randrange(0, 5)}"
        advisories.append({"id": f"NVD-BENCH-{i}", "cve": [f"CVE-2025-{10000 + i}"], "ecosystem": "cpe",
                           "package": products[i % PRODUCTS], "introduced": start if i % 3 else None,
                           "fixed_version": f"{major}.{rng.randrange(5, 9)}.{rng.randrange(0, 20)}",
                           "cvss_vector": rng.choice(VECTORS), "released": "2025-06-01", "title": f"bench {i}"})
    return Feed.model_validate({"format": "estate-advisories/1", "feed_date": "2026-11-20",
                                "advisories": [{k: v for k, v in a.items() if v is not None} for a in advisories]})


def _match_phase(out: Any) -> None:
    from functools import partial

    from security_checks.compliance import vendorver
    from security_checks.compliance.eol import load_eol, product_eol
    from security_checks.scan import versions

    rng = random.Random(7)
    feed = _feed(rng)
    services = [("OpenSSH", "{v}p1", "protocol 2.0", "cpe:/a:openbsd:openssh:{v}p1"),
                ("OpenSSH", "{v}p1 Debian 2+deb12u3", "protocol 2.0", "cpe:/a:openbsd:openssh:{v}p1"),
                ("Apache httpd", "2.4.{m}", "(Unix) OpenSSL/1.1.1{l}", "cpe:/a:apache:http_server:2.4.{m}"),
                ("nginx", "1.{m}.0", "", "cpe:/a:igor_sysoev:nginx:1.{m}.0"),
                ("Samba smbd", "4.{m}.2", "workgroup: COUNCIL", "cpe:/a:samba:samba:4.{m}.2"),
                ("Microsoft IIS httpd", "10.0", "", "cpe:/a:microsoft:internet_information_services:10.0")]
    ports = []
    for _ in range(PORTS):
        product, version, extra, cpe = rng.choice(services)
        fill = {"v": f"{rng.randrange(6, 10)}.{rng.randrange(0, 10)}", "m": rng.randrange(10, 60),
                "l": rng.choice("kuvw")}
        ports.append((product, version.format(**fill), extra.format(**fill), cpe.format(**fill)))
    knowledge = versions.Knowledge(feed=feed, feed_label="bench feed", product_eol=partial(product_eol, load_eol()),
                                   version_key=vendorver.key, today=date(2026, 12, 2))
    start, cpu = time.perf_counter(), time.process_time()
    findings = 0
    for n, (product, version, extra, cpe) in enumerate(ports):
        for ident in versions.identify(product, version, extra, [cpe]):
            findings += len(versions.judge(f"host:10.10.{n // 250}.{n % 250}", "tcp/22", ident, knowledge,
                                           evidence=[], site=None, zone=None, vantage="bench"))
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    out.put({"seconds": round(elapsed, 2), "cpu_seconds": round(cpu, 2),
             "peak_rss_mb": _peak_mb(), "ports": PORTS, "advisories": ADVISORIES, "findings": findings})


def _peak_mb() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024


def _in_child(target: Any, *args: Any) -> dict[str, Any]:
    ctx = multiprocessing.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=target, args=(*args, q))
    p.start()
    result: dict[str, Any] = q.get(timeout=600)
    p.join()
    return result


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "ithc-bench.nessus"
        t0 = time.perf_counter()
        size = nessus_file(path)
        generated = time.perf_counter() - t0
        imported = _in_child(_import_phase, str(path))
        command = _commands(path, COMMAND_RUNS)
    matched = _in_child(_match_phase)
    result = {
        "machine": f"{platform.node()} {platform.machine()}, {os.cpu_count()} cores",
        "load_average": [round(x, 1) for x in os.getloadavg()], "goal_seconds": GOAL_S,
        "import": {"file_mb": round(size / 1024 / 1024, 1), "generation_seconds_not_counted": round(generated, 1),
                   **imported, "met_wall": imported["seconds"] <= GOAL_S,
                   "met_cpu": imported["cpu_seconds"] <= GOAL_S},
        "command": {**command, "met_wall": command["seconds"] <= GOAL_S, "met_cpu": command["cpu_seconds"] <= GOAL_S},
        "match": {**matched, "met_wall": matched["seconds"] <= GOAL_S, "met_cpu": matched["cpu_seconds"] <= GOAL_S},
    }
    RESULTS.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
