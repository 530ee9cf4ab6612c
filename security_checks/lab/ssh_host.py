"""Lab Linux endpoints reached over SSH, as production reaches them: a real OpenSSH server in its own
network namespace, key log-in for a non-root user (`ansible`) with sudo, and the same planted drift as
the chroot endpoint (endpoint.py).

Each host is
- a root filesystem: the endpoint's debootstrapped base (endpoint.base_tarball) extracted once into
  the cache and shared read-only as the lower layer of an overlay mount, so 20 hosts cost 20 small
  upper directories, not 20 copies; /proc and /dev are mounted inside for sshd, sudo and apt;
- a namespace `essh-N` joined to the root namespace by one veth pair on 198.18.N.0/30 (RFC 2544
  benchmarking space, never routed): the controller is .1, the host .2. Nothing else is reachable
  from it, and the main lab (est-* namespaces, build.py) neither sees nor removes it;
- `sshd` started with `chroot` inside the namespace, listening on the host address only, its pid file
  at /run/sshd.pid inside the root, where Debian's init script finds it, so the baseline's
  "Reload sshd" handler works as on a real host.

The controller's private key and known_hosts live under <home>/lab/ssh (a fresh key per build).
Ansible is pointed at them with standard settings (ANSIBLE_PRIVATE_KEY_FILE, ANSIBLE_SSH_COMMON_ARGS:
`environment()`), as an engineer or AWX credential would. Root only.

Sets and their owners. Namespaces and addresses are machine-wide, and a CI run, a benchmark and a
developer may each want hosts at the same time, so a set of hosts belongs to the run that built it
for as long as that run holds it (`with ssh_hosts(home, n) as hosts:`), and nobody else removes it:
- one set per home. Its record (REGISTRY/<digest of the home>.json: the home and every namespace
  and root it will make) is written before anything is made, and its lock file (.lock beside it) is
  held exclusive by the owner until the set is removed. flock dies with the process, kill -9
  included, so a set whose lock is free has no owner left: it is stale, and the next run to claim
  a set removes it, namespaces, processes, mounts and files, as its owner would have;
- claiming (removing stale sets, choosing slots, writing the record) and removing happen under one
  machine-wide lock of their own; building and using do not, so sets build and run side by side.
  The lab of namespaces' lock is not taken: a scan holds it for its whole run, and the two share
  nothing;
- a slot N (essh-N, 198.18.N.0/30) is free when no record names it, no essh-N namespace or esshNr
  link exists and no address or route in any of the root namespace's tables lies in that block: two
  sets never share a namespace or an address, and a block something else on the machine uses is
  never taken;
- only what a record names is removed. A namespace no record names (made by a version of this module
  before records, or not ours at all) is left alone, and its slot skipped.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import ipaddress
import json
import os
import shutil
import socket
import subprocess
import tarfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any

from ..fsutil import atomic_write
from .build import GLOBAL_DIR, LabError, lab_dir, lab_lock, require_root
from .endpoint import BASE_VERSION, SUITE, base_tarball, cache_dir, plant_non_compliance

NS_PREFIX = "essh-"
USER = "ansible"
MAX_HOSTS = 50               # in one set
SLOTS = range(1, 255)        # N of essh-N and 198.18.N.0/30, machine-wide
BLOCKS = "198.18.0.0/16"     # where the slots' blocks lie
REGISTRY = GLOBAL_DIR / "ssh-hosts"
REGISTRY_LOCK = "ssh-hosts.lock"


@dataclass
class SshHost:
    name: str
    netns: str
    address: str
    controller: str
    root: str
    pid: int

    @property
    def link(self) -> str:
        return f"essh{self.netns.rsplit('-', 1)[1]}r"


def ssh_dir(home: Path) -> Path:
    return lab_dir(home) / "ssh"


def _run(cmd: list[str], what: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False,
                          env={**os.environ, "LC_ALL": "C", "DEBIAN_FRONTEND": "noninteractive"})
    if check and proc.returncode != 0:
        raise LabError(f"{what} failed (exit {proc.returncode}): {(proc.stderr or proc.stdout).strip()[-300:]}")
    return proc


def base_root() -> Path:
    """The shared lower layer: the endpoint base extracted once per cache and BASE_VERSION. Called only
    under the registry lock, so two runs never extract into the same .partial."""
    lower = cache_dir() / f"ssh-base-{SUITE}-v{BASE_VERSION}"
    if (lower / "usr" / "sbin" / "sshd").exists():
        return lower
    tarball = base_tarball()
    partial = lower.with_name(lower.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    with tarfile.open(tarball) as tar:
        tar.extractall(partial, filter="fully_trusted")  # noqa: S202 (our own tarball)
    os.replace(partial, lower)
    return lower


def keypair(home: Path) -> Path:
    key = ssh_dir(home) / "key" / "id_ed25519"
    if not key.exists():
        key.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(key.parent, 0o700)
        _run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "estate-lab-controller", "-f", str(key)],
             "ssh-keygen")
    return key


def environment(home: Path) -> dict[str, str]:
    """What Ansible needs to reach the lab's SSH hosts: the key and the lab's known_hosts."""
    d = ssh_dir(home)
    return {"ANSIBLE_PRIVATE_KEY_FILE": str(d / "key" / "id_ed25519"),
            "ANSIBLE_SSH_COMMON_ARGS": f"-o UserKnownHostsFile={d / 'known_hosts'} -o IdentitiesOnly=yes"}


def _prepare_root(root: Path, pubkey: str) -> None:
    plant_non_compliance(root)   # same drift as the chroot endpoint, plus the `ansible` user it creates
    ssh = root / "home" / USER / ".ssh"
    ssh.mkdir(mode=0o700, exist_ok=True)
    (ssh / "authorized_keys").write_text(pubkey)
    os.chmod(ssh / "authorized_keys", 0o600)
    _run(["chroot", str(root), "chown", "-R", f"{USER}:{USER}", f"/home/{USER}/.ssh"], "chown")
    sudoers = root / "etc" / "sudoers.d" / "estate-ansible"
    sudoers.write_text(f"# Lab: the account Ansible logs in as may become root without a password.\n"
                       f"{USER} ALL=(ALL:ALL) NOPASSWD: ALL\n")
    os.chmod(sudoers, 0o440)
    for key in (root / "etc" / "ssh").glob("ssh_host_*"):
        key.unlink()
    _run(["chroot", str(root), "ssh-keygen", "-A"], "ssh-keygen -A")   # host keys of its own
    (root / "run" / "sshd").mkdir(parents=True, exist_ok=True)
    # The namespace shares the machine's host name; sudo looks it up on every call.
    hosts = root / "etc" / "hosts"
    hosts.write_text(hosts.read_text() if hosts.exists() else "127.0.0.1 localhost\n")
    with hosts.open("a") as fh:
        fh.write(f"127.0.1.1 {socket.gethostname()}\n")


def _mount(host_dir: Path, lower: Path) -> Path:
    root, upper, work = host_dir / "root", host_dir / "upper", host_dir / "work"
    for d in (root, upper, work):
        d.mkdir(parents=True, exist_ok=True)
    _run(["mount", "-t", "overlay", "overlay", "-o", f"lowerdir={lower},upperdir={upper},workdir={work}", str(root)],
         "mount overlay")
    _run(["mount", "-t", "proc", "proc", str(root / "proc")], "mount proc")
    _run(["mount", "--rbind", "/dev", str(root / "dev")], "mount /dev")
    _run(["mount", "--make-rslave", str(root / "dev")], "mount --make-rslave /dev")
    return root


def _unmount(root: Path) -> None:
    for sub in ("dev", "proc", ""):
        target = root / sub if sub else root
        if os.path.ismount(target):
            _run(["umount", "-R", "-l", str(target)], f"umount {target}", check=False)


def _wait_port(address: str, port: int = 22, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((address, port), timeout=0.5) as s:
                if s.recv(64).startswith(b"SSH-"):
                    return
        except OSError:
            time.sleep(0.1)
    raise LabError(f"sshd on {address}:{port} did not answer within {timeout:.0f} s")


@contextlib.contextmanager
def ssh_hosts(home: Path, count: int = 1) -> Iterator[list[SshHost]]:
    """`count` SSH hosts (lab-ssh-01 ...), built fresh with planted drift: the caller's until the block
    ends, then removed. Their namespaces and addresses are slots no other set on the machine holds."""
    with _owned_set(home, count, "lab-ssh", namespaces=True) as (hosts, lower):
        pubkey = keypair(home).with_suffix(".pub").read_text()
        known: list[str] = []
        for host in hosts:
            _up_one(host, lower, pubkey, known)
        (ssh_dir(home) / "known_hosts").write_text("".join(known))
        yield hosts


@contextlib.contextmanager
def chroot_roots(home: Path, count: int) -> Iterator[list[SshHost]]:
    """`count` chroot endpoints (lab-chroot-01 ...) on the same overlay roots, without a namespace or
    sshd: the chroot transport at scale, for the devices benchmark. Owned and removed like ssh_hosts."""
    with _owned_set(home, count, "lab-chroot", namespaces=False) as (hosts, lower):
        pubkey = keypair(home).with_suffix(".pub").read_text()
        for host in hosts:
            _prepare_root(_mount(Path(host.root).parent, lower), pubkey)
        yield hosts


@contextlib.contextmanager
def _owned_set(home: Path, count: int, prefix: str, *, namespaces: bool) -> Iterator[tuple[list[SshHost], Path]]:
    """Claim a set for `home` (stale sets removed, slots chosen, the record written, its lock held),
    yield the planned hosts and the shared lower layer, and remove the set when the block ends."""
    require_root()
    if not 1 <= count <= MAX_HOSTS:
        raise LabError(f"between 1 and {MAX_HOSTS} SSH lab hosts")
    home = Path(home).resolve()
    lock = REGISTRY / f"{hashlib.sha256(str(home).encode()).hexdigest()[:16]}.lock"
    with lab_lock(name=REGISTRY_LOCK):
        _remove_stale()
        owner = _take(lock, home)
        try:
            # Files a run before records left in this home (nothing else can own them now).
            _raise_if_left(_remove_hosts(home, []))
            if namespaces:
                slots: list[int | None] = list(free_slots()[:count])
                if len(slots) < count:
                    raise LabError(f"{count} SSH lab hosts asked for, only {len(slots)} address blocks free "
                                   f"(198.18.N.0/30, N {SLOTS.start}-{SLOTS.stop - 1}; other runs hold the rest)")
            else:
                slots = [None] * count
            hosts = [_plan(home, f"{prefix}-{i:02d}", slot) for i, slot in enumerate(slots, 1)]
            lower = base_root()
            # Last, and before anything is made: a lock file without a record is a claim that built nothing.
            atomic_write(_record(lock), json.dumps({"home": str(home), "owner": os.getpid(),
                                                    "hosts": [asdict(h) for h in hosts]}, indent=1))
        except BaseException:
            owner.close()   # whatever is left is stale now, and removed by the next claim
            raise
    try:
        yield hosts, lower
    finally:
        with lab_lock(name=REGISTRY_LOCK):
            left = _remove_set(lock, home, hosts)
        owner.close()
        _raise_if_left(left)


def _plan(home: Path, name: str, slot: int | None) -> SshHost:
    root = str(ssh_dir(home) / name / "root")
    if slot is None:
        return SshHost(name, "", "", "", root, 0)
    return SshHost(name, f"{NS_PREFIX}{slot:02d}", f"198.18.{slot}.2", f"198.18.{slot}.1", root, 0)


def _record(lock: Path) -> Path:
    return lock.with_suffix(".json")


def _read_record(lock: Path) -> dict[str, Any] | None:
    """A set's record, its hosts as SshHost; None while there is none (written whole, or not at all)."""
    try:
        data: dict[str, Any] = json.loads(_record(lock).read_text())
        data["hosts"] = [SshHost(**h) for h in data["hosts"]]
    except (OSError, ValueError, TypeError, KeyError):
        return None
    return data


