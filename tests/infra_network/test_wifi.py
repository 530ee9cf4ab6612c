"""Wi-Fi on Meraki and the generated secrets, under Pulumi's mock runtime (stands in for the engine,
the Meraki dashboard and Azure Key Vault)."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from infra import identity, wifi
from infra.plan import REDACTED
from security_checks.model.loader import EstateError, load_estate

from .conftest import DEMO, TODAY, EngineView, copy_demo

SSID = "meraki:networks/wirelessSsids:WirelessSsids"


def _ssids_by_site(view: EngineView) -> dict[str, dict[str, Any]]:
    networks = {f"/subscriptions/00000000-0000-0000-0000-000000000000/providers/Microsoft.networks/base/base/{r.name}":
                r.inputs["name"] for r in view.by_type("networks/base:base")}
    out: dict[str, dict[str, Any]] = {}
    for r in view.by_type("wirelessSsids:WirelessSsids"):
        site = networks[r.inputs["networkId"]].removeprefix("hdc-")
        out.setdefault(site, {})[r.inputs["name"]] = r.inputs
    return out


def test_each_site_gets_its_ssids_on_its_own_vlans_under_meraki_mocks(demo_engine: EngineView) -> None:
    estate = load_estate(DEMO).estate
    by_site = _ssids_by_site(demo_engine)
    expected = {s.name: {ssid.name for ssid in estate.ssids if s in estate.ssid_sites(ssid)} for s in estate.sites}
    assert {site: set(ssids) for site, ssids in by_site.items()} == {k: v for k, v in expected.items() if v}
    for site in estate.sites:
        vlan_ids = {v.name: v.id for v in site.vlans}
        for ssid in estate.ssids:
            if ssid.name in by_site.get(site.name, {}):
                got = by_site[site.name][ssid.name]
                assert got["defaultVlanId"] == vlan_ids[ssid.vlan]
                assert got["useVlanTagging"] is True and got["ipAssignmentMode"] == "Bridge mode"
    # The Meraki network carries the site's VLAN plan for the policy pack.
    civic = next(r for r in demo_engine.by_type("networks/base:base") if r.inputs["name"] == "hdc-civic-centre")
    assert {"vlan10-corporate", "vlan50-public-wifi", "vlan70-psn-dmz"} <= set(civic.inputs["tags"])


def test_corporate_public_and_guest_ssid_security_under_meraki_mocks(demo_engine: EngineView) -> None:
    civic = _ssids_by_site(demo_engine)["civic-centre"]
    corporate, guest, public = civic["HDC-Corporate"], civic["HDC-Guest"], civic["Harrowdale Free WiFi"]

    assert corporate["authMode"] == "8021x-radius" and corporate["wpaEncryptionMode"] == "WPA3 Transition Mode"
    assert "psk" not in corporate
    hosts = [s["host"] for s in corporate["radiusServers"]]
    assert hosts == list(identity.nps_addresses(load_estate(DEMO).estate).values()) == ["10.100.8.10", "10.100.8.11"]
    assert {s["secret"] for s in corporate["radiusServers"]} == {"generated:hdc-radius-shared-secret-value"}

    assert public["authMode"] == "open-enhanced" and public["lanIsolationEnabled"] is True
    assert public["splashPage"] == "Click-through splash page"
    assert public["perClientBandwidthLimitDown"] == 5000
    # Content filtering is an MX appliance feature: nothing on these wireless-only networks claims it.
    assert "adultContentFilteringEnabled" not in public

    assert guest["authMode"] == "psk" and guest["lanIsolationEnabled"] is True
    assert guest["psk"] == "generated:hdc-wifi-psk-1-value"


def test_splash_terms_and_group_policies_under_meraki_mocks(demo_engine: EngineView) -> None:
    splash = demo_engine.by_type("wirelessSsidsSplashSettings:WirelessSsidsSplashSettings")
    assert splash and all("https://www.harrowdale.gov.uk/wifi-terms" in s.inputs["welcomeMessage"] for s in splash)
    assert all(s.inputs["blockAllTrafficBeforeSignOn"] is True for s in splash)
    policies = demo_engine.by_type("groupPolicies:GroupPolicies")
    public = [p for p in policies if p.inputs["name"].startswith("public-wifi")]
    assert public and all(p.inputs["bandwidth"]["bandwidthLimits"]["limitDown"] == 5000 for p in public)
    assert all("contentFiltering" not in p.inputs for p in policies)
    assert all(p.inputs["vlanTagging"]["vlanId"] == "50" for p in public)
    bound = demo_engine.by_type("wirelessSsidsDeviceTypeGroupPolicies:WirelessSsidsDeviceTypeGroupPolicies")
    assert len(bound) == len(policies)


def test_generated_keys_reach_key_vault_and_travel_only_as_secrets_under_pulumi_mocks(
        demo_engine: EngineView) -> None:
    secrets = {r.inputs["secretName"]: r for r in demo_engine.by_type("keyvault:Secret")}
    # One VPN key per site and the PSN, one guest Wi-Fi key, the RADIUS secret, two NPS admins.
    estate = load_estate(DEMO).estate
    assert {f"hdc-vpn-psk-{s.name}" for s in estate.sites} | {"hdc-vpn-psk-psn", "hdc-wifi-psk-1",
                                                               "hdc-radius-shared-secret"} <= set(secrets)
    vpn = secrets["hdc-vpn-psk-civic-centre"]
    assert vpn.inputs["properties"]["value"] == "generated:hdc-vpn-psk-civic-centre-value"
    assert "properties" in vpn.secret_keys
    conn = next(r for r in demo_engine.by_type("network:VpnConnection")
                if r.inputs["connectionName"] == "vcn-hdc-civic-centre-prod-uks")
    assert conn.inputs["vpnLinkConnections"][0]["sharedKey"] == "generated:hdc-vpn-psk-civic-centre-value"
    assert "vpnLinkConnections" in conn.secret_keys
    for r in demo_engine.by_type(SSID):
        if "psk" in r.inputs:
            assert "psk" in r.secret_keys
        if "radiusServers" in r.inputs:
            assert "radiusServers" in r.secret_keys
    vm = next(r for r in demo_engine.by_type("compute:VirtualMachine") if r.name.endswith("nps-01"))
    assert "osProfile" in vm.secret_keys


def test_plan_output_never_contains_a_key(demo_plan: Any) -> None:
    text = json.dumps(demo_plan.to_json())
    guests = [r for r in demo_plan.by_type(SSID) if r.inputs.get("authMode") == "psk"]
    assert guests and all(r.inputs["psk"] == REDACTED for r in guests)
    assert "generated:" not in text and '"sharedKey"' not in text and '"secret":' not in text


def test_guest_key_rotates_by_period() -> None:
    assert wifi.rotation_period(date(2026, 11, 22), 30) == wifi.rotation_period(date(2026, 11, 22), 30)
    periods = {wifi.rotation_period(date.fromordinal(TODAY.toordinal() + d), 30) for d in range(30)}
    assert len(periods) == 2          # 30 consecutive days span exactly one period boundary
    first = date.fromisoformat(min(periods))
    assert wifi.rotation_period(first, 30) == first.isoformat()
    assert wifi.rotation_period(date.fromordinal(first.toordinal() + 29), 30) == first.isoformat()
    assert wifi.rotation_period(date.fromordinal(first.toordinal() + 30), 30) != first.isoformat()


def test_guest_key_keepers_hold_the_rotation_period_under_pulumi_mocks(demo_engine: EngineView) -> None:
    (pw,) = [r for r in demo_engine.by_type("randomPassword:RandomPassword") if r.name == "hdc-wifi-psk-1-value"]
    assert pw.inputs["keepers"] == {"ssid": "HDC-Guest", "rotation-period": wifi.rotation_period(TODAY, 30)}


def test_a_key_cannot_be_written_into_the_estate(tmp_path: Path) -> None:
    estate_dir = copy_demo(tmp_path / "estate", {"wifi.yaml": [
        ("    psk_rotation_days: 30\n", "    psk_rotation_days: 30\n    psk: hunter2-visitors\n")]})
    with pytest.raises(EstateError) as exc:
        load_estate(estate_dir)
    assert any("psk" in str(p) and "wifi.yaml" in str(p) for p in exc.value.problems)


def test_content_filtering_is_said_plainly_not_enforced_on_wireless_only_networks_under_meraki_mocks(
        demo_engine: EngineView) -> None:
    # Meraki content filtering (blocked URL categories) is an MX security-appliance feature; on a
    # wireless-only network a group policy's content filtering does nothing. The plan says so instead.
    from infra.wifi import CONTENT_FILTERING_NOT_ENFORCED

    networks = demo_engine.by_type("networks/base:base")
    assert networks and all(n.inputs["productTypes"] == ["wireless"] for n in networks)
    flagged = [n for n in networks if CONTENT_FILTERING_NOT_ENFORCED in n.inputs["tags"]]
    assert flagged and all("Content filtering is not enforced" in n.inputs["notes"] for n in flagged)

