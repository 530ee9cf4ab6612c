"""Fixtures for the scan tests: the demo estate, a private store, and one lab per test session."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from security_checks.model.loader import LoadedEstate, load_estate
from security_checks.store import Store

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "inventory" / "demo"


@pytest.fixture(scope="session")
def loaded() -> LoadedEstate:
    return load_estate(DEMO)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(tmp_path / "home")
    yield s
    s.close()


@pytest.fixture(scope="session")
def lab(loaded: LoadedEstate, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, object]]:
    """The lab, built once per session and removed at the end; asserts nothing is left behind."""
    if os.geteuid() != 0:
        pytest.skip("needs root (network namespaces); CI runs as root")
    from security_checks.lab import build
    from security_checks.lab.topology import build_lab

    home = tmp_path_factory.mktemp("labhome")
    st = build.status(home)
    if st["up"] and (build.read_state(Path(str(st["home"]))) or {}).get("estate_digest") != loaded.digest:
        build.down(home)  # a lab left by another run, from another estate: these tests need the demo's
        st = build.status(home)
    brought = not st["up"]
    if brought:
        st = build.up(loaded, home)
    home = Path(str(st["home"]))
    yield {"home": home, "status": st, "lab": build_lab(loaded.estate)}
    if brought:
        build.down(home)
        assert build.lab_namespaces() == []
        assert build.root_leftover_links() == []
        ps = subprocess.run(["pgrep", "-f", "security_checks.lab.listeners"], capture_output=True, text=True)
        assert ps.stdout.strip() == "", f"listener processes left: {ps.stdout}"
