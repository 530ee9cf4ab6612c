"""The policy rules see secrets unredacted; nothing printed or stored does.

The plan runner (infra/plan.py) keeps two views of each resource's inputs: `inputs`, redacted, for
the plan file and the console, and `policy_inputs`, unwrapped, for the rules. The demo plan is the
program under Pulumi's mock runtime (the engine and Azure cannot exist here).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from infra.plan import REDACTED, Plan, PlannedResource, evaluate, evaluate_plan
from infra.policy import network_rules as nr
from infra.policy.rules import Rule

KEY = "mock-password-hdc-vpn-psk-site-a-value"
LINK = {"name": "site-a-link", "sharedKey": KEY, "vpnConnectionProtocolType": "IKEv2", "ipsecPolicies": [{
    "ikeEncryption": "AES256", "ikeIntegrity": "SHA384", "dhGroup": "DHGroup2", "ipsecEncryption": "GCMAES256",
    "ipsecIntegrity": "GCMAES256", "pfsGroup": "ECP384"}]}


def _connection() -> PlannedResource:
    """A VPN connection whose only IPsec settings are on its link, beside the key (so all secret)."""
    return PlannedResource(type=nr.VPN_CONNECTION, name="conn-a", urn="urn:test::conn-a", parent=None,
                           inputs={"vpnLinkConnections": REDACTED}, id="id-conn-a", custom=True,
                           policy_inputs={"vpnLinkConnections": [LINK]})


def test_rules_see_inside_a_secret_property() -> None:
    plan = Plan(stack="test", resources=[_connection()])
    rules = [r for r in nr.RULES if r.check_id == "infra.policy.vpn_ikev2_proposals"]
    # Over the redacted inputs the weak DH group cannot be seen...
    (blind,) = evaluate_plan(plan, rules)
    assert "not visible" in blind.message
    # ...the plan's own evaluation reads the unwrapped link and names it.
    (seen,) = evaluate(plan, rules)
    assert seen.message.startswith("link 'site-a-link': dhGroup 'DHGroup2' is not approved")


def test_a_message_quoting_a_secret_is_masked() -> None:
    def quoting(resources: Iterable[Any]) -> Iterable[tuple[Any, str]]:
        for r in resources:
            for link in r.props.get("vpnLinkConnections") or []:
                link = link if isinstance(link, Mapping) else {}
                yield r, f"link {link.get('name')} has key {link.get('sharedKey')}"

    plan = Plan(stack="test", resources=[_connection()])
    (violation,) = evaluate(plan, [Rule("test.quoting", "quotes a secret", stack=quoting)])
    # The key is masked; the link's name (beside the key, not a secret) is not.
    assert violation.message == f"link site-a-link has key {REDACTED}"


def test_unwrapped_inputs_never_reach_the_plan_file_or_repr() -> None:
    conn = _connection()
    text = json.dumps(Plan(stack="test", resources=[conn]).to_json()) + repr(conn)
    assert KEY not in text and "policy_inputs" not in text


def test_demo_rules_read_generated_keys_the_plan_file_never_holds_under_pulumi_mocks(demo_plan: Plan) -> None:
    connections = demo_plan.by_type(nr.VPN_CONNECTION)
    assert connections and all(c.inputs["vpnLinkConnections"] == REDACTED for c in connections)
    for conn in connections:
        (link,) = conn.policy_inputs["vpnLinkConnections"]
        assert link["sharedKey"].startswith("mock-password-") and link["ipsecPolicies"][0]["dhGroup"] == "ECP384"
    assert "mock-password-" not in json.dumps(demo_plan.to_json(), default=str)
    assert [v for v in evaluate(demo_plan) if v.check_id.startswith("infra.policy.vpn")] == []
