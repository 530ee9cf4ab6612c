"""Lab Linux endpoints reached over SSH, as production reaches them: a real OpenSSH server in its own
network namespace, key log-in for a non-root user (`ansible`) with sudo, and the same planted drift as
the chroot endpoint (endpoint.py).

Each host is
- a root filesystem: the endpoint's debootstrapped base (endpoint.base_tarball) extracted once into
  the cache and shared read-only as the lower layer of an overlay mount, so 20 hosts cost 20 small
  upper directories, not 20 copies; /proc and /dev are mounted inside for sshd, sudo and apt;
- a namespace `essh-NN` joined to the root namespace by one veth pair on 198.18.NN.0/30 (RFC 2544
  benchmarking space, never routed): the controller is .1, the host .2. Nothing else is reachable
  from it, and the main lab (est-* namespaces, build.py) neither sees nor removes it;
- `sshd` started with `chroot` inside the namespace, listening on the host address only, its pid file
  at /run/sshd.pid inside the root, where Debian's init script finds it, so the baseline's
  "Reload sshd" handler works as on a real host.

The controller's private key and known_hosts live under <home>/lab/ssh (a fresh key per build).
Ansible is pointed at them with standard settings (ANSIBLE_PRIVATE_KEY_FILE, ANSIBLE_SSH_COMMON_ARGS:
`environment()`), as an engineer or AWX credential would. Build and teardown hold the machine-wide
lab lock. Root only.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import tarfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from .build import LabError, lab_dir, lab_lock, require_root
from .endpoint import BASE_VERSION, SUITE, base_tarball, cache_dir, plant_non_compliance

NS_PREFIX = "essh-"
USER = "ansible"


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


def _state(home: Path) -> Path:
    return ssh_dir(home) / "hosts.json"


def _run(cmd: list[str], what: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False,
                          env={**os.environ, "LC_ALL": "C", "DEBIAN_FRONTEND": "noninteractive"})
    if check and proc.returncode != 0:
        raise LabError(f"{what} failed (exit {proc.returncode}): {(proc.stderr or proc.stdout).strip()[-300:]}")
    return proc


def base_root() -> Path:
    """The shared lower layer: the endpoint base extracted once per cache and BASE_VERSION."""
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


def up_ssh_hosts(home: Path, count: int = 1) -> list[SshHost]:
    """`count` SSH hosts (lab-ssh-01 ...), built fresh with planted drift; replaces any this home had."""
    require_root()
    if not 1 <= count <= 50:
        raise LabError("between 1 and 50 SSH lab hosts")
    with lab_lock():
        _down_locked(home)
        _remove_strays()
        lower = base_root()
        pubkey = keypair(home).with_suffix(".pub").read_text()
        hosts: list[SshHost] = []
        known: list[str] = []
        try:
            for i in range(1, count + 1):
                hosts.append(_up_one(home, i, lower, pubkey, known))
        except BaseException:
            _write(home, hosts)
            _down_locked(home)
            raise
        (ssh_dir(home) / "known_hosts").write_text("".join(known))
        _write(home, hosts)
        return hosts


def _up_one(home: Path, i: int, lower: Path, pubkey: str, known: list[str]) -> SshHost:
    name, netns = f"lab-ssh-{i:02d}", f"{NS_PREFIX}{i:02d}"
    controller, address = f"198.18.{i}.1", f"198.18.{i}.2"
    host_dir = ssh_dir(home) / name
    shutil.rmtree(host_dir, ignore_errors=True)
    root = _mount(host_dir, lower)
    host = SshHost(name, netns, address, controller, str(root), 0)
    _prepare_root(root, pubkey)
    _run(["ip", "netns", "add", netns], f"ip netns add {netns}")
    _run(["ip", "-n", netns, "link", "set", "lo", "up"], "lo up")
    _run(["ip", "netns", "exec", netns, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1"], "sysctl", check=False)
    _run(["ip", "link", "add", host.link, "type", "veth", "peer", "name", "eth0", "netns", netns], "veth")
    _run(["ip", "addr", "add", f"{controller}/30", "dev", host.link], "addr")
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
    return host


def up_chroot_roots(home: Path, count: int) -> list[SshHost]:
    """`count` chroot endpoints (lab-chroot-01 ...) on the same overlay roots, without a namespace or
    sshd: the chroot transport at scale, for the devices benchmark. Torn down with down_ssh_hosts."""
    require_root()
    with lab_lock():
        _down_locked(home)
        lower = base_root()
        pubkey = keypair(home).with_suffix(".pub").read_text()
        hosts: list[SshHost] = []
        try:
            for i in range(1, count + 1):
                name = f"lab-chroot-{i:02d}"
                root = _mount(ssh_dir(home) / name, lower)
                hosts.append(SshHost(name, "", "", "", str(root), 0))
                _prepare_root(root, pubkey)
        except BaseException:
            _write(home, hosts)
            _down_locked(home)
            raise
        _write(home, hosts)
        return hosts


def _write(home: Path, hosts: list[SshHost]) -> None:
    ssh_dir(home).mkdir(parents=True, exist_ok=True)
    _state(home).write_text(json.dumps([asdict(h) for h in hosts], indent=1))


def read_hosts(home: Path) -> list[SshHost]:
    try:
        return [SshHost(**h) for h in json.loads(_state(home).read_text())]
    except (OSError, ValueError, TypeError):
        return []


def down_ssh_hosts(home: Path) -> int:
    require_root()
    with lab_lock():
        return _down_locked(home)


def _down_locked(home: Path) -> int:
    hosts = read_hosts(home)
    for h in hosts:
        if not h.netns:   # a chroot-only root
            _unmount(Path(h.root))
            continue
        # Every process in the namespace (sshd and its sessions), then the mounts, the links, the files.
        proc = subprocess.run(["ip", "netns", "pids", h.netns], capture_output=True, text=True, check=False)
        # Only processes inside the namespace: a recorded pid may since belong to someone else.
        for pid in {int(x) for x in proc.stdout.split() if x.isdigit()}:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, 9)
        _run(["ip", "netns", "del", h.netns], "ip netns del", check=False)
        _run(["ip", "link", "del", h.link], "ip link del", check=False)
        _unmount(Path(h.root))
    d = ssh_dir(home)
    if d.exists():
        for entry in d.iterdir():
            if entry.is_dir() and (entry / "root").is_dir():
                _unmount(entry / "root")
        # Never delete through a mount: a /dev still bound inside would take the machine's /dev with it.
        left = mounts_under(d)
        if left:
            raise LabError(f"still mounted, not removed: {', '.join(left)}")
        shutil.rmtree(d, ignore_errors=True)
    return len(hosts)


def _remove_strays() -> None:
    """SSH lab hosts are one set per machine, like the lab: namespaces and links another home or a killed
    run left behind are removed (their processes stopped) before new ones take the addresses."""
    proc = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=False)
    for ns in [line.split()[0] for line in proc.stdout.splitlines() if line.startswith(NS_PREFIX)]:
        pids = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True, check=False).stdout
        for pid in {int(x) for x in pids.split() if x.isdigit()}:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, 9)
        _run(["ip", "netns", "del", ns], "ip netns del", check=False)
    links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True, check=False).stdout
    for line in links.splitlines():
        name = line.split(":", 2)[1].strip().split("@")[0]
        if name.startswith("essh") and name.endswith("r"):
            _run(["ip", "link", "del", name], "ip link del", check=False)


def mounts_under(d: Path) -> list[str]:
    prefix = str(d.resolve()) + "/"
    with open("/proc/self/mounts") as fh:
        points = [line.split()[1].replace("\\040", " ") for line in fh]
    return sorted(p for p in points if p.startswith(prefix))
