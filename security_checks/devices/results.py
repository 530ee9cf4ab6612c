"""Turn ansible-runner job events into Findings: one per control per host.

The rule for each (host, control) pair, from the results of the control's tasks:

- a task failed (not ignored): status error, the module's message as observed;
- a report-only task (a debug `msg`, or a win_powershell `$Ansible.Result`, carrying
  `estate_report` and `compliant`) decides on its own: pass or fail, its observed/expected;
- a task changed (in check mode: would change) or a command would have run: in an audit, fail with
  observed/expected from the diff; in an apply, pass with what was changed;
- otherwise, at least one task looked and found it as wanted: pass.

Controls whose every task was skipped were not audited and give no finding. An unreachable host
gives one `devices.unreachable` error and nothing else.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from ..checks import make_finding
from ..findings import EvidenceRef, Finding, Status
from .controls import control_for, task_index
from .windows import judge

RESULT_EVENTS = {"runner_on_ok", "runner_on_failed", "runner_on_skipped", "runner_on_unreachable"}
MAX_TEXT = 800


@dataclass
class ControlResult:
    tasks: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    changes: list[tuple[str, str, str]] = field(default_factory=list)  # (task, observed, expected)
    reports: list[dict[str, Any]] = field(default_factory=list)
    looked: int = 0
    diffs: list[Any] = field(default_factory=list)


def _short(text: str) -> str:
    text = " ".join(text.split()) if "\n" not in text else text.strip()
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 3] + "..."


def _is_true(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.strip().lower() in ("true", "yes", "1"))


def _apt_sections(text: str) -> dict[str, list[str]]:
    """Package lists from apt's 'The following ... packages will be ...:' paragraphs."""
    out: dict[str, list[str]] = {}
    current = None
    for line in text.splitlines():
        if line.startswith("The following"):
            current = ("new" if "NEW" in line else "removed" if "REMOVED" in line
                       else "additional" if "additional" in line else None)
            if current:
                out.setdefault(current, [])
        elif current and line.startswith(" "):
            out[current].extend(line.split())
        else:
            current = None
    return out


def _content_line(line: str) -> bool:
    text = line[1:].strip()
    return bool(text) and not text.startswith(("#", "//"))


def describe_diff(diff: dict[str, Any], where: str | None = None) -> tuple[str, str]:
    """Observed and expected from one Ansible diff: the lines that differ (comments aside), not the file."""
    if "prepared" in diff:
        sections = _apt_sections(str(diff["prepared"]))
        if sections:
            was: list[str] = []
            wanted_state: list[str] = []
            if sections.get("removed"):
                was.append("installed: " + " ".join(sections["removed"]))
                wanted_state.append("not installed: " + " ".join(sections["removed"]))
            # NEW lists dependencies too; the ones not under "additional" are what was asked for.
            wanted = [p for p in sections.get("new", []) if p not in sections.get("additional", [])]
            if wanted:
                was.append("not installed: " + " ".join(wanted))
                wanted_state.append("installed: " + " ".join(wanted))
            return _short("; ".join(was)), _short("; ".join(wanted_state))
        lines = str(diff["prepared"]).splitlines()
        removed = [x[1:].strip() for x in lines if x.startswith("-") and x[1:].strip()]
        added = [x[1:].strip() for x in lines if x.startswith("+") and x[1:].strip()]
        if removed or added:  # a diff-shaped text (win_security_policy and others)
            return _short("; ".join(removed) or "(absent)"), _short("; ".join(added) or "(absent)")
        return _short(str(diff["prepared"])), ""
    before, after = diff.get("before", ""), diff.get("after", "")
    # before_header is the managed file; after_header may be the controller's rendered temp file.
    header = where or str(diff.get("before_header") or diff.get("after_header") or "")
    if "/.ansible/tmp/" in header:  # a file not there yet: check mode names only the rendered template
        header = "new file " + header.rsplit("/", 1)[-1].removesuffix(".j2")
    if isinstance(before, dict) or isinstance(after, dict):
        b = before if isinstance(before, dict) else {}
        a = after if isinstance(after, dict) else {}
        keys = [k for k in sorted({*b, *a}) if b.get(k) != a.get(k) and k != "path"]
        if not keys:
            return "", ""
        where = str(a.get("path") or b.get("path") or header)
        obs = ", ".join(f"{k}={b.get(k, '(absent)')}" for k in keys)
        exp = ", ".join(f"{k}={a.get(k, '(absent)')}" for k in keys)
        return f"{where}: {obs}", f"{where}: {exp}"
    removed, added = [], []
    for line in difflib.unified_diff(str(before).splitlines(), str(after).splitlines(), lineterm="", n=0):
        if line.startswith(("---", "+++", "@@")):
            continue
        if line.startswith("-") and _content_line(line):
            removed.append(line[1:].strip())
        elif line.startswith("+") and _content_line(line):
            added.append(line[1:].strip())
    if not removed and not added:
        return "", ""
    header = header.removesuffix(" (content)")
    prefix = f"{header}: " if header else ""
    return (_short(prefix + ("; ".join(removed) or "(absent)")),
            _short(prefix + ("; ".join(added) or "(absent)")))


