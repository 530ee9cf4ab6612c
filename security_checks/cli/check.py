"""`estate check`: compliance views over a stored run: Cyber Essentials readiness and PSN (SWAN...) support."""

from __future__ import annotations

import csv
import json
from collections import Counter
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.text import Text

from ..fsutil import SHARED_FILE, atomic_write
from ..report.compliance import RAP_CSV_COLUMNS as RAP_COLUMNS
from ..store import RunInfo, Store
from .common import (
    DEFAULT_HOME,
    DEMO_ESTATE,
    EstateOpt,
    Format,
    FormatOpt,
    HomeOpt,
    OutOpt,
    emit_json,
    load_or_exit,
    open_store,
    same_estate,
    show,
    usage_error,
)
from .screen import one_line_table

app = typer.Typer(
    help=("Compliance as a run stored it: Cyber Essentials readiness (ce) and IT Health Check support for the "
          "council's public-sector network (PSN, SWAN...) with the Remediation Action Plan (psn). Both read the "
          "latest `estate assess` run unless --run names one, "
          "and change nothing: verdicts are computed once, when a run commits, and only runs change the plan."),
    rich_markup_mode="rich", no_args_is_help=True,
)

RunOpt = Annotated[str | None, typer.Option(
    "--run", help="Run id (a unique prefix will do). Default: the latest assess run.")]

_STATUS_STYLE = {"met": "green", "not_met": "bold red", "risk_accepted": "yellow", "declared": "italic yellow",
                 "manual": "cyan", "not_assessed": "dim"}


def _pick_run(store: Store, run_id: str | None, home: Path) -> RunInfo:
    run = store.get_run(run_id, kind=None if run_id else "assess")
    if run is None:
        if run_id:
            usage_error(f"--run: no single run matches {run_id!r} in {home}")
        usage_error(f"{home}: no `estate assess` run stored yet: run `estate assess` first, or give --run")
    return run


def _write(out: Path, name: str, text: str) -> Path:
    # Never a half-written file in --out; these are for people to share (0644).
    return atomic_write(out / name, text, mode=SHARED_FILE)


@app.command(epilog=(
    "Examples:\n\n  estate check ce\n\n  estate check ce --version 3.2 --out out/ce\n\n"
    "  estate check ce --run 20261122T0510 --format json | jq '.requirements[] | select(.status==\"not_met\")'\n\n"
    "Exit status: 0 ready, 1 not ready, 2 bad input."))
def ce(
    run: RunOpt = None,
    version: Annotated[str | None, typer.Option(
        "--version", help="Requirements version: 3.3 (Danzell) or 3.2 (Willow). Default: organisation.ce_version.")
    ] = None,
    estate: EstateOpt = DEMO_ESTATE,
    home: HomeOpt = DEFAULT_HOME,
    out: OutOpt = None,
    format: FormatOpt = Format.TEXT,
) -> None:
    """Cyber Essentials readiness of a run: scope, every requirement's status and evidence, verdict.

    Requirements are met only with passing evidence; manual ones (approval processes, guidance to
    users) need an attestation recorded in the estate's `attestations` section, with who attested
    and the evidence file. Auto-fail items (cloud MFA; high and critical fixes within 14 days in
    v3.3) are listed first. The estate's own firewall and cloud-MFA configuration is checked too.
    """
    from ..report.compliance import ce_document, in_force

    if version is not None and version not in ("3.3", "3.2"):
        usage_error(f"--version: {version!r} is not a catalogue version (3.3 or 3.2)")
    loaded = load_or_exit(estate, policy=False)   # overlapping ranges are the run's findings, not a refusal
    with open_store(home) as store:
        info = _pick_run(store, run, home)
        same_estate(info, loaded)
        verdict = in_force(store.verdicts(info.id), "cyber-essentials", version)
        if verdict is None:
            usage_error(f"run {info.id} ({info.kind}) stored no Cyber Essentials {version or 'in-force'} verdict")
        doc = ce_document(info, verdict, store.findings(info.id))
    if out:
        _write(out, f"ce-{doc['version']}.json", json.dumps(doc, indent=2))
        rows = [["ref", "auto_fail", "manual", "status", "reason", "applies_to", "population", "observed",
                 "declared", "findings", "attested_by"]]
        for r in doc["requirements"]:
            cov = r.get("coverage") or {}
            rows.append([r["ref"], str(r["auto_fail"]).lower(), str(r["manual"]).lower(), r["status"], r["reason"],
                         cov.get("applies_to", ""), str(cov.get("total", "")), str(cov.get("observed", "")),
                         str(cov.get("declared", "")), " ".join(e["finding"] for e in r["evidence"]),
                         r["attestation"]["attested_by"] if r["attestation"] else ""])
        _write(out, f"ce-{doc['version']}.csv", _csv(rows))
    if format is Format.JSON:
        emit_json(doc)
    else:
        _print_ce(doc)
        if out:
            show.print(f"written: {out}/ce-{doc['version']}.json, .csv")
    raise typer.Exit(0 if doc["verdict"] == "ready" else 1)