def _take(lock: Path, home: Path) -> IO[str]:
    """The set's lock, held exclusive from here until the set is removed. Python opens it
    non-inheritable, so sshd and every other child started meanwhile never hold it on the owner's behalf."""
    REGISTRY.mkdir(parents=True, exist_ok=True)
    fh = open(lock, "a+")  # noqa: SIM115 (held past this function, for the set's life)
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        fh.close()
        record = _read_record(lock)
        by = f" (pid {record['owner']})" if record else ""
        raise LabError(f"the SSH lab hosts of {home} are in use by another run{by}") from None
    return fh


def _remove_stale() -> None:
    """Every set whose owner is gone (its lock free), removed as the owner would have. Registry lock held."""
    for lock in sorted(REGISTRY.glob("*.lock")):
        with open(lock) as fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue   # its owner runs
            record = _read_record(lock)
            if record is None:
                lock.unlink()   # the owner died before its record: it made nothing
            else:
                _remove_set(lock, Path(record["home"]), record["hosts"])


def _remove_set(lock: Path, home: Path, hosts: list[SshHost]) -> list[str]:
    """Remove a set's hosts and files, then its record; a record whose mounts would not go is kept (and
    its slots stay taken), so the next claim tries again. Returns what is still mounted."""
    left = _remove_hosts(home, hosts)
    if not left:
        _record(lock).unlink(missing_ok=True)
        lock.unlink(missing_ok=True)
    return left


