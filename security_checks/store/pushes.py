"""What was archived where: the evidence_pushes and evidence_objects tables (migrations 040, 050).

A bundle's push row and all its object rows are written in one transaction, and only once every
object is stored and its lock read back, so the store never claims a bundle is archived when part
of it is not. The retain-until dates recorded are those the archive reported, not those asked for.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from . import Store


@dataclass(frozen=True)
class ArchivedObject:
    """One object as the archive reported it after the push."""

    key: str
    sha256: str
    size: int
    retain_until: datetime | None     # None: a directory archive (read-only files, no date)
    mode: str                         # COMPLIANCE, or read-only for a directory archive
    version_id: str | None = None


@dataclass(frozen=True)
class RecordedObject(ArchivedObject):
    bundle: str = ""
    pushed_at: str = ""
    last_checked_at: str | None = None
    last_problem: str | None = None


@dataclass(frozen=True)
class PushRecord:
    sums_sha256: str
    objects: int            # object rows recorded; 0 for a push recorded before migration 050
    retain_until: str | None


def push_record(store: Store, destination: str, bundle: str) -> PushRecord | None:
    row = store.db.execute(
        "SELECT p.sums_sha256, p.retain_until,"
        " (SELECT COUNT(*) FROM evidence_objects o WHERE o.destination = p.destination AND o.bundle = p.bundle)"
        " FROM evidence_pushes p WHERE p.destination = ? AND p.bundle = ?", (destination, bundle)).fetchone()
    return PushRecord(sums_sha256=row[0], retain_until=row[1], objects=row[2]) if row else None


def record_push(store: Store, destination: str, bundle: str, sums_sha256: str,
                objects: Sequence[ArchivedObject], at: datetime) -> datetime | None:
    """Record a bundle and every object of it at once; returns the bundle's retain-until (the earliest)."""
    dates = [o.retain_until for o in objects if o.retain_until is not None]
    until = min(dates) if dates and len(dates) == len(objects) else None
    with store.transaction() as cur:
        # A bundle recorded before per-object rows existed is re-checked by the next push: replace.
        cur.execute("DELETE FROM evidence_objects WHERE destination = ? AND bundle = ?", (destination, bundle))
        cur.executemany(
            "INSERT INTO evidence_objects (destination, bundle, key, sha256, size, retain_until, mode, version_id,"
            " pushed_at) VALUES (?,?,?,?,?,?,?,?,?)",
            [(destination, bundle, o.key, o.sha256, o.size, _iso(o.retain_until), o.mode, o.version_id, _iso(at))
             for o in objects])
        cur.execute(
            "INSERT INTO evidence_pushes (destination, bundle, sums_sha256, objects, retain_until, pushed_at)"
            " VALUES (?,?,?,?,?,?) ON CONFLICT (destination, bundle) DO UPDATE SET"
            " sums_sha256 = excluded.sums_sha256, objects = excluded.objects,"
            " retain_until = excluded.retain_until, pushed_at = excluded.pushed_at",
            (destination, bundle, sums_sha256, len(objects), _iso(until), _iso(at)))
    return until


def recorded_objects(store: Store, destination: str) -> list[RecordedObject]:
    return [RecordedObject(key=r[0], sha256=r[1], size=r[2],
                           retain_until=datetime.fromisoformat(r[3]) if r[3] else None, mode=r[4], version_id=r[5],
                           bundle=r[6], pushed_at=r[7], last_checked_at=r[8], last_problem=r[9])
            for r in store.db.execute(
                "SELECT key, sha256, size, retain_until, mode, version_id, bundle, pushed_at, last_checked_at,"
                " last_problem FROM evidence_objects WHERE destination = ? ORDER BY bundle, key", (destination,))]


def bundles_without_objects(store: Store, destination: str) -> list[str]:
    """Bundles recorded as pushed before objects were recorded one by one: nothing to audit them by."""
    return [r[0] for r in store.db.execute(
        "SELECT p.bundle FROM evidence_pushes p WHERE p.destination = ? AND NOT EXISTS"
        " (SELECT 1 FROM evidence_objects o WHERE o.destination = p.destination AND o.bundle = p.bundle)"
        " ORDER BY p.bundle", (destination,))]


def mark_checked(store: Store, destination: str, results: Iterable[tuple[str, str | None]], at: datetime) -> None:
    """Record an audit: (key, problem or None) for each object read."""
    with store.transaction() as cur:
        cur.executemany("UPDATE evidence_objects SET last_checked_at = ?, last_problem = ?"
                        " WHERE destination = ? AND key = ?",
                        [(_iso(at), problem, destination, key) for key, problem in results])


def _iso(at: datetime | None) -> str | None:
    return at.isoformat() if at is not None else None


def push_count(store: Store, destination: str) -> int:
    row = store.db.execute("SELECT COUNT(*) FROM evidence_pushes WHERE destination = ?", (destination,)).fetchone()
    return int(row[0])
