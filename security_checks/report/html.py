"""The static report site: three pages, inline CSS and SVG, relative links only.

It must open from a file share (file://) and inside an evidence bundle, so it loads nothing from the
network and every link is relative: pages link to each other, to `evidence/<path>` (a copy of the
run's evidence beside the pages, secrets withheld) and to `machine/` outputs.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any
from urllib.parse import quote

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

from ..findings import Status
from . import rows
from .context import SEVERITIES, ReportData, remediation_status
from .rows import anchor, finding_rows
from .svg import status_bar, trend_chart

TEMPLATES = Path(__file__).resolve().parent / "templates"
# Beyond this many passing results the findings page lists only failures (machine outputs keep all).
MAX_PASSING_ROWS = 3000
STATUS_COLOURS = {"met": "#15803d", "not_met": "#b91c1c", "risk_accepted": "#7c3aed", "declared": "#b45309",
                  "manual": "#0f766e", "not_assessed": "#9ca3af"}


def environment() -> Environment:
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]),
                      trim_blocks=True, lstrip_blocks=True)
    env.filters["anchor"] = anchor
    env.filters["urlpath"] = lambda p: quote(p, safe="/")
    env.filters["urlquery"] = lambda p: quote(p, safe="")
    # rows.py escapes every value it puts in its markup, so its output is safe to mark as such.
    env.globals.update(sev=lambda s: Markup(rows.sev(s)), st=lambda s: Markup(rows.st(s)),  # noqa: S704
                       evidence_links=lambda f, ev: Markup(rows.evidence_links(f, ev)),  # noqa: S704
                       acceptance_box=lambda f: Markup(rows.acceptance_box(f)))  # noqa: S704
    env.globals.update(severities=SEVERITIES, remediation_status=remediation_status,
                       status_bar=lambda c: status_bar(c, STATUS_COLOURS))
    return env


def write_site(data: ReportData, evidence_root: Path, out: Path) -> dict[str, Path]:
    env = environment()
    css = (TEMPLATES / "style.css").read_text()
    ev = {e.path: e for e in data.evidence}
    passing = [f for f in data.findings if f.status is Status.PASS]
    listed = sorted((f for f in data.findings if f.status is not Status.PASS), key=_row_order)
    truncated = 0
    if len(passing) > MAX_PASSING_ROWS:
        truncated = len(passing)
    else:
        listed += passing
    common: dict[str, Any] = {"d": data, "css": css, "ev": ev}
    pages = {
        "index": env.get_template("index.html").render(page="index", rows_html=finding_rows(data, listed, ev),
                                                       row_count=len(listed), truncated=truncated,
                                                       trend_svg=trend_chart(data.trend), **common),
        "controls": env.get_template("controls.html").render(page="controls", **common),
        "audit": env.get_template("audit.html").render(page="audit", **common),
    }
    out.mkdir(parents=True, exist_ok=True)
    written = {}
    for name, html in pages.items():
        path = out / f"{name}.html"
        path.write_text(html, encoding="utf-8")
        written[f"html_{name}" if name != "index" else "html"] = path
    copy_evidence(data, evidence_root, out / "evidence")
    return written


def copy_evidence(data: ReportData, evidence_root: Path, dest: Path) -> None:
    """The run's evidence beside the pages, so relative links work on a share and in a bundle."""
    if dest.exists():
        shutil.rmtree(dest)
    for e in data.evidence:
        if e.withheld:
            continue
        target = dest / e.path
        target.parent.mkdir(parents=True, exist_ok=True)
        # A copy, never a hard link: a bundle must not change if the store's file later does.
        shutil.copyfile(evidence_root / e.path, target)


def _row_order(f: Any) -> tuple[int, int, float, str]:
    from .context import risk_order

    group = 0 if f.failing else (1 if f.status in (Status.MANUAL, Status.NOT_ASSESSED) else 2)
    return (group, *risk_order(f)[1:])
