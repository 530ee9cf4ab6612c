"""`estate lab up|down|status`: build and remove the lab of network namespaces.

Idempotent: `up` on a healthy lab does nothing; `up` over a half-built one (a crash) removes it
first. `down` removes everything the lab made even without its state file: every namespace named
est-* (with every process still inside it) and any est-* link in the root namespace. The state
file (ESTATE_HOME/lab/state.json) is written before the first namespace is made, so a crash
mid-build is still recorded.

Safety: the root namespace is never given an address or route into the lab; scanners have no
default route, so nothing sent from them can leave the lab.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from ..fsutil import atomic_write
from ..model.loader import LoadedEstate
from ..procs import pid_alive
from . import nftables
from .listeners import ListenerSpec
from .topology import PREFIX, SWITCH_NS, Bypass, Lab, Listener, build_lab

LISTENER_MODULE = "security_checks.lab.listeners"


class LabError(Exception):
    """The lab cannot be built or used here; one line for the user."""


# Namespaces are machine-wide, so one lab serves every ESTATE_HOME on the machine: this pointer says
# which home's state describes it, and the lock keeps one user's `down` from pulling the lab out
# from under another's scan (exclusive to build or remove, shared while in use).
GLOBAL_DIR = Path(os.environ.get("ESTATE_LAB_RUN_DIR", "/run/estate-lab"))


def lab_dir(home: Path) -> Path:
    return Path(home) / "lab"


def owner_home(home: Path) -> Path:
    """The home whose state describes the running lab (this one, unless another built it)."""
    if state_path(home).exists():
        return Path(home)
    try:
        other = Path((GLOBAL_DIR / "owner").read_text().strip())
    except OSError:
        return Path(home)
    return other if state_path(other).exists() else Path(home)


@contextlib.contextmanager
def lab_lock(shared: bool = False, name: str = "lock") -> Iterator[Any]:
    """A machine-wide lock under GLOBAL_DIR: `lock` for the lab of namespaces; other parts of the lab
    that share nothing with it (the SSH hosts) take their own `name`, so they never wait on a scan."""
    import fcntl

    GLOBAL_DIR.mkdir(parents=True, exist_ok=True)
    with open(GLOBAL_DIR / name, "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
        try:
            yield fh
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def state_path(home: Path) -> Path:
    return lab_dir(home) / "state.json"


def read_state(home: Path) -> dict[str, Any] | None:
    p = state_path(home)
    if not p.exists():
        return None
    try:
        data: dict[str, Any] = json.loads(p.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return data


def _write_state(home: Path, state: dict[str, Any]) -> None:
    atomic_write(state_path(home), json.dumps(state, indent=1))


def _ip(*args: str, netns: str | None = None) -> None:
    cmd = ["ip", *(["-n", netns] if netns else []), *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise LabError(f"`{' '.join(cmd)}` failed: {proc.stderr.strip()}")


def _in_ns(netns: str, *cmd: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", "netns", "exec", netns, *cmd], capture_output=True, text=True, check=False)


def lab_namespaces() -> list[str]:
    proc = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=False)
    return sorted(line.split()[0] for line in proc.stdout.splitlines() if line.startswith(PREFIX))


def root_leftover_links() -> list[str]:
    proc = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True, check=False)
    out = []
    for line in proc.stdout.splitlines():
        name = line.split(":", 2)[1].strip().split("@")[0]
        if name.startswith(PREFIX):
            out.append(name)
    return out


def require_root() -> None:
    if os.geteuid() != 0:
        raise LabError("the lab needs root (network namespaces, nftables): run as root")


# -- up ---------------------------------------------------------------------------------------------


def status(home: Path) -> dict[str, Any]:
    home = owner_home(home)
    state = read_state(home)
    present = lab_namespaces()
    pids = _listener_pids(home)
    alive = {ns: pid for ns, pid in pids.items() if _is_listener(pid)}
    expected = state.get("namespaces", []) if state else []
    up = state is not None and state.get("status") == "up" and set(expected) <= set(present) and \
        len(alive) == len(state.get("listener_namespaces", []))
    return {"up": up, "state": state.get("status") if state else None, "namespaces": present,
            "expected_namespaces": expected, "listeners": alive,
            "missing_listeners": sorted(set(state.get("listener_namespaces", [])) - set(alive)) if state else [],
            "leftover_links": root_leftover_links(), "built_at": state.get("built_at") if state else None,
            "home": str(home)}


def up(loaded: LoadedEstate, home: Path, *, log: Any = None) -> dict[str, Any]:
    """Build the lab (or leave a healthy one as it is). Returns the status."""
    require_root()
    with lab_lock():
        return up_locked(loaded, home, log=log)


def up_locked(loaded: LoadedEstate, home: Path, *, log: Any = None) -> dict[str, Any]:
    say = log or (lambda _m: None)
    current = status(home)
    if current["up"]:
        say("lab is already up")
        return current
    if current["namespaces"] or current["state"] or current["leftover_links"]:
        say("removing a half-built or stale lab first")
        down_locked(owner_home(home))
    lab = build_lab(loaded.estate)
    d = lab_dir(home)
    d.mkdir(parents=True, exist_ok=True)
    state: dict[str, Any] = {"status": "building", "namespaces": lab.namespaces(), "estate_digest": loaded.digest,
                             "built_at": None, "listener_namespaces": [], "lab": lab.to_json()}
    _write_state(home, state)
    try:
        _build(lab, loaded, d, say)
        state["listener_namespaces"] = _start_listeners(lab, d, say)
    except BaseException:
        say("build failed: removing what was made")
        down_locked(home)
        raise
    state["status"] = "up"
    state["built_at"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    _write_state(home, state)
    GLOBAL_DIR.mkdir(parents=True, exist_ok=True)
    (GLOBAL_DIR / "owner").write_text(str(Path(home).resolve()))
    return status(home)


def _build(lab: Lab, loaded: LoadedEstate, d: Path, say: Any) -> None:
    for ns in lab.namespaces():
        _ip("netns", "add", ns)
        _ip("link", "set", "lo", "up", netns=ns)
        # IPv4 only: no router solicitations or DAD chatter on the lab's links (and nothing to leak).
        _in_ns(ns, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1")
    say(f"{len(lab.namespaces())} namespaces")
    for fw in lab.firewalls:
        r = _in_ns(fw.netns, "sysctl", "-qw", "net.ipv4.ip_forward=1")
        if r.returncode != 0:
            raise LabError(f"{fw.netns}: cannot enable forwarding: {r.stderr.strip()}")
    fw_ns = {f.name: f.netns for f in lab.firewalls}
    for seg in lab.segments:
        br = seg.bridge
        _ip("link", "add", br, "type", "bridge", netns=SWITCH_NS)
        _ip("link", "set", br, "up", netns=SWITCH_NS)
        prefixes = [c.split("/")[1] for c in seg.cidrs]
        legs: list[tuple[str, str, list[str]]] = [
            (f"est-f{seg.index}", fw_ns[seg.firewall],
             [f"{g}/{p}" for g, p in zip(seg.gateways, prefixes, strict=True)])]
        if seg.netns:
            addrs = []
            for a in seg.addresses:
                cidr = next(c for c in seg.cidrs if _contains(c, a))
                addrs.append(f"{a}/{cidr.split('/')[1]}")
            legs.append((f"est-h{seg.index}", seg.netns, addrs))
        if seg.scanner:
            legs.append((f"est-s{seg.index}", seg.scanner,
                         [f"{a}/{p}" for a, p in zip(seg.scanner_addresses, prefixes, strict=True)]))
        for name, ns, addrs in legs:
            _ip("link", "add", f"{name}s", "type", "veth", "peer", "name", name, "netns", ns, netns=SWITCH_NS)
            _ip("link", "set", f"{name}s", "master", br, "up", netns=SWITCH_NS)
            for a in addrs:
                _ip("addr", "add", a, "dev", name, netns=ns)
            _ip("link", "set", name, "up", netns=ns)
        if seg.netns:
            _ip("route", "add", "default", "via", seg.gateways[0], netns=seg.netns)
    for i, t in enumerate(lab.transit):
        a, b = f"est-t{i}a", f"est-t{i}b"
        prefix = t["cidr"].split("/")[1]
        _ip("link", "add", a, "type", "veth", "peer", "name", b, "netns", t["b_ns"], netns=t["a_ns"])
        _ip("addr", "add", f"{t['a_addr']}/{prefix}", "dev", a, netns=t["a_ns"])
        _ip("addr", "add", f"{t['b_addr']}/{prefix}", "dev", b, netns=t["b_ns"])
        _ip("link", "set", a, "up", netns=t["a_ns"])
        _ip("link", "set", b, "up", netns=t["b_ns"])
        for rng in t["remote_ranges"].split(","):
            _ip("route", "add", rng, "via", t["b_addr"], netns=t["a_ns"])
        _ip("route", "add", "default", "via", t["a_addr"], netns=t["b_ns"])
    for i, bp in enumerate(lab.bypasses):
        _plant_bypass(lab, i, bp)
    say(f"{len(lab.segments)} segments linked")
    # The routers are configured the way a real site router is: the nftables_gateway role, through
    # Ansible, from the estate's declared policy (lab/nftables.py says how it enters the namespaces).
    say("configuring the firewall namespaces with the nftables_gateway role (Ansible)")
    try:
        nftables.configure(lab, loaded, d)
    except nftables.RouterConfigError as exc:
        raise LabError(str(exc)) from None
    say("firewall rulesets applied by Ansible")


def _plant_bypass(lab: Lab, i: int, bp: Bypass) -> None:
    """A dual-homed device (faults.yaml, bypass-host): a leg on each segment, forwarding and NATing, and
    the source segment's hosts routed to the target through it, so the firewall never sees the flow."""
    r = _in_ns(bp.netns, "sysctl", "-qw", "net.ipv4.ip_forward=1")
    if r.returncode != 0:
        raise LabError(f"{bp.netns}: cannot enable forwarding: {r.stderr.strip()}")
    legs = ((f"est-x{i}a", lab.segment(bp.from_segment), bp.from_address),
            (f"est-x{i}b", lab.segment(bp.to_segment), bp.to_address))
    for name, seg, addr in legs:
        _ip("link", "add", f"{name}s", "type", "veth", "peer", "name", name, "netns", bp.netns, netns=SWITCH_NS)
        _ip("link", "set", f"{name}s", "master", seg.bridge, "up", netns=SWITCH_NS)
        _ip("addr", "add", f"{addr}/{seg.cidrs[0].split('/')[1]}", "dev", name, netns=bp.netns)
        _ip("link", "set", name, "up", netns=bp.netns)
    nat = _in_ns(bp.netns, "nft", "add table ip bypass; add chain ip bypass post { type nat hook postrouting "
                 f"priority srcnat; }}; add rule ip bypass post oifname est-x{i}b masquerade")
    if nat.returncode != 0:
        raise LabError(f"{bp.netns}: cannot plant the bypass NAT: {nat.stderr.strip()}")
    src = lab.segment(bp.from_segment)
    assert src.netns
    _ip("route", "add", f"{bp.target}/32", "via", bp.from_address, netns=src.netns)


