"""The lab end to end (root): real namespaces, nftables rendered from the policy, real nmap and scapy.

One lab per test session (conftest.py); every planted fault in security_checks/lab/faults.yaml
must be found, and nothing the estate declares correctly may raise a failing finding.
"""

from __future__ import annotations

import json
import subprocess
from typing import Any

import pytest
from typer.testing import CliRunner

from security_checks.cli.app import app
from security_checks.findings import Status
from security_checks.jobs import NETWORK, SCAN_MATRIX, SCAN_SITE
from security_checks.lab import build
from security_checks.lab.harness import LabHarness
from security_checks.lab.topology import load_faults
from security_checks.runner import Job, Runner
from security_checks.store import Store

IN_USE = LabHarness(selftest=False, namespaces="use", endpoint=False)

pytestmark = [pytest.mark.root, pytest.mark.slow]


def _expectations(kind: str) -> set[tuple[str, str, str]]:
    out = set()
    for f in load_faults()["lab"]:
        for e in f["expect"]:
            segregation = e["check"] == "scan.segregation_breach" or e["key"].startswith("from ")
            if segregation == (kind == "segregation"):
                out.add((e["check"], e["asset"], e["key"]))
    return out


@pytest.fixture(scope="module")
def scanned(lab, loaded):
    out = Runner(loaded, lab["home"]).run(Job("scan", (NETWORK,), "lab scan"), harness=IN_USE)
    with Store(lab["home"]) as store:
        evidence = store.evidence_dir(out.run.id)
    failed = [f for f in out.findings if f.check_id == "assess.step_failed"]
    # The traceback the runner kept as evidence: CI prints it, so a failure there can be diagnosed.
    why = [(evidence / f.evidence[0].path).read_text()[-3000:] for f in failed if f.evidence]
    assert failed == [], f"the lab scan's step failed, so no planted fault could be judged: {why}"
    return {"findings": out.findings, "steps": out.run.steps, "evidence": evidence, "run": out.run.id}


def test_scanners_have_no_default_route_and_the_root_namespace_no_lab_route(lab):
    for ns in lab["lab"].scanners:
        routes = subprocess.run(["ip", "-n", ns, "route", "show"], capture_output=True, text=True).stdout
        assert routes.strip() and "default" not in routes
    root = subprocess.run(["ip", "route", "show"], capture_output=True, text=True).stdout
    for seg in lab["lab"].segments:
        for cidr in seg.cidrs:
            assert cidr not in root
    assert build.root_leftover_links() == []


def test_up_is_idempotent(lab, loaded):
    before = build.status(lab["home"])
    again = build.up(loaded, lab["home"])
    assert again["up"] and again["listeners"] == before["listeners"]


def test_lab_scan_finds_every_planted_fault(scanned):
    got = {(f.check_id, f.asset, f.key): f for f in scanned["findings"]}
    missing = [e for e in _expectations("scan") if e not in got or got[e].status is not Status.FAIL]
    assert missing == []
    for e in _expectations("scan"):
        assert got[e].evidence and got[e].evidence[0].path.endswith(".xml")


def test_nothing_declared_correctly_fails(scanned):
    failing = {(f.check_id, f.asset, f.key) for f in scanned["findings"] if f.failing}
    assert failing - _expectations("scan") == set()
    ok = {f.asset for f in scanned["findings"] if f.check_id == "scan.declared_service_ok"}
    assert {"host:file-01", "host:print-01", "host:psn-gw-01", "host:revs-app-01", "host:lib-print-01",
            "host:fw-civic", "host:voip-01"} <= ok


def test_raw_xml_is_evidence(scanned):
    d = scanned["evidence"] / "scan"
    xmls = sorted(d.rglob("*.xml"))
    assert xmls and all(p.read_bytes().lstrip().startswith(b"<?xml") for p in xmls)
    cmd = json.loads((d / "scan" / "command.json").read_text())
    assert cmd["netns"] == "est-scan" and all("vulners" not in " ".join(c) for c in cmd["commands"])


