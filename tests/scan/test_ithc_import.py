"""ITHC files imported: Nessus v2 and OpenVAS reports into stored findings and RAP items, on both councils.

The files are written in the tools' real formats (ithc_files.py); the import runs through the CLI
and the one runner, and the tests read the findings back from the store as a user would.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import threading
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from security_checks.cli.app import app
from security_checks.scan import intake, nessus, openvas
from security_checks.scan.nmapxml import BadScanXml
from security_checks.store import Store
from tests.scan import ithc_files

REPO = Path(__file__).resolve().parents[2]
GLENMORAY = REPO / "tests" / "estates" / "glenmoray"
# Per council: the file server (SMB), a Debian host with a credentialed patch result, a jump host
# (SSH), a print server, and an address in no scan scope.
COUNCILS = {
    "demo": {"estate": [], "smb": ("10.10.30.20", "host:file-01"), "linux": ("10.10.30.60", "host:intranet-cache"),
             "ssh": ("10.10.99.10", "host:mgmt-jump-01"), "print": ("10.10.30.21", "host:print-01"),
             "outside": "192.0.2.50"},
    "glenmoray": {"estate": ["--estate", str(GLENMORAY)], "smb": ("10.64.5.20", "host:fs-hq-01"),
                  "linux": ("10.64.5.40", "host:callmgr-01"), "ssh": ("10.64.15.10", "host:jump-hq-01"),
                  "print": ("10.64.5.21", "host:print-hq-01"), "outside": "198.51.100.7"},
}


def _import(path: Path, home: Path, council: str, *extra: str) -> dict[str, Any]:
    result = CliRunner().invoke(app, ["scan", "import", str(path), "--home", str(home), "--format", "json",
                                      "--fail-on", "none", *COUNCILS[council]["estate"], *extra])
    assert result.exit_code == 0, result.output
    data: dict[str, Any] = json.loads(result.stdout[result.stdout.index("{"):])
    return data


def _stored(home: Path, run: str) -> dict[str, dict[str, Any]]:
    listed = CliRunner().invoke(app, ["findings", "--run", run, "--home", str(home), "--format", "json"])
    assert listed.exit_code == 0, listed.output
    return {f["id"]: f for f in json.loads(listed.stdout)["findings"]}


def _output(home: Path, run: str, finding: dict[str, Any]) -> str:
    """The whole plugin output of an ITHC finding, from the evidence file it cites (its evidence_item)."""
    with Store(home) as store:
        evidence = store.evidence_dir(run)
    ref = finding["evidence"][0]
    raw = (evidence / ref["path"]).read_bytes()
    assert hashlib.sha256(raw).hexdigest() == ref["sha256"]
    item = json.loads(raw)["items"][finding["details"]["evidence_item"]]
    assert item["plugin_id"] == finding["details"]["plugin_id"] and item["host"] == finding["details"]["host"]
    assert len(item["output"]) == finding["details"]["output_chars"]
    return str(item["output"])


def _rap(home: Path, run: str, council: str) -> set[str]:
    psn = CliRunner().invoke(app, ["check", "psn", "--run", run, "--home", str(home), "--format", "json",
                                   *COUNCILS[council]["estate"]])
    assert psn.exit_code == 0, psn.output
    return {i["finding_id"] for i in json.loads(psn.stdout)["rap"]}


@pytest.mark.parametrize("council", sorted(COUNCILS))
def test_a_nessus_file_becomes_stored_findings_and_rap_items(council: str, tmp_path: Path) -> None:
    c = COUNCILS[council]
    data_bytes = ithc_files.nessus({"smb": c["smb"][0], "linux": c["linux"][0]}, c["outside"])
    path = tmp_path / "ithc-internal.nessus"
    path.write_bytes(data_bytes)
    home = tmp_path / "h"
    data = _import(path, home, council)
    sha = hashlib.sha256(data_bytes).hexdigest()
    assert data["format"] == "nessus" and data["sha256"] == sha and data["hosts"] == 3
    got = {(f["check_id"], f["asset"], f["key"]): f for f in data["findings"]}
    eternal = got[("scan.ithc_result", c["smb"][1], "nessus:97833 tcp/445")]
    assert eternal["status"] == "fail" and eternal["severity"] == "high"          # CVSS 3.0 8.1 sets it
    assert eternal["cvss_vector"] == "CVSS:3.0/AV:N/AC:H/PR:N/UI:N/S:U/C:H/I:H/A:H" and eternal["cvss_score"] == 8.1
    assert eternal["details"]["cves"] == [f"CVE-2017-014{n}" for n in range(3, 9)]
    assert eternal["details"]["plugin_id"] == "97833" and eternal["details"]["file_sha256"] == sha
    assert eternal["details"]["port"] == 445 and not eternal["details"]["credentialed"]
    # The credentialed patch audit: a local check, marked as such, on the host it was run against.
    patch = got[("scan.ithc_result", c["linux"][1], "nessus:185389 host")]
    assert patch["details"]["credentialed"] and "credentialed" in patch["details"]["evidence_basis"]
    assert patch["details"]["cves"] == ["CVE-2023-5363"]
    assert "libssl3_3.0.11-1~deb12u2" in _output(home, data["run"], patch)
    # The host outside every scope: reported, and its result kept.
    out = got[("scan.host_out_of_scope", f"host:{c['outside']}", "")]
    assert out["status"] == "fail" and c["outside"] in out["observed"]
    assert ("scan.ithc_result", f"host:{c['outside']}", "nessus:51192 tcp/443") in got
    # Informational plugins are counted, not findings; nothing of the other council leaks in.
    assert not any(k[2].startswith("nessus:19506") or k[2].startswith("nessus:10267") for k in got)
    other = "glenmoray" if council == "demo" else "demo"
    text = json.dumps(data)
    assert COUNCILS[other]["smb"][1] not in text and COUNCILS[other]["linux"][1] not in text
    # Stored exactly as printed, secrets nowhere; every failing finding is in the RAP.
    stored = _stored(home, data["run"])
    assert sorted(stored) == sorted(f["id"] for f in data["findings"])
    assert {i for i, f in stored.items() if f["status"] == "fail"} <= _rap(home, data["run"], council)
    with Store(home) as store:
        evidence = store.evidence_dir(data["run"])
    kept = [p for p in evidence.rglob("*") if p.is_file()]
    [results] = [p for p in kept if not p.name.startswith(".")]   # the store's own .estate-run.json aside
    assert results.name == "nessus-results.json" and json.loads(results.read_text())["sha256"] == sha
    assert all(ithc_files.PASSWORD.encode() not in p.read_bytes() for p in kept)
    assert ithc_files.PASSWORD not in text


@pytest.mark.parametrize("council", sorted(COUNCILS))
def test_an_openvas_report_becomes_stored_findings_and_rap_items(council: str, tmp_path: Path) -> None:
    c = COUNCILS[council]
    raw = ithc_files.openvas({"ssh": c["ssh"][0], "print": c["print"][0]}, c["outside"])
    path = tmp_path / "greenbone.xml"
    path.write_bytes(raw)
    home = tmp_path / "h"
    data = _import(path, home, council)
    assert data["format"] == "openvas" and data["hosts"] == 3
    got = {(f["check_id"], f["asset"], f["key"]): f for f in data["findings"]}
    ssh = got[("scan.ithc_result", c["ssh"][1], "openvas:1.3.6.1.4.1.25623.1.0.114673 tcp/22")]
    assert ssh["details"]["cves"] == ["CVE-2024-6387"] and ssh["severity"] == "high" and ssh["cvss_score"] == 8.1
    assert ssh["details"]["evidence_basis"] == "remote check (remote_banner)"
    assert "9.8p1" in _output(home, data["run"], ssh)
    assert ssh["remediation"] == "Update to version 9.8p1 or later."
    pkg = got[("scan.ithc_result", c["print"][1], "openvas:1.3.6.1.4.1.25623.1.1.2.2024.5778 host")]
    assert pkg["details"]["credentialed"] and pkg["severity"] == "high"
    assert pkg["details"]["cves"] == ["CVE-2024-47175", "CVE-2024-47176"]
    assert ("scan.host_out_of_scope", f"host:{c['outside']}", "") in got
    snmp = got[("scan.ithc_result", f"host:{c['outside']}", "openvas:1.3.6.1.4.1.25623.1.0.10264 udp/161")]
    assert ithc_files.PASSWORD not in json.dumps(snmp) and "********" in _output(home, data["run"], snmp)
    assert not any("105937" in k[2] for k in got)   # the Log result: evidence only
    stored = _stored(home, data["run"])
    assert sorted(stored) == sorted(f["id"] for f in data["findings"])
    assert {i for i, f in stored.items() if f["status"] == "fail"} <= _rap(home, data["run"], council)


HOSTILE = {
    "nessus-entities": b'<?xml version="1.0"?><!DOCTYPE NessusClientData_v2 [<!ENTITY a "aaaa">'
                       b'<!ENTITY b "&a;&a;&a;">]><NessusClientData_v2><Report>&b;</Report></NessusClientData_v2>',
    "nessus-external": b'<?xml version="1.0"?><!DOCTYPE NessusClientData_v2 [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
                       b'<NessusClientData_v2><Report><ReportHost name="10.10.30.20">&x;</ReportHost></Report>'
                       b'</NessusClientData_v2>',
    "nessus-truncated": ithc_files.nessus({"smb": "10.10.30.20", "linux": "10.10.30.60"}, "192.0.2.50")[:2000],
    "openvas-dtd": b'<?xml version="1.0"?><!DOCTYPE report SYSTEM "http://example.invalid/r.dtd"><report/>',
    "openvas-no-oid": b'<report><report><results><result><host>10.10.30.20</host><port>22/tcp</port><nvt/>'
                      b'</result></results></report></report>',
    "unknown-root": b'<?xml version="1.0"?><html><body/></html>',
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_files_are_refused_with_one_line_and_nothing_stored(name: str, tmp_path: Path) -> None:
    path = tmp_path / f"{name}.xml"
    path.write_bytes(HOSTILE[name])
    home = tmp_path / "h"
    result = CliRunner().invoke(app, ["scan", "import", str(path), "--home", str(home)])
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and path.name in lines[0] and "Traceback" not in result.output
    assert Store(home).runs() == []


def test_parsers_refuse_what_is_not_their_format() -> None:
    with pytest.raises(BadScanXml, match="not a Nessus v2 file"):
        nessus.parse(b"<report/>", source="x.nessus")
    with pytest.raises(BadScanXml, match="not an OpenVAS report"):
        openvas.parse(b"<NessusClientData_v2/>", source="x.xml")
    for root, kind in ((b"<nmaprun/>", "nmap"), (b"<NessusClientData_v2/>", "nessus"), (b"<report/>", "openvas"),
                       (b'\xef\xbb\xbf<?xml version="1.0"?>\n<!-- saved by hand -->\n<get_reports_response/>',
                        "openvas")):
        assert intake.detect(root, "f") == kind


def test_the_size_cap_holds_for_pipes_and_devices(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A device has no size to stat: /dev/zero is refused at the cap by the bounded read itself.
    result = CliRunner().invoke(app, ["scan", "import", "/dev/zero", "--home", str(tmp_path / "h")])
    assert result.exit_code == 2 and "64 MiB limit" in result.output
    # A pipe (a FIFO fed by a writer that never stops) and standard input, at a small cap.
    from security_checks.scan import nmapxml

    monkeypatch.setattr(nmapxml, "MAX_XML_BYTES", 64 * 1024)
    fifo = tmp_path / "scan.fifo"
    os.mkfifo(fifo)
    stop = threading.Event()

    def feed() -> None:
        try:
            with fifo.open("wb") as w:
                w.write(b"<?xml version='1.0'?><nmaprun>")
                while not stop.is_set():
                    w.write(b"<!-- pad -->" * 1000)
        except BrokenPipeError:
            pass

    writer = threading.Thread(target=feed, daemon=True)
    writer.start()
    result = CliRunner().invoke(app, ["scan", "import", str(fifo), "--home", str(tmp_path / "h")])
    stop.set()
    assert result.exit_code == 2 and "limit" in result.output and fifo.name in result.output
    big = ithc_files.nessus({"smb": "10.10.30.20", "linux": "10.10.30.60"}, "192.0.2.50") * 40
    result = CliRunner().invoke(app, ["scan", "import", "-", "--home", str(tmp_path / "h")], input=big)
    assert result.exit_code == 2 and "standard input" in result.output and "limit" in result.output
    assert Store(tmp_path / "h").runs() == []


def test_standard_input_imports_like_a_file(tmp_path: Path) -> None:
    raw = ithc_files.openvas({"ssh": "10.10.99.10", "print": "10.10.30.21"}, "198.51.100.7")
    proc = subprocess.run([str(REPO / ".venv" / "bin" / "estate"), "scan", "import", "-", "--home",
                           str(tmp_path / "h"), "--format", "json", "--fail-on", "none"], input=raw,
                          capture_output=True, check=False)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["file"] == "standard input" and data["sha256"] == hashlib.sha256(raw).hexdigest()