def _contains(cidr: str, address: str) -> bool:
    import ipaddress

    return ipaddress.ip_address(address) in ipaddress.ip_network(cidr)


# -- TLS material ------------------------------------------------------------------------------------


def _ca(d: Path) -> tuple[Any, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Harrowdale District Council (lab)"),
                      x509.NameAttribute(NameOID.COMMON_NAME, "estate lab CA")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=365))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .sign(key, hashes.SHA256()))
    (d / "ca.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key, cert


def _server_cert(d: Path, ca: tuple[Any, x509.Certificate], name: str, address: str, expired: bool) -> tuple[str, str]:
    import ipaddress

    ca_key, ca_cert = ca
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = dt.datetime.now(dt.UTC)
    start, end = (now - dt.timedelta(days=400), now - dt.timedelta(days=35)) if expired else \
        (now - dt.timedelta(days=1), now + dt.timedelta(days=200))
    subject = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Harrowdale District Council (lab)"),
                         x509.NameAttribute(NameOID.COMMON_NAME, f"{name}.lab.harrowdale.gov.uk")])
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(ca_cert.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(start).not_valid_after(end)
            .add_extension(x509.SubjectAlternativeName([
                x509.DNSName(f"{name}.lab.harrowdale.gov.uk"), x509.IPAddress(ipaddress.ip_address(address))]),
                critical=False)
            .sign(ca_key, hashes.SHA256()))
    stem = f"{name}-{address}{'-expired' if expired else ''}"
    cpath, kpath = d / f"{stem}.crt", d / f"{stem}.key"
    cpath.write_bytes(cert.public_bytes(serialization.Encoding.PEM) + ca_cert.public_bytes(serialization.Encoding.PEM))
    kpath.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                        serialization.NoEncryption()))
    kpath.chmod(0o600)
    return str(cpath), str(kpath)