def _remove_hosts(home: Path, hosts: list[SshHost]) -> list[str]:
    for h in hosts:
        if h.netns:
            _remove_namespace(h)
        _unmount(Path(h.root))
    d = ssh_dir(home)
    if not d.exists():
        return []
    for entry in d.iterdir():
        if entry.is_dir() and (entry / "root").is_dir():
            _unmount(entry / "root")
    # Never delete through a mount: a /dev still bound inside would take the machine's /dev with it.
    left = mounts_under(d)
    if not left:
        shutil.rmtree(d, ignore_errors=True)
    return left


def _raise_if_left(left: list[str]) -> None:
    if left:
        raise LabError(f"still mounted, not removed: {', '.join(left)}")


def _remove_namespace(h: SshHost) -> None:
    """Every process in the namespace (sshd and its sessions), then the namespace and its link."""
    proc = subprocess.run(["ip", "netns", "pids", h.netns], capture_output=True, text=True, check=False)
    # Only processes inside the namespace: the recorded sshd pid may since belong to someone else.
    for pid in {int(x) for x in proc.stdout.split() if x.isdigit()}:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, 9)
    _run(["ip", "netns", "del", h.netns], "ip netns del", check=False)
    _run(["ip", "link", "del", h.link], "ip link del", check=False)


