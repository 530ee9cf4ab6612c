"""Fixtures for the Azure tenancy and LOB tests.

Azure Resource Manager and the Pulumi engine cannot exist here: the program runs under Pulumi's
mock runtime (the SDK's in-process stand-in for the engine, preview=False, fake ARM-style ids and
echoed inputs) through the project's own plan runner, exactly as `estate infra plan` runs it.
The demo plan takes seconds, so it is built once per session.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from infra.plan import Plan, run_plan
from security_checks.model.loader import LoadedEstate, load_estate
from tests.estate_copy import copy_demo  # noqa: F401  (re-exported to the tests here)

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "inventory" / "demo"


@pytest.fixture(scope="session")
def demo_loaded() -> LoadedEstate:
    return load_estate(DEMO, policy=False)


@pytest.fixture(scope="session")
def demo_plan(demo_loaded: LoadedEstate) -> Plan:
    return run_plan(demo_loaded)
