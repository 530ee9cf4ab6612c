"""`estate check ce|psn` and the assess steps, end to end through the real command."""

from __future__ import annotations

import json
import shutil
import subprocess
from datetime import date, timedelta
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
ESTATE = REPO / ".venv" / "bin" / "estate"


def estate(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(ESTATE), *args], capture_output=True, text=True, cwd=home.parent,
                          env={"PATH": "/usr/bin:/bin:/usr/sbin:/sbin", "ESTATE_HOME": str(home)})


def test_check_ce_without_a_run_is_bad_input(tmp_path: Path) -> None:
    r = estate("check", "ce", home=tmp_path / "home")
    assert r.returncode == 2 and "run `estate assess` first" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr
    r = estate("check", "ce", "--version", "9.9", home=tmp_path / "home")
    assert r.returncode == 2 and "--version" in r.stderr and r.stdout == ""
    from security_checks.store import Store

    Store(tmp_path / "home").close()   # a store with no runs in it
    r = estate("check", "psn", "--run", "nosuchrun", home=tmp_path / "home")
    assert r.returncode == 2 and "nosuchrun" in r.stderr
    r = estate("check", "ce", home=tmp_path / "home")
    assert r.returncode == 2 and "no `estate assess` run stored yet" in r.stderr


def test_help_teaches_with_examples() -> None:
    r = subprocess.run([str(ESTATE), "check", "ce", "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and "estate check ce --version 3.2" in r.stdout and "Exit status" in r.stdout


@pytest.mark.root
@pytest.mark.slow
def test_assess_then_check_on_the_demo(lab_home: Path, tmp_path: Path) -> None:
    demo = tmp_path / "estate"
    shutil.copytree(REPO / "inventory" / "demo", demo)
    today = date.today()
    (demo / "test-waivers.yaml").write_text(yaml.safe_dump({"waivers": [{
        "check": "patch.unsupported_os", "asset": "endpoint-group:windows-10-legacy",
        "justification": "Replacement kit ordered; devices are on an isolated VLAN.", "approved_by": "SIRO",
        "approved_on": (today - timedelta(days=20)).isoformat(),
        "expires": (today + timedelta(days=30)).isoformat()}]}))
    steps = ["--only", "patch", "--only", "ce-config"]
    r = estate("assess", "--estate", str(demo), "--out", str(tmp_path / "report"), "--format", "json", *steps,
               home=lab_home)
    assert r.returncode == 1, r.stderr
    run1 = json.loads(r.stdout)["run"]
    assert json.loads(r.stdout)["verdicts"]["cyber-essentials 3.3"] == "not ready: auto-fail"

    # The CE assessment as the run stored it, both versions; exit 1: not ready.
    r = estate("check", "ce", "--estate", str(demo), "--format", "json", home=lab_home)
    assert r.returncode == 1
    doc = json.loads(r.stdout)
    assert doc["run"] == run1 and doc["verdict"] == "not ready: auto-fail"
    assert doc["requirements"][0]["ref"] == "CE3.3:SUM-4" and doc["requirements"][0]["status"] == "not_met"
    assert {x["status"] for x in doc["requirements"]} <= {"met", "not_met", "manual", "not_assessed", "risk_accepted",
                                                          "declared"}
    assert len(doc["requirements"]) == 31
    r = estate("check", "ce", "--estate", str(demo), "--version", "3.2", "--out", str(tmp_path / "ce"), home=lab_home)
    assert r.returncode == 1 and "Verdict" in r.stdout   # the result, on stdout (progress: stderr)
    assert json.loads((tmp_path / "ce" / "ce-3.2.json").read_text())["requirements"][0]["ref"].startswith("CE3.2:")

    r = estate("check", "psn", "--estate", str(demo), "--format", "json", home=lab_home)
    psn_doc = json.loads(r.stdout)
    statuses = {i["check_id"]: i["status"] for i in psn_doc["rap"]}
    assert statuses["patch.security_update_overdue"] == "open"
    assert statuses["patch.unsupported_os"] == "accepted"
    assert psn_doc["ithc_findings"][0]["cvss_score"] == 9.8 and psn_doc["network"] == "PSN"

    # The waiver lapses: the accepted risk is open again in the next run; the plan is the same plan.
    w = yaml.safe_load((demo / "test-waivers.yaml").read_text())
    w["waivers"][0]["approved_on"] = (today - timedelta(days=40)).isoformat()
    w["waivers"][0]["expires"] = (today - timedelta(days=1)).isoformat()
    (demo / "test-waivers.yaml").write_text(yaml.safe_dump(w))
    r = estate("assess", "--estate", str(demo), "--out", str(tmp_path / "report"), "--format", "json", *steps,
               home=lab_home)
    run2 = json.loads(r.stdout)["run"]
    before = (lab_home / "estate.db").read_bytes()
    r = estate("check", "psn", "--estate", str(demo), "--run", run2, "--out", str(tmp_path / "psn"), "--format",
               "json", home=lab_home)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["summary"]["rap_update"]["reopened"] == 1     # what run2 did to the plan when it committed
    items = {i["check_id"]: i for i in doc["rap"]}
    os_item = items["patch.unsupported_os"]
    assert os_item["status"] == "open" and os_item["history"][-1]["reason"].startswith("acceptance expired on")
    overdue = items["patch.security_update_overdue"]
    assert overdue["first_run"] == run1 and overdue["last_seen_run"] == run2 and len(overdue["history"]) == 1
    assert (tmp_path / "psn" / "rap.csv").read_text().startswith("finding_id,title,asset,severity")
    assert {p.name for p in (tmp_path / "psn").iterdir()} == {"rap.csv", "rap.json", "diagram.json",
                                                              "network-diagram.svg", "psn-summary.json"}
    assert "<svg" in (tmp_path / "psn" / "network-diagram.svg").read_text()
    # `check` reads; it never changes the plan (only runs do).
    r = estate("check", "psn", "--estate", str(demo), "--format", "json", home=lab_home)
    assert json.loads(r.stdout)["rap"] == doc["rap"]
    assert (lab_home / "estate.db").read_bytes() == before


def test_assess_takes_the_advisory_feed_it_is_given(tmp_path: Path) -> None:
    shipped = json.loads((REPO / "inventory/demo/advisories.json").read_text())
    feed = tmp_path / "feed.json"
    feed.write_text(json.dumps({**shipped, "feed_date": date.today().isoformat()}))
    r = estate("assess", "--only", "patch", "--advisory-feed", str(feed), "--format", "json", "--fail-on", "none",
               "--out", str(tmp_path / "out"), home=tmp_path / "home")
    assert r.returncode == 0, r.stderr
    listed = json.loads(estate("findings", "--format", "json", home=tmp_path / "home").stdout)["findings"]
    stale = next(f for f in listed if f["check_id"] == "patch.advisory_feed_stale")
    # A feed outside the estate is cited by its name: the operator's directory never reaches evidence.
    assert stale["status"] == "pass" and stale["details"]["path"] == "feed.json"
    assert str(tmp_path) not in json.dumps(stale)

    broken = tmp_path / "broken.json"
    broken.write_text('{"feed_date": "2026-11-20"')
    r = estate("assess", "--advisory-feed", str(broken), home=tmp_path / "home2")
    assert r.returncode == 2 and f"--advisory-feed: {broken}: line 1: not JSON" in r.stderr
    assert not (tmp_path / "home2" / "runs").exists()
