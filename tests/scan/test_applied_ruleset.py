"""The evaluator of applied rulesets (security_checks/nft_ruleset.py) on JSON the kernel's nft prints.

Every ruleset here is loaded into a throwaway network namespace with the real `nft -f` and read
back with `nft -j list ruleset`, so the JSON is exactly what a router gives (none is hand-written):
the rulesets the nftables_gateway role renders for the demo and the second estate, and small
nft texts using what the role never emits, which must come back "unknown", never a guess.
"""

from __future__ import annotations

import ipaddress
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from security_checks.lab.nftables import render
from security_checks.lab.topology import load_faults
from security_checks.model.loader import LoadedEstate, load_estate
from security_checks.network.policy import Policy
from security_checks.nft_ruleset import Packet, Ruleset

REPO = Path(__file__).resolve().parents[2]
GLENMORAY = REPO / "tests" / "estates" / "glenmoray"

pytestmark = pytest.mark.root


@pytest.fixture(scope="module")
def netns() -> Iterator[str]:
    if os.geteuid() != 0:
        pytest.skip("needs root (a throwaway network namespace for nft); CI runs as root")
    name = f"fw12-nftjson-{os.getpid()}"   # not est-*: the lab's teardown must not see it
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


def loaded_json(netns: str, text: str, tmp_path: Path) -> Ruleset:
    path = tmp_path / "ruleset.nft"
    path.write_text(text if text.lstrip().startswith("flush ruleset") else "flush ruleset\n" + text)
    load = subprocess.run(["ip", "netns", "exec", netns, "nft", "-f", str(path)], capture_output=True, text=True)
    assert load.returncode == 0, load.stderr
    out = subprocess.run(["ip", "netns", "exec", netns, "nft", "-j", "list", "ruleset"], check=True,
                         capture_output=True, text=True).stdout
    return Ruleset(json.loads(out))


def test_the_demo_routers_planted_rules_decide_and_are_named(netns: str, loaded: LoadedEstate, tmp_path: Path) -> None:
    fw = loaded.estate.firewall("fw-civic")
    rs = loaded_json(netns, render(loaded.estate, fw, load_faults()["lab"]), tmp_path)

    smb = rs.verdict(Packet("10.10.40.10", "10.10.30.20", "tcp", 445))
    assert smb.action == "accept" and smb.handle is not None
    assert smb.comment.startswith("PLANTED FAULT guest-to-file-shares") and "forward" in smb.chain
    ssh = rs.verdict(Packet("10.10.40.10", "10.10.30.20", "tcp", 22))
    assert (ssh.action, ssh.handle, ssh.reason) == ("drop", None, "policy drop")
    # The same port over UDP is not what `tcp dport 445` matches.
    assert rs.verdict(Packet("10.10.40.10", "10.10.30.20", "udp", 445)).action == "drop"
    corp = rs.verdict(Packet("10.10.10.10", "10.10.30.20", "tcp", 445))
    assert corp.action == "accept" and corp.comment.startswith("CIV-001")
    # Guest to the internet: `ip daddr != @internal`.
    assert rs.verdict(Packet("10.10.40.10", "192.0.2.10", "udp", 53)).comment.startswith("CIV-005")
    assert rs.verdict(Packet("10.10.40.10", "10.200.1.10", "udp", 53)).action == "drop"
    admin = rs.verdict(Packet("10.10.10.10", "10.10.99.1", "tcp", 8443, hook="input"))
    assert admin.action == "accept" and admin.comment.startswith("PLANTED FAULT mgmt-from-corporate")
    assert rs.verdict(Packet("10.10.40.10", "10.10.99.1", "tcp", 8443, hook="input")).action == "drop"
    allow_listed = rs.verdict(Packet("10.10.99.10", "10.10.99.1", "tcp", 8443, hook="input"))
    assert (allow_listed.action, allow_listed.comment) == ("accept", "management allow-list")

    clean = loaded_json(netns, render(loaded.estate, fw), tmp_path)   # the same router without the faults
    assert clean.verdict(Packet("10.10.40.10", "10.10.30.20", "tcp", 445)).action == "drop"
    assert clean.verdict(Packet("10.10.10.10", "10.10.99.1", "tcp", 8443, hook="input")).action == "drop"


def _probe_addresses(policy: Policy) -> list[str]:
    """One address inside each zone's first network, and one on the internet."""
    out = [str(next(nets[0].hosts())) for nets in policy.zone_networks.values() if nets]
    return [*out, "192.0.2.10"]


