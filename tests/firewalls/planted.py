"""The stand-in FortiGate's starting configuration: the declared policy as FortiOS 7.2 returns it,
with planted drift. Each planted fault says which finding the audit must raise for it."""

from __future__ import annotations

import datetime as dt
import ipaddress
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.firewalls.fortios_standin import FortiGate

# (check, key): what the audit of the planted configuration must find on fw-civic.
PLANTED = {
    "any-any": ("firewalls.any_any", "policy:90"),
    "any-any is extra": ("firewalls.rule_extra", "policy:90"),
    "any-any makes the default allow": ("firewalls.default_not_deny", ""),
    "shadowing rule is extra": ("firewalls.rule_extra", "policy:91"),
    "shadowed rule": ("firewalls.rule_shadowed", "CIV-003"),
    "logging off": ("firewalls.logging_off", "CIV-005"),
    "admin HTTP on a user interface": ("firewalls.admin_exposed", "interface:corporate"),
    "old firmware": ("patch.firmware_update_overdue", "FG-IR-24-015"),
}
OLD_FIRMWARE = ("v7.2.5", 1517)


def _names(values: list[str]) -> list[dict[str, str]]:
    return [{"name": v, "q_origin_key": v} for v in values]


def policy(rule: dict[str, Any]) -> dict[str, Any]:
    return {"policyid": rule["policyid"], "q_origin_key": rule["policyid"], "name": rule["id"], "uuid": "",
            "srcintf": _names([rule["from_zone"]]), "dstintf": _names([rule["to_zone"]]),
            "srcaddr": _names(["all" if rule["source"] == "any" else rule["source"]]),
            "dstaddr": _names(["all" if rule["destination"] == "any" else rule["destination"]]),
            "service": _names(rule["services"]), "action": rule["action"], "schedule": "always",
            "status": "enable", "logtraffic": "all" if rule["log"] else "disable", "comments": rule["comments"],
            "nat": "disable"}


def converged(gate: FortiGate, declared: dict[str, Any]) -> None:
    """The device as the role would leave it."""
    t = gate.tables
    t["firewall/address"] = [{"name": a["name"], "q_origin_key": a["name"], "type": "ipmask", "subnet": a["subnet"]}
                             for a in declared["addresses"]]
    t["firewall/address"].insert(0, {"name": "all", "q_origin_key": "all", "type": "ipmask",
                                     "subnet": "0.0.0.0 0.0.0.0"})
    t["firewall/addrgrp"] = [{"name": g["name"], "q_origin_key": g["name"], "member": _names(g["members"])}
                             for g in declared["address_groups"]]
    t["firewall.service/custom"] = [
        {"name": s["name"], "q_origin_key": s["name"],
         "protocol": "TCP/UDP/SCTP" if s["protocol"] != "icmp" else "ICMP",
         "tcp-portrange": s["portrange"] if s["protocol"] == "tcp" else "",
         "udp-portrange": s["portrange"] if s["protocol"] == "udp" else ""} for s in declared["services"]]
    t["firewall.service/custom"].insert(0, {"name": "ALL", "q_origin_key": "ALL", "protocol": "IP",
                                            "tcp-portrange": "", "udp-portrange": ""})
    t["firewall/policy"] = [policy(r) for r in declared["rules"]]
    t["system/interface"] = [
        {"name": i, "q_origin_key": i, "vdom": "root",
         "allowaccess": "ping https ssh" if z["management"] else "ping"}
        for z in declared["zones"] for i in z["interfaces"]]
    pad = ["0.0.0.0 0.0.0.0"] * 10
    hosts = (declared["management_trusthosts"] + pad)[:10]
    t["system/admin"] = [{"name": "admin", "q_origin_key": "admin", "accprofile": "super_admin",
                          "password": "ENC SH2aGVyZSBpcyBhIHN0b3JlZCBoYXNo", "two-factor": "fortitoken",
                          **{f"trusthost{i}": h for i, h in enumerate(hosts, 1)}}]
    gate.singletons["system/global"] = {"hostname": gate.hostname, "admin-sport": declared["admin_port"],
                                        "admin-https-redirect": "enable", "admintimeout": 5}
    gate.hits = {r["policyid"]: 1000 + i for i, r in enumerate(declared["rules"])}


def plant_drift(gate: FortiGate, declared: dict[str, Any]) -> None:
    gate.version, gate.build = OLD_FIRMWARE
    rules = gate.tables["firewall/policy"]
    by_name = {p["name"]: p for p in rules}
    # A hand-added "legacy web" rule above CIV-003: everything from corporate to the internet,
    # which shadows the declared web-browsing rule.
    legacy = {**policy({"policyid": 91, "id": "legacy-web", "from_zone": "corporate", "to_zone": "internet",
                        "source": "any", "destination": "any", "services": ["ALL"], "action": "accept",
                        "log": True, "comments": "temporary"}), "name": "legacy-web"}
    rules.insert(rules.index(by_name["CIV-003"]), legacy)
    # An any-any allow at the end (someone's troubleshooting rule, never removed).
    anyany = {**policy({"policyid": 90, "id": "temp-any", "from_zone": "any", "to_zone": "any", "source": "any",
                        "destination": "any", "services": ["ALL"], "action": "accept", "log": True,
                        "comments": "troubleshooting"}), "name": "temp-any"}
    rules.append(anyany)
    by_name["CIV-005"]["logtraffic"] = "disable"
    corp = next(i for i in gate.tables["system/interface"] if i["name"] == "corporate")
    corp["allowaccess"] = "ping https http"
    gate.hits[90], gate.hits[91] = 52_000, 7_400


def certificate(d: Path, address: str = "127.0.0.1") -> tuple[Path, Path]:
    """A self-signed certificate for the stand-in (the test's CA bundle is the certificate itself)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fortigate stand-in")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(address))]),
                           critical=False)
            .sign(key, hashes.SHA256()))
    cpath, kpath = d / "fortigate.crt", d / "fortigate.key"
    cpath.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    kpath.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                        serialization.NoEncryption()))
    return cpath, kpath
