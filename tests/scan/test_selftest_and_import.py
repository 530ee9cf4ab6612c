"""The self-test slice end to end (real listeners, real nmap on loopback) and nmap XML import."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from security_checks.cli.app import app
from security_checks.findings import Status
from security_checks.jobs import NETWORK, SEGREGATION, SELFTEST
from security_checks.lab.harness import LabHarness
from security_checks.lab.listeners import port_is_free
from security_checks.lab.topology import load_faults
from security_checks.runner import Job, Runner
from security_checks.scan.nmapxml import BadScanXml, parse
from security_checks.store import Store

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def selftest_run(tmp_path_factory, loaded):
    home = tmp_path_factory.mktemp("selftest")
    out = Runner(loaded, home).run(Job("scan", (SELFTEST,), "self-test"),
                                   harness=LabHarness(namespaces="none", endpoint=False))
    with Store(home) as store:
        evidence = store.evidence_dir(out.run.id)
    return {"evidence": evidence, "findings": out.findings, "run": out.run.id, "home": home}


def _by_key(findings):
    return {(f.check_id, f.asset, f.key): f for f in findings}


def test_selftest_finds_every_planted_fault(selftest_run):
    got = _by_key(selftest_run["findings"])
    for fault in load_faults()["selftest"]:
        for exp in fault["expect"]:
            f = got.get((exp["check"], exp["asset"], exp["key"]))
            assert f is not None and f.status is Status.FAIL, (fault["id"], exp)
            assert f.evidence and f.evidence[0].path.startswith("scan/selftest/")


def test_selftest_declared_service_passes_and_raises_no_failure(selftest_run):
    got = _by_key(selftest_run["findings"])
    ok = got[("scan.declared_service_ok", "host:selftest-web", "tcp/18080")]
    assert ok.status is Status.PASS and "http" in ok.observed
    assert got[("scan.http_headers", "host:selftest-web", "tcp/18080")].status is Status.PASS
    failing = [f for f in selftest_run["findings"] if f.failing and f.key == "tcp/18080"]
    assert failing == []


def test_selftest_keeps_the_xml_and_stops_its_listeners(selftest_run):
    ev = selftest_run["evidence"] / "scan" / "selftest" / "nmap-tcp.xml"
    result = parse(ev.read_bytes())
    assert result.host("127.0.0.1") is not None
    assert {p.port for p in result.host("127.0.0.1").ports if p.is_open} == {18080, 18023}
    assert port_is_free("127.0.0.1", 18080) and port_is_free("127.0.0.1", 18023)


def test_assess_runs_the_selftest_step(tmp_path):
    result = CliRunner().invoke(app, ["assess", "--only", "selftest-scan", "--home", str(tmp_path / "h"),
                                      "--out", str(tmp_path / "out"), "--format", "json", "--fail-on", "none"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout[result.stdout.index("{"):])
    ran = {s["name"]: s for s in data["steps"] if s["status"] == "ran"}
    assert set(ran) == {"lab-harness", "selftest-scan"}
    # Every other step is recorded, with why it did not run: a partial run says so.
    assert {s["summary"] for s in data["steps"] if s["status"] == "skipped"} == {"not chosen (--only selftest-scan)"}
    assert data["full_scope"] is False and data["summary"]["fail"] >= 2


def test_import_stores_what_it_prints_and_the_next_check_psn_plans_it(selftest_run, tmp_path):
    xml = selftest_run["evidence"] / "scan" / "selftest" / "nmap-tcp.xml"
    home = tmp_path / "h"
    result = CliRunner().invoke(app, ["scan", "import", str(xml), "--home", str(home), "--format", "json",
                                      "--fail-on", "none"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout[result.stdout.index("{"):])
    keys = {(f["check_id"], f["asset"], f["key"], f["status"]) for f in data["findings"]}
    assert ("scan.undeclared_port", "host:selftest-web", "tcp/18023", "fail") in keys
    assert ("scan.plaintext_protocol", "host:selftest-web", "tcp/18023", "fail") in keys
    assert ("scan.declared_service_ok", "host:selftest-web", "tcp/18080", "pass") in keys
    # Every printed finding is in the store, read back through the command a user would use.
    listed = CliRunner().invoke(app, ["findings", "--run", data["run"], "--home", str(home), "--format", "json"])
    assert listed.exit_code == 0, listed.output
    stored = json.loads(listed.stdout)["findings"]
    assert sorted(f["id"] for f in stored) == sorted(f["id"] for f in data["findings"]) != []
    with Store(home) as store:
        [run] = store.runs()
        assert run.kind == "scan-import" and run.id == data["run"] and not run.full_scope
        assert (store.evidence_dir(run.id) / "scan" / "import" / "nmap.xml").read_bytes() == xml.read_bytes()
    # The runbook's next step: the tester's failing findings are in the Remediation Action Plan.
    psn = CliRunner().invoke(app, ["check", "psn", "--run", run.id, "--home", str(home), "--format", "json"])
    assert psn.exit_code == 0, psn.output
    rap = {i["finding_id"] for i in json.loads(psn.stdout)["rap"]}
    assert {f["id"] for f in data["findings"] if f["status"] == "fail"} <= rap


HEADER = b'<?xml version="1.0"?>\n'
HOSTILE = {
    "billion-laughs": HEADER + b'<!DOCTYPE nmaprun [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;&a;">]>'
                               b"<nmaprun>&b;</nmaprun>",
    "external-entity": HEADER + b'<!DOCTYPE nmaprun [<!ENTITY x SYSTEM "file:///etc/passwd">]><nmaprun>&x;</nmaprun>',
    "external-dtd": HEADER + b'<!DOCTYPE nmaprun SYSTEM "http://example.invalid/x.dtd"><nmaprun/>',
    "truncated": HEADER + b'<nmaprun scanner="nmap"><host><status state="up"/><address addr="10.1',
    "not-nmap": HEADER + b"<html><body>hello</body></html>",
    # expat raised LookupError (a traceback) for an encoding name Python does not know: found by fuzzing.
    "unknown-encoding": b'<?xml version="1.0" encoding="TF-8"?>\n<nmaprun scanner="nmap"></nmaprun>\n',
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_xml_is_refused_with_one_line_and_nothing_stored(name, tmp_path):
    f = tmp_path / f"{name}.xml"
    f.write_bytes(HOSTILE[name])
    with pytest.raises(BadScanXml):
        parse(HOSTILE[name])
    home = tmp_path / "h"
    result = CliRunner().invoke(app, ["scan", "import", str(f), "--home", str(home)])
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and str(f.name) in lines[0] and "Traceback" not in result.output
    store = Store(home)
    assert store.runs() == []
    assert [p for p in (home / "runs").iterdir()] == []


def test_oversized_xml_is_refused(tmp_path, monkeypatch):
    from security_checks.scan import nmapxml

    monkeypatch.setattr(nmapxml, "MAX_XML_BYTES", 1024)
    f = tmp_path / "big.xml"
    f.write_bytes(HEADER + b"<nmaprun>" + b"<!-- pad -->" * 200 + b"</nmaprun>")
    result = CliRunner().invoke(app, ["scan", "import", str(f), "--home", str(tmp_path / "h")])
    assert result.exit_code == 2 and "limit" in result.output


def test_nmaps_own_bare_doctype_is_accepted():
    xml = (HEADER + b'<!DOCTYPE nmaprun>\n<?xml-stylesheet href="file:///usr/share/nmap/nmap.xsl" type="text/xsl"?>'
           b'<nmaprun scanner="nmap" start="1" version="7.93"><scaninfo type="connect" protocol="tcp" services="22"/>'
           b'<host><status state="up"/><address addr="127.0.0.1" addrtype="ipv4"/><ports><port protocol="tcp" '
           b'portid="22"><state state="open"/><service name="ssh"/></port></ports></host>'
           b'<runstats><finished time="2"/></runstats></nmaprun>')
    r = parse(xml)
    assert r.finished and r.scanned == {"tcp": {22}} and r.hosts[0].ports[0].service == "ssh"


def test_scan_steps_say_why_they_did_not_run(loaded, tmp_path, monkeypatch):
    # Not root: skipped for that reason, and the run records it as plainly as the steps that ran.
    monkeypatch.setattr("security_checks.runner.is_root", lambda: False)
    out = Runner(loaded, tmp_path / "h").run(Job("scan", (NETWORK, SEGREGATION), "test"))
    assert [(s["name"], s["status"]) for s in out.run.steps] == [("network-scan", "skipped"),
                                                                 ("segregation", "skipped")]
    assert all("needs root" in s["summary"] for s in out.run.steps) and out.findings == []
    # Root but nothing to scan from (a real estate's assess: no lab, no scanner vantage given).
    monkeypatch.setattr("security_checks.runner.is_root", lambda: True)
    out = Runner(loaded, tmp_path / "h").run(Job("scan", (NETWORK, SEGREGATION), "test"))
    reasons = {s["name"]: s["summary"] for s in out.run.steps}
    assert "no scanner vantage" in reasons["network-scan"] and "no probe points" in reasons["segregation"]


def test_a_busy_self_test_port_skips_the_self_test_instead_of_scanning_someone_elses_listener(tmp_path):
    import socket

    with socket.socket() as other:
        other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        other.bind(("127.0.0.1", 18080))
        other.listen()
        result = CliRunner().invoke(app, ["assess", "--only", "selftest-scan", "--home", str(tmp_path / "h"),
                                          "--no-report", "--format", "json", "--fail-on", "none"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout[result.stdout.index("{"):])
    step = next(s for s in data["steps"] if s["name"] == "selftest-scan")
    assert step["status"] == "skipped" and "127.0.0.1:18080" in step["summary"] and "in use" in step["summary"]
    assert data["summary"]["fail"] == 0