def free_slots() -> list[int]:
    """The slots, lowest first, that no record names and nothing on the machine uses: no essh-N
    namespace, no esshNr link, no address or route in any table of the root namespace within
    198.18.N.0/30. Only meaningful under the registry lock, where sets are claimed."""
    taken: set[int] = set()
    for lock in REGISTRY.glob("*.lock"):
        record = _read_record(lock)
        taken |= {_slot(h.netns[len(NS_PREFIX):]) for h in (record or {}).get("hosts", []) if h.netns}
    namespaces = json.loads(_run(["ip", "-j", "netns", "list"], "ip netns list").stdout or "[]")
    taken |= {_slot(ns["name"][len(NS_PREFIX):]) for ns in namespaces if ns["name"].startswith(NS_PREFIX)}
    links = json.loads(_run(["ip", "-j", "link", "show"], "ip link show").stdout or "[]")
    taken |= {_slot(li["ifname"][4:-1]) for li in links if li["ifname"].startswith("essh") and li["ifname"][-1] == "r"}
    routes = json.loads(_run(["ip", "-j", "-4", "route", "show", "table", "all", "root", BLOCKS],
                             "ip route show").stdout or "[]")
    for route in routes:
        net = ipaddress.ip_network(route["dst"], strict=False)
        taken |= {n for n in SLOTS if ipaddress.ip_network(f"198.18.{n}.0/30").overlaps(net)}
    return [n for n in SLOTS if n not in taken]


def _slot(digits: str) -> int:
    """The slot a name's number stands for; a name that is not ours (essh-x) takes none (-1)."""
    return int(digits) if digits.isdigit() else -1


def _up_one(host: SshHost, lower: Path, pubkey: str, known: list[str]) -> None:
    netns, address = host.netns, host.address
    host_dir = Path(host.root).parent
    shutil.rmtree(host_dir, ignore_errors=True)
    root = _mount(host_dir, lower)
    _prepare_root(root, pubkey)
    _run(["ip", "netns", "add", netns], f"ip netns add {netns}")
    _run(["ip", "-n", netns, "link", "set", "lo", "up"], "lo up")
    _run(["ip", "netns", "exec", netns, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1"], "sysctl", check=False)
    _run(["ip", "link", "add", host.link, "type", "veth", "peer", "name", "eth0", "netns", netns], "veth")
    _run(["ip", "addr", "add", f"{host.controller}/30", "dev", host.link], "addr")
    _run(["ip", "link", "set", host.link, "up"], "link up")
    _run(["ip", "-n", netns, "addr", "add", f"{address}/30", "dev", "eth0"], "addr")
    _run(["ip", "-n", netns, "link", "set", "eth0", "up"], "link up")
    _run(["ip", "netns", "exec", netns, "chroot", str(root), "/usr/sbin/sshd", "-o", f"ListenAddress={address}",
          "-o", "PidFile=/run/sshd.pid"], f"sshd in {netns}")
    _wait_port(address)
    host.pid = int((root / "run" / "sshd.pid").read_text().split()[0])
    for pub in sorted((root / "etc" / "ssh").glob("ssh_host_*_key.pub")):
        kind, key = pub.read_text().split()[:2]
        known.append(f"{address} {kind} {key}\n")


def mounts_under(d: Path) -> list[str]:
    prefix = str(d.resolve()) + "/"
    with open("/proc/self/mounts") as fh:
        points = [line.split()[1].replace("\\040", " ") for line in fh]
    return sorted(p for p in points if p.startswith(prefix))
