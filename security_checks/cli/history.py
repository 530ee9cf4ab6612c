"""`estate runs` and `estate findings`: read the store without writing a report."""

from __future__ import annotations

from fnmatch import fnmatchcase
from typing import Any

import typer

from ..findings import Severity, Status
from .common import (
    DEFAULT_HOME,
    DEMO_ESTATE,
    EstateOpt,
    Format,
    FormatOpt,
    HomeOpt,
    SafeConsole,
    emit_json,
    load_or_exit,
    open_store,
    usage_error,
)
from .screen import one_line_table


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
    # One line a run (why each step was skipped: --format json); `--limit` runs fit a screen.
    out = SafeConsole()
    lines = []
    for r in rows:
        c = r["counts"]
        gaps = [s["name"] for s in r["steps"] if s["status"] != "ran"]
        tally = ", ".join(f"{c[k]} {label}" for k, label in (("fail", "fail"), ("error", "error"),
                                                             ("not_assessed", "n/a"), ("pass", "pass")) if c.get(k))
        lines.append((r["id"] + ("" if r["full_scope"] else " (partial)"), r["kind"],
                      r["started_at"][:16].replace("T", " "), r["estate"], tally or "none", ", ".join(gaps)))
    table = one_line_table((("run", 23, 33), ("kind", 6, 14), ("started (UTC)", 16, 16), ("estate", 8, 30),
                            ("findings", 8, 30), ("steps skipped or failed", 8, 60)), lines, out)
    out.print(table)


def findings(home: HomeOpt = DEFAULT_HOME,
             run: str | None = typer.Option(None, "--run", help="Run id or unique prefix; default the latest."),
             status: list[Status] = typer.Option([], "--status", help="Only these statuses (repeat)."),
             min_severity: Severity = typer.Option(Severity.INFO, "--min-severity", help="Only at or above."),
             check: str = typer.Option("*", "--check", help="Check id pattern, e.g. 'scan.*'."),
             asset: str = typer.Option("*", "--asset", help="Asset pattern, e.g. 'host:10.10.*'."),
             limit: int = typer.Option(25, "--limit", min=0,
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
    out = SafeConsole()
    out.print(f"run {info.id} ({info.kind}): {len(selected)} finding(s)", soft_wrap=True)
    shown = selected[:limit] if limit else selected
    rows = [(f.severity.value, f.status.value + (" (accepted)" if f.accepted else ""), f.check_id, f.asset,
             f.observed) for f in shown]
    table = one_line_table((("severity", 8, 8), ("status", 6, 17), ("check", 12, 36), ("asset", 12, 32),
                            ("observed", 10, 80)), rows, out)
    out.print(table)
    if len(shown) < len(selected):
        out.print(f"... and {len(selected) - len(shown)} more: narrow with --status/--check/--asset, "
                        "--limit 0 for all, or --format json", soft_wrap=True, highlight=False)


CHECK_ROWS = 30   # more matches than this: a summary by family that fits a screen


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
            SafeConsole().print(f"[bold]{k}[/]: {text}", soft_wrap=True)
        return
    out = SafeConsole()
    if len(found) > CHECK_ROWS:
        # The whole registry is a few hundred lines: a screen says where the checks are, by family.
        families: dict[str, list[dict[str, Any]]] = {}
        for d in found:
            families.setdefault(d["id"].split(".")[0], []).append(d)
        out.print(f"{len(found)} checks; list a family with `estate checks '<family>.*'`, or --format json for all:")
        rows = [(name, str(len(ds)), ", ".join(sorted({d["evidence_kind"] for d in ds})),
                 ", ".join(d["id"].split(".", 1)[1] for d in ds)) for name, ds in sorted(families.items())]
        out.print(one_line_table((("family", 8, 12), ("checks", 6, 6), ("evidence", 8, 28), ("ids", 10, 90)), rows,
                                 out))
        return
    out.print(one_line_table((("check", 20, 40), ("severity", 8, 8), ("evidence", 8, 8), ("title", 20, 60),
                              ("requirements", 8, 40)),
                             [(d["id"], d["severity"], d["evidence_kind"], d["title"], " ".join(d["requirements"]))
                              for d in found], out))