def _csv(rows: list[list[str]]) -> str:
    import io

    buf = io.StringIO()
    csv.writer(buf).writerows(rows)
    return buf.getvalue()


# A summary fits on one screen (~40 lines) however big the estate; --format json, --out and the
# report carry every row. One row per check however many assets it fails on (report/grouping.py).
SCREEN_ROWS = 15
CE_ROWS = 20      # the requirements that need action come first


def _print_rap_groups(items: list[dict[str, Any]]) -> None:
    from ..report.grouping import group_by_check

    rank = {"critical": 0, "high": 1, "medium": 2, "low": 3, "info": 4}
    items = sorted(items, key=lambda i: (rank.get(i["severity"], 5), -(i["cvss_score"] or 0), i["target_date"]))
    groups = group_by_check(items, lambda i: i["check_id"], lambda i: i["title"],
                            lambda i: f"{i['asset']} {i['key']}".strip())
    rows = []
    for g in groups[:SCREEN_ROWS]:
        first = g.first
        owners = list(dict.fromkeys(i["owner"] for i in g.items))
        states = Counter(i["status"] for i in g.items)
        score = f" {first['cvss_score']:.1f}" if first["cvss_score"] is not None else ""
        rows.append((g.title, first["severity"] + score, (f"{g.count}: " if g.count > 1 else "") + g.assets_text(2),
                     owners[0] + (f" +{len(owners) - 1}" if len(owners) > 1 else ""),
                     min(i["target_date"] for i in g.items), ", ".join(f"{n} {k}" for k, n in sorted(states.items()))))
    table = one_line_table((("finding", 20, 50), ("severity", 9, 13), ("assets", 14, 40), ("owner", 7, 24),
                            ("target", 10, 10), ("status", 5, 20)), rows, show)
    show.print(table)
    if len(groups) > SCREEN_ROWS:
        rest = groups[SCREEN_ROWS:]
        show.print(f"... and {len(rest)} more check(s) with {sum(g.count for g in rest)} item(s): "
                   "--format json or --out for the whole plan", soft_wrap=True)


def _print_ce(doc: dict[str, Any]) -> None:
    s = doc["scope"]
    show.print(f"[bold]{doc['title']}[/] - {s['organisation']}, run {doc['run']}")
    cloud = s["cloud_services"]
    hosting = Counter(c["hosting"] for c in cloud)
    show.print(f"Scope: {s['boundary']}; {len(s['sites'])} sites; {s['devices_total']} devices in "
               f"{len(s['device_groups'])} groups ("
               + ", ".join(f"{g['count']} {g['os']}" for g in s["device_groups"]) + "); cloud services: "
               + (", ".join(f"{n} {k.upper()}" for k, n in sorted(hosting.items())) or "none"), soft_wrap=True)
    show.print(f"As assessed on {doc['assessed_on']} (verdicts are computed when a run commits)")
    if doc.get("advisory_feed"):
        f = doc["advisory_feed"]
        show.print(f"Advisory feed dated {f['feed_date']} ({f['age_days']} day(s) old)")
    reqs = doc["requirements"]
    counts = Counter(r["status"] for r in reqs)
    show.print(f"{len(reqs)} requirements: " + ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in counts.items()))
    # The ones that need action first (auto-fail, not met, risk accepted, declared only), then the
    # rest; one line each, as many as fit on a screen.
    order = {"not_met": 0, "risk_accepted": 1, "declared": 2, "not_assessed": 3, "manual": 4, "met": 5}
    ranked = sorted(reqs, key=lambda r: (not r["auto_fail"] or r["status"] != "not_met", order.get(r["status"], 6)))
    rows = []
    for r in ranked[:CE_ROWS]:
        label = Text(r["ref"]) + (Text(" (auto-fail)", style="red") if r["auto_fail"] else Text("")) \
            + Text(f" {r['title']}")
        cov = r.get("coverage") or {}
        declared = f" + {cov['declared']:,} declared" if cov.get("declared") else ""
        examined = f"{cov['observed']:,}{declared} of {cov['total']:,} {cov['label']}" if cov.get("total") else ""
        status = {"declared": "declared only", "risk_accepted": "risk accepted", "not_met": "not met",
                  "not_assessed": "not assessed"}.get(r["status"], r["status"])
        # Styled text, not markup: a cell cut with an ellipsis never shows half a tag.
        rows.append((label, Text(status, style=_STATUS_STYLE.get(r["status"], "")), examined, Text(r["reason"])))
    table = one_line_table((("requirement", 24, 48), ("status", 13, 13), ("examined", 12, 26), ("why", 10, 60)),
                           rows, show)
    show.print(table)
    if len(ranked) > CE_ROWS:
        show.print(f"... and {len(ranked) - CE_ROWS} more requirement(s), most of them met or manual: --format json "
                   "or --out for all", soft_wrap=True)
    colour = "green" if doc["verdict"] == "ready" else "bold red"
    show.print(f"Verdict: [{colour}]{doc['verdict']}[/]")
    for reason in doc["reasons"][:5]:
        show.print(f"  - {reason}", soft_wrap=True)
    if len(doc["reasons"]) > 5:
        show.print(f"  ... and {len(doc['reasons']) - 5} more (--format json for all)")


