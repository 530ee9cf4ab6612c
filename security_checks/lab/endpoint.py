"""The lab's Linux endpoint: a Debian bookworm chroot that Ansible reaches with the chroot connection.

`ensure_lab_endpoint(home)` is the stable entry point (the compliance helper reads apt metadata from
the same chroot): it returns `<home>/lab/chroots/debian-01`, building it when missing. Building costs
one `debootstrap` per machine: the bootstrapped tree is kept as a base tarball in the cache directory
(ESTATE_CACHE, default ~/.cache/estate) and extracted fresh for each endpoint, then the demo's
planted non-compliance is written into it:

- sshd allows root log-in (PermitRootLogin yes) and password log-in;
- unattended-upgrades is not installed (its packages are only downloaded into apt's cache, so a
  remediation works without reaching the mirror again);
- telnet (on the estate's unsupported-software list) is installed;
- an extra local user, `mallory`, is in the sudo group beside the declared `ansible`.

Root only: debootstrap and chroot need it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

SUITE = "bookworm"
MIRROR = "http://deb.debian.org/debian"
# python3 and python3-apt: Ansible's modules run inside the chroot. The rest are what the baseline
# manages; installing them here keeps remediation off the network. telnet is planted.
INCLUDE = ("python3", "python3-apt", "openssh-server", "sudo", "nftables", "libpam-modules", "telnet")
# Downloaded, not installed: remediation installs them from apt's cache.
DOWNLOAD_ONLY = ("unattended-upgrades",)
# Bump when INCLUDE or the build changes, so stale caches are not reused.
BASE_VERSION = 2
LAB_ENDPOINT = Path("lab") / "chroots" / "debian-01"


class EndpointError(RuntimeError):
    """The lab endpoint could not be built (not root, debootstrap failed)."""


def cache_dir() -> Path:
    env = os.environ.get("ESTATE_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "estate"


def base_tarball(cache: Path | None = None) -> Path:
    """The bootstrapped base system as a tarball, built once per cache directory."""
    cache = cache or cache_dir()
    tarball = cache / f"debian-{SUITE}-minbase-v{BASE_VERSION}.tar"
    if tarball.exists():
        return tarball
    _need_root()
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="estate-debootstrap-", dir=cache) as tmp:
        root = Path(tmp) / "root"
        _run(["debootstrap", "--variant=minbase", f"--include={','.join(INCLUDE)}", SUITE, str(root), MIRROR],
             "debootstrap")
        # debootstrap leaves every .deb it installed in apt's cache: half the tree, never used again.
        _run(["chroot", str(root), "apt-get", "clean"], "apt-get clean")
        _run(["chroot", str(root), "apt-get", "install", "-y", "-qq", "--download-only", *DOWNLOAD_ONLY],
             "apt-get --download-only")
        # sshd -t refuses to validate without its privilege-separation directory, which systemd
        # creates at boot on a real host.
        (root / "run" / "sshd").mkdir(parents=True, exist_ok=True)
        partial = tarball.with_suffix(".partial")
        with tarfile.open(partial, "w") as tar:
            tar.add(root, arcname=".")
        os.replace(partial, tarball)  # atomic: a killed build never leaves a truncated cache
    for old in cache.glob(f"debian-{SUITE}-minbase-v*.tar"):
        if old != tarball:
            old.unlink()  # an earlier BASE_VERSION: never used again
    return tarball


def extract(tarball: Path, target: Path) -> Path:
    """A fresh copy of the base system at `target` (replaced if present)."""
    if target.exists():
        shutil.rmtree(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir()
    with tarfile.open(tarball) as tar:
        tar.extractall(partial, filter="fully_trusted")  # noqa: S202 (our own tarball, built above)
    os.replace(partial, target)
    return target


def plant_non_compliance(root: Path) -> None:
    """Write the demo's known drift into a fresh endpoint (see the module docstring)."""
    sshd = root / "etc" / "ssh" / "sshd_config"
    sshd.write_text("# Planted by estate: the lab endpoint starts non-compliant.\n"
                    "Include /etc/ssh/sshd_config.d/*.conf\n"
                    "PermitRootLogin yes\nPasswordAuthentication yes\nX11Forwarding yes\n"
                    "UsePAM yes\nSubsystem sftp /usr/lib/openssh/sftp-server\n")
    for user in ("ansible", "mallory"):
        _run(["chroot", str(root), "useradd", "--create-home", "--shell", "/bin/bash", user], f"useradd {user}")
        _run(["chroot", str(root), "gpasswd", "--add", user, "sudo"], f"gpasswd --add {user} sudo")


def ensure_lab_endpoint(home: Path) -> Path:
    """The demo's Linux endpoint `<home>/lab/chroots/debian-01`, built with planted drift if missing.

    Stable interface: other engines (the compliance helper reads apt metadata here) call it. Idempotent:
    an existing endpoint is returned as it is, remediated or not. Raises EndpointError when not root.
    """
    target = Path(home) / LAB_ENDPOINT
    if (target / "usr" / "bin" / "python3").exists():
        return target
    _need_root()
    extract(base_tarball(), target)
    plant_non_compliance(target)
    return target


def remove_lab_endpoint(home: Path) -> bool:
    target = Path(home) / LAB_ENDPOINT
    if not target.exists():
        return False
    shutil.rmtree(target)
    return True


def _need_root() -> None:
    if os.geteuid() != 0:
        raise EndpointError("building the lab endpoint needs root (debootstrap and chroot)")


def _run(cmd: list[str], what: str) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False,
                          env={**os.environ, "DEBIAN_FRONTEND": "noninteractive", "LC_ALL": "C"})
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        raise EndpointError(f"{what} failed (exit {proc.returncode}): {' | '.join(tail)}")
