"""A notice in words, at the detail the estate allows (notifications.detail):

- counts: numbers only (safe for a channel many people read);
- titles: also what failed (check titles, with how many assets);
- assets: also which assets.

Never the observed values, the plugin output or the evidence: those stay in the store, where access
is controlled, and the notice says where to read them (`estate findings --run ...`).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any, Literal

from .changes import Notice

Detail = Literal["counts", "titles", "assets"]
MAX_ASSETS = 10  # per title at detail "assets": a notice points to the report, it does not replace it


def subject(n: Notice) -> str:
    parts = []
    if n.run_failed:
        parts.append(f"scheduled {n.kind} did not finish ({n.service_result})")
    if n.run_id is None:
        parts.append(f"no {n.kind or 'run'} stored yet")
    if n.new_failures:
        parts.append(f"{len(n.new_failures)} new critical/high")
    overdue = sum(d.overdue for d in n.due)
    if overdue:
        parts.append(f"{overdue} RAP overdue")
    if len(n.due) - overdue:
        parts.append(f"{len(n.due) - overdue} RAP due soon")
    if n.waivers:
        parts.append(f"{len(n.waivers)} waiver(s) expiring")
    if n.feed:
        parts.append("advisory feed not current")
    return f"[estate] {n.organisation}: " + ("; ".join(parts) if parts else "nothing new")


def _by_title(items: list[Any]) -> list[tuple[str, str, list[str]]]:
    groups: dict[tuple[str, str], list[str]] = defaultdict(list)
    for i in items:
        groups[(i.severity, i.title)].append(i.asset)
    order = {"critical": 0, "high": 1, "medium": 2, "low": 3, "info": 4}
    return sorted(((sev, title, assets) for (sev, title), assets in groups.items()),
                  key=lambda g: (order.get(g[0], 9), -len(g[2]), g[1]))


def _lines(items: list[Any], detail: Detail) -> list[str]:
    out = []
    for sev, title, assets in _by_title(items):
        line = f"  - [{sev}] {title} ({len(assets)} asset{'s' if len(assets) != 1 else ''})"
        if detail == "assets":
            shown = ", ".join(sorted(assets)[:MAX_ASSETS])
            more = f" and {len(assets) - MAX_ASSETS} more" if len(assets) > MAX_ASSETS else ""
            line += f": {shown}{more}"
        out.append(line)
    return out


def text(n: Notice, detail: Detail) -> str:
    """The plain-text body: the email, the chat message and what `estate notify` prints."""
    lines = [subject(n), ""]
    if n.run_id:
        lines.append(f"Run {n.run_id} ({n.kind}, assessed {n.assessed_on}), compared with "
                     f"{n.previous_run_id or 'no earlier run of this kind'}.")
    else:
        lines.append(f"No {n.kind or ''} run is stored yet for {n.organisation}.".replace("  ", " "))
    if n.run_failed:
        lines.append(f"The scheduled run ended with {n.service_result}: what it found may not be stored; "
                     "`estate store status` and the unit's journal say why.")
    if n.new_failures:
        sev = Counter(f.severity for f in n.new_failures)
        lines += ["", "New critical/high findings: " + ", ".join(f"{c} {s}" for s, c in sorted(
            sev.items(), key=lambda kv: kv[0] != "critical"))]
        if detail != "counts":
            lines += _lines(n.new_failures, detail)
    if n.due:
        overdue = [d for d in n.due if d.overdue]
        lines += ["", f"Remediation action plan: {len(overdue)} overdue, {len(n.due) - len(overdue)} due by "
                      f"{max(d.target_date for d in n.due)}"]
        if detail != "counts":
            lines += _lines(n.due, detail)
    if n.waivers:
        lines += ["", f"Waivers expiring: {len(n.waivers)} (first on {n.waivers[0].expires})"]
        if detail != "counts":
            lines += [f"  - {w.what} (approved by {w.approved_by}, {w.reference or 'no reference'}) "
                      f"expires {w.expires}" for w in n.waivers]
    if n.feed:
        lines += ["", f"Advisory feed: {n.feed}"]
    if n.run_id:
        lines += ["", f"Details: estate findings --run {n.run_id}   (report: estate report --run {n.run_id})"]
    return "\n".join(lines) + "\n"


def teams_payload(n: Notice, detail: Detail) -> dict[str, Any]:
    """A Teams incoming-webhook (Workflows) message: one Adaptive Card holding the same text."""
    body = text(n, detail)
    return {"type": "message", "attachments": [{
        "contentType": "application/vnd.microsoft.card.adaptive",
        "content": {"$schema": "http://adaptivecards.io/schemas/adaptive-card.json", "type": "AdaptiveCard",
                    "version": "1.4", "body": [
                        {"type": "TextBlock", "text": subject(n), "weight": "Bolder", "wrap": True},
                        {"type": "TextBlock", "text": body.split("\n", 2)[2], "wrap": True,
                         "fontType": "Monospace"}]}}]}


def slack_payload(n: Notice, detail: Detail) -> dict[str, Any]:
    return {"text": subject(n), "blocks": [
        {"type": "section", "text": {"type": "mrkdwn", "text": "```" + text(n, detail) + "```"}}]}
