"""The policy rules issue 14 lists under "Also": faults the estate could make with no violation.

Each rule is called directly over the properties a provider would receive (as CrossGuard hands
them over), then planted in a copy of the demo estate and built under Pulumi's mock runtime (the
SDK's stand-in for the engine, Azure and the Meraki dashboard), so the violation is shown to come
out of the real program, blamed on the estate file:line it was built from.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from infra.plan import Plan, evaluate, run_plan
from infra.policy import rules
from infra.policy.pack import RULES
from infra.policy.rules import check_resource
from security_checks.checks import check
from security_checks.model.loader import load_estate

from .conftest import copy_demo

T = "azure-native:"


def messages(check_id: str, type_token: str, props: dict[str, Any]) -> list[str]:
    return [m for rule, m in check_resource(RULES, type_token, props) if rule.check_id == check_id]


def line_of(path: Path, text: str) -> int:
    """The 1-based line of `text` in `path` (exactly one)."""
    hits = [i for i, line in enumerate(path.read_text().splitlines(), 1) if text in line]
    assert len(hits) == 1, (path, text, hits)
    return hits[0]


def blamed(plan: Plan, check_id: str) -> list[tuple[str, int, str]]:
    """(estate file name, line, message) of each violation of `check_id`."""
    out = []
    for v in evaluate(plan):
        if v.check_id == check_id:
            r = plan.by_urn(v.urn)
            where = plan.origin(r) if r is not None else None
            assert where is not None, v
            out.append((Path(where[0]).name, where[1], v.message))
    return out


@pytest.mark.parametrize("check_id", ["infra.policy.log_retention", "infra.policy.firewall_threat_intel_deny"])
def test_each_rule_is_registered_with_its_metadata(check_id: str) -> None:
    assert check_id in {r.check_id for r in RULES}
    assert check(check_id).remediation


# ---- 1. log retention ----------------------------------------------------------------------------


def test_log_retention_below_a_year_is_caught() -> None:
    ws = T + "operationalinsights:Workspace"
    assert messages("infra.policy.log_retention", ws, {"retentionInDays": 365}) == []
    assert messages("infra.policy.log_retention", ws, {"retentionInDays": 730}) == []
    (short,) = messages("infra.policy.log_retention", ws, {"retentionInDays": 90})
    assert "90 days" in short and str(rules.MIN_LOG_RETENTION_DAYS) in short
    # Azure's default when the program sets nothing is 30 days.
    (unset,) = messages("infra.policy.log_retention", ws, {})
    assert "30 days" in unset


# ---- 2. Azure Firewall Basic where threat intelligence must deny ---------------------------------


def test_firewall_policy_must_deny_known_malicious_traffic() -> None:
    fwp = T + "network:FirewallPolicy"
    check_id = "infra.policy.firewall_threat_intel_deny"
    assert messages(check_id, fwp, {"sku": {"tier": "Standard"}, "threatIntelMode": "Deny"}) == []
    assert messages(check_id, fwp, {"sku": {"tier": "Premium"}, "threatIntelMode": "Deny"}) == []
    (basic,) = messages(check_id, fwp, {"sku": {"tier": "Basic"}, "threatIntelMode": "Alert"})
    assert "Basic" in basic
    # Basic with Deny written anyway: Azure refuses or ignores it; still not a denying firewall.
    assert messages(check_id, fwp, {"sku": {"tier": "Basic"}, "threatIntelMode": "Deny"})
    (alert,) = messages(check_id, fwp, {"sku": {"tier": "Standard"}, "threatIntelMode": "Alert"})
    assert "Alert" in alert


# ---- planted in the demo estate, under Pulumi's mock runtime --------------------------------------

PLANTED = {"organisation.yaml": [
    ("  log_retention_days: 365", "  log_retention_days: 90"),
    ("    firewall_tier: Standard", "    firewall_tier: Basic"),
    ("    breakout_allowed_categories: [Business, Government, News, Education, ComputersAndTechnology]\n", ""),
]}


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Plan]:
    estate = copy_demo(tmp_path_factory.mktemp("also") / "estate", PLANTED)
    return estate, run_plan(load_estate(estate, policy=False))


def test_demo_breaks_neither_rule(demo_plan: Plan) -> None:
    ids = {v.check_id for v in evaluate(demo_plan)}
    assert not ids & {"infra.policy.log_retention", "infra.policy.firewall_threat_intel_deny"}


def test_planted_short_log_retention_is_blamed_on_its_line(planted: tuple[Path, Plan]) -> None:
    estate, plan = planted
    found = blamed(plan, "infra.policy.log_retention")
    assert found == [("organisation.yaml", line_of(estate / "organisation.yaml", "log_retention_days: 90"),
                      found[0][2])]
    assert "90 days" in found[0][2]


def test_planted_basic_firewall_is_caught_under_pulumi_mocks(planted: tuple[Path, Plan]) -> None:
    _estate, plan = planted
    found = blamed(plan, "infra.policy.firewall_threat_intel_deny")
    # The program records the firewall policy as built from `azure.connectivity` (infra/wan.py), so
    # that is the entry blamed; the message names the tier.
    assert plan.loaded is not None
    where = plan.loaded.where(("azure", "connectivity"))
    assert where is not None
    assert found == [("organisation.yaml", where[1], found[0][2])] and "Basic" in found[0][2]
