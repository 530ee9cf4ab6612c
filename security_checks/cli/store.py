"""`estate store`: the state of the findings store, and recovery that never deletes anything."""

from __future__ import annotations

import sys
from typing import Any

import typer

from .common import DEFAULT_HOME, Format, FormatOpt, HomeOpt, WaitOpt, emit_json, err, usage_error, writing

app = typer.Typer(
    help=("The findings store under --home: its health, and recovery after a crash or a restored backup.\n\n"
          "No command ever deletes a run's evidence: what recovery cannot put back is moved to quarantine/."),
    rich_markup_mode="rich", no_args_is_help=True)


@app.command(epilog=("Examples:\n\n  estate store status\n\n  estate store status --verify --format json\n\n"
                     "  estate --db postgresql://auditor@db.council.internal/estate store status"))
def status(home: HomeOpt = DEFAULT_HOME, verify: bool = typer.Option(
               False, "--verify", help="Also re-hash every run's evidence against the hashes stored at commit."),
           format: FormatOpt = Format.TEXT) -> None:
    """The store's back-end and where it is, its schema, runs, evidence directories, quarantine and who is writing now.

    The database is SQLite in --home unless --db or ESTATE_DB names a shared PostgreSQL one (its
    password is never shown). Evidence always stays under --home: on a shared store this home checks
    the runs whose evidence it holds, and counts the others.

    Exit 0 when the store is consistent (and, with --verify, every evidence file is intact), 1 when
    something needs attention, 2 when the store cannot be opened (the message says why).
    """
    from ..store import Store, StoreError
    from ..store.db import configured
    from ..store.lock import describe, holder, holds_writer_lock

    if not configured() and not (home / "estate.db").exists() and not (home / "runs").is_dir():
        usage_error(f"{home}: no store here yet")
    try:
        store = Store(home, recovering=True)
    except StoreError as exc:
        usage_error(str(exc))
    with store:
        runs = store.runs()
        here = set(store.own_run_ids())
        unknown = store.unknown_run_dirs()
        consistency = store.missing_evidence_dirs()
        damaged: dict[str, list[str]] = {}
        if verify:
            for r in (r for r in runs if r.id in here):
                problems = store.verify_evidence(r.id)
                if problems:
                    damaged[r.id] = problems
        doc: dict[str, Any] = {"home": str(home), "backend": store.location.backend,
               "database": store.location.shown, "home_id": store.home_id, "runs_with_evidence_here": len(here),
               "schema": store.schema_version[-1] if store.schema_version else None,
               "runs": len(runs), "latest_run": runs[0].id if runs else None,
               "unknown_run_dirs": unknown, "missing_evidence": consistency,
               "staging": store.staging_dirs(), "quarantine": store.quarantined(),
               "writer": describe(holder(home)) if holds_writer_lock(home) else None,
               "evidence_verified": verify, "damaged_evidence": damaged,
               "rap_items": len(store.rap_items(with_history=False))}
    trouble = bool(unknown or consistency or damaged)
    if format is Format.JSON:
        emit_json({**doc, "ok": not trouble})
    else:
        err.print(f"store {home}: {doc['backend']} {doc['database']}", soft_wrap=True, markup=False)
        err.print(f"  schema {doc['schema']}, {doc['runs']} run(s), latest {doc['latest_run'] or '-'}, "
                  f"{doc['rap_items']} RAP item(s)")
        if store.location.shared:
            err.print(f"  this home ({doc['home_id']}) holds the evidence of {len(here)} of them", soft_wrap=True,
                      markup=False)
        if doc["writer"]:
            err.print(f"  writing now: {doc['writer']}")
        for d in unknown:
            err.print(f"  [red]unknown to the database:[/] runs/{d} (see `estate store recover`)")
        for p in consistency:
            err.print(f"  [red]missing:[/] {p}")
        for run_id, problems in damaged.items():
            err.print(f"  [red]evidence of run {run_id} damaged:[/] {'; '.join(problems[:3])}")
        for q in doc["quarantine"]:
            err.print(f"  quarantined: quarantine/{q['name']} ({q['reason']})")
        if doc["staging"] and not doc["writer"]:
            err.print(f"  staging left by a killed run (the next writer quarantines it): {', '.join(doc['staging'])}")
        if verify and not damaged:
            err.print(f"  evidence of all {len(here)} run(s) held here matches the hashes stored at commit")
        err.print("[green]consistent[/]" if not trouble else "[bold red]needs attention[/]")
    raise typer.Exit(1 if trouble else 0)


