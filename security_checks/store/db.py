"""The store's database: SQLite in the home (the default) or a shared PostgreSQL, one schema for both.

Where it is: `--db URL` (the CLI calls `select_database`), else the environment variable ESTATE_DB,
else `<home>/estate.db`. A URL starting postgresql:// (or postgres://) is a PostgreSQL database
(psycopg 3); `sqlite:///path` names another SQLite file. Only the database moves: a run's evidence
files stay in the home that ran it (and in the archive it is pushed to).

Why hand-written SQL rather than an ORM: the store's queries were already standard SQL (ON CONFLICT,
COALESCE, LIKE ... ESCAPE), so the two back-ends differ only in a few places, all here:
- placeholders: the store writes `?`; for psycopg they become `%s` (and a literal `%` is doubled);
- column types in the migrations: INTEGER becomes BIGINT and REAL becomes DOUBLE PRECISION on
  PostgreSQL, so a file size or a CVSS score reads back exactly as SQLite gives it;
- a block a migration marks `-- sqlite only {` ... `-- }` runs on SQLite only (it rewrites rows a
  PostgreSQL store, which starts at this version, cannot have);
- a write transaction: SQLite's `BEGIN IMMEDIATE` takes the file's one write lock; on PostgreSQL
  `begin_write` takes one advisory transaction lock, the same queue: writers (from any machine)
  commit one after another, readers never wait, and the lock goes with the transaction (COMMIT,
  ROLLBACK, or the connection dying with its process).

SQLite specifics: the file is created 0600; `PRAGMA quick_check` runs at every open, so a corrupt
store is refused with one line (exit 2) before any command builds on it. On both, the schema is the
list of migration files applied (schema_migrations); a store with a migration this version of estate
does not know was written by a newer estate and is refused, since this version would misread it.
"""

from __future__ import annotations

import contextlib
import os
import re
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
ENV = "ESTATE_DB"
# pg_advisory_xact_lock keys (one 64-bit namespace per database): 'estatewr', 'estatemg' as integers.
WRITE_LOCK = int.from_bytes(b"estatewr", "big") - (1 << 63)
MIGRATE_LOCK = int.from_bytes(b"estatemg", "big") - (1 << 63)
_SQLITE_ONLY = re.compile(r"^-- sqlite only \{.*?^-- \}$", re.S | re.M)

_selected: str | None = None


class StoreError(Exception):
    """The store cannot be used as it is; the message names the file and what to do (exit 2)."""


def select_database(url: str | None) -> None:
    """The database every Store of this process opens (`--db`); None: back to ESTATE_DB or the home's file."""
    global _selected
    _selected = url or None


def configured() -> str | None:
    return _selected or os.environ.get(ENV) or None


@dataclass(frozen=True)
class Location:
    """Which back-end and where; `shown` is safe to print (no password)."""

    backend: str          # sqlite or postgresql
    target: str = field(repr=False)   # a file path, or the connection URL (with its password: never print it)
    shown: str = ""

    @property
    def shared(self) -> bool:
        return self.backend == "postgresql"


def locate(home: Path, url: str | None = None) -> Location:
    url = url if url is not None else configured()
    if not url:
        path = home / "estate.db"
        return Location("sqlite", str(path), str(path))
    scheme = url.split(":", 1)[0].lower()
    if scheme in ("postgresql", "postgres"):
        return Location("postgresql", url, mask(url))
    if scheme == "sqlite" and url.startswith("sqlite:///"):
        file = url.removeprefix("sqlite://")
        return Location("sqlite", file, file)
    raise StoreError(f"{ENV} / --db {mask(url)!r}: not a database URL estate knows "
                     "(postgresql://user@host/dbname, or sqlite:///path/to/estate.db)")