def listener_spec(li: Listener, tls_dir: Path, ca: tuple[Any, x509.Certificate] | None) -> ListenerSpec:
    spec = ListenerSpec(address=li.address, port=li.port, kind=li.kind, protocol=li.protocol, name=li.name)
    s = li.settings
    if "tls_versions" in s:
        spec.tls_versions = list(s["tls_versions"])
    if "headers" in s:
        spec.headers = bool(s["headers"])
    if "ssh_algorithms" in s:
        spec.ssh_algorithms = str(s["ssh_algorithms"])
    if li.kind in ("https", "tls"):
        assert ca is not None
        addr = li.address if li.address != "0.0.0.0" else "127.0.0.1"  # noqa: S104
        spec.cert, spec.key = _server_cert(tls_dir, ca, li.name, addr, s.get("cert") == "expired")
    return spec


# -- listeners ------------------------------------------------------------------------------------------


def _start_listeners(lab: Lab, d: Path, say: Any) -> list[str]:
    tls_dir = d / "tls"
    tls_dir.mkdir(exist_ok=True)
    ca = _ca(tls_dir)
    groups: dict[str, list[Listener]] = {}
    for seg in lab.segments:
        if seg.netns and seg.listeners:
            groups.setdefault(seg.netns, []).extend(seg.listeners)
    for fw in lab.firewalls:
        if fw.listeners:
            groups.setdefault(fw.netns, []).extend(fw.listeners)
    procs: list[tuple[str, subprocess.Popen[str]]] = []
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    for ns, listeners in groups.items():
        specs = [listener_spec(li, tls_dir, ca) for li in listeners]
        spec_file = d / f"listeners-{ns}.json"
        spec_file.write_text(json.dumps([asdict(s) for s in specs], indent=1))
        pidfile = d / f"listeners-{ns}.pid"
        log = open(d / f"listeners-{ns}.log", "w")  # noqa: SIM115 (the child keeps it)
        proc = subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, "-m", LISTENER_MODULE, str(spec_file),
                                 str(pidfile)], stdout=subprocess.PIPE, stderr=log, text=True, env=env,
                                start_new_session=True)
        log.close()
        procs.append((ns, proc))
    for ns, proc in procs:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if line.strip() != "ready":
            proc.wait(timeout=5)
            err = (d / f"listeners-{ns}.log").read_text()[-400:]
            raise LabError(f"listeners in {ns} did not start: {err.strip()}")
    say(f"{sum(len(v) for v in groups.values())} listeners in {len(groups)} namespaces")
    return list(groups)


