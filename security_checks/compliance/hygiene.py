"""The estate's own hygiene, as findings of a run: the `estate-hygiene` step (evidence: declared).

What a council can still run with, but an auditor must see, each as a finding rather than a
refusal (an estate that cannot be read at all is still refused by the loader):

- `estate.address_overlap`: the policy problems of the model (crossref.address_overlaps): two
  declared ranges overlap (two sites, a site and a hub or spoke, two VLANs of one site). `estate
  validate` still refuses them; `estate assess` records them, naming both ranges and where each
  is declared.
- Segregation the estate's purposes demand (segregation.py): `estate.pupil_network_reaches_corporate`
  and `estate.device_zone_beyond_controller`, each declaration that breaks it with its file:line.
- Waivers that weaken every verdict they touch. Only waivers still in force are judged (an
  expired one accepts nothing). Each is named `waiver:<what it targets>` (its finding id, or its
  check and asset patterns), which stays the same however the waivers file is reordered:
  - `estate.waiver_matches_everything`: it accepts a failure of any check (a check pattern with
    no letter or digit, such as `*`), or of its check on every asset (no asset, or a pattern with
    no letter or digit);
  - `estate.waiver_period_too_long`: from approval to expiry it runs longer than the estate's
    maximum (`organisation.max_waiver_months`, default 12 months);
  - `estate.waiver_approver_unknown`: `approved_by` is not a person or role in
    `organisation.contacts` (see `approver_contact` for the rule).

None of these evidences a catalogue requirement: they are informational findings that reach the
report, the Remediation Action Plan and `--fail-on` like any other.
"""

from __future__ import annotations

import calendar
import re
from datetime import date

from ..checks import make_finding
from ..findings import Finding, Status
from ..model.assets import asset_for_path
from ..model.crossref import AddressRange, address_overlaps
from ..model.located import LoadedEstate
from ..model.schema import Contact, Estate, Waiver
from ..step import StepContext, StepResult
from .segregation import segregation_findings

OVERLAP = "estate.address_overlap"
MATCHES_EVERYTHING = "estate.waiver_matches_everything"
TOO_LONG = "estate.waiver_period_too_long"
APPROVER = "estate.waiver_approver_unknown"
CHECKS = (OVERLAP, MATCHES_EVERYTHING, TOO_LONG, APPROVER)
EXPECTED = {
    OVERLAP: "every range of the address plan distinct: no two sites, hubs, spokes or VLANs share addresses",
    MATCHES_EVERYTHING: "a waiver names the check and the asset (or the finding id) whose risk was accepted",
    APPROVER: "approved_by names a person or role in organisation.contacts",
}


def hygiene_findings(loaded: LoadedEstate, today: date) -> list[Finding]:
    estate = loaded.estate
    found = [*overlap_findings(loaded), *waiver_findings(loaded, today), *segregation_findings(loaded)]
    out: dict[str, Finding] = {}
    for f in found:
        out.setdefault(f.id, f)   # two identical waivers are one problem, reported once
    failing = {f.check_id for f in out.values()}
    passes = [_pass(check, estate, today) for check in CHECKS if check not in failing]
    return [*out.values(), *passes]


def hygiene_step(ctx: StepContext) -> StepResult:
    findings = hygiene_findings(ctx.loaded, ctx.today)
    fails = sum(1 for f in findings if f.failing)
    active = sum(1 for w in ctx.loaded.estate.waivers if w.expires >= ctx.today)
    return StepResult(findings, f"address plan and {active} waiver(s) in force checked; {fails} finding(s) failing")


# -- the address plan ------------------------------------------------------------------------------

def overlap_findings(loaded: LoadedEstate) -> list[Finding]:
    out = []
    for overlap in address_overlaps(loaded):
        later, earlier = _range(loaded, overlap.later), _range(loaded, overlap.earlier)
        asset = str(later["asset"])
        out.append(make_finding(
            OVERLAP, asset, Status.FAIL, key=overlap.message,
            observed=(f"{overlap.later.what} {overlap.later.network} ({later['estate_file']}:{later['estate_line']}) "
                      f"overlaps {overlap.earlier.what} {overlap.earlier.network} "
                      f"({earlier['estate_file']}:{earlier['estate_line']})"),
            expected=EXPECTED[OVERLAP], site=_site(asset),
            details={"ranges": [later, earlier], "estate_file": later["estate_file"],
                     "estate_line": later["estate_line"]}))
    return out


def _range(loaded: LoadedEstate, r: AddressRange) -> dict[str, str | int]:
    asset, inside = asset_for_path(loaded.estate, r.path)
    file, line = loaded.where(r.path)
    return {"asset": asset, "field": inside, "what": r.what, "cidr": str(r.network), "estate_file": file,
            "estate_line": line}


def _site(asset: str) -> str | None:
    kind, _, name = asset.partition(":")
    return name if kind == "site" else None


# -- waivers -------------------------------------------------------------------------------------------

def waiver_asset(w: Waiver) -> str:
    if w.finding:
        return f"waiver:{w.finding}"
    return f"waiver:{w.check}" + (f"@{w.asset}" if w.asset else "")


