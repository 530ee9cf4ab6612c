"""Compliance verdicts as stored: one per framework per run, with a row per requirement.

The runner computes them once, at commit, from the run's findings (waivers applied) and the
estate's attestations, on the run's own date (security_checks/compliance/verdict.py), and the
store keeps them in the run's transaction. Every report, the board PDF, `estate check ce|psn` and
the machine outputs read these rows: nothing recomputes a verdict, so no two outputs can disagree.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from pydantic import BaseModel, ConfigDict

REQUIREMENT_STATUSES = ("met", "not_met", "risk_accepted", "declared", "manual", "not_assessed")


class RequirementRow(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ref: str                        # CE3.3:FW-1
    id: str
    control: str                    # the framework's control area
    title: str
    requirement: str
    clause: str = ""
    auto_fail: bool = False
    manual: bool = False
    checks: list[str] = []
    maps_to: list[str] = []
    status: str                     # one of REQUIREMENT_STATUSES
    reason: str
    evidence: list[str] = []        # finding ids that evidence it (any status)
    failing: list[str] = []         # finding ids that stop it being met, worst first
    attestation: dict[str, Any] | None = None
    # How much of what it applies to the run examined: applies_to, label, total, observed,
    # declared, unread, checks (security_checks/catalogue/coverage.py).
    coverage: dict[str, Any] | None = None
    record_evidence_at: str | None = None


class FrameworkVerdict(BaseModel):
    model_config = ConfigDict(extra="forbid")

    framework: str                  # cyber-essentials, psn, ...
    version: str
    prefix: str
    title: str
    source: str = ""
    in_force: bool = True           # the version the council is assessed against (others kept for comparison)
    verdict: str                    # ready | not ready | not ready: auto-fail
    reasons: list[str] = []
    assessed_on: str                # ISO date the run assessed on (never the date a report is written)
    requirements: list[RequirementRow] = []

    @property
    def counts(self) -> dict[str, int]:
        c = Counter(r.status for r in self.requirements)
        return {s: c.get(s, 0) for s in REQUIREMENT_STATUSES}

    @property
    def ref_prefix(self) -> str:
        return self.prefix + ":"
