"""Fixtures for the device baseline tests.

The Debian endpoint is built once per machine (debootstrap, about 2 minutes) into a base tarball in
the cache (ESTATE_CACHE, default ~/.cache/estate) and extracted fresh for each test session, so
the slow part happens once and every session starts from the planted, non-compliant state.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "inventory" / "demo"
LAB_SECRET = "lab-Secret-7f3a9c-never-in-evidence"


def copy_estate(dst: Path) -> Path:
    shutil.copytree(DEMO, dst)
    return dst


def edit_endpoints(estate: Path, edit) -> None:  # type: ignore[no-untyped-def]
    path = estate / "endpoints.yaml"
    data = yaml.safe_load(path.read_text())
    edit(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False))


@pytest.fixture(scope="session")
def lab(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A fresh planted endpoint under a session home, and an estate copy that reaches it.

    The estate copy also names a password_env for the chroot host (to prove its value never
    reaches evidence) and adds an SSH host on loopback port 1, which refuses: an unreachable host.
    """
    if os.geteuid() != 0:
        pytest.skip("needs root: debootstrap and the chroot connection")
    from security_checks.lab.endpoint import ensure_lab_endpoint

    home = tmp_path_factory.mktemp("devices-home")
    ensure_lab_endpoint(home)
    estate = copy_estate(tmp_path_factory.mktemp("devices-estate") / "estate")

    def edit(data: dict) -> None:  # type: ignore[type-arg]
        group = next(g for g in data["endpoint_groups"] if g["name"] == "linux-endpoints")
        group["hosts"][0]["connection"] = {"kind": "chroot", "password_env": "ESTATE_LAB_PASSWORD"}
        group["hosts"].append({"name": "lab-unreachable", "address": "127.0.0.1", "site": "civic-centre",
                               "connection": {"kind": "ssh", "user": "nobody", "port": 1}})

    edit_endpoints(estate, edit)
    os.environ["ESTATE_LAB_PASSWORD"] = LAB_SECRET
    return {"home": home, "estate": estate}
