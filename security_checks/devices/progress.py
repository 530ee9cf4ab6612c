"""Live progress of a device run on stderr: the task in hand and running counts per result."""

from __future__ import annotations

from collections import Counter
from typing import Any

from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn


class DeviceProgress:
    def __init__(self, console: Console):
        self.console = console
        self.counts: Counter[str] = Counter()
        self.progress = Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                                 console=console, transient=True)
        self.task = self.progress.add_task("starting ansible-runner")

    def __enter__(self) -> DeviceProgress:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def __call__(self, event: dict[str, Any]) -> None:
        name = event.get("event", "")
        data = event.get("event_data") or {}
        if name == "playbook_on_task_start":
            self.progress.update(self.task, description=f"{data.get('task', '')}  [{self._counts()}]")
        elif name.startswith("runner_on_"):
            res = data.get("res") or {}
            kind = name.removeprefix("runner_on_")
            if kind == "ok" and res.get("changed"):
                kind = "changed"
            self.counts[kind] += 1
            if kind in ("failed", "unreachable"):
                self.console.print(f"[red]{kind}[/]: {data.get('host')}: {data.get('task')}", soft_wrap=True)

    def _counts(self) -> str:
        return ", ".join(f"{v} {k}" for k, v in sorted(self.counts.items())) or "..."
