"""`estate infra plan / preview / up` (the `infra-plan` step itself: test_infra_plan.py).

The plan runs the program under Pulumi's mock runtime (standing in for the engine and ARM); the
planted-violation estate is a copy of the demo with three edits a reviewer might miss.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from security_checks.cli.app import app
from security_checks.cli.infra import missing_prerequisites
from security_checks.findings import Status
from security_checks.store import Store

from .conftest import copy_demo

runner = CliRunner()

PLANTED = {"lob_systems.yaml": [
    # a system in a non-UK region
    ("owner: Head of Planning, tier: tier-2, cost_centre: PLACE-PLAN,",
     "owner: Head of Planning, tier: tier-2, cost_centre: PLACE-PLAN, region: westeurope,"),
    # an untagged resource: no cost centre to tag the intranet's resources with
    ("tier: tier-3, cost_centre: ICT-DIGITAL, address_space: 10.200.11.0/24",
     "tier: tier-3, cost_centre: '', address_space: 10.200.11.0/24"),
    # a public IP on a corp VM
    ("address_space: 10.200.1.0/24, reachable_from: [corporate, psn],",
     "address_space: 10.200.1.0/24, reachable_from: [corporate, psn], public_ip: true,"),
]}


def _line_of(path: Path, text: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if text in line)


@pytest.mark.slow
def test_plan_names_each_planted_violation_and_exits_1_under_pulumi_mocks(tmp_path: Path) -> None:
    estate = copy_demo(tmp_path / "estate", PLANTED)
    result = runner.invoke(app, ["infra", "plan", "--estate", str(estate), "--home", str(tmp_path / "home")])
    assert result.exit_code == 1, result.output
    out = result.stdout   # the plan and its violations: the result, on stdout
    lob_file = estate / "lob_systems.yaml"
    lines = [ln for ln in out.splitlines() if ln.strip().startswith("infra.policy.")]
    # Each names its estate file:line relative to the estate directory, as the stored findings do.
    planning = f"(lob_systems.yaml:{_line_of(lob_file, 'name: planning')})"
    assert any(ln.strip().startswith("infra.policy.allowed_locations") and "planning-vnet" in ln and planning in ln
               and "westeurope" in ln for ln in lines), out
    intranet = f"(lob_systems.yaml:{_line_of(lob_file, 'name: intranet')})"
    assert any(ln.strip().startswith("infra.policy.required_tags") and "intranet-" in ln and intranet in ln
               and "cost-centre" in ln for ln in lines), out
    revs = f"(lob_systems.yaml:{_line_of(lob_file, 'name: revs-benefits')})"
    assert any(ln.strip().startswith("infra.policy.no_public_ip_corp") and "revs-benefits-pip-01" in ln
               and revs in ln for ln in lines), out
    # Only the planted problems: nothing else in the estate is flagged.
    assert {ln.split()[0] for ln in lines} == {"infra.policy.allowed_locations", "infra.policy.required_tags",
                                                "infra.policy.no_public_ip_corp"}
    # The run is stored whole, kind infra-plan, with the plan as evidence and the violations as findings.
    store = Store(tmp_path / "home")
    run = store.get_run(kind="infra-plan")
    assert run is not None
    findings = store.findings(run.id)
    failing = [f for f in findings if f.status is Status.FAIL]
    assert {f.check_id for f in failing} == {"infra.policy.allowed_locations", "infra.policy.required_tags",
                                             "infra.policy.no_public_ip_corp"}
    assert all(f.details["estate_file"] == "lob_systems.yaml" for f in failing)
    assert str(tmp_path) not in json.dumps([f.model_dump(mode="json") for f in findings])
    plan = json.loads((store.evidence_dir(run.id) / "infra-plan" / "plan.json").read_text())
    # One finding per planted fault, on the system at fault, listing every resource it shows on.
    assert sorted((f.check_id, f.asset) for f in failing) == [
        ("infra.policy.allowed_locations", "lob:planning"), ("infra.policy.no_public_ip_corp", "lob:revs-benefits"),
        ("infra.policy.required_tags", "lob:intranet")]
    # The terminal shows the first violations only (registration order varies); the NIC is in the store.
    assert any(r["resource"] == "revs-benefits-nic-01" for f in failing
               if f.check_id == "infra.policy.no_public_ip_corp" for r in f.details["resources"])
    listed = sorted((f.check_id, r["urn"], r["message"]) for f in failing for r in f.details["resources"])
    assert listed == sorted({(v["check_id"], v["urn"], v["message"]) for v in plan["violations"]})
    assert len(plan["violations"]) > len(failing)
    assert all(f.evidence and f.evidence[0].path == "infra-plan/plan.json" for f in findings)


@pytest.mark.slow
def test_plan_json_on_the_demo_lists_tenancy_and_27_systems_and_exits_0_under_pulumi_mocks(tmp_path: Path) -> None:
    result = runner.invoke(app, ["infra", "plan", "--format", "json", "--home", str(tmp_path / "home")])
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["violations"] == []
    assert doc["counts"]["estate:lob:System"] == 27
    assert doc["counts"]["azure-native:management:ManagementGroup"] == 12
    assert doc["resource_count"] == len(doc["resources"]) == sum(doc["counts"].values())
    first = doc["resources"][0]
    assert set(first) >= {"type", "name", "urn", "parent", "inputs"}
    with sqlite3.connect(tmp_path / "home" / "estate.db") as db:
        kinds = [r[0] for r in db.execute("SELECT kind FROM runs")]
    assert kinds == ["infra-plan"]


def test_plan_refuses_an_unknown_stack_with_one_line_and_exit_2(tmp_path: Path) -> None:
    result = runner.invoke(app, ["infra", "plan", "--stack", "nosuch", "--home", str(tmp_path / "home")])
    assert result.exit_code == 2
    assert "Pulumi.nosuch.yaml: no such stack file" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "home").exists()


@pytest.mark.slow
def test_plan_of_an_estate_without_a_corp_subscription_is_bad_input(tmp_path: Path) -> None:
    estate = copy_demo(tmp_path / "estate", {"organisation.yaml": [
        ("    - {name: lz-corp-prod, id: 0a1b2c3d-0005-4000-8000-000000000005, placement: corp, "
         "cost_centre: ICT-LOB}\n", "")]})
    result = runner.invoke(app, ["infra", "plan", "--estate", str(estate), "--home", str(tmp_path / "home")])
    assert result.exit_code == 2, result.output
    assert "no subscription named or placed 'corp'" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("action", ["preview", "up"])
def test_preview_and_up_say_what_is_missing_without_cli_or_azure(action: str, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    monkeypatch.setenv("HOME", str(tmp_path))
    for var in ("ARM_CLIENT_ID", "ARM_CLIENT_SECRET", "ARM_USE_OIDC", "ARM_USE_MSI"):
        monkeypatch.delenv(var, raising=False)
    result = runner.invoke(app, ["infra", action, "--stack", "production", "--yes"] if action == "up"
                           else ["infra", action, "--stack", "production"])
    assert result.exit_code == 2
    message = " ".join(result.stderr.split())
    assert "missing the Pulumi CLI (install: curl -fsSL https://get.pulumi.com | sh" in message
    assert "Azure credentials (run `az login`" in message
    assert message.count("error:") == 1


def test_prerequisites_found_when_cli_and_service_principal_exist(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "pulumi"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    env = {"PATH": str(bin_dir), "ARM_CLIENT_ID": "x", "ARM_USE_OIDC": "true"}
    assert missing_prerequisites(env, home=tmp_path) == []
    profile = tmp_path / ".azure" / "azureProfile.json"
    profile.parent.mkdir()
    profile.write_text(json.dumps({"subscriptions": [{"id": "s"}]}))
    assert missing_prerequisites({"PATH": str(bin_dir)}, home=tmp_path) == []
    assert len(missing_prerequisites({"PATH": str(tmp_path / "none")}, home=tmp_path / "nohome")) == 2
