"""The findings table rows, rendered in Python rather than Jinja.

A run can hold tens of thousands of findings; Jinja macro calls per row made the page take several
seconds, plain escaped f-strings take a fraction of that. The markup is the same as the templates'
macros (macros.html), which the smaller pages still use.
"""

from __future__ import annotations

import re
from html import escape
from typing import Any
from urllib.parse import quote

from ..findings import Finding
from ..store import EvidenceFile
from .context import ReportData, remediation_status


def _e(value: Any) -> str:
    return escape(str(value), quote=True)


def anchor(text: str) -> str:
    return "r-" + re.sub(r"[^A-Za-z0-9_.-]", "-", text)


def sev(s: str) -> str:
    return f'<span class="sev sev-{_e(s)}">{_e(s)}</span>'


def st(s: str) -> str:
    return f'<span class="st st-{_e(s)}">{_e(s.replace("_", " "))}</span>'


def evidence_links(f: Finding, ev: dict[str, EvidenceFile]) -> str:
    if not f.evidence:
        return '<span class="muted">none</span>'
    out = []
    for e in f.evidence:
        rec = ev.get(e.path)
        if rec and not rec.withheld:
            link = f'<a href="evidence/{_e(quote(e.path, safe="/"))}">{_e(e.path)}</a>'
        else:
            why = rec.withheld if rec else "not in the run's evidence"
            link = f'<span class="mono">{_e(e.path)}</span> <span class="muted">({_e(why)})</span>'
        desc = f' <span class="muted">{_e(e.description)}</span>' if e.description else ""
        out.append(f"<div>{link}{desc}</div>")
    return "".join(out)


def acceptance_box(f: Finding) -> str:
    a = f.acceptance
    if a and f.failing:
        ref = f" ({_e(a.reference)})" if a.reference else ""
        return (f'<div class="accepted-box"><b>Risk accepted</b> by {_e(a.approved_by)} on '
                f'{_e(a.approved_on.isoformat())}, until {_e(a.expires.isoformat())}{ref}: {_e(a.justification)}</div>')
    lapsed = f.acceptance_lapsed
    if lapsed:
        return (f'<div class="expired-box"><b>Open again:</b> its risk acceptance expired on {_e(lapsed)}.'
                "</div>")
    return ""


def finding_row(d: ReportData, f: Finding, ev: dict[str, EvidenceFile]) -> str:
    rs = remediation_status(f)
    controls = " ".join(f.controls)
    head = (f'<tr id="{f.id}" data-state="{rs}" data-site="{_e(f.site or "")}" data-sev="{f.severity.value}" '
            f'data-asset="{_e(f.asset)}" data-controls=" {_e(controls)} ">')
    key = f" &middot; {_e(f.key)}" if f.key else ""
    ctl = ("<div class=\"muted\">" + "".join(f'<a href="controls.html#{anchor(c)}">{_e(c)}</a> ' for c in f.controls)
           + "</div>") if f.controls else ""
    c1 = f'<td><b>{_e(f.title)}</b><div class="mono muted">{f.id} &middot; {_e(f.check_id)}{key}</div>{ctl}</td>'
    cvss = f'<div class="muted">CVSS {_e(f.cvss_score)}</div>' if f.cvss_score else ""
    c2 = f"<td>{sev(f.severity.value)}{cvss}</td>"
    since = f'<div class="muted">since {f.first_seen.strftime("%d %b %Y")}</div>' if f.first_seen else ""
    fix_by = d.due(f)
    due = f'<div class="muted">fix by {fix_by.strftime("%d %b %Y")}</div>' if f.open and fix_by else ""
    kind = f'<div class="muted">evidence: {f.evidence_kind.value}</div>' if f.evidence_kind.value != "observed" else ""
    c3 = f"<td>{st(rs if f.failing else f.status.value)}{since}{due}{kind}</td>"
    site = f'<div class="muted">site {_e(f.site)}</div>' if f.site else ""
    c4 = f'<td class="asset">{_e(f.asset)}{site}</td>'
    obs = f"<div><b>observed:</b> {_e(f.observed)}</div>" if f.observed else ""
    exp = f"<div><b>expected:</b> {_e(f.expected)}</div>" if f.expected else ""
    c5 = f"<td>{obs}{exp}</td>"
    remedy = ""
    if f.failing:
        text = f.remediation or "No remediation text recorded for this check."
        remedy = f'{acceptance_box(f)}<div class="remedy">{_e(text)}</div>'
    c6 = f'<td>{remedy}<div class="muted">evidence:</div>{evidence_links(f, ev)}</td>'
    return f"{head}\n{c1}\n{c2}\n{c3}\n{c4}\n{c5}\n{c6}\n</tr>"


def finding_rows(d: ReportData, findings: list[Finding], ev: dict[str, EvidenceFile]) -> str:
    return "\n".join(finding_row(d, f, ev) for f in findings)