def test_segregation_matrix_matches_policy_except_the_planted_breaches(lab, loaded):
    out = Runner(loaded, lab["home"]).run(SCAN_MATRIX, harness=IN_USE)
    matrix = out.data["segregation"]["matrix"]
    with Store(lab["home"]) as store:
        evidence = store.evidence_dir(out.run.id)
    failing = {(f.check_id, f.asset, f.key) for f in out.findings if f.failing}
    assert failing == _expectations("segregation")
    assert matrix["allowed_but_blocked"] == 0
    saved = json.loads((evidence / "scan" / "segregation" / "matrix.json").read_text())
    assert saved["breaches"] == matrix["breaches"] == 3
    guest = [f for f in saved["flows"] if f["src_zone"] == "guest-wifi" and f["reachable"]]
    assert {f["dst_zone"] for f in guest} == {"internet", "servers"}  # servers: the planted breach only


def _flow(matrix: dict[str, Any], src_zone: str, dst: str, port: int) -> dict[str, Any]:
    return next(f for f in matrix["flows"] if f["src_zone"] == src_zone and f["src_site"] == "civic-centre"
                and f["dst"] == dst and f["port"] == port)


def test_the_matrix_tells_which_of_declared_applied_and_observed_disagrees(lab, loaded):
    """Planted in the router's ruleset only (nft-rule): the applied ruleset is blamed, on the router, with
    its rule; planted on the wire (a dual-homed device, bypass-host): the wire is blamed, the router
    cleared; everything else agrees three ways."""
    out = Runner(loaded, lab["home"]).run(SCAN_MATRIX, harness=IN_USE)
    with Store(lab["home"]) as store:
        saved = json.loads((store.evidence_dir(out.run.id) / "scan" / "segregation" / "matrix.json").read_text())
        ruleset = store.evidence_dir(out.run.id) / "scan" / "segregation" / "ruleset-fw-civic.json"
        assert json.loads(ruleset.read_text())["nftables"]   # the ruleset judged is kept as evidence
    assert saved["rulesets"]["fw-civic"] == {"read": True, "why": ""}
    smb = _flow(saved, "guest-wifi", "10.10.30.20", 445)
    assert (smb["declared"], smb["applied"], smb["observed"], smb["disagrees"]) == ("deny", "accept", "open", "applied")
    assert smb["applied_firewall"] == "fw-civic" and "PLANTED FAULT guest-to-file-shares" in smb["applied_rule"]
    assert "rule #" in smb["applied_rule"] and smb["declared_where"].endswith(".yaml:4")
    admin = _flow(saved, "corporate", "10.10.99.1", 8443)
    assert (admin["declared"], admin["applied"], admin["disagrees"]) == ("deny", "accept", "applied")
    assert "PLANTED FAULT mgmt-from-corporate" in admin["applied_rule"]
    bypass = _flow(saved, "public-wifi", "10.10.30.60", 443)
    assert (bypass["declared"], bypass["applied"], bypass["observed"], bypass["disagrees"]) == (
        "deny", "deny", "open", "observed")
    assert "another path or device" in bypass["disagreement"] and "CIV-998" in bypass["applied_rule"]
    firewalls = loaded.estate.firewall("fw-civic")
    rule = next(i for i, r in enumerate(firewalls.rules) if r.id == "CIV-998")
    assert bypass["declared_rule"] == "CIV-998"
    assert bypass["declared_where"] == "{}:{}".format(*loaded.where(("firewalls", 0, "rules", rule)))
    others = [f for f in saved["flows"] if f["disagrees"] and f not in (smb, admin, bypass)]
    assert others == []
    assert all(f["applied"] in ("accept", "deny") for f in saved["flows"])   # the role's constructs: all judged

    got = {(f.check_id, f.asset, f.key): f for f in out.findings}
    router = got[("scan.segregation_disagreement", "firewall:fw-civic",
                  "from guest-wifi@civic-centre to 10.10.30.20 tcp/445")]
    assert router.failing and router.details["verdicts"]["disagrees"] == "applied"
    assert "PLANTED FAULT guest-to-file-shares" in router.observed and router.evidence_kind.value == "observed"
    wire = got[("scan.segregation_disagreement", "zone:public-wifi@civic-centre",
                "from public-wifi@civic-centre to 10.10.30.60 tcp/443")]
    assert wire.failing and "another path or device" in wire.observed
    assert got[("scan.segregation_disagreement", "firewall:fw-central-library", "matrix")].status is Status.PASS