def mask(url: str) -> str:
    """A URL with its password replaced by ***, also one given as ?password=... ."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparsable database URL>"
    netloc = parts.netloc
    if "@" in netloc:
        cred, host = netloc.rsplit("@", 1)
        if ":" in cred:
            netloc = f"{cred.split(':', 1)[0]}:***@{host}"
    query = re.sub(r"(?i)(^|&)(password)=[^&]*", r"\1\2=***", parts.query)
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def known_migrations() -> list[Path]:
    return sorted(MIGRATIONS.glob("*.sql"))


class Cursor:
    """A cursor that speaks the store's SQL (`?` placeholders) on either back-end."""

    def __init__(self, db: Database, raw: Any):
        self._db, self._raw = db, raw

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Cursor:
        with self._db.errors():
            self._raw.execute(self._db.sql(sql), params)
        return self

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> Cursor:
        rows = list(rows)
        if rows:
            with self._db.errors():
                self._raw.executemany(self._db.sql(sql), rows)
        return self

    def fetchone(self) -> Any:
        return self._raw.fetchone()

    def fetchall(self) -> list[Any]:
        return list(self._raw.fetchall())

    def __iter__(self) -> Iterator[Any]:
        return iter(self._raw)   # row by row, as sqlite3 and psycopg both stream them


class Database:
    """One connection, in autocommit; write transactions are explicit (`begin_write`)."""

    def __init__(self, where: Location, raw: Any):
        self.where, self.raw = where, raw
        self.dialect = where.backend
        self._checkpoint: threading.Thread | None = None

    # -- statements ----------------------------------------------------------------------------

    def sql(self, text: str) -> str:
        if self.dialect == "postgresql":
            return text.replace("%", "%%").replace("?", "%s")
        return text

    def json_text(self, column: str, key: str) -> str:
        """SQL for the text of a top-level key of a JSON text column (NULL when absent or null), so a
        query can read one field of stored findings without the caller decoding each one."""
        if self.dialect == "postgresql":
            return f"(({column})::json ->> '{key}')"
        return f"json_extract({column}, '$.{key}')"

    def cursor(self) -> Cursor:
        return Cursor(self, self.raw.cursor())

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Cursor:
        return self.cursor().execute(sql, params)

    def begin_write(self) -> None:
        """Start a write transaction: one writer at a time per database, on every machine."""
        if self.dialect == "postgresql":
            self.raw.execute("BEGIN")
            self.raw.execute("SELECT pg_advisory_xact_lock(%s)", (WRITE_LOCK,))
        else:
            self.raw.execute("BEGIN IMMEDIATE")

    def commit(self) -> None:
        self.raw.execute("COMMIT")
        if self.dialect == "sqlite":
            self._checkpoint_behind()

    def _checkpoint_behind(self) -> None:
        """Copy the journal into the database file on another connection, while this one goes on.

        SQLite would otherwise do it inside COMMIT once the journal passes its threshold, and after a
        tester's import (60 MB of rows) the command would wait for that copy and its flush before
        printing a word. The commit is durable in the journal already; the copy is housekeeping,
        crash-safe wherever it stops, and SQLite's own documentation suggests running it from another
        thread (wal_autocheckpoint). `close` waits for it, so a command ends with the file as tidy
        as before."""
        if self._checkpoint is not None and self._checkpoint.is_alive():
            return   # one at a time: the running one, or the last close, copies what this commit added
        path = self.where.target

        def checkpoint() -> None:
            with contextlib.suppress(sqlite3.Error):   # busy or failed: left to the next one
                # mode=rw: should the file have been moved meanwhile, never create an empty one.
                other = sqlite3.connect(f"file:{quote(path)}?mode=rw", uri=True, timeout=0, isolation_level=None)
                try:
                    other.execute("PRAGMA wal_checkpoint(PASSIVE)")
                finally:
                    other.close()

        self._checkpoint = threading.Thread(target=checkpoint, name="estate-checkpoint")
        self._checkpoint.start()

    def rollback(self) -> None:
        if self.in_transaction:
            self.raw.execute("ROLLBACK")

    @property
    def in_transaction(self) -> bool:
        if self.dialect == "postgresql":
            import psycopg

            return bool(self.raw.info.transaction_status != psycopg.pq.TransactionStatus.IDLE)
        return bool(self.raw.in_transaction)

    def close(self) -> None:
        if self._checkpoint is not None:
            self._checkpoint.join()
        self.raw.close()

    def errors(self) -> Any:
        return _translated(self)

    # -- the schema ----------------------------------------------------------------------------

    def has_table(self, name: str) -> bool:
        if self.dialect == "postgresql":
            return self.raw.execute("SELECT to_regclass(%s)", (name,)).fetchone()[0] is not None
        return self.raw.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", (name,)
                                ).fetchone() is not None

    def ddl(self, script: str) -> str:
        """A migration as this back-end runs it (see the module's docstring)."""
        if self.dialect != "postgresql":
            return script
        script = _SQLITE_ONLY.sub("", script)
        script = re.sub(r"\bINTEGER\b", "BIGINT", script)
        return re.sub(r"\bREAL\b", "DOUBLE PRECISION", script)


