"""`estate runs` and `estate findings`: read the store without writing a report."""

from __future__ import annotations

from fnmatch import fnmatchcase
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from ..findings import Severity, Status
from .common import (
    DEFAULT_HOME,
    DEMO_ESTATE,
    EstateOpt,
    Format,
    FormatOpt,
    HomeOpt,
    emit_json,
    load_or_exit,
    open_store,
    usage_error,
)


def runs(home: HomeOpt = DEFAULT_HOME, limit: int = typer.Option(20, help="How many runs, newest first."),
         kind: str | None = typer.Option(None, help="Only runs of this kind (assess, scan, devices-audit...)."),
         format: FormatOpt = Format.TEXT) -> None:
    """List stored runs, newest first, with their finding counts and skipped steps.

    Examples:  estate runs  |  estate runs --kind assess --limit 5 --format json
    """
    rows: list[dict[str, Any]] = []
    with open_store(home) as store:
        listed = store.runs(kind=kind, limit=limit)
        counts = store.status_counts(r.id for r in listed)
        for run in listed:
            rows.append({"id": run.id, "kind": run.kind, "started_at": run.started_at.isoformat(),
                         "operator": run.operator, "estate": run.organisation or run.estate_dir,
                         "full_scope": run.full_scope, "counts": counts.get(run.id, {}),
                         "steps": [{"name": s["name"], "status": s["status"], "summary": s.get("summary", "")}
                                   for s in run.steps],
                         "rap": run.rap_update})
    if format is Format.JSON:
        emit_json(rows)
        return
    table = Table("run", "kind", "started (UTC)", "estate", "fail", "error", "not assessed", "pass",
                  "steps skipped or failed")
    for r in rows:
        c = r["counts"]
        gaps = [f"{s['name']} ({s['status']}: {s['summary']})" for s in r["steps"] if s["status"] != "ran"]
        table.add_row(r["id"] + ("" if r["full_scope"] else "\n(partial)"), r["kind"], r["started_at"][:19],
                      r["estate"], str(c.get("fail", 0)), str(c.get("error", 0)), str(c.get("not_assessed", 0)),
                      str(c.get("pass", 0)), "\n".join(gaps))
    Console().print(table)


def findings(home: HomeOpt = DEFAULT_HOME,
             run: str | None = typer.Option(None, "--run", help="Run id or unique prefix; default the latest."),
             status: list[Status] = typer.Option([], "--status", help="Only these statuses (repeat)."),
             min_severity: Severity = typer.Option(Severity.INFO, "--min-severity", help="Only at or above."),
             check: str = typer.Option("*", "--check", help="Check id pattern, e.g. 'scan.*'."),
             asset: str = typer.Option("*", "--asset", help="Asset pattern, e.g. 'host:10.10.*'."),
             limit: int = typer.Option(30, "--limit", min=0,
                                       help="Rows in the text table (it fits a screen); 0: all. JSON has all."),
             format: FormatOpt = Format.TEXT) -> None:
    """List a run's findings, filtered.

    Examples:  estate findings --status fail --min-severity high  |  estate findings --check 'devices.*' --format json
    """
    with open_store(home) as store:
        info = store.get_run(run)
        if info is None:
            usage_error(f"--run: no run matches {run!r}" if run
                        else f"no runs stored in {home} yet: run `estate assess`")
        stored = store.findings(info.id)
    selected = [f for f in stored
                if (not status or f.status in status) and f.severity.rank >= min_severity.rank
                and fnmatchcase(f.check_id, check) and fnmatchcase(f.asset, asset)]
    selected.sort(key=lambda f: (-f.severity.rank, f.check_id, f.asset))
    if format is Format.JSON:
        emit_json({"run": info.id, "findings": [f.model_dump(mode="json") for f in selected]})
        return
    table = Table("severity", "status", "check", "asset", "observed", title=f"run {info.id} ({info.kind})")
    shown = selected[:limit] if limit else selected
    for f in shown:
        state = f.status.value + (" (accepted)" if f.accepted else "")
        table.add_row(f.severity.value, state, f.check_id, f.asset, f.observed[:80])
    Console().print(table)
    if len(shown) < len(selected):
        Console().print(f"... and {len(selected) - len(shown)} more: narrow with --status/--check/--asset, "
                        "--limit 0 for all, or --format json", soft_wrap=True, highlight=False)


def checks(check: str = typer.Argument("*", help="Check id or pattern, e.g. scan.weak_tls or 'devices.*'."),
           estate: EstateOpt = DEMO_ESTATE, format: FormatOpt = Format.TEXT) -> None:
    """The check registry: each check's metadata, where its code and metadata live, its requirements.

    Texts name the estate's public-sector network (PSN, SWAN...), as its findings will.

    Examples:  estate checks  |  estate checks scan.weak_tls  |  estate checks 'infra.*' --format json
    """
    from ..checks import name_network
    from ..jobs import describe_checks

    found = describe_checks(check)
    if not found:
        usage_error(f"no check matches {check!r}")
    network = load_or_exit(estate, policy=False).estate.organisation.public_sector_network
    for d in found:
        for k in ("title", "description", "remediation"):
            d[k] = name_network(d[k], network)
    if format is Format.JSON:
        emit_json(found)
        return
    if len(found) == 1:
        d = found[0]
        for k in ("id", "title", "severity", "evidence_kind", "source", "metadata", "emitted_by", "steps",
                  "requirements", "description", "remediation"):
            value = d.get(k)
            text = ", ".join(value) if isinstance(value, list) else str(value or "")
            Console().print(f"[bold]{k}[/]: {text}", soft_wrap=True, highlight=False)
        return
    table = Table("check", "severity", "evidence", "title", "requirements")
    for d in found:
        table.add_row(d["id"], d["severity"], d["evidence_kind"], d["title"], " ".join(d["requirements"]))
    Console().print(table)
