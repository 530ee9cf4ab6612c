"""Authorised scope: refusals name the rule, happen before any packet, and cannot be turned off."""

from __future__ import annotations

import ipaddress
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import yaml
from typer.testing import CliRunner

from security_checks.cli.app import app
from security_checks.model.loader import load_estate
from security_checks.scan import engine, nmaprun
from security_checks.scan.scope import LONDON, ScopeRefused, authorise, in_window

ZoneUTC = ZoneInfo("UTC")
SUNDAY_NOON = datetime(2026, 11, 22, 12, 0, tzinfo=LONDON)
MONDAY_10 = datetime(2026, 11, 23, 10, 0, tzinfo=LONDON)
MONDAY_20 = datetime(2026, 11, 23, 20, 0, tzinfo=LONDON)


def test_outside_every_scope_is_refused(loaded):
    with pytest.raises(ScopeRefused, match="outside every scan scope"):
        authorise(loaded, ["192.168.1.10"])


def test_outside_the_named_scope_names_its_cidrs_and_line(loaded):
    with pytest.raises(ScopeRefused, match=r"outside scan scope 'lab'.*scan_scopes.yaml:\d+"):
        authorise(loaded, ["10.12.10.5"], scope_name="lab", netns="est-scan")


def test_inside_an_exclusion_is_refused_naming_the_exclusion(loaded):
    with pytest.raises(ScopeRefused, match=r"inside exclusion 10.10.20.0/24 of scan scope 'lab'"):
        authorise(loaded, ["10.10.20.7"], scope_name="lab", netns="est-scan")


def test_a_range_overlapping_an_exclusion_loses_the_excluded_part(loaded):
    auth = authorise(loaded, ["10.10.0.0/16"], scope_name="lab", netns="est-scan")
    assert not auth.allows("10.10.20.7")
    assert auth.allows("10.10.30.20")
    excluded = ipaddress.ip_network("10.10.20.0/24")
    assert not any(n.overlaps(excluded) for n in auth.networks)


def test_outside_the_time_window_is_refused(loaded):
    scope = loaded.estate.scope("civic-centre-internal")
    assert in_window(scope, MONDAY_20) and in_window(scope, SUNDAY_NOON)
    with pytest.raises(ScopeRefused, match=r"only in its windows.*Mon 10:00.*scan_scopes.yaml"):
        authorise(loaded, ["10.10.30.20"], scope_name="civic-centre-internal", when=MONDAY_10)


def test_time_windows_use_london_time_across_bst():
    from security_checks.model.schema import ScanScope

    scope = ScanScope.model_validate({"name": "w", "cidrs": ["10.10.0.0/16"], "authorised_by": "x",
                                      "authorised_on": "2026-01-01",
                                      "windows": [{"days": ["sat"], "start": "01:00", "end": "06:00"}]})
    # 00:30 UTC on a Saturday in July is 01:30 BST: inside; in January it is 00:30 GMT: outside.
    assert in_window(scope, datetime(2026, 7, 4, 0, 30, tzinfo=ZoneUTC))
    assert not in_window(scope, datetime(2026, 1, 3, 0, 30, tzinfo=ZoneUTC))


def test_past_expiry_is_refused(loaded):
    with pytest.raises(ScopeRefused, match=r"expired on 2027-09-30"):
        authorise(loaded, ["10.10.30.20"], scope_name="civic-centre-internal",
                  when=datetime(2027, 10, 2, 20, 0, tzinfo=LONDON))


def test_profile_deeper_than_the_scope_allows_is_refused(loaded):
    with pytest.raises(ScopeRefused, match=r"deeper than scan scope 'sites-quarterly'"):
        authorise(loaded, ["10.14.10.0/24"], scope_name="sites-quarterly", profile="deep",
                  when=datetime(2026, 11, 28, 2, 0, tzinfo=LONDON))


def test_lab_scopes_only_from_a_lab_namespace(loaded):
    with pytest.raises(ScopeRefused, match="only from inside the lab's scanner namespace"):
        authorise(loaded, ["10.10.30.20"], scope_name="lab")


def test_real_networks_only_from_a_scanner_host(loaded, monkeypatch):
    monkeypatch.delenv("ESTATE_SCANNER_HOST", raising=False)
    with pytest.raises(ScopeRefused, match="scanner host"):
        authorise(loaded, ["10.10.30.20"], scope_name="civic-centre-internal", when=SUNDAY_NOON)


def test_loopback_scope_holds_only_loopback(loaded):
    auth = authorise(loaded, ["127.0.0.1"], scope_name="selftest")
    assert auth.targets == ["127.0.0.1"]
    with pytest.raises(ScopeRefused):
        authorise(loaded, ["10.10.30.20"], scope_name="selftest")


def test_nmap_jobs_cannot_carry_unauthorised_targets(loaded):
    auth = authorise(loaded, ["127.0.0.1"], scope_name="selftest")
    with pytest.raises(ScopeRefused):
        nmaprun.build(auth, ["127.0.0.2"], tcp={80}, udp=set(), privileged=False)


def test_vulners_is_never_run(loaded):
    auth = authorise(loaded, ["127.0.0.1"], scope_name="selftest")
    [job] = nmaprun.build(auth, ["127.0.0.1"], tcp={80}, udp=set(), privileged=False)
    assert "vulners" not in " ".join(job.arguments)
    with pytest.raises(ValueError, match="vulners"):
        nmaprun.run(auth, nmaprun.NmapJob(["127.0.0.1"], [*job.arguments, "--script", "vulners"]))


def test_expired_scope_in_a_copied_estate_refuses_before_nmap_or_scapy(demo_copy: Path, tmp_path, monkeypatch):
    """The CLI refuses (exit 2, one line naming the rule) and neither nmap nor scapy is ever invoked."""
    data = yaml.safe_load((demo_copy / "scan_scopes.yaml").read_text())
    for s in data["scan_scopes"]:
        if s["name"] == "selftest":
            s["expires"] = "2026-09-30"
    (demo_copy / "scan_scopes.yaml").write_text(yaml.safe_dump(data))
    calls: list[object] = []
    import nmap

    monkeypatch.setattr(nmap, "PortScanner", lambda *a, **k: calls.append(("nmap", a)) or (_ for _ in ()).throw(
        AssertionError("nmap invoked")))
    monkeypatch.setattr(engine, "probe", lambda *a, **k: calls.append(("scapy", a)) or {})
    runner = CliRunner()
    result = runner.invoke(app, ["scan", "--scope", "selftest", "--target", "127.0.0.1", "--estate", str(demo_copy),
                                 "--home", str(tmp_path / "home")])
    assert result.exit_code == 2, result.output
    assert "expired on 2026-09-30" in result.output and "scan_scopes.yaml" in result.output
    assert calls == []
    assert load_estate(demo_copy).estate.scope("selftest").expires is not None


def test_cli_refuses_an_excluded_target_with_exit_2(tmp_path):
    result = CliRunner().invoke(app, ["scan", "--scope", "lab", "--target", "10.10.20.5", "--home",
                                      str(tmp_path / "h")])
    assert result.exit_code == 2
    assert "inside exclusion 10.10.20.0/24" in result.output

