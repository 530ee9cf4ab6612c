"""One truth per run: what a command prints is what it stored, a waiver reads the same in every
output, and the HTML, the board PDF, the JSON and `estate check` give the same verdicts."""

from __future__ import annotations

import csv
import json
import re
import shutil
import subprocess
from datetime import date, timedelta
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
ESTATE = REPO / ".venv" / "bin" / "estate"
XML = (b'<?xml version="1.0"?>\n<nmaprun scanner="nmap" start="1" version="7.93">'
       b'<scaninfo type="connect" protocol="tcp" services="1-1024"/>'
       b'<host><status state="up"/><address addr="127.0.0.1" addrtype="ipv4"/><ports>'
       b'<port protocol="tcp" portid="23"><state state="open"/><service name="telnet"/></port>'
       b'</ports></host><runstats><finished time="2"/></runstats></nmaprun>')

pytestmark = pytest.mark.slow


def estate(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(ESTATE), *args, "--home", str(home)], capture_output=True, text=True, cwd=home.parent,
                          timeout=600)


def pdf_text(path: Path) -> str:
    out = subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True, check=True).stdout
    return " ".join(out.split())


@pytest.fixture(scope="module")
def waived(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """A scan import on a demo copy whose estate accepts the telnet finding by a waiver."""
    root = tmp_path_factory.mktemp("truth")
    demo = root / "estate"
    shutil.copytree(REPO / "inventory" / "demo", demo)
    (demo / "waivers-test.yaml").write_text(yaml.safe_dump({"waivers": [{
        "check": "scan.plaintext_protocol", "asset": "host:selftest-web",
        "justification": "Telnet kept for the door-entry controller until its replacement.",
        "approved_by": "Priya Natarajan (SIRO)", "approved_on": (date.today() - timedelta(days=3)).isoformat(),
        "expires": (date.today() + timedelta(days=60)).isoformat(), "reference": "RISK-0777"}]}))
    xml = root / "ithc.xml"
    xml.write_bytes(XML)
    home = root / "home"
    r = estate("scan", "import", str(xml), "--estate", str(demo), "--format", "json", "--fail-on", "none", home=home)
    assert r.returncode == 0, r.stderr
    printed = json.loads(r.stdout)
    out = root / "report"
    r = estate("report", "--estate", str(demo), "--out", str(out), home=home)
    assert r.returncode == 0, r.stderr
    return {"demo": demo, "home": home, "printed": printed, "out": out}


def test_what_the_import_printed_is_what_the_store_holds(waived: dict) -> None:  # type: ignore[type-arg]
    printed = waived["printed"]
    r = estate("findings", "--run", printed["run"], "--format", "json", home=waived["home"])
    stored = json.loads(r.stdout)["findings"]
    assert [f["id"] for f in sorted(stored, key=lambda f: f["id"])] == \
        [f["id"] for f in sorted(printed["findings"], key=lambda f: f["id"])]
    for a, b in zip(sorted(stored, key=lambda f: f["id"]), sorted(printed["findings"], key=lambda f: f["id"]),
                    strict=True):
        assert a["status"] == b["status"] and a["acceptance"] == b["acceptance"]


def test_a_waived_finding_is_accepted_in_every_output(waived: dict) -> None:  # type: ignore[type-arg]
    printed = waived["printed"]
    telnet = next(f for f in printed["findings"] if f["check_id"] == "scan.plaintext_protocol")
    fid = telnet["id"]
    assert telnet["acceptance"]["reference"] == "RISK-0777"                     # the command's own output
    other = next(f for f in printed["findings"] if f["check_id"] == "scan.undeclared_port")
    assert other["acceptance"] is None                                           # the waiver is that precise
    out: Path = waived["out"]  # type: ignore[assignment]
    html = (out / "index.html").read_text()
    row = re.search(rf'<tr id="{fid}" data-state="([a-z]+)"', html)
    assert row and row.group(1) == "accepted"
    assert "RISK-0777" in html[row.start():html.index("</tr>", row.start())]
    sarif = json.loads((out / "machine" / "findings.sarif").read_text())
    result = next(r for r in sarif["runs"][0]["results"] if r["properties"]["findingId"] == fid)
    assert result["suppressions"][0]["status"] == "accepted"
    plan = {r["finding_id"]: r for r in csv.DictReader((out / "machine" / "remediation-plan.csv").open())}
    assert plan[fid]["status"] == "accepted" and plan[fid]["accepted_by"].startswith("Priya Natarajan")
    poam = json.loads((out / "machine" / "oscal-poam.json").read_text())["plan-of-action-and-milestones"]
    risk = next(r for r in poam["risks"] if any(p["value"] == fid for p in r.get("props", [])))
    assert risk["status"] == "risk-accepted"
    psn = json.loads(estate("check", "psn", "--run", printed["run"], "--estate", str(waived["demo"]),
                            "--format", "json", home=waived["home"]).stdout)
    assert next(i for i in psn["rap"] if i["finding_id"] == fid)["status"] == "accepted"
    assert next(i for i in psn["ithc_findings"] if i["finding"] == fid)["accepted"]["reference"] == "RISK-0777"
    board = pdf_text(out / "board-report.pdf")
    assert "Accepted risks" in board and "Priya Natarajan" in board


def test_pdf_html_json_and_check_agree_on_every_verdict(waived: dict) -> None:  # type: ignore[type-arg]
    out: Path = waived["out"]  # type: ignore[assignment]
    findings = json.loads((out / "machine" / "findings.json").read_text())
    verdicts = {v["title"] if "title" in v else v["framework"]: v for v in findings["verdicts"]}
    controls = " ".join(re.sub(r"<[^>]+>", " ", (out / "controls.html").read_text()).split())
    board = pdf_text(out / "board-report.pdf")
    assert findings["verdicts"]
    for v in findings["verdicts"]:
        assert f"Verdict: {v['verdict']} (assessed {v['assessed_on']}" in controls, v
        # The board shows the same words for the same framework (its title, as the HTML does).
        titles = re.findall(r"<h2 id=\"[^\"]+\">([^<]+)</h2>", (out / "controls.html").read_text())
        assert any(f"{t}: {v['verdict']}" in board for t in titles), (v, titles)
    ce = json.loads(estate("check", "ce", "--run", findings["run"]["id"], "--estate", str(waived["demo"]),
                           "--format", "json", home=waived["home"]).stdout)
    stored = next(v for v in findings["verdicts"] if v["framework"] == "cyber-essentials")
    assert ce["verdict"] == stored["verdict"] and ce["counts"] == stored["counts"]
    assert len(verdicts) == len(findings["verdicts"])


def test_check_selection_chooses_steps_and_the_run_says_it_is_partial(tmp_path: Path) -> None:
    home = tmp_path / "home"
    r = estate("assess", "--check", "ce.*", "--exclude-check", "ce.firewall_rule_review", "--no-report",
               "--fail-on", "none", "--format", "json", home=home)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    steps = {s["name"]: s for s in doc["steps"]}
    assert steps["ce-config"]["status"] == "ran"
    for name in ("selftest-scan", "network-scan", "segregation", "devices", "infra-plan", "patch"):
        assert steps[name]["status"] == "skipped" and "--check" in steps[name]["summary"], steps[name]
    assert doc["full_scope"] is False
    listed = json.loads(estate("findings", "--format", "json", home=home).stdout)["findings"]
    assert listed and {f["check_id"].split(".")[0] for f in listed} == {"ce"}
    assert not any(f["check_id"] == "ce.firewall_rule_review" for f in listed)
    bad = estate("assess", "--check", "nosuch.*", home=home)
    assert bad.returncode == 2 and "no check matches 'nosuch.*'" in bad.stderr
