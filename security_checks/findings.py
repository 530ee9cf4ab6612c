"""The Finding: the one currency of every check, scan, device audit and policy rule.

Reports, the control matrix and evidence read only findings. A finding's id is derived from what
it is about (check, asset, key), never from when it was seen, so the same problem on the same asset
keeps its id across runs: that is what makes deltas, trends and the remediation plan possible.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from functools import lru_cache
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, computed_field, model_validator


class Status(StrEnum):
    PASS = "pass"  # noqa: S105 (a status, not a password)
    FAIL = "fail"
    MANUAL = "manual"              # a person must attest; never counted as met by a tool
    ERROR = "error"                # the check could not run (host unreachable, tool failed)
    NOT_ASSESSED = "not_assessed"  # in scope but nothing looked at it this run


# Severity.rank as a table: sorting tens of thousands of findings asks it often.
SEVERITY_RANK = {"info": 0, "low": 1, "medium": 2, "high": 3, "critical": 4}


class Severity(StrEnum):
    INFO = "info"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return SEVERITY_RANK[self]   # a StrEnum member hashes as its value

    @classmethod
    def from_cvss(cls, score: float) -> Severity:
        """CVSS v3.1 qualitative rating (FIRST specification, section 5)."""
        if score >= 9.0:
            return cls.CRITICAL
        if score >= 7.0:
            return cls.HIGH
        if score >= 4.0:
            return cls.MEDIUM
        if score > 0.0:
            return cls.LOW
        return cls.INFO


class EvidenceKind(StrEnum):
    """What a finding's verdict rests on: an auditor weighs these differently."""

    OBSERVED = "observed"   # a scan, a device read-back, a cloud export, an audit of the real thing
    DECLARED = "declared"   # the estate YAML only: what the council says, not what is there
    ATTESTED = "attested"   # a person's signed statement (attestations in the estate)


class Acceptance(BaseModel):
    """A waiver that covers a failing finding: a reviewed, approved, time-limited risk acceptance."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    justification: str
    approved_by: str
    approved_on: date
    expires: date
    reference: str = ""


class EvidenceRef(BaseModel):
    """A file in the run's evidence directory (path relative to it) that backs a finding."""

    model_config = ConfigDict(frozen=True)

    path: str
    description: str = ""
    sha256: str | None = None


# A run asks a finding's id a dozen times (waivers, duplicates, the RAP transition, the commit, the
# verdicts): remembered for the ids of a large run, not recomputed with SHA-256 each time. Bounded,
# so a long-lived process (estate serve) does not keep every id it ever saw.
@lru_cache(maxsize=1 << 16)
def finding_id(check_id: str, asset: str, key: str = "") -> str:
    digest = hashlib.sha256(f"{check_id}\0{asset}\0{key}".encode()).hexdigest()
    return f"F-{digest[:16]}"


class Finding(BaseModel):
    model_config = ConfigDict(extra="forbid")

    check_id: str = Field(description="the check that produced it, e.g. scan.undeclared_port")
    asset: str = Field(description="what it is about, e.g. host:10.10.30.20, lob:planning, site:depot")
    key: str = Field("", description="tells apart findings of one check on one asset, e.g. tcp/23")
    title: str
    status: Status
    severity: Severity
    source: str = Field(description="the engine: selftest, scan, devices, infra, patch, ce, psn")
    controls: list[str] = Field([], description="control references, e.g. CE3.3:FW-2, PSN:COCO-4")
    cvss_vector: str | None = None
    cvss_score: float | None = None
    observed: str = ""
    expected: str = ""
    evidence: list[EvidenceRef] = []
    remediation: str = ""
    site: str | None = None
    zone: str | None = None
    evidence_kind: EvidenceKind = Field(description="observed, declared (estate YAML only) or attested")
    # Set once per run by the runner from the estate's waivers (security_checks/waivers.py), never by a check.
    acceptance: Acceptance | None = None
    acceptance_lapsed: date | None = Field(None, description="a waiver covered it until this date; open again")
    details: dict[str, Any] = {}
    # Set by the store at commit: when first and last reported, and the fix-by date of its RAP item.
    fix_by: date | None = None
    first_seen: datetime | None = None
    last_seen: datetime | None = None

    @model_validator(mode="before")
    @classmethod
    def _drop_derived_id(cls, data: Any) -> Any:
        # A serialised finding carries its id; it is derived, so read it back by recomputing it.
        if isinstance(data, dict) and "id" in data:
            data = {k: v for k, v in data.items() if k != "id"}
        return data

    @computed_field  # type: ignore[prop-decorator]
    @property
    def id(self) -> str:
        return finding_id(self.check_id, self.asset, self.key)

    @property
    def failing(self) -> bool:
        return self.status in (Status.FAIL, Status.ERROR)

    @property
    def accepted(self) -> bool:
        return self.failing and self.acceptance is not None

    @property
    def open(self) -> bool:
        """Failing and not covered by a waiver: what counts against --fail-on and the verdicts."""
        return self.failing and self.acceptance is None


@dataclass(frozen=True)
class FindingBrief:
    """A stored finding as a summary shows it (counts, worst-first lines, the exit status), read from
    the store's columns without decoding the whole finding: a run of tens of thousands (an ITHC
    import) prints its summary without building every finding again. Same names as Finding's."""

    id: str
    check_id: str
    asset: str
    key: str
    status: Status
    severity: Severity
    title: str
    observed: str
    accepted: bool

    @property
    def failing(self) -> bool:
        return self.status in (Status.FAIL, Status.ERROR)

    @property
    def open(self) -> bool:
        return self.failing and not self.accepted
