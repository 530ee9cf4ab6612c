"""Real apt metadata from a Debian/Ubuntu endpoint: read here from a chroot directory (the lab's
endpoint), or parsed from the same commands' outputs the device audit read over its own Ansible
connection (SSH in production: devices.linux.package_inventory, `from_outputs`).

What we read, all with the endpoint's own tools:
- installed packages: `dpkg-query -W` (name, version, architecture);
- pending upgrades: `apt-get -s dist-upgrade` (a simulation: nothing changes), with the
  archive each candidate comes from;
- when each archive was published: the `Date:` of its Release file under /var/lib/apt/lists,
  the fallback for "how long has this fix been available" when no advisory gives a date.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass, field
from datetime import date
from email.utils import parsedate_to_datetime
from pathlib import Path

_INST = re.compile(r"^Inst (\S+) \[([^\]]+)\] \((\S+) (.*?) \[[^\]]*\]\)")


@dataclass
class Upgrade:
    package: str
    installed: str
    candidate: str
    archives: str                  # e.g. "Harrowdale:1.0/stable-security [all]" as apt prints it
    security: bool                 # the candidate comes from a security archive
    published: date | None = None  # the archive's Release date


@dataclass
class HostPackages:
    host: str
    os: str
    packages: dict[str, str]
    upgrades: list[Upgrade] = field(default_factory=list)
    raw: dict[str, str] = field(default_factory=dict)   # command outputs, kept as evidence


class AptError(RuntimeError):
    pass


def _run(root: Path, *argv: str) -> str:
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C", "DEBIAN_FRONTEND": "noninteractive"}
    proc = subprocess.run(["chroot", str(root), *argv], capture_output=True, text=True, timeout=300, env=env)
    if proc.returncode != 0:
        raise AptError(f"{' '.join(argv)} in {root} exited {proc.returncode}: {proc.stderr.strip()[:300]}")
    return proc.stdout


def release_dates(root: Path) -> dict[str, date]:
    """Archive labels (Origin, Label, Suite, Codename) -> the Release file's publication date."""
    lists = root / "var/lib/apt/lists"
    paths = sorted([*lists.glob("*_Release"), *lists.glob("*_InRelease")])
    texts = [path.read_text(errors="replace") for path in paths]
    return release_dates_from_text("\n\n".join(texts))


def release_dates_from_text(text: str) -> dict[str, date]:
    """The same from Release files' header fields, one paragraph per file (as the device audit reads
    them over its connection: devices.linux.package_inventory)."""
    out: dict[str, date] = {}
    for paragraph in text.split("\n\n"):
        fields: dict[str, str] = {}
        for line in paragraph.splitlines():
            if not line or line.startswith(" "):
                continue
            if line.startswith("-----BEGIN PGP SIGNATURE"):
                break
            key, _, value = line.partition(":")
            fields.setdefault(key.strip(), value.strip())
        if "Date" not in fields:
            continue
        try:
            published = parsedate_to_datetime(fields["Date"]).date()
        except (TypeError, ValueError):
            continue
        for key in ("Origin", "Label", "Suite", "Codename"):
            if fields.get(key):
                out.setdefault(fields[key], published)
    return out


def parse_simulation(text: str, dates: dict[str, date]) -> list[Upgrade]:
    upgrades = []
    for line in text.splitlines():
        m = _INST.match(line)
        if not m:
            continue
        name, installed, candidate, archives = m.groups()
        labels = re.split(r"[,:/ ]+", archives)
        published = min((dates[x] for x in labels if x in dates), default=None)
        upgrades.append(Upgrade(name, installed, candidate, archives, "security" in archives.lower(), published))
    return upgrades


def collect(host: str, os_name: str, root: Path) -> HostPackages:
    if not (root / "var/lib/dpkg/status").is_file():
        raise AptError(f"{root}: not a Debian system (no var/lib/dpkg/status)")
    listing = _run(root, "dpkg-query", "-W", "-f", "${db:Status-Abbrev}\t${Package}\t${Version}\n")
    simulation = _run(root, "apt-get", "-s", "-o", "Debug::NoLocking=1", "dist-upgrade")
    return from_outputs(host, os_name, listing, simulation, release_dates(root))


def parse_listing(listing: str) -> dict[str, str]:
    packages = {}
    for line in listing.splitlines():
        state, name, version = [*line.split("\t" if "\t" in line else "|"), "", "", ""][:3]
        if state.startswith("ii"):
            packages[name] = version
    return packages


def from_outputs(host: str, os_name: str, listing: str, simulation: str, dates: dict[str, date],
                 extra_raw: dict[str, str] | None = None) -> HostPackages:
    """A host's packages from the outputs of dpkg-query and apt-get -s, however they were run."""
    return HostPackages(host, os_name, parse_listing(listing), parse_simulation(simulation, dates),
                        raw={"dpkg-query.txt": listing, "apt-get-simulate.txt": simulation, **(extra_raw or {})})
