"""The board report: a short PDF (summary, top risks, control matrix, remediation plan) via WeasyPrint.

It summarises rather than lists: the top risks and the first part of the remediation plan, one row
per failing check however many assets it fails on (grouping.py), never thousands of rows (the site
and the XLSX carry everything), so it stays readable on paper and quick to render for any size of
estate. Sections flow on from each other (forced page breaks left pages nearly blank), and every
table has fixed column widths so no column is squeezed.
"""

from __future__ import annotations

import logging
from pathlib import Path

from ..findings import Finding
from .context import ReportData
from .grouping import Group
from .html import environment
from .svg import trend_chart

TOP_RISKS = 25
PLAN_ROWS = 60


def render_html(data: ReportData) -> str:
    groups = data.open_groups

    def since(g: Group[Finding]) -> str:
        seen = [f.first_seen for f in g.items if f.first_seen]
        return min(seen).strftime("%d %b %Y") if seen else ""

    def due(g: Group[Finding]) -> str:
        dates = [d for d in (data.due(f) for f in g.items) if d]
        return min(dates).strftime("%d %b %Y") if dates else "see the finding"

    return environment().get_template("board.html").render(
        d=data, groups=groups, top=groups[:TOP_RISKS], plan=groups[:PLAN_ROWS], since=since, due=due,
        trend_svg=trend_chart(data.trend, width=640))


def write_pdf(data: ReportData, path: Path) -> Path:
    from weasyprint import HTML

    # WeasyPrint warns about CSS it ignores on every render; that is noise for our own stylesheet.
    logging.getLogger("weasyprint").setLevel(logging.ERROR)
    logging.getLogger("fontTools").setLevel(logging.ERROR)
    HTML(string=render_html(data), base_url=str(path.parent)).write_pdf(path)
    return path
