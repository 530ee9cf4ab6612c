"""Where probes and scans start from, as the scan engine needs to know it.

In production: a council scanner host, or a site's scanner reached as an ansible-runner worker.
In the demo: the lab's scanner and zone namespaces. The lab harness provides objects of these
shapes (security_checks/lab), so nothing here knows the lab exists.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol


class ProbeSegment(Protocol):
    """A network segment with a probe point in it (a host of that zone that can send packets)."""

    key: str
    site: str
    zone: str
    cidrs: list[str]
    firewall: str
    netns: str | None          # where commands run to send from this segment
    addresses: list[str]       # addresses in the segment that answer (declared hosts first)
    source: str | None         # the address probes are sent from


class FirewallPoint(Protocol):
    name: str
    management_address: str | None

    @property
    def netns(self) -> str | None:
        """Where commands run on the router itself (to read its ruleset back); None: nowhere from here."""
        ...


class ProbeNetwork(Protocol):
    """Probe points in each zone, for the segregation matrix."""

    @property
    def probe_segments(self) -> Sequence[ProbeSegment]: ...

    @property
    def firewall_points(self) -> Sequence[FirewallPoint]: ...

    @property
    def client_probe_ports(self) -> Sequence[tuple[str, int]]: ...

    def segment(self, key: str) -> ProbeSegment: ...

    def segment_of(self, address: str) -> ProbeSegment | None: ...


@dataclass
class SiteScanner:
    """A site's own scanner: what ansible-runner's worker runs inside, and the networks it sits on."""

    site: str
    netns: str
    networks: list[str] = field(default_factory=list)
    addresses: list[str] = field(default_factory=list)
