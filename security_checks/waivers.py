"""Accepted risks: a failing finding matched by an unexpired waiver is shown as accepted.

Waivers live in the estate repository (section `waivers`), so accepting a risk is a reviewed
change with an approver and an expiry. An expired waiver no longer applies: the finding is open
again, and says when its acceptance lapsed.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from fnmatch import fnmatchcase

from pydantic import BaseModel

from .findings import Finding
from .model.schema import Waiver


class Acceptance(BaseModel):
    justification: str
    approved_by: str
    approved_on: date
    expires: date
    reference: str = ""


def matches(waiver: Waiver, finding: Finding) -> bool:
    if waiver.finding:
        return waiver.finding == finding.id
    if waiver.check and not fnmatchcase(finding.check_id, waiver.check):
        return False
    return not (waiver.asset and not fnmatchcase(finding.asset, waiver.asset))


def apply_waivers(findings: Iterable[Finding], waivers: list[Waiver], today: date) -> None:
    """Mark failing findings accepted (details['accepted']) or lapsed (details['acceptance_expired'])."""
    for finding in findings:
        if not finding.failing:
            continue
        for waiver in waivers:
            if not matches(waiver, finding):
                continue
            if waiver.expires >= today:
                finding.details["accepted"] = Acceptance(**waiver.model_dump(exclude={"finding", "check", "asset"})
                                                         ).model_dump(mode="json")
                finding.details.pop("acceptance_expired", None)
                break
            finding.details["acceptance_expired"] = waiver.expires.isoformat()


def accepted(finding: Finding) -> Acceptance | None:
    raw = finding.details.get("accepted")
    return Acceptance.model_validate(raw) if raw else None
