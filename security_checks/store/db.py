"""The store's database file: opened private, checked before use, migrated in order.

- The file is created 0600 (SQLite gives its -wal and -shm files the database file's mode).
- `PRAGMA quick_check` runs at every open: a corrupt store is refused with one line (exit 2)
  before any command builds on it, instead of failing after a whole assessment.
- The schema is the list of migration files applied (schema_migrations). A store that has a
  migration this version of estate does not know was written by a newer estate: refused, since
  this version would misread it.
"""

from __future__ import annotations

import os
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


class StoreError(Exception):
    """The store cannot be used as it is; the message names the file and what to do (exit 2)."""


def known_migrations() -> list[Path]:
    return sorted(MIGRATIONS.glob("*.sql"))


def connect(path: Path) -> sqlite3.Connection:
    if not path.exists():
        # Create it ourselves so it is private from its first byte, whatever the umask.
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
    try:
        db = sqlite3.connect(path, timeout=60, isolation_level=None, check_same_thread=False)
        db.row_factory = sqlite3.Row
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA foreign_keys=ON")
        db.execute("PRAGMA synchronous=FULL")
        result = [r[0] for r in db.execute("PRAGMA quick_check")]
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"{path}: the store is damaged and cannot be read ({exc}); restore it from a backup, "
                         "or move it aside and run `estate store recover --adopt` to rebuild it from the run "
                         "directories") from None
    if result != ["ok"]:
        found = " ".join("; ".join(result[:3]).split())[:300]   # one line, however sqlite words it
        raise StoreError(f"{path}: the store is damaged ({found}); restore it from a backup, or "
                         "move it aside and run `estate store recover --adopt` to rebuild it from the run "
                         "directories")
    return db


def applied(db: sqlite3.Connection) -> list[str]:
    has = db.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='schema_migrations'").fetchone()
    if not has:
        return []
    return [r[0] for r in db.execute("SELECT id FROM schema_migrations ORDER BY id")]


def check_schema(db: sqlite3.Connection, path: Path) -> list[Path]:
    """The migrations still to apply; StoreError when the store is newer than this estate."""
    done = set(applied(db))
    known = known_migrations()
    unknown = sorted(done - {p.stem for p in known})
    if unknown:
        raise StoreError(f"{path}: written by a newer version of estate (schema {unknown[-1]}, this version knows "
                         f"up to {known[-1].stem}): upgrade estate before using this store")
    return [p for p in known if p.stem not in done]


def migrate(db: sqlite3.Connection, pending: list[Path]) -> None:
    db.execute("CREATE TABLE IF NOT EXISTS schema_migrations (id TEXT PRIMARY KEY, applied_at TEXT NOT NULL)")
    for path in pending:
        stamp = datetime.now(UTC).replace(microsecond=0).isoformat()
        # executescript commits first; wrap the script itself so a migration applies whole.
        db.executescript("BEGIN IMMEDIATE;\n" + path.read_text()
                         + f"\nINSERT INTO schema_migrations VALUES ('{path.stem}', '{stamp}');\nCOMMIT;")
