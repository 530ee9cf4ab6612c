"""Shared fixtures. Each area keeps its own fixtures in tests/<area>/conftest.py."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from hypothesis import settings

REPO = Path(__file__).resolve().parents[1]

# Property and fuzz tests draw the same examples on every run of `make test` (CI included): a new
# failing example found by chance must not turn main red on an unrelated change. `make fuzz` runs
# the same tests with fresh random examples each time, to look for new bugs; whatever it finds
# becomes an @example regression case beside the test.
settings.register_profile("default", derandomize=True, print_blob=True)
settings.register_profile("explore", derandomize=False, print_blob=True)
settings.load_profile(os.environ.get("ESTATE_HYPOTHESIS", "default"))
DEMO = REPO / "inventory" / "demo"
ESTATE_BIN = REPO / ".venv" / "bin" / "estate"


@pytest.fixture
def demo_copy(tmp_path: Path) -> Path:
    """A private copy of the demo estate that a test may break."""
    dest = tmp_path / "estate"
    shutil.copytree(DEMO, dest)
    return dest


@pytest.fixture
def estate_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    monkeypatch.setenv("ESTATE_HOME", str(home))
    return home


@pytest.fixture(autouse=True)
def _no_shared_store(monkeypatch: pytest.MonkeyPatch) -> None:
    """A developer's ESTATE_DB (a shared store) must never receive test runs, nor one test's --db the next's."""
    from security_checks.store.db import select_database

    monkeypatch.delenv("ESTATE_DB", raising=False)
    select_database(None)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.geteuid() == 0:
        return
    skip = pytest.mark.skip(reason="needs root (network namespaces, chroot, packages); CI runs as root")
    for item in items:
        if "root" in item.keywords:
            item.add_marker(skip)
