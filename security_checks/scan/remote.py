"""Scans past one machine: a site's own scanner runs the job, the central store keeps the result.

The central side authorises the scan (scope.py), builds the nmap command and packs a one-task
playbook into an ansible-runner job; `transmit` streams it, `worker` runs it on the site scanner
(in the lab: inside the site scanner namespace, which has no default route), and `process` brings
the events back here, where the nmap XML in the task's stdout is parsed, stored as evidence and
compared with the estate. This is the same streaming AWX / Automation Platform uses for execution
nodes, so a real deployment swaps `ip netns exec` for a receptor mesh or SSH to the scanner host.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

from ..findings import Finding
from ..model.loader import LoadedEstate
from ..step import EvidenceSink
from . import engine, nmaprun
from .drift import ScanContext, compare
from .nmapxml import merge, parse
from .scope import authorise
from .vantage import SiteScanner
from .versions import Knowledge


class RemoteError(Exception):
    """The remote scan could not run; one line for the user."""


def _playbook(jobs: list[list[str]]) -> list[dict[str, Any]]:
    return [{
        "name": "estate site scan (authorised centrally; nmap XML back on stdout)",
        "hosts": "localhost", "connection": "local", "gather_facts": False,
        "tasks": [{"name": f"nmap job {i + 1}", "ansible.builtin.command": {"argv": argv}, "changed_when": False,
                   "register": f"nmap_{i + 1}"} for i, argv in enumerate(jobs)],
    }]


def scan_site(loaded: LoadedEstate, scanner: SiteScanner, scope_name: str, run: EvidenceSink,
              profile: str = "standard", knowledge: Knowledge | None = None) -> tuple[list[Finding], str]:
    site, netns = scanner.site, scanner.netns
    auth = authorise(loaded, None, scope_name=scope_name, profile=profile, netns=netns)
    v = {"networks": scanner.networks, "addresses": scanner.addresses}
    nets = engine.intersect(auth, v["networks"])
    tcp, udp = engine.declared_ports(loaded, nets)
    jobs = nmaprun.build(auth, [str(n) for n in nets], tcp=tcp, udp=udp, privileged=True,
                         exclude=v["addresses"], extra_tcp_top=1000)
    # The site scanner has nmap's own data files, not ours: no --versiondb from this machine.
    argv = [_without_versiondb(job.command()) for job in jobs]

    work = Path(tempfile.mkdtemp(prefix="estate-remote-"))
    try:
        events = _transmit_worker_process(work, argv, netns)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    results = []
    evidence = []
    for i, out in enumerate(events):
        results.append(parse(out.encode(), source=f"site scanner {site} job {i + 1}"))
        evidence.append(run.write_evidence(f"scan/site-{site}/nmap-{i + 1}.xml", out,
                                           f"nmap XML returned by the {site} site scanner (ansible-runner)"))
    run.write_evidence(f"scan/site-{site}/job.json", json.dumps({"netns": netns, "commands": argv}, indent=1),
                       "the job sent to the site scanner")
    result = merge(results)
    ctx = ScanContext(scanned=list(nets), evidence=evidence, ignore=set(v["addresses"]), vantage=f"site:{site}",
                      sources=list(v["addresses"]), knowledge=knowledge)
    findings = compare(loaded.estate, result, ctx)
    return findings, f"site scanner {netns}: {len(result.hosts)} hosts via transmit/worker/process"


def _without_versiondb(cmd: list[str]) -> list[str]:
    out: list[str] = []
    skip = False
    for a in cmd:
        if skip:
            skip = False
            continue
        if a == "--versiondb":
            skip = True
            continue
        out.append(a)
    return out


def _transmit_worker_process(work: Path, argv: list[list[str]], netns: str) -> list[str]:
    import ansible_runner

    central = work / "central"
    (central / "project").mkdir(parents=True)
    (central / "project" / "site_scan.yml").write_text(yaml.safe_dump(_playbook(argv), sort_keys=False))
    (central / "inventory").mkdir()
    (central / "inventory" / "hosts").write_text("localhost ansible_connection=local\n")
    # Use the same Python as the controller on the worker (it is a venv, not the system python).
    (central / "env").mkdir()
    (central / "env" / "extravars").write_text(yaml.safe_dump({"ansible_python_interpreter": sys.executable}))

    stream = work / "transmit.stream"
    with open(stream, "wb") as out:
        ansible_runner.run(private_data_dir=str(central), playbook="site_scan.yml", streamer="transmit",
                           _output=out, quiet=True)
    bindir = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": f"{bindir}:{os.environ.get('PATH', '')}", "ANSIBLE_NOCOLOR": "1"}
    worker = subprocess.run(["ip", "netns", "exec", netns, str(Path(bindir) / "ansible-runner"), "worker",
                             "--private-data-dir", str(work / "worker")],
                            input=stream.read_bytes(), capture_output=True, env=env, timeout=900, check=False)
    if worker.returncode != 0:
        raise RemoteError(f"site scanner worker failed: {worker.stderr.decode(errors='replace').strip()[-300:]}")
    processed = work / "processed"
    processed.mkdir()
    (work / "worker.stream").write_bytes(worker.stdout)
    with open(work / "worker.stream", "rb") as inp:
        r = ansible_runner.run(private_data_dir=str(processed), streamer="process", _input=inp, quiet=True)
    outputs: dict[int, str] = {}
    events = [json.loads(p.read_text()) for p in sorted((processed / "artifacts").glob("**/job_events/*.json"))]
    for ev in events:
        if ev.get("event") == "runner_on_ok":
            data = ev.get("event_data", {})
            task = str(data.get("task", ""))
            if task.startswith("nmap job "):
                outputs[int(task.removeprefix("nmap job "))] = str(data.get("res", {}).get("stdout", ""))
        elif ev.get("event") == "runner_on_failed":
            res = ev.get("event_data", {}).get("res", {})
            raise RemoteError(f"site scan task failed: {str(res.get('msg') or res.get('stderr'))[:300]}")
    if len(outputs) != len(argv):
        raise RemoteError(f"site scanner returned {len(outputs)} of {len(argv)} nmap results "
                          f"(status {getattr(r, 'status', '?')})")
    return [outputs[i + 1] for i in range(len(argv))]
