"""Run the firewall playbook through ansible-runner: the shared wrapper (security_checks/playbook_run.py)
with the firewall playbook, the inventories it plays to and the httpapi connection's settings."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from .. import playbook_run
from ..playbook_run import PLAYBOOKS, RunnerOutcome, Scrubber

PLAYBOOK = "firewalls.yml"
INVENTORY = PLAYBOOKS / "inventory" / "estate.yml"
PREFIX = "firewalls-runner-"
ENV = {
    # The estate's inventory plugin, and the YAML/JSON inventory the demo lab writes for its routers.
    "ANSIBLE_INVENTORY_ENABLED": "estate,yaml",
    # The httpapi connection's daemon outlives a run by this long: one run, one connection.
    "ANSIBLE_PERSISTENT_CONNECT_TIMEOUT": "30",
}

__all__ = ["INVENTORY", "PLAYBOOK", "RunnerOutcome", "Scrubber", "run_playbook"]


def run_playbook(*, estate_dir: Path, home: Path, apply: bool, limit: str | None = None,
                 scrubber: Scrubber | None = None, on_event: Callable[[dict[str, Any]], None] | None = None,
                 inventory: Path = INVENTORY, playbook: str = PLAYBOOK, extra_env: dict[str, str] | None = None,
                 extravars: dict[str, Any] | None = None) -> RunnerOutcome:
    """Run the firewall playbook in check and diff mode (audit) or diff mode (apply)."""
    return playbook_run.run_playbook(prefix=PREFIX, estate_dir=estate_dir, home=home, apply=apply, playbook=playbook,
                                     inventory=inventory, limit=limit, scrubber=scrubber, on_event=on_event,
                                     extra_env={**ENV, **(extra_env or {})}, extravars=extravars)
