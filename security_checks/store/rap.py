"""The Remediation Action Plan's SQL: reading items and history, and writing one run's transition.

The transition itself (which items open, close, reopen...) is decided without SQL in
security_checks/compliance/rap.py; Store.commit calls it inside the run's transaction, with the
plan as it stands there, and writes what it returns with `apply`, in that same transaction.
"""

from __future__ import annotations

from typing import Any

from ..findings import SEVERITY_RANK
from ..remediation import ROW_COLUMNS, STATUSES, RapItem, RapUpdate
from .db import Cursor, Database


def items(cur: Cursor | Database, *, with_history: bool) -> dict[str, RapItem]:
    out = {r["finding_id"]: RapItem.from_row(r) for r in cur.execute("SELECT * FROM rap_items")}
    if with_history:
        for r in cur.execute("SELECT finding_id, seq, run_id, at, from_status, to_status, reason"
                             " FROM rap_history ORDER BY finding_id, seq"):
            item = out.get(r["finding_id"])
            if item is not None:
                item.history.append({k: r[k] for k in ("seq", "run_id", "at", "from_status", "to_status", "reason")})
    return out


def items_sorted(db: Database, *, with_history: bool = True) -> list[RapItem]:
    order = {s: i for i, s in enumerate(STATUSES)}
    return sorted(items(db, with_history=with_history).values(),
                  key=lambda i: (order.get(i.status, 9), -SEVERITY_RANK.get(i.severity, 0), i.target_date,
                                 i.finding_id))


def apply(cur: Cursor, run_id: str, update: RapUpdate, *, full_scope: bool) -> None:
    # In batches, not a statement per item: a first assessment of a large estate opens tens of
    # thousands of items, and on a shared store every statement is a round trip to the server.
    if update.changes:
        cols = ROW_COLUMNS
        key = cols.index("finding_id")
        rest = [c for c in cols if c != "finding_id"]
        cur.executemany(f"INSERT INTO rap_items ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",  # noqa: S608
                        [ch.item.row() for ch in update.changes if ch.created])
        cur.executemany(f"UPDATE rap_items SET {', '.join(c + ' = ?' for c in rest)} WHERE finding_id = ?",  # noqa: S608
                        [(*row[:key], *row[key + 1:], row[key])
                         for row in (ch.item.row() for ch in update.changes if not ch.created)])
    recorded = [ch for ch in update.changes if ch.recorded]
    # An item created now has no history yet (items are never deleted): only the others are looked up.
    last = _last_seq(cur, sorted({ch.item.finding_id for ch in recorded if not ch.created}))
    history = []
    for ch in recorded:
        seq = last[ch.item.finding_id] = last.get(ch.item.finding_id, 0) + 1
        history.append((ch.item.finding_id, seq, run_id, ch.item.updated_at, ch.from_status, ch.item.status, ch.reason))
    cur.executemany("INSERT INTO rap_history (finding_id, seq, run_id, at, from_status, to_status, reason, before)"
                    " VALUES (?,?,?,?,?,?,?,NULL)", history)
    cur.execute("INSERT INTO rap_runs (run_id, applied_at, full_scope) VALUES (?,?,?)",
                (run_id, _stamp(update), int(full_scope)))


def _last_seq(cur: Cursor, finding_ids: list[str]) -> dict[str, int]:
    """finding id -> the last history line's number (absent: no history yet)."""
    out: dict[str, int] = {}
    for chunk in range(0, len(finding_ids), 500):   # SQLite's bound-parameter limit
        part = finding_ids[chunk:chunk + 500]
        for fid, seq in cur.execute(f"SELECT finding_id, MAX(seq) FROM rap_history WHERE finding_id IN"  # noqa: S608
                                    f" ({','.join('?' * len(part))}) GROUP BY finding_id", part):
            out[fid] = int(seq)
    return out


def _stamp(update: RapUpdate) -> Any:
    from datetime import UTC, datetime

    return next((c.item.updated_at for c in update.changes if c.item.updated_at),
                datetime.now(UTC).replace(microsecond=0).isoformat())
