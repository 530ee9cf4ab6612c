"""Run the baseline playbook through ansible-runner: the shared wrapper (security_checks/playbook_run.py)
with the baseline's playbook, the estate's inventory plugin and its own private-directory prefix."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from .. import playbook_run
from ..playbook_run import RunnerOutcome, Scrubber
from .controls import PLAYBOOKS

PLAYBOOK = "baseline.yml"
INVENTORY = PLAYBOOKS / "inventory" / "estate.yml"
PREFIX = "devices-runner-"

__all__ = ["INVENTORY", "PLAYBOOK", "RunnerOutcome", "remove_stale_private_dirs", "run_playbook"]


def run_playbook(*, estate_dir: Path, home: Path, apply: bool, limit: str | None = None,
                 scrubber: Scrubber | None = None, on_event: Callable[[dict[str, Any]], None] | None = None,
                 playbook: str = PLAYBOOK, tags: str | None = None) -> RunnerOutcome:
    """Run `playbook` in check and diff mode (audit) or diff mode (apply) against the estate's inventory."""
    return playbook_run.run_playbook(prefix=PREFIX, estate_dir=estate_dir, home=home, apply=apply, playbook=playbook,
                                     inventory=INVENTORY, limit=limit, tags=tags, scrubber=scrubber,
                                     on_event=on_event)


def remove_stale_private_dirs(work: Path) -> list[Path]:
    """What killed baseline runs left in `work` (their private data holds the environment)."""
    return playbook_run.remove_stale_private_dirs(work, PREFIX)
