"""The standards the program builds to and the policy pack checks against, in one place.

infra/wan.py deploys with these values and infra/policy/network_rules.py accepts exactly them. The
rules import them from here rather than from wan.py, so a policy rule never depends on the code it
judges (nor on the Pulumi and Azure SDKs wan.py needs).
"""

from __future__ import annotations

from typing import Any

# IKEv2 with one strong proposal per connection (NCSC's PSN/PRIME-style profile): AES-256-GCM for
# ESP, AES-256 with SHA-384 for IKE, ECP384 for both DH and PFS. The policy rule
# `infra.policy.vpn_ikev2_proposals` accepts exactly the values in APPROVED_*.
IPSEC_POLICY: dict[str, Any] = {
    "ike_encryption": "AES256", "ike_integrity": "SHA384", "dh_group": "ECP384",
    "ipsec_encryption": "GCMAES256", "ipsec_integrity": "GCMAES256", "pfs_group": "ECP384",
    "sa_life_time_seconds": 3600, "sa_data_size_kilobytes": 102400000,
}
APPROVED_IKE_ENCRYPTION = frozenset({"AES256", "GCMAES256"})
APPROVED_IKE_INTEGRITY = frozenset({"SHA256", "SHA384", "GCMAES256"})
APPROVED_DH_GROUPS = frozenset({"DHGroup14", "DHGroup24", "ECP384", "DHGroup2048"})
APPROVED_IPSEC_ENCRYPTION = frozenset({"AES256", "GCMAES256"})
APPROVED_IPSEC_INTEGRITY = frozenset({"SHA256", "GCMAES256"})
APPROVED_PFS_GROUPS = frozenset({"PFS14", "PFS24", "ECP384", "PFS2048"})

# Tags that mark the PSN connection and route table, so the policy pack can find them by props.
PSN_ROLE_TAG = "psn"
ROUTE_TABLE_PSN = "psn"
# On the PSN/SWAN VPN site, local network gateway and connection: the council's name for the network
# (`organisation.public_sector_network`), so policy messages say SWAN in Scotland, not PSN.
NETWORK_NAME_TAG = "estate-network"
