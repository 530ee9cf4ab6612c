"""The Pulumi SDKs are pinned to the minor versions the offline plan (infra/plan.py) was tested with.

The plan leans on SDK internals (pulumi.runtime.mocks.MockMonitor, rpc's secret signature keys, the
resource module's stack-trace hook): a new minor release may move them, so an upgrade must be a
deliberate change of these pins, tested, never a resolver's choice.
"""

from __future__ import annotations

import tomllib
from importlib.metadata import version
from pathlib import Path

from packaging.requirements import Requirement
from packaging.version import Version

REPO = Path(__file__).resolve().parents[2]
PULUMI_SDKS = ("pulumi", "pulumi-azure-native", "pulumi-meraki", "pulumi-random", "pulumi-policy")


def _requirements() -> dict[str, Requirement]:
    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    reqs = [Requirement(d) for d in deps]
    return {r.name: r for r in reqs}


def test_each_pulumi_sdk_is_pinned_to_one_minor_version_and_the_installed_one_matches() -> None:
    reqs = _requirements()
    for name in PULUMI_SDKS:
        req = reqs[name]
        installed = Version(version(name))
        assert req.specifier.contains(installed), f"{name} {installed} is outside the pin {req.specifier}"
        # One minor version only: the next minor (and any earlier minor) falls outside the pin.
        major, minor = installed.major, installed.minor
        assert not req.specifier.contains(Version(f"{major}.{minor + 1}.0")), f"{name}: next minor allowed"
        assert not req.specifier.contains(Version(f"{major + 1}.0.0")), f"{name}: next major allowed"
        if minor:
            assert not req.specifier.contains(Version(f"{major}.{minor - 1}.0")), f"{name}: older minor allowed"


def test_the_sdk_internals_the_offline_plan_uses_are_where_the_pins_say() -> None:
    import pulumi.runtime.resource as sdk_resource
    from pulumi.runtime import rpc
    from pulumi.runtime.mocks import MockMonitor

    from infra.plan import _SECRET_SIG, _SIG_KEY

    assert rpc._special_sig_key == _SIG_KEY
    assert rpc._special_secret_sig == _SECRET_SIG
    assert callable(sdk_resource._get_stack_trace)
    assert hasattr(MockMonitor, "RegisterResource")
