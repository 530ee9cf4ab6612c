"""The demo lab's routers go through the same path as a real site router: the nftables_gateway role, through
Ansible, into each router's network namespace; `estate firewalls audit|apply` then reads them back (root)."""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ESTATE_BIN = REPO / ".venv" / "bin" / "estate"

pytestmark = [pytest.mark.root, pytest.mark.slow]


def estate(home: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("ESTATE_MANAGEMENT_HOST", "ESTATE_DB")}
    return subprocess.run([str(ESTATE_BIN), *argv, "--home", str(home)], capture_output=True, text=True,
                          env=env, timeout=1200, check=False)


def nft(netns: str, *argv: str) -> str:
    return subprocess.run(["ip", "netns", "exec", netns, "nft", *argv], capture_output=True, text=True,
                          check=True).stdout


@pytest.fixture(scope="module")
def lab_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    home = tmp_path_factory.mktemp("fwlab") / "home"
    was_up = estate(home, "lab", "status").returncode == 0
    up = estate(home, "lab", "up")
    assert up.returncode == 0, up.stderr[-2000:]
    yield home
    if not was_up:
        estate(home, "lab", "down")


def _findings(p: subprocess.CompletedProcess[str]) -> list[dict[str, object]]:
    out: list[dict[str, object]] = json.loads(p.stdout)["findings"]
    return out


def test_no_lab_code_loads_a_ruleset_itself() -> None:
    """Python renders nothing into a router: the only `nft -f` is the role's (tasks/ruleset.yml)."""
    for path in (REPO / "security_checks" / "lab").glob("*.py"):
        assert not re.search(r'"nft",\s*"-f"', path.read_text()), path
    assert "nft -f" in (REPO / "playbooks/roles/nftables_gateway/tasks/ruleset.yml").read_text()


def test_lab_routers_hold_the_ruleset_the_role_wrote(lab_home: Path) -> None:
    status = json.loads(estate(lab_home, "lab", "status", "--format", "json").stdout)
    lab = Path(status.get("home") or lab_home) / "lab"
    written = (lab / "fw-civic.nft").read_text()
    assert "rendered by the nftables_gateway role" in written
    running = nft("est-fw-civic", "list", "ruleset")
    for rid in ("CIV-001", "CIV-011", "CIV-999"):
        assert f'comment "{rid} ' in running
    assert "PLANTED FAULT guest-to-file-shares" in running and "policy drop" in running
    inventory = json.loads((lab / "firewalls-inventory.json").read_text())
    hosts = inventory["all"]["children"]["firewalls"]["children"]["firewalls_nftables"]["hosts"]
    assert hosts["fw-civic"]["ansible_connection"] == "local"
    assert "ip netns exec est-fw-civic" in Path(hosts["fw-civic"]["ansible_python_interpreter"]).read_text()


def test_audit_reads_the_lab_routers_back_and_finds_the_planted_rules(lab_home: Path) -> None:
    p = estate(lab_home, "firewalls", "audit", "--format", "json")
    assert p.returncode == 1, p.stderr[-2000:]
    fails = [f for f in _findings(p) if f["status"] == "fail"]
    extra = {str(f["observed"]).split(":")[1].strip() for f in fails if f["check_id"] == "firewalls.rule_extra"}
    assert {"PLANTED FAULT guest-to-file-shares", "PLANTED FAULT mgmt-from-corporate"} <= extra
    exposed = [f for f in fails if f["check_id"] == "firewalls.admin_exposed"]
    assert any("mgmt-from-corporate" in str(f["observed"]) for f in exposed)
    assert all(str(f["details"]["where"]).split(":")[0].endswith("firewalls.yaml") for f in fails)  # type: ignore[index]
    read = {f["asset"] for f in _findings(p) if f["check_id"] == "firewalls.read"}
    assert read == {"firewall:fw-civic", "firewall:fw-central-library"}


def test_apply_puts_back_a_router_changed_by_hand_and_a_second_apply_changes_nothing(lab_home: Path) -> None:
    ns = "est-fw-central-library"
    nft(ns, "add", "rule", "inet", "estate", "input", "tcp", "dport", "2323", "accept", "comment", '"added by hand"')
    audit = estate(lab_home, "firewalls", "audit", "--limit", "fw-central-library", "--format", "json")
    assert any(f["check_id"] == "firewalls.rule_extra" and "added by hand" in str(f["observed"])
               for f in _findings(audit))
    first = estate(lab_home, "firewalls", "apply", "--limit", "fw-central-library", "--format", "json")
    assert first.returncode == 0, first.stderr[-2000:]
    assert "1 object(s) changed" in json.loads(first.stdout)["summary"]
    assert "added by hand" not in nft(ns, "list", "ruleset")
    second = estate(lab_home, "firewalls", "apply", "--limit", "fw-central-library", "--format", "json")
    assert "0 object(s) changed" in json.loads(second.stdout)["summary"]


def test_the_demo_assessment_audits_the_firewalls_and_the_report_and_control_matrix_show_it(
        lab_home: Path, tmp_path: Path) -> None:
    """`make demo` runs `estate assess`: its firewall audit step reads the lab routers back, and the
    report's findings, its control matrix and the segregation table show what it and the matrix found."""
    from security_checks.jobs import ASSESS
    from security_checks.store import Store

    assert {"firewalls", "firmware", "segregation"} <= {s.name for s in ASSESS.steps}
    out = tmp_path / "report"
    p = estate(lab_home, "assess", "--only", "firewalls", "--only", "segregation", "--out", str(out),
               "--format", "json", "--fail-on", "none")
    assert p.returncode == 0, p.stderr[-2000:]
    doc = json.loads(p.stdout)
    steps = {s["name"]: s["status"] for s in doc["steps"]}
    assert steps["firewalls"] == steps["segregation"] == "ran", doc["steps"]
    with Store(lab_home) as store:   # what the run stored, read back
        findings = [f.model_dump(mode="json") for f in store.findings(doc["run"])]
    extra = next(f for f in findings if f["check_id"] == "firewalls.rule_extra" and f["status"] == "fail"
                 and "PLANTED FAULT guest-to-file-shares" in str(f["observed"]))
    router = next(f for f in findings if f["check_id"] == "scan.segregation_disagreement"
                  and f["asset"] == "firewall:fw-civic" and f["status"] == "fail")
    index = (out / "index.html").read_text()
    controls = (out / "controls.html").read_text()
    for f in (extra, router):
        assert f'id="{f["id"]}"' in index   # its row in the findings list
        assert f["controls"] and f'#{f["id"]}"' in controls   # a failing finding of a requirement it maps to
    assert "Segregation: declared, applied, observed" in index
    assert "another path or device lets it through" in index   # the planted dual-homed device: the wire
    ce = estate(lab_home, "check", "ce", "--format", "json")
    reqs = {r["ref"]: r for r in json.loads(ce.stdout)["requirements"]}
    fw1 = reqs["CE3.3:FW-1"]
    assert fw1["status"] == "not_met"
