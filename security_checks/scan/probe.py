"""scapy probes, run inside a lab namespace: ARP sweeps and TCP SYN / UDP reachability probes.

Run as `ip netns exec NS python -m security_checks.scan.probe` with a JSON request on stdin; the
answer is JSON on stdout. The caller (engine.py, segregation.py) authorises every target with
scope.py before it builds the request: this module only sends what it is given.

    {"mode": "arp", "targets": ["10.10.30.0/24"], "timeout": 1}
        -> {"up": ["10.10.30.20", ...], "macs": {...}}
    {"mode": "arp", "targets": [...], "timeout": 1, "stream": true}
        -> one line per network as its sweep ends: {"network": "10.10.30.0/24", "up": [...], "macs": {...}},
           then the whole answer as above on the last line
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
import select
import sys
import time
from typing import Any

DNS_QUERY = bytes.fromhex("abcd01000001000000000000076578616d706c6503636f6d0000010001")
SIP_OPTIONS = (b"OPTIONS sip:probe@lab SIP/2.0\r\nVia: SIP/2.0/UDP probe;branch=z9hG4bK1\r\n"
               b"Max-Forwards: 70\r\nTo: <sip:probe@lab>\r\nFrom: <sip:probe@lab>;tag=1\r\nCall-ID: 1@probe\r\n"
               b"CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n")


def arp(targets: list[str], timeout: float, stream: bool = False) -> dict[str, Any]:
    """ARP-sweep each target network on its link: a request to every address, then `timeout`
    seconds for answers. With `stream`, each network's answer is also written as one JSON line as
    soon as its wait ends, so the caller can start on that network while the others finish.

    The requests are the ones scapy builds (Ether broadcast / ARP who-has), sent on the link the
    scanner routes the network to; an answer is what scapy's srp() counts as one (ARP.answers:
    an is-at from an address that was asked). Building one frame per address as a scapy packet
    costs far more than the sweep itself, so each network's frame is built once and only its
    target address changes; every link is swept at once, each waiting out its own timeout.
    """
    from scapy.config import conf
    from scapy.data import ETH_P_ARP
    from scapy.layers.l2 import ARP, Ether

    up: dict[str, str] = {}
    sweeps: list[dict[str, Any]] = []
    try:
        for t in targets:
            net = ipaddress.ip_network(t, strict=False)
            if net.version != 4:
                raise ValueError(f"{t}: ARP sweeps are for IPv4 networks")
            first = next(net.hosts()) if net.num_addresses > 1 else net.network_address
            iface = conf.route.route(str(first))[0]
            frame = bytearray(bytes(Ether(dst="ff:ff:ff:ff:ff:ff") / ARP(pdst=str(first))))
            if frame[_PDST] != first.packed:
                raise RuntimeError("unexpected ARP request layout")
            sweep: dict[str, Any] = {"network": t, "sock": conf.L2socket(iface=iface, type=ETH_P_ARP),
                                     "asked": set(), "found": {}}
            sweeps.append(sweep)
            # On a link, a host that is up answers ARP at once: one round, no retries.
            for addr in net:  # every address of the network, as ARP(pdst=network) sends
                frame[_PDST] = addr.packed
                sweep["sock"].send(bytes(frame))
                sweep["asked"].add(str(addr))
            sweep["deadline"] = time.monotonic() + timeout

        def take(sweep: dict[str, Any]) -> None:
            pkt = sweep["sock"].recv()
            if pkt is not None and ARP in pkt:
                answer = pkt[ARP]
                if answer.op == 2 and answer.psrc in sweep["asked"]:
                    sweep["found"].setdefault(answer.psrc, answer.hwsrc)

        pending = list(sweeps)
        while pending:
            now = time.monotonic()
            for sweep in [sw for sw in pending if sw["deadline"] <= now]:
                pending.remove(sweep)
                while select.select([sweep["sock"]], [], [], 0)[0]:  # answers already received count
                    take(sweep)
                sweep["sock"].close()
                found = sweep["found"]
                up.update(found)
                if stream:
                    sys.stdout.write(json.dumps({"network": sweep["network"],
                                                 "up": sorted(found, key=ipaddress.ip_address), "macs": found}) + "\n")
                    sys.stdout.flush()
            if not pending:
                break
            wait = max(0.0, min(sw["deadline"] for sw in pending) - time.monotonic())
            ready, _, _ = select.select([sw["sock"] for sw in pending], [], [], wait)
            for sweep in pending:
                if sweep["sock"] in ready:
                    take(sweep)
    finally:
        for sweep in sweeps:
            sweep["sock"].close()
    return {"up": sorted(up, key=ipaddress.ip_address), "macs": up}


_PDST = slice(14 + 24, 14 + 28)  # the target protocol address in an Ethernet ARP request


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
        answer = arp(request["targets"], timeout, stream=bool(request.get("stream")))
    elif request["mode"] == "reach":
        answer = reach(request["probes"], timeout)
    else:
        print(f"unknown mode {request['mode']!r}", file=sys.stderr)
        return 2
    sys.stdout.write(json.dumps(answer))
    return 0


if __name__ == "__main__":
    sys.exit(main())