@app.command(epilog=(
    "Examples:\n\n  estate check psn\n\n  estate check psn --out out/psn      # rap.csv, rap.json, psn-summary.json, "
    "diagram.json, network-diagram.svg\n\n  estate check psn --format json | jq '.rap[] | select(.status==\"open\")'"))
def psn(
    run: RunOpt = None,
    estate: EstateOpt = DEMO_ESTATE,
    home: HomeOpt = DEFAULT_HOME,
    out: OutOpt = None,
    format: FormatOpt = Format.TEXT,
) -> None:
    """IT Health Check support for the council's network (PSN, SWAN...): scored findings, the RAP, diagram data.

    The plan is kept in the store across runs, and only runs change it, each when it commits:
    every run (assess, scans, imports, device audits, infra plans) opens items for its new failing
    findings, marks risks accepted by a waiver, returns accepted risks past their expiry to open and
    reopens items that come back. Only a full-scope run that ran an item's check, and could read
    its asset, closes the item. This command prints the run's ITHC-style findings and the plan as
    it stands; target dates follow the council's remediation timescales
    (organisation.remediation_timescales).
    """
    from ..report.compliance import in_force, psn_document, rap_csv_rows

    loaded = load_or_exit(estate, policy=False)
    with open_store(home) as store:
        info = _pick_run(store, run, home)
        same_estate(info, loaded)
        items = store.rap_items()
        doc = psn_document(info, in_force(store.verdicts(info.id), "psn"), store.findings(info.id), items)
    if out:
        from ..network.diagram import diagram_data, render

        diagram = diagram_data(loaded.estate)
        _write(out, "rap.json", json.dumps(doc["rap"], indent=2, default=str))
        _write(out, "rap.csv", _csv([list(RAP_COLUMNS), *rap_csv_rows(items)]))
        _write(out, "diagram.json", json.dumps(diagram, indent=2))
        render(diagram, out / "network-diagram", formats=("svg",))
        _write(out, "psn-summary.json", json.dumps({k: v for k, v in doc.items() if k != "rap"},
                                                   indent=2, default=str))
    if format is Format.JSON:
        emit_json(doc)
        return
    s = doc["summary"]
    show.print(f"[bold]{doc['network']} IT Health Check support[/] - run {doc['run']} (assessed {doc['assessed_on']})"
               f"{' (full scope)' if doc['full_scope'] else ' (partial run: it closed nothing)'}")
    show.print("ITHC-style findings: " + (", ".join(f"{v} {k}" for k, v in s["ithc_findings"].items() if v) or "none"))
    _print_rap_groups([item for item in doc["rap"] if item["status"] != "closed"])
    show.print("RAP (as every run so far left it): " + (", ".join(f"{v} {k}" for k, v in sorted(s["rap"].items()))
                                                       or "empty")
              + f"; target dates: {doc['rap_policy'].get('source', '')}", soft_wrap=True)
    if out:
        show.print(f"written: {out}/rap.csv, rap.json, diagram.json, network-diagram.svg, psn-summary.json")
