"""The applied side of the segregation matrix: each router's loaded ruleset, read back and asked about a flow.

The declared side says what the estate's policy allows (network/policy.py); the probes say what
the wire lets through; this says what the rulesets the routers hold do with the same flow, so the
matrix can tell which of the three disagrees. A router is read where the step can run commands
on it (in the demo, the lab router's namespace: `nft -j list ruleset` there, the same read-back
the nftables_gateway role does); anywhere else its applied verdict is "unknown" with the reason,
never inferred from the policy.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass

from ..nft_ruleset import Packet, Ruleset, Verdict
from .vantage import FirewallPoint

READ_TIMEOUT = 20.0


@dataclass
class Applied:
    """One router's ruleset as read back, or why it could not be."""

    firewall: str
    ruleset: Ruleset | None
    text: str = ""          # the JSON as read, kept as evidence
    why: str = ""           # why there is no ruleset


def read(points: Sequence[FirewallPoint]) -> dict[str, Applied]:
    out: dict[str, Applied] = {}
    for fw in points:
        if not fw.netns:
            out[fw.name] = Applied(fw.name, None, why=f"{fw.name}: no way to read its ruleset from here")
            continue
        try:
            proc = subprocess.run(["ip", "netns", "exec", fw.netns, "nft", "-j", "list", "ruleset"],
                                  capture_output=True, text=True, timeout=READ_TIMEOUT, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            out[fw.name] = Applied(fw.name, None, why=f"{fw.name}: nft list ruleset failed ({exc})")
            continue
        if proc.returncode != 0:
            why = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else f"exit {proc.returncode}"
            out[fw.name] = Applied(fw.name, None, why=f"{fw.name}: nft list ruleset failed ({why})")
            continue
        try:
            out[fw.name] = Applied(fw.name, Ruleset(json.loads(proc.stdout)), text=proc.stdout)
        except (ValueError, KeyError, TypeError) as exc:
            out[fw.name] = Applied(fw.name, None, text=proc.stdout, why=f"{fw.name}: unreadable nft JSON ({exc})")
    return out


@dataclass
class Hop:
    firewall: str
    verdict: Verdict

    def __str__(self) -> str:
        return f"{self.firewall}: {self.verdict}"


def judge(rulesets: dict[str, Applied], path: Sequence[str], dst_firewall: str | None, src: str, dst: str,
          protocol: str, port: int | None) -> tuple[str, list[Hop]]:
    """("accept" | "deny" | "unknown", each router's verdict): every router on the path must accept."""
    hops: list[Hop] = []
    for name in path:
        a = rulesets.get(name)
        hook = "input" if name == dst_firewall else "forward"
        if a is None or a.ruleset is None:
            hops.append(Hop(name, Verdict("unknown", reason=a.why if a else f"{name}: ruleset not read")))
            continue
        hops.append(Hop(name, a.ruleset.verdict(Packet(src, dst, protocol, port, hook=hook))))
    for h in hops:
        if not h.verdict.allows:
            # The first router that does not accept decides; one that cannot be judged before a drop
            # might send the packet elsewhere (NAT), so the drop after it is not claimed.
            return ("deny" if h.verdict.action in ("drop", "reject") else "unknown"), hops
    return ("accept" if hops else "unknown"), hops
