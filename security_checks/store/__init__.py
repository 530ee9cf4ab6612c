"""The findings store: SQLite, a versioned schema, and runs that commit whole or not at all.

Layout under the state directory (ESTATE_HOME, default ./.estate):

    estate.db                   runs and findings (WAL mode)
    runs/<run-id>/              that run's evidence files (raw XML, runner events, plans...)
    runs/.staging-<run-id>/     a run in progress; never read by anything else

A run writes its evidence into its staging directory, then at commit renames it into place and
inserts the run row and its findings in one transaction. A process killed at any point leaves
either a staging directory or a run directory without a row; opening the store removes both, so
no reader ever sees a partial run. The SQL is kept portable (no SQLite-only features beyond
WAL) so PostgreSQL can take over when many people share one store.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import os
import secrets
import shutil
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..findings import EvidenceRef, Finding

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def default_home() -> Path:
    return Path(os.environ.get("ESTATE_HOME", ".estate"))


def now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def new_run_id(at: datetime) -> str:
    return f"{at.strftime('%Y%m%dT%H%M%SZ')}-{secrets.token_hex(2)}"


@dataclass(frozen=True)
class RunInfo:
    id: str
    kind: str
    started_at: datetime
    finished_at: datetime
    operator: str
    estate_dir: str
    estate_digest: str
    full_scope: bool
    tool_versions: dict[str, str]
    steps: list[dict[str, Any]]


@dataclass
class RunWriter:
    """A run in progress. Nothing it holds is visible to readers until the store commits it."""

    id: str
    kind: str
    started_at: datetime
    staging: Path
    estate_dir: str
    estate_digest: str
    operator: str
    full_scope: bool = False
    findings: list[Finding] = field(default_factory=list)
    steps: list[dict[str, Any]] = field(default_factory=list)
    tool_versions: dict[str, str] = field(default_factory=dict)

    @property
    def evidence_dir(self) -> Path:
        return self.staging

    def add(self, findings: Iterable[Finding]) -> None:
        seen = {f.id for f in self.findings}
        for f in findings:
            if f.id in seen:
                raise ValueError(f"finding {f.id} ({f.check_id} on {f.asset} {f.key}) reported twice in one run")
            seen.add(f.id)
            self.findings.append(f)

    def write_evidence(self, relpath: str, data: bytes | str, description: str = "") -> EvidenceRef:
        """Write an evidence file into the run; returns the reference findings should carry."""
        raw = data.encode() if isinstance(data, str) else data
        target = self._target(relpath)
        target.write_bytes(raw)
        return EvidenceRef(path=relpath, description=description, sha256=hashlib.sha256(raw).hexdigest())

    def copy_evidence(self, src: Path, relpath: str, description: str = "") -> EvidenceRef:
        target = self._target(relpath)
        shutil.copyfile(src, target)
        digest = hashlib.sha256(target.read_bytes()).hexdigest()
        return EvidenceRef(path=relpath, description=description, sha256=digest)

    def step(self, name: str, status: str, summary: str = "") -> None:
        """Record what a step did: ran, skipped (with the reason) or failed."""
        self.steps.append({"name": name, "status": status, "summary": summary})

    def _target(self, relpath: str) -> Path:
        target = (self.staging / relpath).resolve()
        if not target.is_relative_to(self.staging.resolve()):
            raise ValueError(f"evidence path {relpath!r} leaves the run directory")
        target.parent.mkdir(parents=True, exist_ok=True)
        return target


class Store:
    def __init__(self, home: Path | None = None):
        self.home = Path(home) if home else default_home()
        self.runs_dir = self.home / "runs"
        self.runs_dir.mkdir(parents=True, exist_ok=True)
        self.db_path = self.home / "estate.db"
        self.db = sqlite3.connect(self.db_path, timeout=30, isolation_level=None)
        self.db.row_factory = sqlite3.Row
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA foreign_keys=ON")
        self.db.execute("PRAGMA synchronous=FULL")
        self._migrate()
        self._recover()

    def close(self) -> None:
        self.db.close()

    # -- schema ----------------------------------------------------------------------------------

    def _migrate(self) -> None:
        self.db.execute("CREATE TABLE IF NOT EXISTS schema_migrations (id TEXT PRIMARY KEY, applied_at TEXT NOT NULL)")
        applied = {r[0] for r in self.db.execute("SELECT id FROM schema_migrations")}
        for path in sorted(MIGRATIONS.glob("*.sql")):
            if path.stem in applied:
                continue
            # executescript commits first; wrap the script itself so a migration applies whole.
            self.db.executescript(
                "BEGIN IMMEDIATE;\n" + path.read_text() +
                f"\nINSERT INTO schema_migrations VALUES ('{path.stem}', '{now().isoformat()}');\nCOMMIT;")

    @property
    def schema_version(self) -> list[str]:
        return [r[0] for r in self.db.execute("SELECT id FROM schema_migrations ORDER BY id")]

    def _recover(self) -> None:
        """Remove what a killed run left behind: staging directories and uncommitted run directories."""
        known = {r[0] for r in self.db.execute("SELECT id FROM runs")}
        for entry in self.runs_dir.iterdir():
            if entry.name.startswith(".staging-") or (entry.is_dir() and not entry.name.startswith(".")
                                                     and entry.name not in known):
                shutil.rmtree(entry, ignore_errors=True)

    # -- writing ---------------------------------------------------------------------------------

    @contextmanager
    def run(self, kind: str, *, estate_dir: str, estate_digest: str, operator: str | None = None,
            full_scope: bool = False) -> Iterator[RunWriter]:
        """A run: commits whole when the block ends normally, leaves no trace when it raises."""
        started = now()
        run_id = new_run_id(started)
        staging = self.runs_dir / f".staging-{run_id}"
        staging.mkdir(parents=True)
        writer = RunWriter(id=run_id, kind=kind, started_at=started, staging=staging, estate_dir=estate_dir,
                           estate_digest=estate_digest, operator=operator or _operator(), full_scope=full_scope)
        try:
            yield writer
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        self._commit(writer)

    def _commit(self, w: RunWriter) -> None:
        final = self.runs_dir / w.id
        fsync_tree(w.staging)
        os.rename(w.staging, final)
        finished = now()
        cur = self.db.cursor()
        try:
            cur.execute("BEGIN IMMEDIATE")
            first_seen = self._first_seen([f.id for f in w.findings])
            cur.execute(
                "INSERT INTO runs (id, kind, started_at, finished_at, operator, estate_dir, estate_digest,"
                " full_scope, tool_versions, steps) VALUES (?,?,?,?,?,?,?,?,?,?)",
                (w.id, w.kind, w.started_at.isoformat(), finished.isoformat(), w.operator, w.estate_dir,
                 w.estate_digest, int(w.full_scope), json.dumps(w.tool_versions, sort_keys=True),
                 json.dumps(w.steps)))
            rows = []
            for f in w.findings:
                f.first_seen = first_seen.get(f.id, w.started_at)
                f.last_seen = w.started_at
                rows.append((w.id, f.id, f.check_id, f.asset, f.key, f.status.value, f.severity.value,
                             f.source, f.site, f.model_dump_json()))
            cur.executemany("INSERT INTO findings (run_id, id, check_id, asset, key, status, severity, source,"
                            " site, data) VALUES (?,?,?,?,?,?,?,?,?,?)", rows)
            cur.execute("COMMIT")
        except BaseException:
            if self.db.in_transaction:
                cur.execute("ROLLBACK")
            shutil.rmtree(final, ignore_errors=True)
            raise

    def _first_seen(self, ids: list[str]) -> dict[str, datetime]:
        out: dict[str, datetime] = {}
        for chunk in range(0, len(ids), 500):
            part = ids[chunk:chunk + 500]
            marks = ",".join("?" * len(part))
            for row in self.db.execute(
                    f"SELECT f.id, MIN(r.started_at) FROM findings f JOIN runs r ON r.id = f.run_id"  # noqa: S608
                    f" WHERE f.id IN ({marks}) GROUP BY f.id", part):
                out[row[0]] = datetime.fromisoformat(row[1])
        return out

    # -- reading ---------------------------------------------------------------------------------

    def runs(self, kind: str | None = None, limit: int | None = None) -> list[RunInfo]:
        sql = "SELECT * FROM runs"
        args: list[Any] = []
        if kind:
            sql += " WHERE kind = ?"
            args.append(kind)
        sql += " ORDER BY id DESC"
        if limit:
            sql += " LIMIT ?"
            args.append(limit)
        return [_run_info(r) for r in self.db.execute(sql, args)]

    def get_run(self, run_id: str | None = None, kind: str | None = None) -> RunInfo | None:
        """A run by id (a unique prefix will do), or the latest (of a kind) when run_id is None."""
        if run_id is None:
            found = self.runs(kind=kind, limit=1)
            return found[0] if found else None
        rows = self.db.execute("SELECT * FROM runs WHERE id LIKE ? ORDER BY id", (run_id + "%",)).fetchall()
        return _run_info(rows[0]) if len(rows) == 1 else None

    def previous_run(self, run: RunInfo, same_kind: bool = True) -> RunInfo | None:
        sql = "SELECT * FROM runs WHERE id < ?" + (" AND kind = ?" if same_kind else "") + " ORDER BY id DESC LIMIT 1"  # noqa: S608
        args = (run.id, run.kind) if same_kind else (run.id,)
        row = self.db.execute(sql, args).fetchone()
        return _run_info(row) if row else None

    def findings(self, run_id: str) -> list[Finding]:
        return [Finding.model_validate_json(r[0])
                for r in self.db.execute("SELECT data FROM findings WHERE run_id = ? ORDER BY id", (run_id,))]

    def evidence_dir(self, run_id: str) -> Path:
        return self.runs_dir / run_id

    def history(self, finding_id: str) -> list[tuple[str, str]]:
        """(run id, status) for every run that reported this finding, oldest first."""
        return [(r[0], r[1]) for r in self.db.execute(
            "SELECT run_id, status FROM findings WHERE id = ? ORDER BY run_id", (finding_id,))]


def _run_info(row: sqlite3.Row) -> RunInfo:
    return RunInfo(
        id=row["id"], kind=row["kind"], started_at=datetime.fromisoformat(row["started_at"]),
        finished_at=datetime.fromisoformat(row["finished_at"]), operator=row["operator"],
        estate_dir=row["estate_dir"], estate_digest=row["estate_digest"], full_scope=bool(row["full_scope"]),
        tool_versions=json.loads(row["tool_versions"]), steps=json.loads(row["steps"]))


def _operator() -> str:
    return os.environ.get("ESTATE_OPERATOR") or getpass.getuser()


def fsync_tree(root: Path) -> None:
    """Flush every file under root and the directory itself, before a rename publishes it."""
    for path in root.rglob("*"):
        if path.is_file():
            with open(path, "rb") as fh:
                os.fsync(fh.fileno())
    fd = os.open(root, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
