"""Remediation timescales: days from opening a RAP item to its target date, by severity.

The council's own policy when the estate declares one (organisation.remediation_timescales);
otherwise a default that says it is one, so no council's plan ever cites another council's policy.
"""

from __future__ import annotations

from typing import Any

from ..findings import Severity
from ..model.schema import Estate, RemediationTimescales

DEFAULT = RemediationTimescales(
    source="estate default timescales: critical and high within 14 days (Cyber Essentials v3.3), medium 30, "
           "low 90, info 180 days; declare organisation.remediation_timescales for the council's own policy")


def timescales(estate: Estate) -> RemediationTimescales:
    return estate.organisation.remediation_timescales or DEFAULT


def target_days(severity: Severity, estate: Estate) -> int:
    return int(getattr(timescales(estate), severity.value))


def policy(estate: Estate) -> dict[str, Any]:
    t = timescales(estate)
    return {"source": t.source, "target_days": {s.value: int(getattr(t, s.value)) for s in Severity}}
