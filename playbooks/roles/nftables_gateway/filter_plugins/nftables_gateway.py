"""Filters of the nftables_gateway role (ipaddress from the standard library: no netaddr needed)."""

from __future__ import annotations

import ipaddress
from typing import Any


def nft_in_networks(address: str, networks: list[str]) -> bool:
    """Whether `address` is inside one of `networks` (addresses or CIDRs)."""
    try:
        ip = ipaddress.ip_address(address.strip())
    except ValueError:
        return False
    return any(ip in ipaddress.ip_network(n, strict=False) for n in networks)


def nft_set_name(name: str, prefix: str) -> str:
    """An nftables set name for an estate zone or object: z_guest_wifi, o_all_corporate."""
    return f"{prefix}_{name.replace('-', '_')}"


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"nft_in_networks": nft_in_networks, "nft_set_name": nft_set_name}
