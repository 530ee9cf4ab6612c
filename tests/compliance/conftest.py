"""Fixtures for the compliance tests. The lab endpoint is the device engine's Debian chroot
(security_checks.lab.endpoint.ensure_lab_endpoint, debootstrap cached per machine), built once
per session under a directory the session owns, with the demo's overdue update planted in it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def lab_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if os.geteuid() != 0:
        pytest.skip("needs root (chroot); CI runs as root")
    from security_checks.lab.endpoint import ensure_lab_endpoint
    from security_checks.lab.patch_fault import plant

    home = tmp_path_factory.mktemp("compliance-home")
    root = ensure_lab_endpoint(home)
    plant(root)
    return home


@pytest.fixture(scope="session")
def lab_endpoint(lab_home: Path) -> Path:
    return lab_home / "lab" / "chroots" / "debian-01"
