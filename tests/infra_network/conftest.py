"""Fixtures for the WAN and Wi-Fi tests.

Azure Resource Manager, the Meraki dashboard and the Pulumi engine cannot exist here: the program
runs under Pulumi's mock runtime (the SDK's in-process stand-in for the engine). Two harnesses:

- `network_plan(estate_dir)`: the network part of the program (hub, identity, WAN, Wi-Fi) through
  the project's offline plan runner (infra/plan.py), as `estate infra plan` sees it: inputs in
  camelCase, secrets redacted;
- `engine_view(estate_dir)`: the same program under mocks that give each random password a
  known value and keep the inputs as the provider would receive them (secrets unwrapped), plus
  which top-level properties the SDK marked secret. For following a generated key to where it
  is used, and proving it travels only as a secret.

Plans are cached per estate directory for the session: each run takes seconds on a shared box.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from security_checks.model.loader import LoadedEstate, load_estate
from tests.estate_copy import copy_demo  # noqa: F401  (re-exported to the tests here)

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "inventory" / "demo"
TODAY = date(2026, 11, 22)


def _network_program(loaded: LoadedEstate) -> Callable[[], Any]:
    def program() -> Any:
        from infra import hub, identity, wan, wifi
        from infra.config import InfraConfig
        from infra.context import Context
        from infra.naming import Namer

        cfg = InfraConfig()
        estate = loaded.estate
        ctx = Context(loaded=loaded, config=cfg,
                      namer=Namer(estate.organisation.short_name, cfg.environment, estate.azure.primary_region))
        h = hub.build(ctx)
        ident = identity.build(ctx, h)
        out_wan = wan.build(ctx, h, ident)
        out_wifi = wifi.build(ctx, ident, today=TODAY)
        return ctx, ident, out_wan, out_wifi

    return program


def network_plan(estate_dir: Path) -> Any:
    """The network resources of the program, through the offline plan runner (redacted inputs)."""
    from infra.plan import Plan, run_under_mocks

    loaded = load_estate(estate_dir, policy=False)
    resources, result = run_under_mocks(_network_program(loaded))
    ctx = result[0]
    return Plan(stack="test", resources=resources, origins=dict(ctx.origins), loaded=loaded)


@dataclass
class Registered:
    type: str
    name: str
    inputs: dict[str, Any]
    secret_keys: set[str] = field(default_factory=set)


@dataclass
class EngineView:
    resources: list[Registered]
    outputs: Any

    def by_type(self, suffix: str) -> list[Registered]:
        return [r for r in self.resources if r.type.endswith(suffix)]

    def one(self, name: str) -> Registered:
        found = [r for r in self.resources if r.name == name]
        assert len(found) == 1, f"{name}: {len(found)} resources"
        return found[0]


_ENGINE_LOCK = threading.Lock()


def engine_view(estate_dir: Path) -> EngineView:
    """Run the network program with mocks that know random passwords' values (see module doc)."""
    import pulumi
    from pulumi.runtime import rpc, settings
    from pulumi.runtime.mocks import MockMonitor
    from pulumi.runtime.stack import run_pulumi_func
    from pulumi.runtime.sync_await import _sync_await

    from infra.plan import _LOCK, make_mocks

    loaded = load_estate(estate_dir, policy=False)
    base = make_mocks()
    sink: list[Registered] = []

    class KnownSecrets(pulumi.runtime.Mocks):
        """The plan's mocks, except that a random password's result is `generated:<logical name>`."""

        def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
            rid, outputs = base.new_resource(args)
            if args.typ == "random:index/randomPassword:RandomPassword":
                outputs = {**outputs, "result": f"generated:{args.name}"}
            return rid, outputs

        def call(self, args: pulumi.runtime.MockCallArgs) -> Any:
            return base.call(args)

    mocks = KnownSecrets()

    class Recorder(MockMonitor):  # type: ignore[misc]
        def RegisterResource(self, request: Any) -> Any:
            response = super().RegisterResource(request)
            if request.type != "pulumi:pulumi:Stack":
                raw = rpc.deserialize_properties(request.object, keep_unknowns=True)
                plain, _ = rpc.deserialize_properties_unwrap_secrets(request.object)
                secret = {k for k, v in raw.items() if rpc.is_rpc_secret(v)}
                sink.append(Registered(request.type, request.name, dict(plain), secret))
            return response

    with _LOCK, _ENGINE_LOCK:
        settings.ROOT.set(None)
        pulumi.runtime.set_mocks(mocks, project="estate", stack="test", preview=False, monitor=Recorder(mocks))
        result: dict[str, Any] = {}

        def body() -> None:
            result["value"] = _network_program(loaded)()

        _sync_await(run_pulumi_func(body))
    return EngineView(sink, result.get("value"))


_CACHE: dict[str, Any] = {}


@pytest.fixture(scope="session")
def demo_plan() -> Any:
    if "demo" not in _CACHE:
        _CACHE["demo"] = network_plan(DEMO)
    return _CACHE["demo"]


@pytest.fixture(scope="session")
def demo_engine() -> EngineView:
    if "engine" not in _CACHE:
        _CACHE["engine"] = engine_view(DEMO)
    return _CACHE["engine"]


@pytest.fixture(scope="session")
def demo_loaded() -> LoadedEstate:
    return load_estate(DEMO)
