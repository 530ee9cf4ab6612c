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
from infra.policy import network_rules as nr
from infra.policy import rules
from infra.policy.pack import RULES
from infra.policy.rules import PolicyResource, check_resource
from security_checks.checks import check
from security_checks.model.loader import EstateError, load_estate
from tests.infra_network.conftest import network_plan

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
            where = plan.violation_origin(v)
            assert where is not None, v
            out.append((Path(where[0]).name, where[1], v.message))
    return out


@pytest.mark.parametrize("check_id", ["infra.policy.log_retention", "infra.policy.firewall_threat_intel_deny",
                                      "infra.policy.guest_ssid_segregation",
                                      "infra.policy.untrusted_wifi_in_trusted_zone",
                                      "infra.policy.untrusted_wifi_to_sensitive"])
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
    estate, plan = planted
    found = blamed(plan, "infra.policy.firewall_threat_intel_deny")
    # Blamed on the line that chose the tier, not on azure.connectivity as a whole.
    tier_line = line_of(estate / "organisation.yaml", "firewall_tier: Basic")
    assert found == [("organisation.yaml", tier_line, found[0][2])] and "Basic" in found[0][2]


# ---- 3. a guest SSID bridged to the management VLAN or without client isolation ------------------


def _res(typ: str, name: str, props: dict[str, Any]) -> PolicyResource:
    return PolicyResource(type=typ, name=name, urn=f"urn:test::{name}", props=props, id=f"id-{name}")


SITE = _res(nr.MERAKI_NETWORK, "site-a", {"name": "site-a", "tags": [
    "vlan10-corporate", "vlan40-guest-wifi", "vlan50-public-wifi", "vlan99-management"]})


def _ssid(name: str, auth: str, vlan: int, isolation: bool) -> PolicyResource:
    return _res(nr.MERAKI_SSID, f"site-a-{name}", {
        "name": name, "networkId": "id-site-a", "authMode": auth, "defaultVlanId": vlan, "useVlanTagging": True,
        "lanIsolationEnabled": isolation})


def test_guest_ssid_on_management_vlan_or_without_isolation_is_caught() -> None:
    good = [SITE, _ssid("Guest", "psk", 40, True), _ssid("Free", "open-enhanced", 50, True),
            _ssid("Corp", "8021x-radius", 10, False), _ssid("Admin", "8021x-radius", 99, False)]
    assert list(nr.guest_ssid_segregation(good)) == []
    found = [(r.props["name"], m) for r, m in nr.guest_ssid_segregation([
        SITE, _ssid("Guest", "psk", 40, False), _ssid("Visitors", "psk", 99, True),
        _ssid("Free", "open", 99, True)])]
    assert [name for name, _ in found] == ["Guest", "Visitors", "Free"]
    assert "client isolation" in found[0][1]
    assert "management VLAN at site-a" in found[1][1] and "guest (pre-shared key)" in found[1][1]
    assert "public (open)" in found[2][1]


@pytest.mark.parametrize(("edit", "says"), [
    (("    vlan: guest\n    client_isolation: true", "    vlan: guest\n    client_isolation: false"),
     "no client isolation"),
    (("    vlan: guest\n", "    vlan: management\n"), "management VLAN"),
])
def test_planted_guest_ssid_fault_is_blamed_on_the_ssid_under_pulumi_mocks(
        tmp_path: Path, edit: tuple[str, str], says: str) -> None:
    estate = copy_demo(tmp_path / "estate", {"wifi.yaml": [edit]})
    plan = network_plan(estate)
    found = blamed(plan, "infra.policy.guest_ssid_segregation")
    entry = line_of(estate / "wifi.yaml", "- name: HDC-Guest")
    # One violation per site broadcasting the SSID, each blamed on the SSID's entry in wifi.yaml.
    broadcasts = [r for r in plan.by_type(nr.MERAKI_SSID) if r.inputs.get("name") == "HDC-Guest"]
    assert len(found) == len(broadcasts) > 1
    assert {(name, line) for name, line, _ in found} == {("wifi.yaml", entry)}
    assert all(says in message and "HDC-Guest" in message for _, _, message in found)


# ---- 4. a guest or public Wi-Fi VLAN placed in a trusted zone -------------------------------------


def _vpn_site(name: str, untrusted: str) -> PolicyResource:
    return _res(nr.VPN_SITE, f"vpn-{name}", {"addressSpace": {"addressPrefixes": ["10.11.0.0/16"]}, "tags": {
        "estate-role": "site", "estate-site": name, nr.UNTRUSTED_TAG: untrusted}})