def test_site_scanner_runs_through_ansible_runner(lab, loaded):
    out = Runner(loaded, lab["home"]).run(SCAN_SITE, options={"site": "central-library"}, harness=IN_USE)
    got = {(f.check_id, f.asset, f.key): f.status for f in out.findings}
    assert got[("scan.undeclared_port", "host:lib-print-01", "tcp/9100")] is Status.FAIL
    assert got[("scan.declared_service_ok", "host:lib-print-01", "tcp/631")] is Status.PASS
    assert "transmit/worker/process" in out.run.steps[-1]["summary"]
    with Store(lab["home"]) as store:
        assert list((store.evidence_dir(out.run.id) / "scan" / "site-central-library").glob("nmap-*.xml"))


def _packets(ns: str) -> int:
    out = json.loads(subprocess.run(["ip", "-n", ns, "-s", "-j", "link", "show"], capture_output=True,
                                    text=True).stdout)
    return sum(i["stats64"]["tx"]["packets"] for i in out if i["ifname"] != "lo")


def test_a_refused_target_sends_nothing(lab, tmp_path):
    before = _packets("est-scan")
    result = CliRunner().invoke(app, ["scan", "--scope", "lab", "--target", "10.10.20.0/24", "--home",
                                      str(lab["home"])])
    assert result.exit_code == 2 and "exclusion" in result.output
    assert _packets("est-scan") == before


def test_the_demo_feed_adds_version_findings_and_leaves_the_planted_faults_as_they_were(scanned, lab, loaded):
    """As `estate scan --scope lab` and `estate assess` run it: with the estate's own advisory feed
    (inventory/demo/advisories.json, whose cpe entries match the lab's nginx and OpenSSH banners)."""
    from security_checks.cli.scan import knowledge

    out = Runner(loaded, lab["home"]).run(Job("scan", (NETWORK,), "lab scan"), harness=IN_USE,
                                          options={"knowledge": knowledge(loaded, None)})
    before = {(f.check_id, f.asset, f.key): f for f in scanned["findings"]}
    got = {(f.check_id, f.asset, f.key): f for f in out.findings}
    for e in _expectations("scan"):
        assert (got[e].status, got[e].severity) == (before[e].status, before[e].severity), e
    added = {k for k, f in got.items() if f.failing} - {k for k, f in before.items() if f.failing}
    assert added and {k[0] for k in added} <= {"scan.vulnerable_version", "scan.eol_product"}
    cves = {c for k in added for c in got[k].details.get("cves", [])}
    assert {"CVE-2023-44487", "CVE-2024-6387"} <= cves


def test_the_matrix_command_shows_the_three_verdicts(lab):
    """What `estate scan matrix` prints (text and JSON) is each flow's declared, applied and observed verdicts."""
    home = str(lab["home"])
    as_json = CliRunner().invoke(app, ["scan", "matrix", "--home", home, "--format", "json", "--fail-on", "none"])
    assert as_json.exit_code == 0, as_json.output[-2000:]
    doc = json.loads(as_json.stdout)
    assert doc["disagreements"] == {"applied": 2, "observed": 1}
    assert all({"declared", "applied", "observed", "disagrees"} <= set(f) for f in doc["flows"])
    assert {(f["dst"], f["disagrees"]) for f in doc["flows"] if f["disagrees"]} == {
        ("10.10.30.20", "applied"), ("10.10.99.1", "applied"), ("10.10.30.60", "observed")}
    text = CliRunner().invoke(app, ["scan", "matrix", "--home", home, "--fail-on", "none"])
    assert text.exit_code == 0, text.output[-2000:]
    assert "declared | applied | observed | disagrees" in text.output
    assert "guest-wifi@civic-centre -> file-01 (10.10.30.20) tcp/445: deny | accept | open | applied" in text.output
    assert "PLANTED FAULT guest-to-file-shares" in text.output
    bypass = "public-wifi@civic-centre -> intranet-cache (10.10.30.60) tcp/443: deny | deny | open | observed"
    assert bypass in text.output
