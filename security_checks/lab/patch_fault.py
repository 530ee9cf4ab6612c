"""Plant the demo's overdue security update in a lab Debian chroot, for real.

The council's own package `hdc-kiosk-agent` 1.0.0 is built with dpkg-deb and installed; version
1.0.1 is published in a local file:// apt repository inside the chroot whose Release file is dated
on the fix's release day (from the advisory feed). `apt-get update` then sees the newer version,
`apt-get -s upgrade` shows it pending, and the advisory feed says 1.0.1 fixes a CVSS 9.8
vulnerability released more than 14 days ago: exactly what Cyber Essentials fails automatically.
Idempotent: planting twice changes nothing. Needs root (chroot, dpkg).
"""

from __future__ import annotations

import hashlib
import subprocess
import tempfile
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from ..compliance.advisories import Feed, load_feed

PACKAGE = "hdc-kiosk-agent"
INSTALLED = "1.0.0"
FIXED = "1.0.1"
REPO_DIR = "srv/hdc-security"
SOURCES = "etc/apt/sources.list.d/hdc-security.list"
ORIGIN = "Harrowdale"
SUITE = "stable-security"


@dataclass
class Planted:
    package: str
    installed: str
    available: str
    released: date
    changed: bool


def _env() -> dict[str, str]:
    return {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C", "DEBIAN_FRONTEND": "noninteractive"}


def _chroot(root: Path, *argv: str) -> str:
    proc = subprocess.run(["chroot", str(root), *argv], capture_output=True, text=True, env=_env(), timeout=300)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} in {root}: exit {proc.returncode}: {proc.stderr.strip()[:300]}")
    return proc.stdout


def build_deb(version: str, out_dir: Path) -> Path:
    """A small real package: a status script and a control file, built by dpkg-deb."""
    with tempfile.TemporaryDirectory() as tmp:
        tree = Path(tmp) / "pkg"
        (tree / "DEBIAN").mkdir(parents=True)
        (tree / "usr/bin").mkdir(parents=True)
        script = tree / "usr/bin/hdc-kiosk-agent"
        script.write_text(f"#!/bin/sh\necho 'hdc-kiosk-agent {version}'\n")
        script.chmod(0o755)
        (tree / "DEBIAN/control").write_text(
            f"Package: {PACKAGE}\nVersion: {version}\nArchitecture: all\n"
            "Maintainer: Harrowdale ICT <ict@harrowdale.gov.uk>\n"
            "Section: admin\nPriority: optional\nDescription: Harrowdale library kiosk status agent\n"
            " Reports kiosk health to the library management system (demo package).\n")
        out = out_dir / f"{PACKAGE}_{version}_all.deb"
        subprocess.run(["dpkg-deb", "--root-owner-group", "--build", str(tree), str(out)], check=True,
                       capture_output=True, env=_env())
    return out


def _installed_version(root: Path, package: str) -> str | None:
    proc = subprocess.run(["chroot", str(root), "dpkg-query", "-W", "-f", "${db:Status-Abbrev}${Version}", package],
                          capture_output=True, text=True, env=_env())
    if proc.returncode != 0 or not proc.stdout.startswith("ii"):
        return None
    return proc.stdout[3:].strip()


def _write_repo(root: Path, deb: Path, released: date) -> None:
    repo = root / REPO_DIR
    repo.mkdir(parents=True, exist_ok=True)
    target = repo / deb.name
    target.write_bytes(deb.read_bytes())
    control = subprocess.run(["dpkg-deb", "-f", str(target)], capture_output=True, text=True, check=True).stdout
    data = target.read_bytes()
    packages = (control.rstrip("\n") + f"\nFilename: ./{deb.name}\nSize: {len(data)}\n"
                f"MD5sum: {hashlib.md5(data).hexdigest()}\nSHA256: {hashlib.sha256(data).hexdigest()}\n\n")  # noqa: S324 (apt's index format)
    (repo / "Packages").write_text(packages)
    digest = hashlib.sha256(packages.encode()).hexdigest()
    stamp = released.strftime("%a, %d %b %Y 12:00:00 UTC")
    (repo / "Release").write_text(
        f"Origin: {ORIGIN}\nLabel: Harrowdale security updates\nSuite: {SUITE}\nCodename: hdc-security\n"
        f"Date: {stamp}\nArchitectures: all amd64\nDescription: the council's own security fixes (lab)\n"
        f"SHA256:\n {digest} {len(packages.encode())} Packages\n")
    sources = root / SOURCES
    sources.parent.mkdir(parents=True, exist_ok=True)
    sources.write_text(f"deb [trusted=yes] file:/{REPO_DIR} ./\n")


DEMO_FEED = Path(__file__).resolve().parents[2] / "inventory" / "demo" / "advisories.json"


def plant(root: Path, feed: Feed | None = None) -> Planted:
    feed = feed or load_feed(DEMO_FEED)
    fix = next((a for a in feed.advisories if a.package == PACKAGE and a.fixed_version == FIXED), None)
    if fix is None:
        raise RuntimeError(f"{feed.path}: no advisory for {PACKAGE} {FIXED}: the demo plant needs one")
    changed = False
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if _installed_version(root, PACKAGE) is None:
            old = build_deb(INSTALLED, work)
            inside = root / "tmp" / old.name
            inside.parent.mkdir(exist_ok=True)
            inside.write_bytes(old.read_bytes())
            try:
                _chroot(root, "dpkg", "-i", f"/tmp/{old.name}")
            finally:
                inside.unlink(missing_ok=True)
            changed = True
        if not (root / REPO_DIR / f"{PACKAGE}_{FIXED}_all.deb").is_file():
            _write_repo(root, build_deb(FIXED, work), fix.released)
            changed = True
    # Refresh only our list (no network: the chroot's other sources are left as they are).
    _chroot(root, "apt-get", "update", "-qq", "-o", f"Dir::Etc::SourceList=/{SOURCES}",
            "-o", "Dir::Etc::SourceParts=-", "-o", "APT::Get::List-Cleanup=0", "-o", "APT::Sandbox::User=root")
    return Planted(PACKAGE, _installed_version(root, PACKAGE) or "", FIXED, fix.released, changed)
