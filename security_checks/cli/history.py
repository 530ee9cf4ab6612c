"""`estate runs` and `estate findings`: read the store without writing a report."""

from __future__ import annotations

from collections import Counter
from fnmatch import fnmatchcase
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from ..findings import Severity, Status
from .common import DEFAULT_HOME, Format, FormatOpt, HomeOpt, emit_json, open_store, usage_error


def runs(home: HomeOpt = DEFAULT_HOME, limit: int = typer.Option(20, help="How many runs, newest first."),
         kind: str | None = typer.Option(None, help="Only runs of this kind (assess, scan, devices-audit...)."),
         format: FormatOpt = Format.TEXT) -> None:
    """List stored runs, newest first, with their finding counts and skipped steps.

    Examples:  estate runs  |  estate runs --kind assess --limit 5 --format json
    """
    store = open_store(home)
    rows: list[dict[str, Any]] = []
    for run in store.runs(kind=kind, limit=limit):
        counts = Counter(f.status.value for f in store.findings(run.id))
        rows.append({"id": run.id, "kind": run.kind, "started_at": run.started_at.isoformat(),
                     "operator": run.operator, "full_scope": run.full_scope, "counts": dict(counts),
                     "skipped": [s["name"] for s in run.steps if s["status"] == "skipped"]})
    if format is Format.JSON:
        emit_json(rows)
        return
    table = Table("run", "kind", "started (UTC)", "operator", "fail", "error", "pass", "skipped steps")
    for r in rows:
        c = r["counts"]
        table.add_row(r["id"], r["kind"], r["started_at"][:19], r["operator"], str(c.get("fail", 0)),
                      str(c.get("error", 0)), str(c.get("pass", 0)), ", ".join(r["skipped"]))
    Console().print(table)


def findings(home: HomeOpt = DEFAULT_HOME,
             run: str | None = typer.Option(None, "--run", help="Run id or unique prefix; default the latest."),
             status: list[Status] = typer.Option([], "--status", help="Only these statuses (repeat)."),
             min_severity: Severity = typer.Option(Severity.INFO, "--min-severity", help="Only at or above."),
             check: str = typer.Option("*", "--check", help="Check id pattern, e.g. 'scan.*'."),
             asset: str = typer.Option("*", "--asset", help="Asset pattern, e.g. 'host:10.10.*'."),
             format: FormatOpt = Format.TEXT) -> None:
    """List a run's findings, filtered.

    Examples:  estate findings --status fail --min-severity high  |  estate findings --check 'devices.*' --format json
    """
    store = open_store(home)
    info = store.get_run(run)
    if info is None:
        usage_error(f"--run: no run matches {run!r}" if run else f"no runs stored in {home} yet: run `estate assess`")
    selected = [f for f in store.findings(info.id)
                if (not status or f.status in status) and f.severity.rank >= min_severity.rank
                and fnmatchcase(f.check_id, check) and fnmatchcase(f.asset, asset)]
    selected.sort(key=lambda f: (-f.severity.rank, f.check_id, f.asset))
    if format is Format.JSON:
        emit_json({"run": info.id, "findings": [f.model_dump(mode="json") for f in selected]})
        return
    table = Table("severity", "status", "check", "asset", "observed", title=f"run {info.id}")
    for f in selected:
        table.add_row(f.severity.value, f.status.value, f.check_id, f.asset, f.observed[:80])
    Console().print(table)