def _report_of(res: dict[str, Any], today: date | None = None) -> dict[str, Any] | None:
    for candidate in (res.get("msg"), res.get("result")):
        if isinstance(candidate, dict) and "estate_facts" in candidate:
            # Raw facts from a Windows script: judged here (windows.py), not on the device.
            return judge(candidate, today)
        if isinstance(candidate, dict) and "estate_report" in candidate and "compliant" in candidate:
            return candidate
    return None


def _item_results(res: dict[str, Any]) -> list[dict[str, Any]]:
    results = res.get("results")
    if isinstance(results, list) and results and all(isinstance(r, dict) for r in results):
        return results
    return [res]


def _change(task: str, res: dict[str, Any]) -> tuple[str, str, str]:
    diffs = res.get("diff")
    if isinstance(diffs, dict):
        diffs = [diffs]
    where = res.get("dest") or res.get("path")
    parts = [describe_diff(d, str(where) if where else None) for d in (diffs or []) if isinstance(d, dict)]
    parts = [p for p in parts if p[0] or p[1]]
    if parts:
        return task, "; ".join(p[0] for p in parts if p[0]), "; ".join(p[1] for p in parts if p[1])
    result = res.get("result")
    if isinstance(result, dict) and ("observed" in result or "expected" in result):
        return task, _short(str(result.get("observed", ""))), _short(str(result.get("expected", "")))
    item = res.get("item")
    if isinstance(item, dict) and item.get("name"):  # a loop over found things (e.g. software to remove)
        label = " ".join(str(item[k]) for k in ("name", "version") if item.get(k))
        return task, f"present: {label}", f"absent ({task})"
    return task, f"not as the baseline wants ({task})", task


@dataclass
class Outcome:
    results: dict[tuple[str, str], ControlResult]
    unreachable: dict[str, str]


def collect(events: Iterable[dict[str, Any]], index: dict[str, str] | None = None,
            today: date | None = None) -> Outcome:
    index = index if index is not None else task_index()
    results: dict[tuple[str, str], ControlResult] = {}
    unreachable: dict[str, str] = {}
    for ev in events:
        name = ev.get("event")
        if name not in RESULT_EVENTS:
            continue
        data = ev.get("event_data") or {}
        host = str(data.get("host") or "")
        res = data.get("res") or {}
        if name == "runner_on_unreachable":
            unreachable[host] = str(res.get("msg") or "unreachable")
            continue
        control = control_for(data.get("task_path"), index)
        if not control or not host:
            continue
        task = str(data.get("task") or data.get("task_action") or "")
        cr = results.setdefault((host, control), ControlResult())
        cr.tasks.append(task)
        if name == "runner_on_failed" and not data.get("ignore_errors"):
            cr.failed.append(f"{task}: {_short(str(res.get('msg') or res.get('stderr') or 'failed'))}")
            continue
        for r in _item_results(res):
            if r.get("diff"):
                cr.diffs.append({"task": task, "diff": r.get("diff")})
            report = _report_of(r, today)
            if report is not None:
                cr.reports.append(report)
                cr.looked += 1
            elif r.get("skipped"):
                # `command` in check mode: skipped, but it says it would have run: that is drift.
                if "would have run" in str(r.get("msg", "")):
                    cr.changes.append((task, f"not in place: {task}", task))
            elif r.get("changed"):
                cr.changes.append(_change(task, r))
            else:
                cr.looked += 1
    return Outcome(results, unreachable)


