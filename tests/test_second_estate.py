"""A second, independent estate through the product's commands, as a council's engineer runs them.

tests/estates/glenmoray is Glenmoray Council: Scottish (so its public-sector network is SWAN),
36 sites, its own Azure tenancy, no lab, no loopback self-test and no chroot endpoint. Every
command here runs as a subprocess of .venv/bin/estate on a private copy of it, with a private
--home/--out, and the tests check two things: the commands work for a council that is not the
demo, and nothing of the demo council (Harrowdale) leaks into what they write or print.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.demo_markers import leaks, texts_under

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
ESTATE_BIN = REPO / ".venv" / "bin" / "estate"
GLENMORAY = REPO / "tests" / "estates" / "glenmoray"
DEMO = REPO / "inventory" / "demo"

# A host inside Glenmoray's declared ranges (the Dunmorie area office printer, declared with IPP
# and JetDirect) that an ITHC tester found answering telnet as well.
PRINTER = "10.65.0.30"
ITHC_XML = f"""<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE nmaprun>
<nmaprun scanner="nmap" args="nmap -sS -sV -p 23,631,9100 {PRINTER}" start="1796200000" version="7.93"
 xmloutputversion="1.05">
<scaninfo type="syn" protocol="tcp" numservices="3" services="23,631,9100"/>
<host starttime="1796200001" endtime="1796200009"><status state="up" reason="arp-response" reason_ttl="0"/>
<address addr="{PRINTER}" addrtype="ipv4"/>
<hostnames><hostname name="mfd-dunmorie-01.corp.glenmoray.gov.uk" type="PTR"/></hostnames>
<ports>
<port protocol="tcp" portid="23"><state state="open" reason="syn-ack" reason_ttl="64"/>
<service name="telnet" product="printer telnetd" method="probed" conf="10"/></port>
<port protocol="tcp" portid="631"><state state="open" reason="syn-ack" reason_ttl="64"/>
<service name="ipp" product="CUPS" version="2.4" method="probed" conf="10"/></port>
<port protocol="tcp" portid="9100"><state state="open" reason="syn-ack" reason_ttl="64"/>
<service name="jetdirect" method="table" conf="3"/></port>
</ports>
</host>
<runstats><finished time="1796200009" elapsed="9.00" exit="success"/><hosts up="1" down="0" total="1"/></runstats>
</nmaprun>
"""


# -- running the product ---------------------------------------------------------------------------

@dataclass
class Result:
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
    """A private copy of Glenmoray, its home and report directory, and what the commands returned."""

    root: Path
    estate: Path
    home: Path
    out: Path
    env: dict[str, str]
    results: dict[str, Any] = field(default_factory=dict)

    def run(self, *args: str | Path, timeout: float = 300) -> Result:
        argv = [str(a) for a in args]
        p = subprocess.run([str(ESTATE_BIN), *argv], cwd=self.root, env=self.env, capture_output=True, text=True,
                           timeout=timeout)
        return Result(argv, p.returncode, p.stdout, p.stderr)


@pytest.fixture(scope="module")
def council(tmp_path_factory: pytest.TempPathFactory) -> Council:
    root = tmp_path_factory.mktemp("glenmoray")
    estate = root / "estate"
    shutil.copytree(GLENMORAY, estate)
    home = root / "home"
    env = {k: v for k, v in os.environ.items()
           if k not in ("ESTATE_DIR", "ESTATE_ADVISORY_FEED", "ESTATE_DEBUG")}
    env["ESTATE_HOME"] = str(home)
    env["COLUMNS"] = "200"
    return Council(root=root, estate=estate, home=home, out=root / "report", env=env)


@pytest.fixture(scope="module")
def assessed(council: Council) -> Council:
    r = council.run("assess", "--estate", council.estate, "--home", council.home, "--out", council.out,
                    "--fail-on", "none", "--format", "json", timeout=900)
    assert r.rc == 0, str(r)
    council.results["assess"] = r.json
    return council


@pytest.fixture(scope="module")
def imported(assessed: Council) -> Council:
    c = assessed
    xml = c.root / "ithc-internal.xml"
    xml.write_text(ITHC_XML)
    r = c.run("scan", "import", xml, "--estate", c.estate, "--home", c.home, "--format", "json", "--fail-on", "none")
    assert r.rc == 0, str(r)
    c.results["import"] = r.json
    return c


# -- the tests -------------------------------------------------------------------------------------

def test_the_estate_is_valid_and_has_its_36_sites(council: Council) -> None:
    r = council.run("validate", "--estate", council.estate, "--format", "json")
    assert r.rc == 0, str(r)
    counts = r.json["counts"]
    assert counts["sites"] >= 34
    assert counts["lob_systems"] >= 8 and counts["scan_scopes"] >= 2 and counts["firewalls"] >= 1
    text = council.run("validate", "--estate", council.estate)
    assert text.rc == 0, str(text)
    # The result, for people, on stdout (so it can be redirected); nothing but progress on stderr.
    assert "valid" in text.stdout and "Glenmoray Council" in text.stdout
    assert re.search(r"\b(3[4-9]|[4-9]\d|\d{3,}) sites\b", text.stdout), text.stdout
    assert not leaks(r.stdout + text.stdout + text.stderr, "estate validate")


def test_assess_stores_a_run_with_every_step_ran_or_skipped_with_a_reason(assessed: Council) -> None:
    from security_checks.jobs import ASSESS

    c = assessed
    data = c.results["assess"]
    run_id = data["run"]
    assert data["kind"] == "assess" and data["full_scope"] is True

    runs = c.run("runs", "--home", c.home, "--format", "json")
    assert runs.rc == 0, str(runs)
    [stored] = [r for r in runs.json if r["id"] == run_id]
    assert stored["kind"] == "assess" and stored["estate"] == "Glenmoray Council"

    # Every step of the job is recorded, none silently absent; those that cannot run for a council
    # with no lab, no loopback self-test and no Ansible host list are skipped, each saying why.
    expected = [s.name for s in ASSESS.steps]
    for steps in (data["steps"], stored["steps"]):
        assert [s["name"] for s in steps if not s.get("harness")] == expected
        for s in steps:
            assert s["status"] in ("ran", "skipped", "error"), s
            if s["status"] == "skipped":
                assert s["summary"].strip(), f"step {s['name']} skipped without a reason"
    by_name = {s["name"]: s for s in data["steps"]}
    for name in ("selftest-scan", "network-scan", "segregation", "devices"):
        assert by_name[name]["status"] == "skipped", by_name[name]
    for name in ("infra-plan", "ce-config", "patch"):
        assert by_name[name]["status"] == "ran", by_name[name]
    assert not any(s.get("harness") for s in data["steps"]), "the lab harness ran for an estate with no lab"

    for name, path in data["reports"].items():
        assert Path(path).is_file() and Path(path).is_relative_to(c.out), (name, path)


def test_no_demo_string_in_the_reports_or_the_compliance_views(assessed: Council) -> None:
    c = assessed
    found: list[str] = []
    files = list(texts_under(c.out))
    kinds = {Path(rel.split("!")[0]).suffix for rel, _ in files}
    assert {".html", ".json", ".csv", ".sarif"} <= kinds, kinds
    assert any("oscal" in rel for rel, _ in files)
    for rel, text in files:
        found += leaks(text, f"--out/{rel}")
    for view in ("ce", "psn"):
        r = c.run("check", view, "--estate", c.estate, "--home", c.home, "--format", "json")
        assert r.rc in (0, 1), str(r)
        assert isinstance(r.json, dict)
        found += leaks(r.stdout + r.stderr, f"estate check {view} --format json")
    assert not found, "demo council strings in Glenmoray's outputs:\n" + "\n".join(found)


def test_the_network_is_called_swan(assessed: Council) -> None:
    c = assessed
    psn = c.run("check", "psn", "--estate", c.estate, "--home", c.home, "--format", "json")
    assert psn.rc in (0, 1), str(psn)
    assert psn.json["network"] == "SWAN"
    assert psn.json["run"] == c.results["assess"]["run"]

    # Where the report pages name the network (the remediation action plan), they say SWAN.
    pages = dict(texts_under(c.out))
    named = {rel: re.findall(r"\b(PSN|SWAN):? remediation action plan", text, re.IGNORECASE)
             for rel, text in pages.items() if rel.endswith((".html", ".pdf"))}
    assert "SWAN" in named["controls.html"], named
    if shutil.which("pdftotext"):
        assert "SWAN" in named["board-report.pdf"], named
    wrong = {rel: hits for rel, hits in named.items() if any(h.upper() == "PSN" for h in hits)}
    assert not wrong, f"pages calling Glenmoray's network PSN: {wrong}"


def test_an_imported_scan_is_stored_and_its_failures_open_rap_items(imported: Council) -> None:
    c = imported
    data = c.results["import"]
    run_id = data["run"]
    printed = {f["id"]: f for f in data["findings"]}
    failing = {i for i, f in printed.items() if f["status"] == "fail"}
    assert any(f["key"] == "tcp/23" and f["status"] == "fail" for f in printed.values()), data["findings"]
    assert all(f["asset"] == "host:mfd-dunmorie-01" for f in printed.values()), data["findings"]

    stored = c.run("findings", "--run", run_id, "--home", c.home, "--format", "json")
    assert stored.rc == 0, str(stored)
    assert {f["id"] for f in stored.json["findings"]} == set(printed)

    runs = c.run("runs", "--home", c.home, "--format", "json").json
    [info] = [r for r in runs if r["id"] == run_id]
    assert info["kind"] == "scan-import" and info["estate"] == "Glenmoray Council"

    psn = c.run("check", "psn", "--estate", c.estate, "--home", c.home, "--format", "json")
    assert psn.rc in (0, 1), str(psn)
    rap = {item["finding_id"]: item for item in psn.json["rap"]}
    assert failing <= set(rap), f"failing imported findings without a RAP item: {failing - set(rap)}"
    for fid in failing:
        assert rap[fid]["status"] == "open" and rap[fid]["first_run"] == run_id, rap[fid]
        # Target dates follow Glenmoray's own remediation policy, which the RAP names.
        assert rap[fid]["target_source"].startswith("Glenmoray Council Information Security Policy"), rap[fid]
    assert psn.json["network"] == "SWAN"
    assert not leaks(psn.stdout + stored.stdout + json.dumps(data), "scan import / findings / check psn")


def test_report_for_glenmorays_run_and_refusal_with_the_demo_estate(imported: Council) -> None:
    c = imported
    run_id = c.results["import"]["run"]
    out = c.root / "report-import"
    r = c.run("report", "--estate", c.estate, "--home", c.home, "--run", run_id, "--out", out, "--format", "json")
    assert r.rc == 0, str(r)
    assert r.json["run"] == run_id
    for path in r.json["reports"].values():
        assert Path(path).is_file(), path
    found = [hit for rel, text in texts_under(out) for hit in leaks(text, f"report-import/{rel}")]
    assert not found, "\n".join(found)

    # No --estate: the default demo estate. The run assessed Glenmoray, so the report is refused,
    # naming both estates, and nothing is written.
    refused_out = c.root / "report-demo"
    refused = c.run("report", "--home", c.home, "--out", refused_out)
    assert refused.rc == 2, str(refused)
    message = refused.stdout + refused.stderr
    assert str(c.estate) in message and str(DEMO) in message, message
    assert not refused_out.exists()


def test_evidence_seal_and_verify_on_glenmorays_run(imported: Council) -> None:
    c = imported
    run_id = c.results["assess"]["run"]
    seal = c.run("evidence", "seal", "--run", run_id, "--estate", c.estate, "--home", c.home, "--format", "json")
    assert seal.rc == 0, str(seal)
    bundle = Path(seal.json["bundle"])
    assert seal.json["run"] == run_id and bundle.is_dir() and bundle.is_relative_to(c.home)

    verify = c.run("evidence", "verify", "--home", c.home, "--format", "json")
    assert verify.rc == 0, str(verify)
    [result] = verify.json
    assert result["ok"] is True and result["problems"] == [] and result["run"] == run_id
    c.results["bundle"] = bundle


def test_the_sealed_bundle_carries_no_demo_string(imported: Council) -> None:
    c = imported
    bundles = sorted((c.home / "bundles").glob("*/bundle.json")) if (c.home / "bundles").is_dir() else []
    if not bundles:
        pytest.skip("no bundle sealed (test_evidence_seal_and_verify_on_glenmorays_run did not get that far)")
    found = [hit for b in bundles for rel, text in texts_under(b.parent)
             if not rel.endswith((".sig", ".pem", "SHA256SUMS"))
             for hit in leaks(text, f"bundle/{rel}")]
    assert not found, "demo council strings in Glenmoray's sealed evidence:\n" + "\n".join(found)