def _allow(name: str, sources: list[str], dests: list[str]) -> PolicyResource:
    return _res(nr.RULE_COLLECTION_GROUP, "rules", {"ruleCollections": [{
        "name": "estate-private-flows", "action": {"type": "Allow"}, "rules": [{
            "ruleType": "NetworkRule", "name": name, "sourceAddresses": sources, "destinationAddresses": dests}]}]})


def test_guest_wifi_range_in_a_private_allow_rule_is_caught_on_its_site() -> None:
    site = _vpn_site("depot", "10.11.40.0/24 10.11.50.0/23")
    clean = [site, _allow("lob-revs-flows-tcp", ["10.11.10.0/24", "10.11.20.0/24"], ["10.200.1.0/24"])]
    assert list(nr.untrusted_wifi_in_trusted_zone(clean)) == []
    planted = [site, _allow("lob-revs-flows-tcp", ["10.11.10.0/24", "10.11.40.0/24"], ["10.200.1.0/24"])]
    ((res, message),) = nr.untrusted_wifi_in_trusted_zone(planted)
    assert res is site and "10.11.40.0/24" in message and "'lob-revs-flows-tcp'" in message
    # A wider source that takes the range in is the same fault.
    wider = [site, _allow("sites-to-dns", ["10.11.0.0/16"], ["10.100.4.0/28"])]
    assert {m.split(" is a source")[0] for _, m in nr.untrusted_wifi_in_trusted_zone(wider)} == {
        "depot's guest/public Wi-Fi range 10.11.40.0/24", "depot's guest/public Wi-Fi range 10.11.50.0/23"}
    # Towards the PSN it is psn_route_isolation's fault to report, not this rule's.
    psn = _res(nr.VPN_SITE, "vpn-psn", {"addressSpace": {"addressPrefixes": ["10.250.0.0/16"]},
                                        "tags": {"estate-role": "psn"}})
    assert list(nr.untrusted_wifi_in_trusted_zone([site, psn, _allow("to-psn", ["10.11.40.0/24"],
                                                                       ["10.250.1.0/24"])])) == []


def test_planted_guest_vlan_in_the_corporate_zone_is_blamed_on_its_site_under_pulumi_mocks(tmp_path: Path) -> None:
    edit = ("cidr: 10.11.40.0/24, zone: guest-wifi}", "cidr: 10.11.40.0/24, zone: corporate}")
    estate = copy_demo(tmp_path / "estate", {"sites.yaml": [edit]})
    plan = network_plan(estate)
    assert plan.loaded is not None
    site_index = next(i for i, s in enumerate(plan.loaded.estate.sites)
                      if any(v.cidr == "10.11.40.0/24" for v in s.vlans))
    where = plan.loaded.where(("sites", site_index, "ranges"))
    assert where is not None
    found = blamed(plan, "infra.policy.untrusted_wifi_in_trusted_zone")
    assert [(name, line) for name, line, _ in found] == [("sites.yaml", where[1])]
    assert "10.11.40.0/24" in found[0][2]


# ---- 5. guest or public Wi-Fi reaching a LOB system marked OFFICIAL-SENSITIVE ---------------------


def _spoke(name: str, space: str, classification: str) -> PolicyResource:
    return _res(T + "network:VirtualNetwork", f"vnet-{name}", {
        "addressSpace": {"addressPrefixes": [space]},
        "tags": {"system": name, "data-classification": classification}})


def test_guest_wifi_reaching_an_official_sensitive_spoke_is_caught_on_the_system() -> None:
    site = _vpn_site("depot", "10.11.40.0/24")
    revs = _spoke("revs-benefits", "10.200.1.0/24", "OFFICIAL-SENSITIVE")
    planning = _spoke("planning", "10.200.2.0/24", "OFFICIAL")
    to_planning = _allow("lob-planning-flows-tcp", ["10.11.40.0/24"], ["10.200.2.0/24"])
    assert list(nr.untrusted_wifi_to_sensitive([site, revs, planning, to_planning])) == []
    corporate_only = _allow("lob-revs-flows-tcp", ["10.11.10.0/24"], ["10.200.1.0/24"])
    assert list(nr.untrusted_wifi_to_sensitive([site, revs, corporate_only])) == []
    to_revs = _allow("lob-revs-flows-tcp", ["10.11.10.0/24", "10.11.40.0/24"], ["10.200.1.0/24"])
    ((res, message),) = nr.untrusted_wifi_to_sensitive([site, revs, planning, to_revs])
    assert res is revs and "OFFICIAL-SENSITIVE system revs-benefits" in message and "10.11.40.0/24" in message


