"""Every command, run as a council's engineer runs it, on every council under tests/estates.

The demo (inventory/demo, Harrowdale) is where the product was grown; each estate here is a
different council (Scottish on SWAN, Welsh on PSBA...), found by its organisation.yaml, so a new
one is covered without editing this file. For each, on a private copy with a private --home:
validate, assess, runs, findings, checks, check ce and psn, report, infra plan, infra diagram, a
scan import, evidence seal and verify, and the device audit where the estate lists no endpoint
host for Ansible (with hosts, it would send packets to the council's real addresses). Then:

- nothing any of them printed or wrote (stdout, stderr, the report pages, the PDF's text, the
  machine outputs, the evidence bundle, the diagram) holds the demo council's name, short name,
  domain, people, GUIDs or place names;
- what people read names the council's own network, never "PSN" alone where the council is on
  another network (check ids and the PSN framework's references stay what they are);
- every human summary is on stdout and fits a screen (~40 lines), with --format json for the rest.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from security_checks.model.loader import load_estate
from tests.demo_markers import leaks, texts_under

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
ESTATE_BIN = REPO / ".venv" / "bin" / "estate"
ESTATES = sorted(p.parent for p in (REPO / "tests" / "estates").glob("*/organisation.yaml"))
SCREEN = 45   # lines: a summary fits a terminal (~40) with its header and the hint for --format json


def _nmap_xml(host: str, name: str) -> str:
    """A small ITHC-style nmap export: one host in the council's ranges answering telnet."""
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE nmaprun>
<nmaprun scanner="nmap" args="nmap -sS -sV -p 23,443 {host}" start="1796200000" version="7.93" xmloutputversion="1.05">
<scaninfo type="syn" protocol="tcp" numservices="2" services="23,443"/>
<host starttime="1796200001" endtime="1796200009"><status state="up" reason="arp-response" reason_ttl="0"/>
<address addr="{host}" addrtype="ipv4"/>
<hostnames><hostname name="{name}" type="PTR"/></hostnames>
<ports>
<port protocol="tcp" portid="23"><state state="open" reason="syn-ack" reason_ttl="64"/>
<service name="telnet" method="probed" conf="10"/></port>
<port protocol="tcp" portid="443"><state state="open" reason="syn-ack" reason_ttl="64"/>
<service name="https" method="table" conf="3"/></port>
</ports>
</host>
<runstats><finished time="1796200009" elapsed="9.00" exit="success"/><hosts up="1" down="0" total="1"/></runstats>
</nmaprun>
"""


@dataclass
class Done:
    args: list[str]
    rc: int
    stdout: str
    stderr: str

    @property
    def json(self) -> Any:
        return json.loads(self.stdout)

    def __str__(self) -> str:
        return (f"estate {' '.join(self.args)} -> {self.rc}\n"
                f"stdout: {self.stdout[-3000:]}\nstderr: {self.stderr[-3000:]}")


@dataclass
class Council:
    root: Path
    estate: Path
    home: Path
    name: str
    network: str
    domain: str
    env: dict[str, str]
    done: list[Done] = field(default_factory=list)
    run_id: str = ""

    def run(self, *args: str | Path, ok: tuple[int, ...] = (0,), timeout: float = 900) -> Done:
        argv = [str(a) for a in args]
        p = subprocess.run([str(ESTATE_BIN), *argv], cwd=self.root, env=self.env, capture_output=True, text=True,
                           timeout=timeout)
        d = Done(argv, p.returncode, p.stdout, p.stderr)
        self.done.append(d)
        assert d.rc in ok, str(d)
        assert "Traceback" not in d.stderr and "internal error" not in d.stderr, str(d)
        return d

    def text(self, *args: str | Path, ok: tuple[int, ...] = (0,)) -> Done:
        """A text-mode command: its result for people is on stdout."""
        d = self.run(*args, ok=ok)
        assert d.stdout.strip(), f"nothing on stdout (human output must be redirectable):\n{d}"
        return d


@pytest.fixture(scope="module", params=ESTATES, ids=[p.name for p in ESTATES])
def council(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Council:
    source: Path = request.param
    root = tmp_path_factory.mktemp(source.name)
    estate = root / "estate"
    shutil.copytree(source, estate)
    org = load_estate(estate).estate.organisation
    env = {k: v for k, v in os.environ.items() if k not in ("ESTATE_DIR", "ESTATE_ADVISORY_FEED", "ESTATE_DEBUG",
                                                            "ESTATE_DB")}
    env.update(ESTATE_HOME=str(root / "home"), COLUMNS="120")
    c = Council(root=root, estate=estate, home=root / "home", name=org.name, network=org.public_sector_network,
                domain=org.domain, env=env)
    _every_command(c)
    return c


def _every_command(c: Council) -> None:
    e, h = ("--estate", c.estate), ("--home", c.home)
    c.text("validate", *e)
    c.run("validate", *e, "--format", "json")
    c.text("assess", *e, *h, "--out", c.root / "out" / "report", "--fail-on", "none")
    runs = c.run("runs", *h, "--format", "json").json
    [assess] = [r for r in runs if r["kind"] == "assess"]
    c.run_id = assess["id"]
    c.text("runs", *h)
    c.text("findings", *h, "--run", c.run_id)
    c.run("findings", *h, "--run", c.run_id, "--format", "json")
    c.text("checks", *e)
    c.text("checks", "infra.policy.psn_route_isolation", *e)
    for view in ("ce", "psn"):
        c.text("check", view, *e, *h, ok=(0, 1))
        c.run("check", view, *e, *h, "--format", "json", ok=(0, 1))
    c.text("check", "psn", *e, *h, "--out", c.root / "out" / "psn", ok=(0, 1))
    c.text("infra", "plan", *e, *h, ok=(0, 1))
    c.text("infra", "diagram", *e, "--out", c.root / "out" / "diagram" / "network.svg")

    # An ITHC tester's export of one host in the council's first site's ranges.
    loaded = load_estate(c.estate).estate
    first = ipaddress.ip_network(loaded.sites[0].ranges[0])
    host = str(first.network_address + 30)
    xml = c.root / "ithc" / "internal.xml"
    xml.parent.mkdir()
    xml.write_text(_nmap_xml(host, f"printer-01.{c.domain}"))
    c.text("scan", "import", xml, *e, *h, "--fail-on", "none")
    c.text("report", *e, *h, "--run", c.run_id, "--out", c.root / "out" / "report-again")
    c.text("evidence", "seal", "--run", c.run_id, *e, *h)
    verify = c.run("evidence", "verify", *h, "--format", "json").json
    assert [r["ok"] for r in verify] == [True], verify
    if not any(g.hosts for g in loaded.endpoint_groups):
        c.text("devices", "audit", *e, *h, "--fail-on", "none")


def test_every_command_ran_and_the_run_is_the_councils(council: Council) -> None:
    commands = {" ".join(d.args[:2]) for d in council.done}
    for expected in ("validate --estate", "assess --estate", "runs --home", "findings --home", "check ce", "check psn",
                     "infra plan", "infra diagram", "scan import", "report --estate", "evidence seal",
                     "evidence verify"):
        assert expected in commands, (expected, sorted(commands))
    validate = next(d for d in council.done if d.args[0] == "validate" and "json" not in d.args)
    assert council.name in validate.stdout, str(validate)
    runs = next(d for d in council.done if d.args[0] == "runs" and "json" in d.args).json
    assert {r["estate"] for r in runs} == {council.name}


def test_no_output_of_the_council_holds_the_demo_councils_data(council: Council) -> None:
    found: list[str] = []
    for d in council.done:
        found += leaks(d.stdout + "\n" + d.stderr, f"estate {' '.join(d.args[:3])}")
    out = council.root / "out"
    files = list(texts_under(out))
    kinds = {Path(rel.split("!")[0]).suffix for rel, _ in files}
    assert {".html", ".pdf", ".json", ".csv", ".sarif", ".svg"} <= kinds or shutil.which("pdftotext") is None, kinds
    for rel, text in files:
        found += leaks(text, f"out/{rel}")
    bundles = list((council.home / "bundles").glob("*/"))
    assert bundles, "no evidence bundle was sealed"
    for b in bundles:
        for rel, text in texts_under(b):
            if not rel.endswith((".sig", ".pem", "SHA256SUMS")):
                found += leaks(text, f"bundle/{rel}")
    assert not found, "the demo council's data in another council's outputs:\n" + "\n".join(found)


# "PSN" may stay where it is an identifier or names the PSN framework itself: check ids and
# commands (psn_route_isolation, `check psn`), control references (PSN:COCO-1), the framework's
# name beside the council's network ("SWAN / PSN Code of Connection") and the source it cites.
_ALLOWED_PSN = re.compile(r"PSN[:-][A-Z]|PSN%3A|/ PSN\b|GDS PSN compliance")


def _bare_psn(text: str) -> list[str]:
    out = []
    for m in re.finditer(r"\bPSN\b", text):   # upper case: ids and commands (psn, psn_route_isolation) pass
        window = text[max(0, m.start() - 12):m.end() + 14]
        if _ALLOWED_PSN.search(window):
            continue
        out.append(text[max(0, m.start() - 70):m.end() + 70].replace("\n", " "))
    return out


def test_people_read_the_councils_own_network_name(council: Council) -> None:
    if council.network == "PSN":
        pytest.skip(f"{council.name} is on the PSN itself")
    psn = next(d for d in council.done if d.args[:2] == ["check", "psn"] and "json" in d.args).json
    assert psn["network"] == council.network
    wrong: list[str] = []
    for d in council.done:
        if "json" in d.args:
            continue
        wrong += [f"estate {' '.join(d.args[:3])}: ...{w}..." for w in _bare_psn(d.stdout + d.stderr)]
    for rel, text in texts_under(council.root / "out"):
        if rel.endswith((".html", ".pdf", ".svg")) or rel.endswith("remediation-plan.csv"):
            wrong += [f"out/{rel}: ...{w}..." for w in _bare_psn(text)]
    assert not wrong, f"{council.name} is on {council.network}, but people read PSN:\n" + "\n".join(wrong[:40])
    pages = dict(texts_under(council.root / "out" / "report"))
    assert f"{council.network} remediation action plan" in pages["board-report.pdf"].replace("\n", " ") \
        or shutil.which("pdftotext") is None
    assert f"{council.network}: remediation action plan" in pages["controls.html"]
    assert f"{council.network} / PSN Code of Connection" in pages["controls.html"]


def test_human_output_is_on_stdout_and_fits_a_screen(council: Council) -> None:
    long: list[str] = []
    for d in council.done:
        if "json" in d.args:
            continue
        lines = d.stdout.splitlines()
        if len(lines) > SCREEN:
            long.append(f"estate {' '.join(d.args[:3])}: {len(lines)} lines\n" + "\n".join(lines[:60]))
    assert not long, "summaries longer than a screen:\n" + "\n\n".join(long)
    # Redirected, the summary is all there: `estate check ce > file` keeps the verdict.
    ce = next(d for d in council.done if d.args[:2] == ["check", "ce"] and "json" not in d.args)
    assert "Verdict:" in ce.stdout and "Verdict:" not in ce.stderr