DATABASE_ERRORS: tuple[type[BaseException], ...] = (sqlite3.DatabaseError,)


class _translated:
    """Turn a refusal the database gives for a reason the operator can fix into one StoreError line."""

    def __init__(self, db: Database):
        self.db = db

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: Any, exc: BaseException | None, tb: Any) -> None:
        if exc is None or self.db.dialect != "postgresql":
            return
        import psycopg

        if isinstance(exc, psycopg.errors.InsufficientPrivilege):
            user = self.db.raw.info.user
            raise StoreError(f"{self.db.where.shown}: the database role {user!r} may not do this "
                             f"({str(exc).splitlines()[0]}); a run needs the writer role (`estate store grants`)"
                             ) from None
        if isinstance(exc, psycopg.OperationalError):
            raise StoreError(f"{self.db.where.shown}: the database connection failed ({_first_line(exc)})") from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else type(exc).__name__


def connect(where: Location) -> Database:
    if where.backend == "postgresql":
        return _connect_pg(where)
    return Database(where, _connect_sqlite(Path(where.target)))


def _connect_pg(where: Location) -> Database:
    global DATABASE_ERRORS
    try:
        import psycopg
    except ImportError:
        raise StoreError(f"{where.shown}: PostgreSQL needs psycopg 3 (pip install 'psycopg[binary]')") from None
    DATABASE_ERRORS = (sqlite3.DatabaseError, psycopg.DatabaseError)
    try:
        raw = psycopg.connect(where.target, autocommit=True, row_factory=_pg_rows, connect_timeout=15,
                              application_name="estate")
    except psycopg.Error as exc:
        # libpq's message can quote the connection string: never print it, only what went wrong.
        raise StoreError(f"{where.shown}: cannot connect to the PostgreSQL store "
                         f"({_first_line(exc).replace(where.target, where.shown)})") from None
    return Database(where, raw)


class Row(tuple[Any, ...]):
    """A PostgreSQL row that reads like sqlite3.Row: by position, by column name, and dict(row)."""

    _names: list[str]

    def __new__(cls, values: Sequence[Any], names: list[str]) -> Row:
        row = super().__new__(cls, values)
        row._names = names
        return row

    def keys(self) -> list[str]:
        return self._names

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            return tuple.__getitem__(self, self._names.index(key))
        return tuple.__getitem__(self, key)


def _pg_rows(cursor: Any) -> Any:
    names = [c.name for c in cursor.description] if cursor.description else []
    return lambda values: Row(values, names)


SQLITE_PAGE_SIZE = 16384