@app.command(epilog=("Examples:\n\n  estate store recover                  (what it found, and the choices)\n\n"
                     "  estate store recover --adopt          (runs the database lost, back from their manifests)\n\n"
                     "  estate store recover --quarantine     (set them aside instead)"))
def recover(home: HomeOpt = DEFAULT_HOME,
            adopt: bool = typer.Option(False, "--adopt", help="Register run directories the database does not "
                                       "know, from the manifest each run wrote at commit."),
            quarantine: bool = typer.Option(False, "--quarantine", help="Move run directories the database does "
                                            "not know to quarantine/ (kept, never deleted)."),
            wait: WaitOpt = 0.0, format: FormatOpt = Format.TEXT) -> None:
    """Repair a store whose database does not match the evidence on disk (a crash, a restored backup).

    Without an option it changes nothing and says what it found. Other commands refuse a store whose
    database does not know run directories it holds, so that no command builds on (or loses) them.
    --adopt puts those runs back with their findings, verdicts and evidence index (their effect on
    the Remediation Action Plan is not replayed: the next full assessment re-derives it).
    """
    from ..store import Store, StoreError

    if adopt and quarantine:
        usage_error("--adopt and --quarantine: choose one")
    if not (home / "runs").is_dir():
        usage_error(f"{home}: no store here")
    done: list[dict[str, str]] = []
    try:
        with writing(home, "estate store recover", wait), Store(home, writer=True, recovering=True) as store:
            unknown = store.unknown_run_dirs()
            for run_id in unknown:
                if adopt:
                    count = store.adopt(run_id)
                    done.append({"run": run_id, "action": "adopted", "detail": f"{count} finding(s)"})
                elif quarantine:
                    name = store.quarantine(store.runs_dir / run_id, run_id,
                                            "unknown to the database (restored backup?): set aside by recover")
                    done.append({"run": run_id, "action": "quarantined", "detail": f"quarantine/{name}"})
                else:
                    done.append({"run": run_id, "action": "found", "detail": "unknown to the database"})
            notes = list(store.recovered)
    except StoreError as exc:
        usage_error(str(exc))
    if format is Format.JSON:
        emit_json({"home": str(home), "runs": done, "recovered": notes})
    else:
        for n in notes:
            err.print(f"  {n}", soft_wrap=True)
        for d in done:
            err.print(f"  {d['action']:>11} runs/{d['run']}: {d['detail']}")
        if not done and not notes:
            err.print("nothing to recover: the database knows every run directory")
        elif any(d["action"] == "found" for d in done):
            err.print("choose: --adopt (put them back) or --quarantine (set them aside); nothing was changed")
    raise typer.Exit(1 if any(d["action"] == "found" for d in done) else 0)



@app.command(epilog=("Examples:\n\n  estate store grants --database estate > grants.sql\n\n"
                     "  estate --db postgresql://estate_owner@db.council.internal/estate store grants | psql ..."))
def grants(database: str | None = typer.Option(
               None, "--database", help="The PostgreSQL database's name. Default: the one --db or ESTATE_DB "
               "names, else estate."),
           format: FormatOpt = Format.TEXT) -> None:
    """Print the SQL that gives a shared PostgreSQL store least-privilege roles.

    estate_reader (report readers, auditors) may only read; estate_writer (operators' runs, site
    scanners) may add runs and move the Remediation Action Plan on, but never change the schema or
    delete a run; the database's owner applies migrations. Run the statements once as the owner,
    then make each person or scanner a login role in one of the two. Nothing is executed here.
    """
    from urllib.parse import urlsplit

    from ..store.db import configured
    from ..store.grants import grant_statements

    url = configured() or ""
    name = database or (urlsplit(url).path.lstrip("/") if url.startswith(("postgresql:", "postgres:")) else "") \
        or "estate"
    try:
        statements = grant_statements(name)
    except ValueError as exc:
        usage_error(f"--database: {exc}")
    if format is Format.JSON:
        emit_json({"database": name, "statements": [s for s in statements if not s.startswith("--")]})
    else:
        sys.stdout.write("\n".join(statements) + "\n")