def test_planted_guest_vlan_reaching_revenues_is_blamed_on_the_system_under_pulumi_mocks(
        tmp_path: Path) -> None:
    edit = ("cidr: 10.11.40.0/24, zone: guest-wifi}", "cidr: 10.11.40.0/24, zone: corporate}")
    estate = copy_demo(tmp_path / "estate", {"sites.yaml": [edit]})
    loaded = load_estate(estate, policy=False)
    plan = run_plan(loaded)
    sensitive = {lob.name: i for i, lob in enumerate(loaded.estate.lob_systems)
                 if lob.classification.value == "OFFICIAL-SENSITIVE" and lob.address_space
                 and lob.hosting.value != "saas" and "corporate" in lob.reachable_from}
    assert "revs-benefits" in sensitive
    found = blamed(plan, "infra.policy.untrusted_wifi_to_sensitive")
    lines = {where[1] for i in sensitive.values() if (where := loaded.where(("lob_systems", i))) is not None}
    assert len(lines) == len(sensitive)
    assert {(name, line) for name, line, _ in found} == {("lob_systems.yaml", line) for line in lines}
    assert all("10.11.40.0/24" in message for _, _, message in found)
    assert any("revs-benefits" in message for _, _, message in found)


# ---- 7. an over-broad public-sector-network prefix is blamed on the line that declares it ----------


def _psn_blamed(plan: Plan) -> list[tuple[str, int, str]]:
    out = []
    for v in evaluate(plan):
        if v.check_id == "infra.policy.psn_route_isolation":
            where = plan.violation_origin(v)
            assert where is not None, v
            out.append((Path(where[0]).name, where[1], v.message))
    return out


def test_an_over_broad_psn_prefix_is_blamed_on_its_own_line_under_pulumi_mocks(tmp_path: Path) -> None:
    edit = ("    psn: {provider: PSN Connect (fictional), public_ip: 192.0.2.70, bgp_asn: 65070, bandwidth_mbps: 100}",
            "    psn:\n      provider: PSN Connect (fictional)\n      public_ip: 192.0.2.70\n      bgp_asn: 65070\n"
            "      address_prefixes:\n        - 51.140.0.0/24\n        - 10.0.0.0/8\n")
    estate = copy_demo(tmp_path / "estate", {"organisation.yaml": [edit]})
    found = _psn_blamed(network_plan(estate))
    # One fault, one violation, on the line declaring 10.0.0.0/8 (not firewalls.yaml, not a Wi-Fi range).
    assert [(name, line) for name, line, _ in found] == [
        ("organisation.yaml", line_of(estate / "organisation.yaml", "- 10.0.0.0/8"))]
    message = found[0][2]
    assert message.startswith("PSN prefix 10.0.0.0/8 is too broad") and "Wi-Fi range 10.0.0.0/8" not in message
    assert "civic-centre's site range 10.10.0.0/16" in message or "and " in message


def test_a_too_broad_psn_prefix_is_caught_by_the_rule_and_named_for_the_council() -> None:
    psn = _res(nr.VPN_SITE, "vpn-psn", {"addressSpace": {"addressPrefixes": ["10.10.70.0/24", "10.0.0.0/8"]},
                                        "tags": {"estate-role": "psn", "estate-network": "SWAN"}})
    site = _vpn_site("depot", "10.11.40.0/24")
    found = list(nr.psn_route_isolation([psn, site]))
    assert [(r.name, r.subject) for r, _ in found] == [("vpn-psn", "10.0.0.0/8")]
    message = found[0][1]
    assert message.startswith("SWAN prefix 10.0.0.0/8 is too broad") and "PSN" not in message
    assert "depot's guest/public Wi-Fi range 10.11.40.0/24" in message
    # The DMZ range inside a site's summary is not too broad.
    assert list(nr.psn_route_isolation([_res(nr.VPN_SITE, "vpn-psn", {
        "addressSpace": {"addressPrefixes": ["10.11.70.0/24"]}, "tags": {"estate-role": "psn"}}), site])) == []


def test_second_estate_over_broad_swan_prefix_is_blamed_on_its_line_under_pulumi_mocks(tmp_path: Path) -> None:
    import shutil

    estate = tmp_path / "glenmoray"
    shutil.copytree(Path(__file__).resolve().parents[1] / "estates" / "glenmoray", estate)
    org = estate / "organisation.yaml"
    org.write_text(org.read_text().replace("address_prefixes: [172.22.0.0/16]",
                                           "address_prefixes: [172.22.0.0/16, 10.0.0.0/8]"))
    found = _psn_blamed(network_plan(estate))
    assert [(name, line) for name, line, _ in found] == [
        ("organisation.yaml", line_of(org, "address_prefixes: [172.22.0.0/16, 10.0.0.0/8]"))]
    assert found[0][2].startswith("SWAN prefix 10.0.0.0/8 is too broad") and "PSN" not in found[0][2]


