"""The Remediation Action Plan's records: items and their history, as the store keeps them.

One item per failing finding id (stable across runs: check, asset, key). How a run changes the
plan is decided in security_checks/compliance/rap.py; the change is written in the same
transaction as the run that caused it (security_checks/store), so the plan never refers to a run
the store does not have and no run is half-applied.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from functools import lru_cache
from operator import attrgetter
from typing import Any

STATUSES = ("open", "mitigated", "accepted", "closed")


@dataclass
class RapItem:
    finding_id: str
    check_id: str
    asset: str
    key: str
    title: str
    severity: str
    cvss_vector: str | None
    cvss_score: float | None
    owner: str
    owner_source: str
    action: str
    target_date: str
    status: str
    acceptance: dict[str, Any] | None
    opened_on: str
    first_run: str
    last_seen_run: str
    retest_run: str | None = None
    retest_evidence: list[str] = field(default_factory=list)
    updated_at: str = ""
    history: list[dict[str, Any]] = field(default_factory=list)

    def row(self) -> tuple[Any, ...]:
        """The rap_items row, in ROW_COLUMNS order."""
        # Field by field, not dataclasses.asdict: asdict deep-copies every value, and a first
        # assessment (or an ITHC import) writes tens of thousands of items; the two containers
        # become JSON text here anyway.
        values = _row_values(self)
        return (*values[:_ACCEPTANCE], json.dumps(self.acceptance) if self.acceptance else None,
                *values[_ACCEPTANCE + 1:_RETEST], _evidence_json(tuple(self.retest_evidence)), *values[_RETEST + 1:])

    @classmethod
    def from_row(cls, row: Any) -> RapItem:
        d = dict(row)
        d["acceptance"] = json.loads(d["acceptance"]) if d["acceptance"] else None
        d["retest_evidence"] = json.loads(d["retest_evidence"] or "[]")
        return cls(**d)


ROW_COLUMNS = tuple(f.name for f in fields(RapItem) if f.name != "history")
_row_values = attrgetter(*ROW_COLUMNS)
_ACCEPTANCE, _RETEST = ROW_COLUMNS.index("acceptance"), ROW_COLUMNS.index("retest_evidence")


@lru_cache(maxsize=4096)
def _evidence_json(paths: tuple[str, ...]) -> str:
    # Most items of a run cite the same evidence file or two: encoded once.
    return json.dumps(list(paths))


@dataclass
class RapChange:
    """One item written by a run: its new state, and the history line when its status changed."""

    item: RapItem
    created: bool = False
    from_status: str | None = None
    reason: str | None = None        # None: a quiet update (last seen, severity), no history line

    @property
    def recorded(self) -> bool:
        return self.reason is not None


@dataclass
class RapUpdate:
    changes: list[RapChange] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