def _connect_sqlite(path: Path) -> sqlite3.Connection:
    new = not path.exists()
    if new:
        # Create it ourselves so it is private from its first byte, whatever the umask.
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
    try:
        db = sqlite3.connect(path, timeout=60, isolation_level=None, check_same_thread=False)
        db.row_factory = sqlite3.Row
        if new:
            # A finding row is one to three kilobytes of JSON: on the default 4 KiB pages most pages
            # hold one row and a third of the file is empty space, written twice (journal, then
            # database). 16 KiB pages pack them. Only a new file can take it (WAL fixes the size).
            db.execute(f"PRAGMA page_size={SQLITE_PAGE_SIZE}")
        db.execute("PRAGMA journal_mode=WAL")
        # Commits leave copying the journal into the file to Database._checkpoint_behind; the last
        # connection to close copies whatever is left.
        db.execute("PRAGMA wal_autocheckpoint=0")
        db.execute("PRAGMA foreign_keys=ON")
        db.execute("PRAGMA synchronous=FULL")
        # 16 MiB of page cache, not SQLite's 2 MiB (125 of our pages): a tester's import writes 60 MB of
        # rows and index entries in one transaction, and a small cache reads the same B-tree pages back
        # from the journal over and over. Most of the gain is in the first 16 MiB; more only costs memory.
        db.execute("PRAGMA cache_size=-16384")
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


def check_can_write(db: Database) -> None:
    """Refuse a writer whose PostgreSQL role may only read, at open: before a run does any work."""
    if db.dialect != "postgresql":
        return
    row = db.raw.execute("SELECT current_user, has_table_privilege('runs', 'INSERT')"
                         " AND has_table_privilege('findings', 'INSERT') AND has_table_privilege('rap_items', 'UPDATE')"
                         " AND has_table_privilege('quarantine', 'INSERT')").fetchone()
    if not row[1]:
        raise StoreError(f"{db.where.shown}: the database role {row[0]!r} may only read this store; runs need a "
                         "role in estate_writer (see `estate store grants`)")


def applied(db: Database) -> list[str]:
    if not db.has_table("schema_migrations"):
        return []
    return [r[0] for r in db.execute("SELECT id FROM schema_migrations ORDER BY id")]


def check_schema(db: Database) -> list[Path]:
    """The migrations still to apply; StoreError when the store is newer than this estate."""
    done = set(applied(db))
    known = known_migrations()
    unknown = sorted(done - {p.stem for p in known})
    if unknown:
        raise StoreError(f"{db.where.shown}: written by a newer version of estate (schema {unknown[-1]}, this "
                         f"version knows up to {known[-1].stem}): upgrade estate before using this store")
    return [p for p in known if p.stem not in done]


def migrate(db: Database, pending: list[Path]) -> None:
    """Apply migrations in order, each whole; on PostgreSQL one process at a time (others wait, then skip)."""
    if db.dialect == "postgresql":
        _migrate_pg(db)
        return
    db.raw.execute("CREATE TABLE IF NOT EXISTS schema_migrations (id TEXT PRIMARY KEY, applied_at TEXT NOT NULL)")
    for path in pending:
        # executescript commits first; wrap the script itself so a migration applies whole.
        db.raw.executescript("BEGIN IMMEDIATE;\n" + db.ddl(path.read_text())
                             + f"\nINSERT INTO schema_migrations VALUES ('{path.stem}', '{_stamp()}');\nCOMMIT;")


def _migrate_pg(db: Database) -> None:
    import psycopg

    raw = db.raw
    try:
        # DDL is transactional in PostgreSQL: the whole upgrade applies, or none of it.
        with raw.transaction():
            raw.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATE_LOCK,))
            raw.execute("CREATE TABLE IF NOT EXISTS schema_migrations (id TEXT PRIMARY KEY, applied_at TEXT NOT NULL)")
            done = {r[0] for r in raw.execute("SELECT id FROM schema_migrations")}
            for path in known_migrations():
                if path.stem in done:
                    continue
                raw.execute(db.ddl(path.read_text()))
                raw.execute("INSERT INTO schema_migrations VALUES (%s, %s)", (path.stem, _stamp()))
    except psycopg.errors.InsufficientPrivilege as exc:
        raise StoreError(f"{db.where.shown}: the store's schema needs upgrading and the role {raw.info.user!r} "
                         f"may not ({_first_line(exc)}): open it once as the database's owner, e.g. "
                         "`estate --db postgresql://OWNER@HOST/DB store status`") from None


def _stamp() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat()