def waiver_findings(loaded: LoadedEstate, today: date) -> list[Finding]:
    estate = loaded.estate
    limit = estate.organisation.max_waiver_months
    out = []
    for i, w in enumerate(estate.waivers):
        if w.expires < today:
            continue
        asset = waiver_asset(w)
        file, line = loaded.where(("waivers", i))
        where = f"{file}:{line}"
        common = {"waiver": w.model_dump(mode="json"), "estate_file": file, "estate_line": line}
        key = f"approved {w.approved_on.isoformat()}"
        said = f"approved by {w.approved_by} on {w.approved_on.isoformat()}, expires {w.expires.isoformat()}" + \
            (f", reference {w.reference}" if w.reference else "")
        broad = _everything(w)
        if broad:
            out.append(make_finding(
                MATCHES_EVERYTHING, asset, Status.FAIL, key=key,
                observed=f"the waiver at {where} accepts a failure of {broad} ({said})",
                expected=EXPECTED[MATCHES_EVERYTHING],
                details=common))
        until = add_months(w.approved_on, limit)
        if w.expires > until:
            out.append(make_finding(
                TOO_LONG, asset, Status.FAIL, key=key,
                observed=(f"the waiver at {where} runs {_span(w.approved_on, w.expires)}, from "
                          f"{w.approved_on.isoformat()} to {w.expires.isoformat()}: longer than the estate's "
                          f"maximum of {limit} month(s) (it should expire by {until.isoformat()})"),
                expected=_too_long_expected(limit),
                details={**common, "max_waiver_months": limit, "latest_expiry": until.isoformat()}))
        contact, why = approver_contact(w.approved_by, estate.organisation.contacts)
        if contact is None:
            out.append(make_finding(
                APPROVER, asset, Status.FAIL, key=f"{key} by {w.approved_by}",
                observed=f"the waiver at {where} was approved by {w.approved_by!r}: {why}",
                expected=EXPECTED[APPROVER],
                details={**common, "contacts": [c.model_dump() for c in estate.organisation.contacts]}))
    return out


def _too_long_expected(limit: int) -> str:
    return f"at most {limit} month(s) from approval to expiry (organisation.max_waiver_months)"


def _universal(pattern: str) -> bool:
    """A pattern that names nothing: only wildcards and separators (`*`, `*.*`, `*:*`)."""
    return any(c in pattern for c in "*?[") and not any(c.isalnum() for c in pattern)


def _everything(w: Waiver) -> str | None:
    """What a waiver accepts if that is 'everything' (any check, or its check on every asset)."""
    if w.finding:
        return None
    if w.check is not None and _universal(w.check):
        return "any check on " + ("every asset" if not w.asset or _universal(w.asset) else f"asset {w.asset!r}")
    if not w.asset:
        return f"check {w.check} on every asset (no asset given)"
    if _universal(w.asset):
        return f"check {w.check} on every asset ({w.asset!r})"
    return None


def add_months(d: date, months: int) -> date:
    """The same day `months` later (the month's last day when it is shorter: 31 Jan + 1 = 28/29 Feb)."""
    year, month = divmod(d.month - 1 + months, 12)
    year, month = d.year + year, month + 1
    return date(year, month, min(d.day, calendar.monthrange(year, month)[1]))


def _span(start: date, end: date) -> str:
    months = (end.year - start.year) * 12 + end.month - start.month
    if add_months(start, months) > end:
        months -= 1
    days = (end - add_months(start, months)).days
    return f"{months} month(s)" + (f" and {days} day(s)" if days else "")


def _norm(text: str) -> str:
    return " ".join(re.sub(r"[-_]", " ", text).casefold().split())


def approver_contact(approved_by: str, contacts: list[Contact]) -> tuple[Contact | None, str]:
    """The contact a waiver's approver is, and if none, why not.

    The rule (case, spacing and hyphens ignored): `Name` must be a contact's name, or a contact's
    role (`security-lead`, `Security Lead`); `Name (Title)` must name a contact, and when the title
    is a role in the contacts, it must be that contact's role. A title that is no role there (`SIRO`
    for `senior-information-risk-owner`) is taken as the person's own description of it.
    """
    text = approved_by.strip()
    m = re.fullmatch(r"(.+?)\s*\((.+)\)", text)
    name, title = (m.group(1), m.group(2)) if m else (text, None)
    by_name = [c for c in contacts if _norm(c.name) == _norm(name)]
    if title is None:
        if by_name:
            return by_name[0], ""
        by_role = [c for c in contacts if _norm(c.role) == _norm(name)]
        if by_role:
            return by_role[0], ""
        return None, _not_listed(contacts)
    if not by_name:
        return None, f"{name!r} is not a name in organisation.contacts ({_names(contacts)})"
    role_holders = [c for c in contacts if _norm(c.role) == _norm(title)]
    if role_holders and not any(c in role_holders for c in by_name):
        holder = ", ".join(c.name for c in role_holders)
        return None, f"organisation.contacts gives the role {title!r} to {holder}, not to {name}"
    return by_name[0], ""


def _names(contacts: list[Contact]) -> str:
    return ", ".join(f"{c.name} ({c.role})" for c in contacts) or "none listed"


def _not_listed(contacts: list[Contact]) -> str:
    return f"not a name or role in organisation.contacts ({_names(contacts)})"


# -- passes: the check ran and found nothing ---------------------------------------------------------

def _pass(check_id: str, estate: Estate, today: date) -> Finding:
    active = [w for w in estate.waivers if w.expires >= today]
    observed = {
        OVERLAP: "no two ranges of the address plan overlap",
        MATCHES_EVERYTHING: f"each of {len(active)} waiver(s) in force names its check and asset, or its finding",
        TOO_LONG: f"each of {len(active)} waiver(s) in force runs at most "
                  f"{estate.organisation.max_waiver_months} month(s)",
        APPROVER: f"each of {len(active)} waiver(s) in force was approved by someone in organisation.contacts",
    }[check_id]
    expected = _too_long_expected(estate.organisation.max_waiver_months) if check_id == TOO_LONG \
        else EXPECTED[check_id]
    return make_finding(check_id, f"estate:{estate.organisation.short_name}", Status.PASS, observed=observed,
                        expected=expected)
