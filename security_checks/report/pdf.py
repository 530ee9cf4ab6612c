"""The board report: a short PDF (summary, top risks, control matrix, remediation plan) via WeasyPrint.

It summarises rather than lists: the top risks and the first part of the remediation plan, never
thousands of rows (the site and the XLSX carry everything), so it stays readable on paper and quick
to render for any size of estate.
"""

from __future__ import annotations

import logging
from pathlib import Path

from .context import ReportData
from .html import environment
from .svg import trend_chart

TOP_RISKS = 25
PLAN_ROWS = 60


def render_html(data: ReportData) -> str:
    open_ = data.open_failing
    return environment().get_template("board.html").render(
        d=data, top=open_[:TOP_RISKS], plan=open_[:PLAN_ROWS], trend_svg=trend_chart(data.trend, width=640))


def write_pdf(data: ReportData, path: Path) -> Path:
    from weasyprint import HTML

    # WeasyPrint warns about CSS it ignores on every render; that is noise for our own stylesheet.
    logging.getLogger("weasyprint").setLevel(logging.ERROR)
    logging.getLogger("fontTools").setLevel(logging.ERROR)
    HTML(string=render_html(data), base_url=str(path.parent)).write_pdf(path)
    return path
