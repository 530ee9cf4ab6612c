"""Accepted risks: the runner applies the estate's waivers once per run, into Finding.acceptance.

Waivers live in the estate repository (section `waivers`), so accepting a risk is a reviewed
change with an approver and an expiry. An expired waiver no longer applies: the finding is open
again and says when its acceptance lapsed (Finding.acceptance_lapsed). Nothing else sets these
fields, so a finding shows the same acceptance in every report of every command.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from fnmatch import fnmatchcase

from .findings import Acceptance, Finding
from .model.schema import Waiver


def matches(waiver: Waiver, finding: Finding) -> bool:
    if waiver.finding:
        return waiver.finding == finding.id
    if waiver.check and not fnmatchcase(finding.check_id, waiver.check):
        return False
    return not (waiver.asset and not fnmatchcase(finding.asset, waiver.asset))


# Findings about the waivers themselves (estate hygiene) cannot be waived: a waiver broad enough to
# match everything would otherwise accept the finding that says it is too broad.
UNWAIVABLE = "estate.waiver_"


def apply_waivers(findings: Iterable[Finding], waivers: list[Waiver], today: date) -> None:
    """Set acceptance (unexpired waiver) or acceptance_lapsed (expired) on failing findings."""
    for finding in findings:
        # Cleared only when set: a model's assignment is not free, and an ITHC import has 20,000 findings.
        if finding.acceptance is not None or finding.acceptance_lapsed is not None:
            finding.acceptance, finding.acceptance_lapsed = None, None
        if not finding.failing or finding.check_id.startswith(UNWAIVABLE):
            continue
        for waiver in waivers:
            if not matches(waiver, finding):
                continue
            if waiver.expires >= today:
                finding.acceptance = Acceptance(**waiver.model_dump(exclude={"finding", "check", "asset"}))
                finding.acceptance_lapsed = None
                break
            finding.acceptance_lapsed = waiver.expires