def _listener_pids(home: Path) -> dict[str, int]:
    out: dict[str, int] = {}
    for p in lab_dir(home).glob("listeners-*.pid"):
        with contextlib.suppress(ValueError, OSError):
            out[p.name.removeprefix("listeners-").removesuffix(".pid")] = int(p.read_text().strip())
    return out


def _is_listener(pid: int) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
    except OSError:
        return False
    return LISTENER_MODULE.encode() in cmdline


# -- down -------------------------------------------------------------------------------------------------


def _kill(pids: list[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(pid_alive(p) for p in pids):
        time.sleep(0.05)
    for pid in pids:
        if pid_alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def down(home: Path, *, log: Any = None) -> dict[str, Any]:
    """Remove the lab: listeners (by pid file and by namespace), namespaces, leftover links, state."""
    require_root()
    with lab_lock():
        return down_locked(owner_home(home), log=log)


def down_locked(home: Path, *, log: Any = None) -> dict[str, Any]:
    say = log or (lambda _m: None)
    pids = [pid for pid in _listener_pids(home).values() if _is_listener(pid)]
    namespaces = lab_namespaces()
    for ns in namespaces:
        proc = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True, check=False)
        pids.extend(int(x) for x in proc.stdout.split() if x.isdigit())
    _kill(sorted(set(pids)))
    for ns in namespaces:
        subprocess.run(["ip", "netns", "del", ns], capture_output=True, check=False)
    for link in root_leftover_links():
        subprocess.run(["ip", "link", "del", link], capture_output=True, check=False)
    d = lab_dir(home)
    if d.exists():
        # Only what the lab wrote: other areas may keep their own things under ESTATE_HOME/lab.
        for p in [*d.glob("listeners-*"), *d.glob("*.nft"), d / "state.json", d / "state.tmp",
                  d / nftables.INVENTORY_FILE]:
            p.unlink(missing_ok=True)
        for sub in ("tls", "bin"):
            if (d / sub).is_dir():
                shutil.rmtree(d / sub, ignore_errors=True)
    with contextlib.suppress(OSError):
        if Path((GLOBAL_DIR / "owner").read_text().strip()) == Path(home).resolve():
            (GLOBAL_DIR / "owner").unlink()
    left = lab_namespaces()
    if left:
        raise LabError(f"could not remove namespaces: {', '.join(left)}")
    say(f"removed {len(namespaces)} namespaces and {len(set(pids))} processes")
    return {"removed_namespaces": namespaces, "stopped_processes": len(set(pids))}
