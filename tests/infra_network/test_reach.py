"""The network facts (security_checks/network/reach.py): one derivation the program, the scans and
the diagram share. Pure functions of the demo estate: no Pulumi, no scanner."""

from __future__ import annotations

import ipaddress
import subprocess
import sys

from infra import lob
from security_checks.model.loader import load_estate
from security_checks.network import reach
from security_checks.network.policy import Policy

from .conftest import DEMO, REPO


def test_zone_prefixes_are_the_vlans_and_for_the_cloud_zone_the_lob_spokes() -> None:
    estate = load_estate(DEMO).estate
    zones = reach.zone_prefix_map(estate)
    spokes = [lob_.address_space for lob_ in estate.lob_systems if lob_.address_space]
    assert spokes and zones["azure"] == spokes                        # `azure` is the demo's cloud zone
    assert zones["corporate"] == [v.cidr for _, v in estate.vlans_in_zone("corporate")]
    for zone in (*zones, "internet", "nosuch"):
        assert reach.zone_prefixes(estate, zone) == zones.get(zone, [])
    # The scans' firewall policy places addresses by the same map.
    policy = Policy(estate)
    assert policy.zone_of(str(ipaddress.ip_network(spokes[0]).network_address + 10)) == "azure"
    assert policy.zone_of("8.8.8.8") == "internet"


def test_the_privatelink_zones_are_one_table_for_wan_and_lob_systems() -> None:
    assert lob.PRIVATE_ZONES == {"sites": "privatelink.azurewebsites.net",
                                 "sqlServer": "privatelink.database.windows.net",
                                 "vault": "privatelink.vaultcore.azure.net",
                                 "AzureSiteRecovery": "privatelink.siterecovery.windowsazure.com"}
    assert set(reach.PRIVATE_LINK_GROUPS) == set(reach.PRIVATE_DNS_ZONES)
    estate = load_estate(DEMO).estate
    assert set(reach.private_dns_zones(estate).values()) <= set(reach.PRIVATE_DNS_ZONES.values())


def test_the_network_facts_load_without_the_pulumi_program_or_sdk() -> None:
    code = ("import sys, security_checks.network.reach, security_checks.network.policy, "
            "security_checks.network.diagram\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('infra', 'pulumi', 'pulumi_azure_native')))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
