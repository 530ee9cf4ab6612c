"""scapy probes, run inside a lab namespace: ARP sweeps and TCP SYN / UDP reachability probes.

Run as `ip netns exec NS python -m security_checks.scan.probe` with a JSON request on stdin; the
answer is JSON on stdout. The caller (engine.py, segregation.py) authorises every target with
scope.py before it builds the request: this module only sends what it is given.

    {"mode": "arp", "targets": ["10.10.30.0/24"], "timeout": 1}
        -> {"up": ["10.10.30.20", ...], "macs": {...}}
    {"mode": "reach", "probes": [{"dst": "10.10.30.20", "proto": "tcp", "port": 445}], "timeout": 1}
        -> {"results": [{"dst": ..., "proto": ..., "port": ..., "state": "open|closed|blocked|silent",
                         "reply": "SA|RA|udp|icmp 3/3 from x"}]}

A TCP answer of any kind (SYN-ACK or RST) from the target, a UDP reply or an ICMP port-unreachable
from the target itself all mean the packet got through every firewall on the way: reachable.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import Any

DNS_QUERY = bytes.fromhex("abcd01000001000000000000076578616d706c6503636f6d0000010001")
SIP_OPTIONS = (b"OPTIONS sip:probe@lab SIP/2.0\r\nVia: SIP/2.0/UDP probe;branch=z9hG4bK1\r\n"
               b"Max-Forwards: 70\r\nTo: <sip:probe@lab>\r\nFrom: <sip:probe@lab>;tag=1\r\nCall-ID: 1@probe\r\n"
               b"CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n")


def arp(targets: list[str], timeout: float) -> dict[str, Any]:
    from scapy.config import conf
    from scapy.layers.l2 import ARP, Ether
    from scapy.sendrecv import srp

    up: dict[str, str] = {}

    def sweep(t: str) -> None:
        net = ipaddress.ip_network(t, strict=False)
        first = str(next(net.hosts())) if net.num_addresses > 1 else str(net.network_address)
        iface = conf.route.route(first)[0]
        # On a link, a host that is up answers ARP at once: one round, no retries.
        answered, _ = srp(Ether(dst="ff:ff:ff:ff:ff:ff") / ARP(pdst=str(net)), iface=iface, timeout=timeout,
                          verbose=False)
        for _sent, rcv in answered:
            up[rcv.psrc] = rcv.hwsrc

    # One sweep per link, side by side: each waits out its own timeout.
    with ThreadPoolExecutor(max_workers=max(1, len(targets))) as pool:
        list(pool.map(sweep, targets))
    return {"up": sorted(up, key=ipaddress.ip_address), "macs": up}


def reach(probes: list[dict[str, Any]], timeout: float) -> dict[str, Any]:
    # Only the layers needed: `scapy.all` loads every protocol and takes seconds to import.
    from scapy.layers.inet import ICMP, IP, TCP, UDP
    from scapy.packet import Raw
    from scapy.sendrecv import sr

    packets = []
    for i, p in enumerate(probes):
        sport = 40000 + (i % 20000)
        if p["proto"] == "tcp":
            packets.append(IP(dst=p["dst"], src=p.get("src")) /
                           TCP(sport=sport, dport=int(p["port"]), flags="S", seq=1000 + i))
        else:
            payload = SIP_OPTIONS if int(p["port"]) in (5060, 5061) else DNS_QUERY if int(p["port"]) == 53 else b"probe"
            packets.append(IP(dst=p["dst"], src=p.get("src")) / UDP(sport=sport, dport=int(p["port"])) / Raw(payload))
    results: dict[int, dict[str, Any]] = {i: {**p, "state": "silent", "reply": ""} for i, p in enumerate(probes)}
    if packets:
        answered, _ = sr(packets, timeout=timeout, retry=1, verbose=False, multi=False)
        index = {id(pkt): i for i, pkt in enumerate(packets)}
        for sent, rcv in answered:
            found = index.get(id(sent))
            i = found if found is not None else next(j for j, pk in enumerate(packets) if bytes(pk) == bytes(sent))
            dst = probes[i]["dst"]
            if rcv.haslayer(TCP):
                flags = str(rcv[TCP].flags)
                results[i].update(state="open" if "S" in flags and "A" in flags else "closed", reply=flags)
            elif rcv.haslayer(ICMP):
                ic = rcv[ICMP]
                from_target = rcv[IP].src == dst
                port_unreach = ic.type == 3 and ic.code == 3
                state = "closed" if (from_target and port_unreach) else "blocked"
                results[i].update(state=state, reply=f"icmp {ic.type}/{ic.code} from {rcv[IP].src}")
            elif rcv.haslayer(UDP):
                results[i].update(state="open", reply="udp")
    return {"results": [results[i] for i in range(len(probes))]}


def main() -> int:
    logging.getLogger("scapy").setLevel(logging.ERROR)
    request = json.loads(sys.stdin.read())
    timeout = float(request.get("timeout", 1.0))
    if request["mode"] == "arp":
        answer = arp(request["targets"], timeout)
    elif request["mode"] == "reach":
        answer = reach(request["probes"], timeout)
    else:
        print(f"unknown mode {request['mode']!r}", file=sys.stderr)
        return 2
    sys.stdout.write(json.dumps(answer))
    return 0


if __name__ == "__main__":
    sys.exit(main())