# The PSN's side is also every VLAN in a psn zone (security_checks.network.reach.psn_side_origins), so a
# too-broad prefix there is blamed on that VLAN's cidr line. A VLAN has to fit inside its site's ranges
# and clear the site's other VLANs (security_checks/model/crossref.py), and sites' ranges clear each other
# and the Azure address spaces; so the one over-broad psn-zone VLAN that `estate validate` accepts is one
# that is a whole site range: here the DMZ given a civic-centre summary range of its own, which the civic
# centre's VPN site then advertises as the council's while the PSN's VPN site advertises it as the PSN's.
def test_an_over_broad_psn_zone_vlan_is_blamed_on_its_vlan_line_under_pulumi_mocks(tmp_path: Path) -> None:
    estate = copy_demo(tmp_path / "estate", {"sites.yaml": [
        ("    ranges: [10.10.0.0/16]\n", "    ranges: [10.10.0.0/16, 10.70.0.0/24]\n"),
        ("cidr: 10.10.70.0/24, zone: psn}", "cidr: 10.70.0.0/24, zone: psn}")]})
    load_estate(estate)   # as `estate validate` and a deployment load it: no problem to refuse
    found = _psn_blamed(network_plan(estate))
    # One violation, on the VLAN's cidr line: not the site's ranges line, not organisation.yaml's psn entry.
    assert [(name, line) for name, line, _ in found] == [
        ("sites.yaml", line_of(estate / "sites.yaml", "cidr: 10.70.0.0/24, zone: psn}"))]
    message = found[0][2]
    assert message.startswith("PSN prefix 10.70.0.0/24 is too broad")
    assert "civic-centre's site range 10.70.0.0/24" in message


# A psn-zone VLAN widened over the site's Wi-Fi VLANs never reaches a deployment: validation refuses it as
# overlapping VLANs, on the widened VLAN's line. `estate infra plan` leaves overlaps to the policy pack
# (policy=False), and there psn_route_isolation blames the same line.
def test_a_psn_zone_vlan_widened_over_wifi_is_refused_on_its_line_and_blamed_there_by_the_plan(
        tmp_path: Path) -> None:
    estate = copy_demo(tmp_path / "estate", {"sites.yaml": [
        ("cidr: 10.10.70.0/24, zone: psn}", "cidr: 10.10.32.0/19, zone: psn}")]})
    vlan_line = line_of(estate / "sites.yaml", "cidr: 10.10.32.0/19, zone: psn}")
    with pytest.raises(EstateError) as refused:
        load_estate(estate)
    problems = refused.value.problems
    assert {(Path(p.file).name, p.line) for p in problems} == {("sites.yaml", vlan_line)}
    assert {p.message for p in problems} == {"10.10.32.0/19 overlaps VLAN guest (10.10.40.0/24)",
                                             "10.10.32.0/19 overlaps VLAN public (10.10.50.0/23)",
                                             "10.10.32.0/19 overlaps VLAN iot (10.10.60.0/24)"}
    found = _psn_blamed(network_plan(estate))
    assert [(name, line) for name, line, _ in found] == [("sites.yaml", vlan_line)]
    assert found[0][2].startswith("PSN prefix 10.10.32.0/19 is too broad")
    assert "civic-centre's guest/public Wi-Fi range 10.10.40.0/24" in found[0][2]


# ---- 8. the secondary hub's resources are named for the council, whatever its PSN prefixes -------


@pytest.mark.slow
def test_the_secondary_hubs_resources_are_named_for_the_council_not_after_a_psn_prefix(tmp_path: Path) -> None:
    """A loop over the PSN prefixes once reused the name that held the council's short name, so the
    second hub's resources were called "10.10.70.0/24-ukwest-...": editing a PSN prefix would have
    renamed, and so replaced, the DR region's firewall, VPN gateway and routing intent."""
    estate = copy_demo(tmp_path / "estate", {"organisation.yaml": [("    secondary_hub: false",
                                                                    "    secondary_hub: true")]})
    loaded = load_estate(estate)
    short, region = loaded.estate.organisation.short_name, loaded.estate.azure.secondary_region
    names = [r.urn.rsplit("::", 1)[-1] for r in run_plan(loaded).resources]
    assert [n for n in names if "/" in n] == []
    assert f"{short}-{region}-breakout" in names and f"{short}-{region}-vpn" in names
    hub = [n for n in names if f"-{region}-breakout" in n or f"-{region}-vpn" in n]
    assert [n for n in hub if not n.startswith(f"{short}-{region}-")] == []