@pytest.mark.slow
@pytest.mark.parametrize("estate_dir", [REPO / "inventory" / "demo", GLENMORAY], ids=["demo", "glenmoray"])
def test_the_evaluator_agrees_with_the_declared_policy_on_every_rendered_router(
        netns: str, tmp_path: Path, estate_dir: Path) -> None:
    """What the role renders from the policy, evaluated, says what the policy says (else one of them is wrong)."""
    estate = load_estate(estate_dir).estate
    policy = Policy(estate)
    addresses = _probe_addresses(policy)
    checked = 0
    for fw in estate.firewalls:
        if fw.vendor not in ("nftables", "fortinet"):
            continue
        rs = loaded_json(netns, render(estate, fw), tmp_path)
        services = {(s.protocol, p) for s in fw.services for p in s.ports} | {("tcp", 3389), ("udp", 161)}
        for src in addresses:
            for dst in addresses:
                if src == dst or ipaddress.ip_address(src) == ipaddress.ip_address("192.0.2.10") == dst:
                    continue
                for proto, port in sorted(services):
                    want = policy.forward(fw, src, dst, proto, port)
                    got = rs.verdict(Packet(src, dst, proto, port))
                    assert got.action in ("accept", "drop"), (fw.name, src, dst, proto, port, got)
                    assert got.allows == want.allowed, (fw.name, src, dst, proto, port, str(want), str(got))
                    checked += 1
    assert checked > 500


CONSTRUCTS = """
table inet t {
    set ports { type inet_service; flags interval; elements = { 8000-8099, 9443 } }
    set hosts { type ipv4_addr; elements = { 10.9.0.5, 10.9.0.6 } }
    chain through {
        type filter hook forward priority filter; policy accept;
        ct state established,related accept
        iifname "lo" accept
        ip saddr 10.1.0.0/16 jump office
        ip saddr 10.2.0.0/16 goto branch
        ip saddr 10.3.0.0/16 th dport 53 reject
        ip saddr 10.4.0.0/16 meta mark set 0x1 accept
        ip saddr 10.5.0.0/16 limit rate 10/second accept
        ip saddr 10.6.0.0/16 iifname "eth7" drop
        ip saddr 10.7.0.0/16 ip daddr @hosts tcp dport @ports drop
        ip saddr 10.8.0.0/16 counter
        ip saddr 10.8.0.0/16 ip daddr 10.9.0.1-10.9.0.9 meta l4proto udp drop
        ip saddr 10.8.0.0/16 ip daddr != 10.9.0.0/24 drop
        ip saddr 10.10.0.0/16 ct state new drop
    }
    chain office {
        tcp dport 22 drop
        return
    }
    chain branch {
        tcp dport 22 accept
    }
}
"""


def test_what_the_role_never_emits_is_judged_or_called_unknown(netns: str, tmp_path: Path) -> None:
    rs = loaded_json(netns, CONSTRUCTS, tmp_path)

    def act(src: str, proto: str = "tcp", port: int = 22, dst: str = "10.9.0.5") -> str:
        return rs.verdict(Packet(src, dst, proto, port)).action

    assert act("10.1.0.1") == "drop" and act("10.1.0.1", port=80) == "accept"   # jump, then return: policy
    assert act("10.2.0.1") == "accept"
    assert act("10.2.0.1", port=80) == "accept"   # goto's chain ends: back past `through` to its policy
    assert act("10.3.0.1", "udp", 53) == "reject" and act("10.3.0.1", "tcp", 53) == "reject"
    assert act("10.3.0.1", "icmp", 0) == "accept"
    for src in ("10.4.0.1", "10.5.0.1", "10.6.0.1"):   # marks, rate limits, an interface it cannot know
        v = rs.verdict(Packet(src, "10.9.0.5", "tcp", 22))
        assert v.action == "unknown" and v.reason, v
    assert act("10.16.0.1") == "accept"   # a source no rule names is judged: the policy
    assert act("10.7.0.1", port=8042) == "drop" and act("10.7.0.1", port=9443) == "drop"
    assert act("10.7.0.1", port=8100) == "accept" and act("10.7.0.1", port=8042, dst="10.9.0.7") == "accept"
    assert act("10.8.0.1", "udp", 53, dst="10.9.0.3") == "drop"
    assert act("10.8.0.1", "tcp", 53, dst="10.9.0.3") == "accept"
    assert act("10.8.0.1", dst="192.0.2.1") == "drop"
    assert act("10.10.0.1") == "drop"   # a probe is a new connection
    assert rs.verdict(Packet("10.1.0.1", "10.9.0.5", "tcp", 22, hook="input")).reason.startswith("no base chain")


def test_a_nat_chain_on_the_path_makes_the_verdict_unknown(netns: str, tmp_path: Path) -> None:
    rs = loaded_json(netns, """
table ip nat {
    chain pre {
        type nat hook prerouting priority dstnat;
        ip daddr 10.9.0.5 dnat to 10.9.0.6
    }
}
table inet f {
    chain through {
        type filter hook forward priority filter; policy drop;
        tcp dport 22 accept
    }
}
""", tmp_path)
    v = rs.verdict(Packet("10.1.0.1", "10.9.0.5", "tcp", 22))
    assert v.action == "unknown" and "nat" in v.reason
