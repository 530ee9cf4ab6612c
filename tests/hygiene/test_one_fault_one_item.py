"""One fault, one item: a misconfiguration in the estate that shows on every resource built from it is
ONE finding and ONE Remediation Action Plan item, on the estate's name for the thing at fault, listing
every affected resource; and the board report's top risks are distinct faults.

The plan runs the Pulumi program under Pulumi's mock runtime (standing in for the engine and Azure
Resource Manager) in its own process, through the real runner, as `estate infra plan` runs it.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from security_checks.findings import Finding
from security_checks.infra_plan import PLAN_EVIDENCE, asset_for, to_findings
from security_checks.jobs import INFRA
from security_checks.model.loader import LoadedEstate, load_estate
from security_checks.report.context import build
from security_checks.report.pdf import TOP_RISKS, render_html
from security_checks.runner import Runner, RunOutcome
from security_checks.store import Store
from tests.estate_copy import copy_demo

TODAY = date(2026, 12, 2)
PLANTED = {
    # One spoke in a non-UK region: every resource of the planning system is outside the UK.
    "lob_systems.yaml": [("owner: Head of Planning, tier: tier-2, cost_centre: PLACE-PLAN,",
                          "owner: Head of Planning, tier: tier-2, cost_centre: PLACE-PLAN, region: westeurope,")],
    # One SSID setting, repeated by the program at every site: the public SSID without isolation.
    "wifi.yaml": [("    vlan: public\n    client_isolation: true\n",
                   "    vlan: public\n    client_isolation: false\n")],
}
REGION = "infra.policy.allowed_locations"
ISOLATION = "infra.policy.public_ssid_isolation"


def _line_of(path: Path, text: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if text in line)


def _run(loaded: LoadedEstate, home: Path) -> tuple[RunOutcome, dict[str, Any]]:
    outcome = Runner(loaded, home, today=TODAY).run(INFRA, options={"stack": "demo"})
    with Store(home) as store:
        plan = json.loads((store.evidence_dir(outcome.run.id) / PLAN_EVIDENCE).read_text())
    return outcome, plan


@pytest.mark.slow
def test_a_non_uk_spoke_and_an_ssid_at_every_site_are_one_finding_and_one_rap_item_each_under_pulumi_mocks(
        tmp_path: Path) -> None:
    estate = copy_demo(tmp_path / "estate", PLANTED)
    loaded = load_estate(estate)
    home = tmp_path / "home"
    outcome, plan = _run(loaded, home)

    violations = plan["violations"]
    by_rule = {c: {(v["urn"], v["message"]) for v in violations if v["check_id"] == c} for c in (REGION, ISOLATION)}
    # What one finding per violation made of these two faults before: many findings, many RAP items.
    (public,) = [s for s in loaded.estate.ssids if s.name == "Harrowdale Free WiFi"]
    assert len(by_rule[REGION]) == 10 and len(by_rule[ISOLATION]) == len(loaded.estate.ssid_sites(public)) == 7
    assert {v["check_id"] for v in violations} == {REGION, ISOLATION}

    failing = [f for f in outcome.findings if f.failing]
    assert sorted((f.check_id, f.asset) for f in failing) == [
        (REGION, "lob:planning"), (ISOLATION, "ssid:Harrowdale Free WiFi")]
    region = next(f for f in failing if f.check_id == REGION)
    lobs = estate / "lob_systems.yaml"
    # The estate's file relative to its directory: the plan's child process was given it resolved.
    assert (region.details["estate_file"], region.details["estate_line"]) == (
        "lob_systems.yaml", _line_of(lobs, "name: planning,"))
    assert region.details["owner"] == "Head of Planning" and region.details["lob"] == "planning"
    assert "10 planned resource(s)" in region.observed
    assert f"(from lob_systems.yaml:{region.details['estate_line']})" in region.observed
    for f in failing:
        # Every affected resource is listed, once.
        listed = {(r["urn"], r["message"]) for r in f.details["resources"]}
        assert listed == by_rule[f.check_id]
        assert f.details["resource_count"] == len(listed)
        assert {r["asset"] for r in f.details["resources"]} == {
            asset_for(v["resource_type"], v["resource"]) for v in violations if v["check_id"] == f.check_id}

    with Store(home) as store:
        items = store.rap_items()
        data = build(store, outcome.run.id)
    assert sorted((i.check_id, i.asset, i.status) for i in items) == [
        (REGION, "lob:planning", "open"), (ISOLATION, "ssid:Harrowdale Free WiFi", "open")]
    # The RAP owner of a LOB system's fault is its information asset owner, from the estate.
    assert next(i for i in items if i.check_id == REGION).owner == "Head of Planning"
    # The board report's top risks: distinct faults, not one fault many times.
    top = data.open_failing[:TOP_RISKS]
    assert sorted(f.id for f in top) == sorted(f.id for f in failing)
    html = render_html(data)
    assert html.count("lob:planning") >= 1 and "azure:" not in html.split("Top risks", 1)[1].split("</table>", 1)[0]

    # The next run finds the same faults under the same ids: the items are seen again, not reopened.
    again, _ = _run(loaded, home)
    assert {f.id for f in again.findings if f.failing} == {f.id for f in failing}
    assert again.rap["opened"] == 0 and again.rap["unchanged"] == 2


def test_ids_follow_the_cause_not_the_order_the_engine_registered_resources_in(tmp_path: Path) -> None:
    estate = copy_demo(tmp_path / "estate")
    loaded = load_estate(estate)
    lobs = estate / "lob_systems.yaml"
    line = _line_of(lobs, "name: planning,")

    def violation(name: str, kind: str, message: str = "location 'westeurope' is outside the UK regions") -> dict[
            str, Any]:
        return {"check_id": REGION, "resource_type": f"azure-native:{kind}", "resource": name, "urn": f"urn:{name}",
                "message": message, "estate_file": "lob_systems.yaml", "estate_line": line}

    def doc(violations: list[dict[str, Any]]) -> dict[str, Any]:
        return {"stack": "demo", "resource_count": 3, "counts": {}, "violations": violations,
                "resources": [{"urn": v["urn"], "type": v["resource_type"], "name": v["resource"], "parent": None,
                               "inputs": {"tags": {"system": "planning"}}} for v in violations],
                "rules": [{"check_id": REGION, "description": "UK only"}]}

    vs = [violation("planning-rg", "resources:ResourceGroup"), violation("planning-kv", "keyvault:Vault"),
          violation("planning-kv", "keyvault:Vault")]     # a rule may see a resource twice: listed once
    one: list[Finding] = [f for f in to_findings(doc(vs), loaded) if f.failing]
    other = [f for f in to_findings(doc(list(reversed(vs))), loaded) if f.failing]
    assert [f.id for f in one] == [f.id for f in other] and len(one) == 1
    assert one[0].model_dump(exclude={"first_seen", "last_seen"}) == other[0].model_dump(
        exclude={"first_seen", "last_seen"})
    assert [r["resource"] for r in one[0].details["resources"]] == ["planning-kv", "planning-rg"]
