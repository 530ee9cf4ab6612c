"""Fixtures for the Azure tenancy and LOB tests.

Azure Resource Manager and the Pulumi engine cannot exist here: the program runs under Pulumi's
mock runtime (the SDK's in-process stand-in for the engine, preview=False, fake ARM-style ids and
echoed inputs) through the project's own plan runner, exactly as `estate infra plan` runs it.
The demo plan takes seconds, so it is built once per session.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from infra.plan import Plan, run_plan
from security_checks.model.loader import LoadedEstate, load_estate

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "inventory" / "demo"


def copy_demo(dest: Path, edits: dict[str, list[tuple[str, str]]] | None = None) -> Path:
    """A copy of the demo estate with text edits per file (each `old` must occur exactly once)."""
    shutil.copytree(DEMO, dest)
    for name, pairs in (edits or {}).items():
        path = dest / name
        text = path.read_text()
        for old, new in pairs:
            assert text.count(old) == 1, f"{name}: {old!r} occurs {text.count(old)} times"
            text = text.replace(old, new)
        path.write_text(text)
    return dest


@pytest.fixture(scope="session")
def demo_loaded() -> LoadedEstate:
    return load_estate(DEMO, policy=False)


@pytest.fixture(scope="session")
def demo_plan(demo_loaded: LoadedEstate) -> Plan:
    return run_plan(demo_loaded)
