"""Inline SVG charts: no scripts, no fonts to fetch, so they print and open from a file share alike."""

from __future__ import annotations

from html import escape

from .context import SEVERITIES, TrendPoint

COLOURS = {"critical": "#7f1d1d", "high": "#dc2626", "medium": "#f59e0b", "low": "#1d4ed8", "info": "#6b7280"}


def trend_chart(points: list[TrendPoint], width: int = 720, height: int = 220) -> str:
    """Stacked bars: failing findings by severity for each of the last runs, oldest on the left."""
    if not points:
        return '<p class="muted">No runs yet.</p>'
    left, right, top, bottom = 44, 110, 12, 40
    plot_w, plot_h = width - left - right, height - top - bottom
    peak = max(1, max(sum(p.counts.values()) for p in points))
    step = _nice_step(peak)
    ymax = step * -(-peak // step)
    slot = plot_w / len(points)
    bar = max(4.0, min(48.0, slot * 0.6))
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="100%" '
             f'role="img" aria-label="Failing findings by severity, last {len(points)} runs" class="chart">']
    for tick in range(0, ymax + 1, step):
        y = top + plot_h - plot_h * tick / ymax
        parts.append(f'<line x1="{left}" y1="{y:.1f}" x2="{left + plot_w}" y2="{y:.1f}" stroke="#e5e7eb"/>')
        parts.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11" '
                     f'fill="#374151">{tick}</text>')
    for i, p in enumerate(points):
        x = left + slot * i + (slot - bar) / 2
        y = top + plot_h
        total = sum(p.counts.values())
        for sev in reversed(SEVERITIES):  # info at the bottom, critical on top
            n = p.counts.get(sev, 0)
            if not n:
                continue
            h = plot_h * n / ymax
            y -= h
            parts.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar:.1f}" height="{h:.1f}" fill="{COLOURS[sev]}">'
                         f'<title>{escape(p.run_id)}: {n} {sev}</title></rect>')
        parts.append(f'<text x="{x + bar / 2:.1f}" y="{y - 3:.1f}" text-anchor="middle" font-size="10" '
                     f'fill="#111827">{total}</text>')
        label = p.started_at[5:10]  # MM-DD keeps labels short; the title has the full run id
        parts.append(f'<text x="{x + bar / 2:.1f}" y="{top + plot_h + 14}" text-anchor="middle" font-size="10" '
                     f'fill="#374151"><title>{escape(p.run_id)}</title>{escape(label)}</text>')
    parts.append(f'<text x="{left + plot_w / 2}" y="{height - 6}" text-anchor="middle" font-size="11" '
                 f'fill="#374151">run (date started)</text>')
    for j, sev in enumerate(SEVERITIES):
        ly = top + 6 + j * 18
        parts.append(f'<rect x="{left + plot_w + 16}" y="{ly}" width="12" height="12" fill="{COLOURS[sev]}"/>')
        parts.append(f'<text x="{left + plot_w + 34}" y="{ly + 10}" font-size="11" fill="#111827">{sev}</text>')
    parts.append("</svg>")
    return "".join(parts)


def status_bar(counts: dict[str, int], colours: dict[str, str], width: int = 300, height: int = 14) -> str:
    """One horizontal bar split by status (the control matrix summary)."""
    total = sum(counts.values())
    if not total:
        return ""
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" '
             f'height="{height}" role="img" aria-label="requirement status">']
    x = 0.0
    for status, n in counts.items():
        if not n:
            continue
        w = width * n / total
        parts.append(f'<rect x="{x:.1f}" y="0" width="{w:.1f}" height="{height}" fill="{colours.get(status, "#999")}">'
                     f'<title>{n} {status.replace("_", " ")}</title></rect>')
        x += w
    parts.append("</svg>")
    return "".join(parts)


def _nice_step(peak: int) -> int:
    for step in (1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 2500, 5000):
        if peak / step <= 5:
            return step
    return 10 ** len(str(peak))
