"""The Azure names in the Site Recovery failover runbook are the names the program gives.

An engineer failing a system over types these names into `az` during an outage. A name the
program no longer gives (a renamed convention, a resource moved to another group or
subscription) would fail only then, halfway through a failover. So the section is read here
against the demo plan. Every demo resource name it uses must be one the program gives, or one
the runbook has the engineer create, named by the program's own convention (infra/naming.py).
Every `--subscription ... -g ...` pair and every ARM id must put the resource group in the
subscription, and the resource in the group, where the program puts them.

The plan is of the demo with `secondary_hub: true`. The runbook also names the DR-region hub
and firewall for estates that have one, and switching the hub on only adds resources, so every
other name is the same as in the demo.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from infra.naming import Namer
from infra.plan import Plan, run_plan
from security_checks.model.loader import load_estate
from tests.estate_copy import copy_demo

RUNBOOK = Path(__file__).resolve().parents[2] / "runbooks" / "deploy-infrastructure.md"
SECTION = "## Failing a tier-1 IaaS system over to the other region"
SYSTEM = "revs-benefits"     # the demo system the section uses

# Demo resource names (<type>-hdc-...), Site Recovery child names (asr-...), subnets and zones.
# The lookbehind keeps a name's tail ("...-asr-prod-uks") from counting as a name of its own.
NAME = re.compile(r"(?<![\w.-])(?:[a-z][a-z0-9]*(?:-[a-z0-9]+)*-hdc-[a-z0-9-]*[a-z0-9]|asr-[a-z0-9-]*[a-z0-9]"
                  r"|snet-[a-z0-9-]*[a-z0-9]|privatelink\.[a-z0-9.]*[a-z0-9])(?![\w-])")
ARM_ID = re.compile(r"/subscriptions/([0-9a-f-]{36})/resourceGroups/([^/\s]+)/providers/[^/\s]+/[^/\s]+/([^/\s]+)")
AZ_COMMAND = re.compile(r"^\s*\$ (az .*)$")


def section_text() -> str:
    text = RUNBOOK.read_text()
    assert SECTION in text, f"{RUNBOOK.name} has no section {SECTION!r}"
    body = text[text.index(SECTION) + len(SECTION):]
    end = re.search(r"^## ", body, re.MULTILINE)
    return body[:end.start()] if end else body


def az_commands(text: str) -> list[str]:
    """Each `$ az ...` command, its backslash-continued lines joined."""
    out: list[str] = []
    lines = iter(text.splitlines())
    for line in lines:
        m = AZ_COMMAND.match(line)
        if not m:
            continue
        command = m.group(1)
        while command.endswith("\\"):
            command = command[:-1] + " " + next(lines).strip()
        out.append(command)
    return out


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list | tuple):
        for v in value:
            yield from _strings(v)


class Where:
    """What the plan says about names: every string in any input, and for each physical name the
    (subscription, resource group) pairs of the resources carrying it."""

    def __init__(self, plan: Plan) -> None:
        subscriptions = {r.urn: str(r.inputs.get("subscriptionId")) for r in plan.resources
                         if r.type.startswith("pulumi:providers:azure-native")}
        by_urn = {r.urn: r for r in plan.resources}

        def subscription(urn: str | None) -> str | None:
            # A resource's subscription is its provider's, given on it or on the nearest parent.
            while urn is not None:
                r = by_urn.get(urn)
                if r is None:
                    return None
                if r.provider:
                    return subscriptions.get(r.provider.rsplit("::", 1)[0])
                urn = r.parent
            return None

        self.strings: set[str] = set()
        self.placed: dict[str, set[tuple[str | None, str]]] = {}
        for r in plan.resources:
            self.strings.update(_strings(r.inputs))
            rg = r.inputs.get("resourceGroupName")
            if not isinstance(rg, str):
                continue
            sub = subscription(r.urn)
            for key, value in r.inputs.items():
                if key.endswith("Name") and isinstance(value, str):
                    self.placed.setdefault(value, set()).add((sub, rg))


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Where, Namer, Any]:
    estate = copy_demo(tmp_path_factory.mktemp("runbook") / "estate", {"organisation.yaml": [
        ("    secondary_hub: false", "    secondary_hub: true")]})
    loaded = load_estate(estate)
    e = loaded.estate
    namer = Namer(e.organisation.short_name, "prod", e.azure.primary_region)
    return Where(run_plan(loaded)), namer, e


def to_create(namer: Namer, estate: Any) -> set[str]:
    """The names the section has the engineer create, as the program would name them: the DR hub
    connection (infra/hub.py connect_spoke: the system's name in the hub's region, here with -dr)
    on either hub, the Key Vault's endpoint in the recovery VNet (infra/lob.py _private_endpoint)
    and the zone's link to that VNet (`link-<vnet>`, as lob.py links the spoke)."""
    primary, secondary = estate.azure.primary_region, estate.azure.secondary_region
    recovery_vnet = namer.name("virtual_network", f"{SYSTEM}-dr", region=secondary)
    return {namer.name("hub_connection", f"{SYSTEM}-dr", region=primary),
            namer.name("hub_connection", f"{SYSTEM}-dr", region=secondary),
            namer.name("private_endpoint", f"{SYSTEM}-kv-dr", region=secondary),
            f"link-{recovery_vnet}"}


@pytest.mark.slow
def test_every_name_in_the_failover_section_is_one_the_program_gives(demo: tuple[Where, Namer, Any]) -> None:
    where, namer, estate = demo
    text = section_text()
    names = set(NAME.findall(text))
    created = to_create(namer, estate)
    # The section is about the recovery VNet, its vault and the hub connection: if the pattern
    # stopped finding those, this test would pass over an empty section.
    assert {f"vnet-hdc-{SYSTEM}-dr-prod-ukw", f"rsv-hdc-{SYSTEM}-dr-prod-ukw", f"vhc-hdc-{SYSTEM}-prod-uks",
            "asr-fabric-uksouth", "snet-app"} <= names
    assert created <= names, f"the section does not use the conventional names {sorted(created - names)}"
    unknown = sorted(n for n in names - created if n not in where.strings)
    assert not unknown, f"{RUNBOOK.name}: names the program does not give: {unknown}"


@pytest.mark.slow
def test_every_subscription_and_group_in_the_failover_section_is_where_the_program_puts_it(
        demo: tuple[Where, Namer, Any]) -> None:
    where, _namer, estate = demo
    text = section_text()
    subscriptions = {s.id for s in estate.azure.subscriptions}
    commands = az_commands(text)
    assert len(commands) >= 10
    checked = 0
    for command in commands:
        sub = re.search(r"--subscription (\S+)", command)
        rg = re.search(r"(?:-g|--resource-group) (\S+)", command)
        assert sub is not None, f"no --subscription (the failover spans two): {command}"
        assert sub.group(1) in subscriptions, command
        if rg is not None:
            assert (sub.group(1), rg.group(1)) in where.placed.get(rg.group(1), set()), (
                f"{rg.group(1)} is not in subscription {sub.group(1)}: {command}")
            checked += 1
    ids = ARM_ID.findall(text)
    assert len(ids) >= 5
    for sub, rg, name in ids:
        assert (sub, rg) in where.placed.get(name, set()), (
            f"the program puts {name} in {sorted(where.placed.get(name, set()))}, the runbook in ({sub}, {rg})")
    assert checked >= 10