def findings_from_events(events: list[dict[str, Any]], *, apply: bool, sites: dict[str, str] | None = None,
                         evidence: list[EvidenceRef] | None = None,
                         index: dict[str, str] | None = None, today: date | None = None) -> list[Finding]:
    """Findings for a run's events; `apply` says whether the run was allowed to change things."""
    sites = sites or {}
    outcome = collect(events, index, today)
    out: list[Finding] = []
    for host, msg in sorted(outcome.unreachable.items()):
        out.append(make_finding("devices.unreachable", f"host:{host}", Status.ERROR, observed=_short(msg),
                                expected="Ansible connects and runs the baseline", evidence=evidence,
                                site=sites.get(host)))
    for (host, control), cr in sorted(outcome.results.items()):
        if host in outcome.unreachable:
            continue
        common: dict[str, Any] = {"evidence": evidence, "site": sites.get(host)}
        asset = f"host:{host}"
        details: dict[str, Any] = {"tasks": cr.tasks}
        if cr.failed:
            out.append(make_finding(control, asset, Status.ERROR, observed="; ".join(cr.failed),
                                    expected="every task of the control runs", details=details, **common))
            continue
        if cr.reports:
            report = cr.reports[-1]
            compliant = _is_true(report.get("compliant"))
            extra = {k: v for k, v in report.items() if k not in ("estate_report", "compliant", "observed", "expected")}
            details.update(extra)
            if cr.changes and not compliant:
                details["changes"] = [{"task": t, "observed": o, "expected": e} for t, o, e in cr.changes]
            out.append(make_finding(control, asset, Status.PASS if compliant else Status.FAIL,
                                    observed=_short(str(report.get("observed", ""))),
                                    expected=_short(str(report.get("expected", ""))), details=details, **common))
            continue
        if cr.changes:
            details["changes"] = [{"task": t, "observed": o, "expected": e} for t, o, e in cr.changes]
            observed = "\n".join(o for _, o, _ in cr.changes if o)
            expected = "\n".join(e for _, _, e in cr.changes if e)
            if apply:
                details["remediated"] = True
                out.append(make_finding(control, asset, Status.PASS, observed=_short("changed: " + observed),
                                        expected=_short(expected), details=details, **common))
            else:
                out.append(make_finding(control, asset, Status.FAIL, observed=_short(observed),
                                        expected=_short(expected), details=details, **common))
            continue
        if cr.looked:
            out.append(make_finding(control, asset, Status.PASS, observed="as the baseline wants",
                                    expected=f"{len(cr.tasks)} task(s) of {control} find nothing to change",
                                    details=details, **common))
    return out


def dumps_events(events: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(ev, sort_keys=True, default=str) + "\n" for ev in events)


def verify_apply(applied: list[Finding], verified: list[Finding]) -> list[Finding]:
    """An apply's findings, each checked against a read-only audit run straight after it.

    A change the module made is not a fix until the setting reads compliant: Windows ignores
    Defender changes under Tamper Protection, a policy can put a value back, a package can fail to
    remove. A control the apply says it fixed but the audit still finds wrong fails, with both
    readings; where the audit did not reach the control the apply's own finding stands.
    """
    after = {(f.asset, f.check_id): f for f in verified}
    out: list[Finding] = []
    for f in applied:
        v = after.get((f.asset, f.check_id))
        if v is None or f.status is not Status.PASS or v.status is Status.PASS:
            if v is not None and f.status is Status.PASS:
                f.details["verified"] = True
            out.append(f)
            continue
        details = {**f.details, "verified": False, "applied": f.observed, "reads_after_apply": v.observed}
        details.pop("remediated", None)
        out.append(make_finding(f.check_id, f.asset, v.status, observed=_short(
            f"still not compliant after apply (read again): {v.observed}"), expected=v.expected or f.expected,
            evidence=f.evidence, site=f.site, details=details))
    return out
