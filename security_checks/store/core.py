"""The findings store: runs that commit whole or not at all, and never lose evidence.

Layout under the state directory (the home: --home, ESTATE_HOME, default ./.estate):

    estate.db                  runs, findings, verdicts, evidence index, the RAP (SQLite, WAL),
                               unless the store is a shared PostgreSQL database (store/db.py)
    home.id                    this home's identity: a shared store records which home holds a run's evidence
    runs/<run-id>/             a committed run's evidence files, and .estate-run.json (its manifest)
    runs/.staging-<run-id>/    a run in progress (or committed a moment ago, not yet renamed)
    quarantine/<name>/         directories recovery moved aside; nothing is ever deleted
    locks/                     writer.lock, store.lock (security_checks/store/lock.py)

The commit point is the database transaction. A run writes its evidence into its staging
directory; at commit the store hashes every file (a finding may only cite a file that exists with
the hash it recorded), then in ONE transaction inserts the run, its findings, its verdicts, its
evidence index and its Remediation Action Plan transition, and writes the manifest of exactly those
rows (durable before the transaction commits); only then renames the staging directory into place.
A process killed at any point leaves either nothing committed (a staging directory, quarantined
by the next writer) or a committed run whose directory the next writer renames into place: no
reader ever sees a partial run, and no command deletes a run's files.

On a shared PostgreSQL store the same holds per home: the transaction is the commit point for runs
from every home (one writer at a time, through the database's advisory lock, so the RAP transition is
computed from the plan every earlier commit left), and each home checks and recovers only the runs
whose evidence it holds (runs.evidence_home). The runner does not know which back-end it has.
"""

from __future__ import annotations

import contextlib
import getpass
import hashlib
import itertools
import json
import os
import re
import secrets
import shutil
import socket
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from ..findings import EvidenceRef, Finding, FindingBrief, Severity, Status
from ..fsutil import atomic_write, atomic_write_parts, fsync_dir, fsync_tree, private_dir
from ..remediation import RapItem, RapUpdate
from ..testhooks import pause_at
from ..verdicts import FrameworkVerdict
from . import db as dbmod
from . import rap as rapsql
from . import verdicts as verdictsql
from .db import StoreError
from .lock import StoreLock
from .scrub import withheld_reason

MANIFEST = ".estate-run.json"
STAGING_PREFIX = ".staging-"
FAILING = (Status.FAIL.value, Status.ERROR.value)   # as Finding.failing
RUN_ID = re.compile(r"^\d{8}T\d{6}Z-[0-9a-f]{4,}$")


def default_home() -> Path:
    return Path(os.environ.get("ESTATE_HOME", ".estate"))


def now() -> datetime:
    # Microseconds kept: runs are ordered by their start, and two runs can start in the same second.
    return datetime.now(UTC)


def new_run_id(at: datetime) -> str:
    return f"{at.strftime('%Y%m%dT%H%M%SZ')}-{secrets.token_hex(3)}"


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
    job: str = ""
    assessed_on: date | None = None
    selection: dict[str, Any] = field(default_factory=dict)
    checks_run: list[str] = field(default_factory=list)
    context: dict[str, Any] = field(default_factory=dict)
    rap_update: dict[str, Any] = field(default_factory=dict)
    evidence_home: str = ""   # the home holding its evidence (store/core.py home_identity); "" before migration 070

    @property
    def organisation(self) -> str:
        return str(self.context.get("organisation", ""))


@dataclass(frozen=True)
class EvidenceFile:
    path: str             # relative to the run's evidence directory (and to a report's evidence/)
    size: int
    sha256: str
    withheld: str | None  # why it is kept out of reports and bundles (could hold secrets), or None


@dataclass
class RunWriter:
    """A run in progress: its staging directory. Nothing it holds is visible until the store commits it."""

    id: str
    kind: str
    started_at: datetime
    staging: Path
    estate_dir: str
    estate_digest: str
    operator: str

    @property
    def evidence_dir(self) -> Path:
        return self.staging

    def write_evidence(self, relpath: str, data: bytes | str, description: str = "") -> EvidenceRef:
        """Write an evidence file into the run; returns the reference findings should carry."""
        raw = data.encode() if isinstance(data, str) else data
        target = self._target(relpath)
        atomic_write(target, raw, durable=False)   # fsynced all at once at commit
        return EvidenceRef(path=relpath, description=description, sha256=hashlib.sha256(raw).hexdigest())

    def copy_evidence(self, src: Path, relpath: str, description: str = "") -> EvidenceRef:
        target = self._target(relpath)
        shutil.copyfile(src, target)
        os.chmod(target, 0o600)
        return EvidenceRef(path=relpath, description=description, sha256=sha256_file(target))

    def _target(self, relpath: str) -> Path:
        target = (self.staging / relpath).resolve()
        if not target.is_relative_to(self.staging.resolve()) or target == self.staging.resolve():
            raise ValueError(f"evidence path {relpath!r} leaves the run directory")
        if relpath.split("/", 1)[0] == MANIFEST:
            raise ValueError(f"evidence path {relpath!r} is reserved for the run's manifest")
        private_dir(target.parent)
        return target


@dataclass
class Commit:
    """Everything a run stores, handed to Store.commit by the runner."""

    writer: RunWriter
    job: str
    findings: list[Finding]
    steps: list[dict[str, Any]]
    full_scope: bool
    assessed_on: date
    tool_versions: dict[str, str] = field(default_factory=dict)
    selection: dict[str, Any] = field(default_factory=dict)
    checks_run: list[str] = field(default_factory=list)
    context: dict[str, Any] = field(default_factory=dict)
    verdicts: list[FrameworkVerdict] = field(default_factory=list)
    # Computes the RAP transition from the plan as it stands inside the commit's transaction.
    rap: Callable[[dict[str, RapItem]], RapUpdate] | None = None


class EvidenceMismatch(Exception):
    """A finding cites an evidence file that is missing or differs from the hash it recorded."""


class Store:
    """Open with `Store(home)` to read (a shared lock while open) or `Store(home, writer=True)` to write.

    A writer must hold the home's writer lock (security_checks/store/lock.py; the CLI and the
    runner take it); only a writer recovers what a killed process left.
    """

    def __init__(self, home: Path | None = None, *, writer: bool = False, recovering: bool = False,
                 database: str | None = None):
        self.home = Path(home) if home else default_home()
        self.writer = writer
        self.runs_dir = self.home / "runs"
        self.quarantine_dir = self.home / "quarantine"
        # --db / ESTATE_DB, else <home>/estate.db: where the database is, and how to name it in messages.
        self.location = dbmod.locate(self.home, database)
        self.db_path: Path | str = Path(self.location.target) if not self.location.shared else self.location.shown
        private_dir(self.home)
        private_dir(self.runs_dir)
        self.home_id = home_identity(self.home)
        self.lock = StoreLock(self.home)
        # Readers open under the shared lock (a run in progress holds it too, so reading never waits
        # for a run); only changing what readers see, a migration or a recovery, takes it exclusively.
        self.lock.shared()
        existed = (self.location.shared
                   or (Path(self.location.target).exists() and Path(self.location.target).stat().st_size > 0))
        try:
            self.db = dbmod.connect(self.location)
        except BaseException:
            self.lock.release()
            raise
        try:
            pending = dbmod.check_schema(self.db)
            if pending or writer:
                with self.lock.exclusive():
                    pending = dbmod.check_schema(self.db)   # another process may have done it
                    if pending:
                        dbmod.migrate(self.db, pending)
                    if writer:
                        dbmod.check_can_write(self.db)
                    # `estate store recover` opens what the others refuse, to repair it.
                    self.problems = [] if recovering else self._consistency(existed)
                    self.recovered = self._recover() if writer else []
            else:
                self.problems = [] if recovering else self._consistency(existed)
                self.recovered = []
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        if getattr(self, "db", None) is not None:
            self.db.close()
            self.db = None  # type: ignore[assignment]
        self.lock.release()

    def __del__(self) -> None:
        # A Store dropped without close() must not keep this process's shared lock: a writer's
        # commit (in another process) would wait for it for ever.
        with contextlib.suppress(Exception):   # at interpreter shutdown there may be nothing left to release
            self.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def schema_version(self) -> list[str]:
        return dbmod.applied(self.db)

    # -- consistency and recovery --------------------------------------------------------------

    def _run_dirs(self) -> tuple[list[str], list[str]]:
        finals, staging = [], []
        for entry in self.runs_dir.iterdir():
            if not entry.is_dir():
                continue
            if entry.name.startswith(STAGING_PREFIX):
                staging.append(entry.name.removeprefix(STAGING_PREFIX))
            elif RUN_ID.match(entry.name):
                finals.append(entry.name)
        return sorted(finals), sorted(staging)

    def own_run_ids(self) -> list[str]:
        """The committed runs whose evidence this home holds: all of them in a SQLite store."""
        if not self.location.shared:
            return [r[0] for r in self.db.execute("SELECT id FROM runs ORDER BY id")]
        return [r[0] for r in self.db.execute("SELECT id FROM runs WHERE evidence_home = ? ORDER BY id",
                                              (self.home_id,))]

    def _consistency(self, existed: bool) -> list[str]:
        """Refuse a database that does not know runs whose evidence is on disk; list lesser problems."""
        known = set(self.own_run_ids())
        finals, _staging = self._run_dirs()
        unknown = [d for d in finals if d not in known]
        if unknown:
            what = "missing" if not existed else ("empty" if not known else "older than the evidence on disk")
            raise StoreError(
                f"{self.db_path} is {what}: it lists {len(known)} run(s) but {self.runs_dir} holds {len(unknown)} "
                f"committed run director{'y' if len(unknown) == 1 else 'ies'} it does not know (e.g. {unknown[-1]}). "
                "Was the database restored from an older backup? Nothing was changed. Run `estate store recover` "
                "to see the choices (adopt them back from their manifests, or quarantine them).")
        return self.missing_evidence_dirs()

    def missing_evidence_dirs(self) -> list[str]:
        """Committed runs whose evidence directory is gone (someone deleted it)."""
        known = self.own_run_ids()
        return [f"run {r}: its evidence directory {self.runs_dir / r} is missing" for r in known
                if not (self.runs_dir / r).is_dir() and not (self.runs_dir / f"{STAGING_PREFIX}{r}").is_dir()]

    def _recover(self) -> list[str]:
        """Finish or set aside what a killed writer left (the caller holds the writer lock)."""
        notes = []
        known = set(self.own_run_ids())
        _finals, staging = self._run_dirs()
        for run_id in staging:
            src = self.runs_dir / f"{STAGING_PREFIX}{run_id}"
            if run_id in known:
                # Committed, killed before the rename: roll forward.
                os.rename(src, self.runs_dir / run_id)
                fsync_dir(self.runs_dir)
                notes.append(f"run {run_id}: committed before an interruption; its evidence is now in place")
            else:
                name = self.quarantine(src, run_id, "never committed: the command that wrote it stopped first")
                notes.append(f"run {run_id}: never committed; its partial evidence was moved to "
                             f"{self.quarantine_dir / name}")
        return notes

    def quarantine(self, src: Path, run_id: str, reason: str) -> str:
        """Move a directory aside, never delete it; recorded so `estate store status` reports it."""
        private_dir(self.quarantine_dir)
        name = f"{run_id}-{now().strftime('%Y%m%dT%H%M%SZ')}-{secrets.token_hex(2)}"
        os.rename(src, self.quarantine_dir / name)
        fsync_dir(self.quarantine_dir)
        fsync_dir(src.parent)
        self.db.execute("INSERT INTO quarantine (name, run_id, reason, moved_at) VALUES (?,?,?,?)",
                        (name, run_id, reason, now().isoformat()))
        return name

    def quarantined(self) -> list[dict[str, str]]:
        return [dict(r) for r in self.db.execute("SELECT * FROM quarantine ORDER BY moved_at, name")]

    def unknown_run_dirs(self) -> list[str]:
        known = set(self.own_run_ids())
        return [d for d in self._run_dirs()[0] if d not in known]

    def staging_dirs(self) -> list[str]:
        return self._run_dirs()[1]

    def adopt(self, run_id: str) -> int:
        """Register a run directory the database lost, from its manifest; returns its findings' count.

        The run, its findings, verdicts and evidence index come back as committed; its effect on the
        Remediation Action Plan is not replayed (the next full assessment re-derives the open items).
        """
        root = self.runs_dir / run_id
        try:
            doc = json.loads((root / MANIFEST).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise StoreError(f"{root / MANIFEST}: cannot adopt run {run_id} ({exc})") from None
        row = dict(doc["run"])
        row["rap_update"] = json.dumps({"not_replayed": 1})
        row["evidence_home"] = self.home_id    # it is adopted from this home's directory
        findings = [Finding.model_validate(f) for f in doc["findings"]]
        verdicts = [FrameworkVerdict.model_validate(v) for v in doc.get("verdicts", [])]
        listed = {e["path"]: e for e in doc.get("evidence", [])}
        problems = self._evidence_problems(root, list(listed.values()))
        if problems:
            raise StoreError(f"{root}: cannot adopt run {run_id}: {problems[0]}")
        with self.lock.exclusive(), self.transaction() as cur:
            cols = list(row)
            cur.execute(f"INSERT INTO runs ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",  # noqa: S608
                        [row[k] for k in cols])
            cur.executemany("INSERT INTO findings (run_id, id, check_id, asset, key, status, severity, source, site,"
                            " data) VALUES (?,?,?,?,?,?,?,?,?,?)",
                            [(run_id, f.id, f.check_id, f.asset, f.key, f.status.value, f.severity.value, f.source,
                              f.site, f.model_dump_json()) for f in findings])
            verdictsql.insert(cur, run_id, verdicts)
            cur.executemany("INSERT INTO evidence_files (run_id, path, size, sha256, withheld) VALUES (?,?,?,?,?)",
                            [(run_id, e["path"], e["size"], e["sha256"], e.get("withheld")) for e in listed.values()])
        return len(findings)

    @staticmethod
    def _evidence_problems(root: Path, listed: list[dict[str, Any]]) -> list[str]:
        out = []
        for e in listed:
            path = root / e["path"]
            if not path.is_file():
                out.append(f"{e['path']}: missing")
            elif sha256_file(path) != e["sha256"]:
                out.append(f"{e['path']}: changed since the run committed")
        return out

    # -- writing ---------------------------------------------------------------------------------

    def begin(self, kind: str, *, estate_dir: str, estate_digest: str, operator: str | None = None) -> RunWriter:
        if not self.writer:
            raise RuntimeError("a run needs Store(home, writer=True) under the home's writer lock")
        started = now()
        run_id = new_run_id(started)
        staging = self.runs_dir / f"{STAGING_PREFIX}{run_id}"
        os.mkdir(staging, 0o700)
        return RunWriter(id=run_id, kind=kind, started_at=started, staging=staging, estate_dir=estate_dir,
                         estate_digest=estate_digest, operator=operator or operator_name())

    def abandon(self, w: RunWriter, reason: str) -> str | None:
        """A run that will not commit: its partial evidence goes to quarantine (never deleted)."""
        if not w.staging.exists():
            return None
        return self.quarantine(w.staging, w.id, reason)

    def commit(self, c: Commit) -> RapUpdate:
        w = c.writer
        evidence = _index(w.staging)
        _check_citations(c.findings, evidence)
        finished = now()
        fsync_tree(w.staging)
        pause_at("commit:before-transaction")
        update = RapUpdate()
        with self.lock.exclusive():
            cur = self.db.cursor()
            # One writer at a time for the whole database (every home of a shared store): the RAP
            # read below is the plan every earlier commit left, so no transition is lost.
            self.db.begin_write()
            try:
                if c.rap is not None:
                    update = c.rap(rapsql.items(cur, with_history=False))
                    rapsql.apply(cur, w.id, update, full_scope=c.full_scope)
                targets = {ch.item.finding_id: ch.item.target_date for ch in update.changes}
                row = self._run_row(c, finished)
                row["rap_update"] = json.dumps(update.counts)
                cols = list(row)
                cur.execute(f"INSERT INTO runs ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",  # noqa: S608
                            [row[k] for k in cols])
                ids = [f.id for f in c.findings]
                first_seen = self._first_seen(cur, ids)
                rows = []
                for fid, f in zip(ids, c.findings, strict=True):
                    f.first_seen = first_seen.get(fid, w.started_at)
                    f.last_seen = w.started_at
                    if f.status is Status.FAIL and fid in targets:
                        f.fix_by = date.fromisoformat(targets[fid])
                    rows.append((w.id, fid, f.check_id, f.asset, f.key, f.status.value, f.severity.value,
                                 f.source, f.site, f.model_dump_json()))
                cur.executemany("INSERT INTO findings (run_id, id, check_id, asset, key, status, severity, source,"
                                " site, data) VALUES (?,?,?,?,?,?,?,?,?,?)", rows)
                verdictsql.insert(cur, w.id, c.verdicts)
                cur.executemany("INSERT INTO evidence_files (run_id, path, size, sha256, withheld) VALUES (?,?,?,?,?)",
                                [(w.id, e.path, e.size, e.sha256, e.withheld) for e in evidence])
                # The manifest is what `store recover --adopt` rebuilds the run from should the database
                # be lost: written here, after first_seen, fix_by and the RAP counts are known, so it holds
                # exactly the rows committed (each finding serialised once, for both), and durable before
                # the commit point, so a committed run always has it.
                _write_manifest(w.staging / MANIFEST, row, c.verdicts, evidence, [r[-1] for r in rows])
                pause_at("commit:in-transaction")
                self.db.commit()
            except BaseException:
                self.db.rollback()
                raise
            pause_at("commit:before-rename")
            os.rename(w.staging, self.runs_dir / w.id)
            fsync_dir(self.runs_dir)
        return update

    def _run_row(self, c: Commit, finished: datetime) -> dict[str, Any]:
        w = c.writer
        return {"id": w.id, "kind": w.kind, "started_at": w.started_at.isoformat(), "finished_at": finished.isoformat(),
                "operator": w.operator, "estate_dir": w.estate_dir, "estate_digest": w.estate_digest,
                "full_scope": int(c.full_scope), "tool_versions": json.dumps(c.tool_versions, sort_keys=True),
                "steps": json.dumps(c.steps), "job": c.job, "assessed_on": c.assessed_on.isoformat(),
                "selection": json.dumps(c.selection), "checks_run": json.dumps(sorted(c.checks_run)),
                "context": json.dumps(c.context, default=str), "rap_update": "{}", "evidence_home": self.home_id}

    @staticmethod
    def _first_seen(cur: dbmod.Cursor, ids: list[str]) -> dict[str, datetime]:
        out: dict[str, datetime] = {}
        for chunk in range(0, len(ids), 500):
            part = ids[chunk:chunk + 500]
            marks = ",".join("?" * len(part))
            for row in cur.execute(
                    f"SELECT f.id, MIN(r.started_at) FROM findings f JOIN runs r ON r.id = f.run_id"  # noqa: S608
                    f" WHERE f.id IN ({marks}) GROUP BY f.id", part):
                out[row[0]] = datetime.fromisoformat(row[1])
        return out

    # -- reading ---------------------------------------------------------------------------------

    def runs(self, kind: str | None = None, limit: int | None = None) -> list[RunInfo]:
        with self._reading("the list of runs"):
            return self._runs(kind, limit)

    def _runs(self, kind: str | None, limit: int | None) -> list[RunInfo]:
        sql = "SELECT * FROM runs"
        args: list[Any] = []
        if kind:
            sql += " WHERE kind = ?"
            args.append(kind)
        # By start time first: run ids are second-resolution timestamps with a random suffix, so two
        # runs started in the same second would otherwise come back in a random order.
        sql += " ORDER BY started_at DESC, id DESC"
        if limit:
            sql += " LIMIT ?"
            args.append(limit)
        return [_run_info(r) for r in self.db.execute(sql, args)]

    def get_run(self, run_id: str | None = None, kind: str | None = None) -> RunInfo | None:
        """A run by id (a unique prefix will do), or the latest (of a kind) when run_id is None."""
        if run_id is None:
            found = self.runs(kind=kind, limit=1)
            return found[0] if found else None
        with self._reading(f"run {run_id}"):
            return self._get_run(run_id)

    def _get_run(self, run_id: str) -> RunInfo | None:
        rows = self.db.execute("SELECT * FROM runs WHERE id LIKE ? ESCAPE '\\' ORDER BY id",
                               (run_id.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%",)
                               ).fetchall()
        return _run_info(rows[0]) if len(rows) == 1 else None

    def previous_run(self, run: RunInfo, same_kind: bool = True) -> RunInfo | None:
        sql = ("SELECT * FROM runs WHERE (started_at < ? OR (started_at = ? AND id < ?))"  # noqa: S608
               + (" AND kind = ?" if same_kind else "") + " ORDER BY started_at DESC, id DESC LIMIT 1")
        started = run.started_at.isoformat()
        args = (started, started, run.id, run.kind) if same_kind else (started, started, run.id)
        row = self.db.execute(sql, args).fetchone()
        return _run_info(row) if row else None

    def findings(self, run_id: str) -> list[Finding]:
        with self._reading(f"the findings of run {run_id}"):
            return [Finding.model_validate_json(r[0])
                    for r in self.db.execute("SELECT data FROM findings WHERE run_id = ? ORDER BY id", (run_id,))]

    def briefs(self, run_id: str) -> list[FindingBrief]:
        """Every finding of a run as a summary needs it (FindingBrief), in id order like findings()."""
        j = self.db.json_text
        with self._reading(f"the findings of run {run_id}"):
            return [FindingBrief(r[0], r[1], r[2], r[3], _STATUS[r[4]], _SEVERITY[r[5]], r[6] or "", r[7] or "",
                                 r[4] in FAILING and r[8] is not None)
                    for r in self.db.execute(
                        f"SELECT id, check_id, asset, key, status, severity, {j('data', 'title')},"  # noqa: S608
                        f" {j('data', 'observed')}, {j('data', 'acceptance')} FROM findings WHERE run_id = ?"
                        " ORDER BY id", (run_id,))]

    @contextmanager
    def _reading(self, what: str) -> Iterator[None]:
        """A row that no longer decodes is a damaged store, said in one line: never a wrong answer."""
        damage: tuple[type[BaseException], ...] = (ValueError, KeyError, TypeError, *dbmod.DATABASE_ERRORS)
        try:
            yield
        except damage as exc:
            raise StoreError(f"{self.db_path}: the store is damaged: {what} cannot be read "
                             f"({type(exc).__name__}: {str(exc).splitlines()[0][:160] if str(exc) else ''}); "
                             "restore it from a backup, or move it aside and run `estate store recover --adopt`"
                             ) from None

    def finding_statuses(self, run_id: str) -> dict[str, tuple[str, str, str, str, str]]:
        """id -> (status, check_id, asset, severity, title) of a run, without decoding every finding."""
        return {r[0]: (r[1], r[2], r[3], r[4], json.loads(r[5]).get("title", "")) for r in self.db.execute(
            "SELECT id, status, check_id, asset, severity, data FROM findings WHERE run_id = ?", (run_id,))}

    def status_counts(self, run_ids: Iterable[str]) -> dict[str, dict[str, int]]:
        """run id -> {status: number of findings}."""
        return self._counts(run_ids, "status", "")

    def failing_by_severity(self, run_ids: Iterable[str]) -> dict[str, dict[str, int]]:
        """run id -> {severity: number of failing (fail or error) findings}."""
        return self._counts(run_ids, "severity", " AND status IN ('fail', 'error')")

    def _counts(self, run_ids: Iterable[str], column: str, where: str) -> dict[str, dict[str, int]]:
        ids = list(run_ids)
        out: dict[str, dict[str, int]] = {r: {} for r in ids}
        for chunk in range(0, len(ids), 500):   # SQLite's bound-parameter limit
            part = ids[chunk:chunk + 500]
            marks = ",".join("?" * len(part))
            for run_id, value, n in self.db.execute(
                    f"SELECT run_id, {column}, COUNT(*) FROM findings WHERE run_id IN ({marks}){where}"  # noqa: S608
                    f" GROUP BY run_id, {column}", part):
                out[run_id][value] = n
        return out

    def verdicts(self, run_id: str) -> list[FrameworkVerdict]:
        with self._reading(f"the verdicts of run {run_id}"):
            return verdictsql.read(self.db, run_id)

    def evidence_files(self, run_id: str) -> list[EvidenceFile]:
        return [EvidenceFile(r[0], r[1], r[2], r[3]) for r in self.db.execute(
            "SELECT path, size, sha256, withheld FROM evidence_files WHERE run_id = ? ORDER BY path", (run_id,))]

    def evidence_dir(self, run_id: str) -> Path:
        final = self.runs_dir / run_id
        staged = self.runs_dir / f"{STAGING_PREFIX}{run_id}"
        if self.location.shared and not final.exists() and not staged.exists():
            # A shared store lists every home's runs; the evidence stays with the home that ran it.
            row = self.db.execute("SELECT evidence_home FROM runs WHERE id = ?", (run_id,)).fetchone()
            if row and row[0] and row[0] != self.home_id:
                raise StoreError(f"run {run_id}: its evidence is kept by the home {row[0]}, not by {self.home} "
                                 "(a shared store moves only the database): report or seal it from that home, "
                                 "or read its pushed evidence bundle")
        # Between commit and rename (or after a kill there) the committed evidence is still staged.
        return staged if not final.exists() and staged.exists() else final

    def verify_evidence(self, run_id: str, contents: bool = True) -> list[str]:
        """Problems with a run's evidence on disk against the hashes recorded at commit (empty: intact).

        With contents=False only what needs no hashing is checked (every file present with its
        recorded size, nothing added): for a caller that hashes the contents itself, as a seal does
        while building its bundle (security_checks/evidence/bundle.py), so 1 GiB is not read twice.
        """
        root = self.evidence_dir(run_id)
        problems = []
        listed = self.evidence_files(run_id)
        for e in listed:
            path = root / e.path
            if not path.is_file():
                problems.append(f"{e.path}: missing from {root}")
            elif path.stat().st_size != e.size:
                problems.append(f"{e.path}: changed since the run committed (size differs)")
            elif contents and sha256_file(path) != e.sha256:
                problems.append(f"{e.path}: changed since the run committed (SHA-256 differs)")
        names = {e.path for e in listed}
        problems += [f"{rel}: not part of the run as committed" for rel in _names(root) if rel not in names]
        return problems

    def history(self, finding_id: str) -> list[tuple[str, str]]:
        """(run id, status) for every run that reported this finding, oldest first."""
        return [(r[0], r[1]) for r in self.db.execute(
            "SELECT run_id, status FROM findings WHERE id = ? ORDER BY run_id", (finding_id,))]

    def rap_items(self, with_history: bool = True) -> list[RapItem]:
        with self._reading("the Remediation Action Plan"):
            return rapsql.items_sorted(self.db, with_history=with_history)

    def rap_applied_runs(self) -> list[str]:
        return [r[0] for r in self.db.execute("SELECT run_id FROM rap_runs ORDER BY run_id")]

    @contextmanager
    def transaction(self) -> Iterator[dbmod.Cursor]:
        """A write transaction for the store's own modules (archive records, recovery)."""
        cur = self.db.cursor()
        self.db.begin_write()
        try:
            yield cur
            self.db.commit()
        except BaseException:
            self.db.rollback()
            raise


def home_identity(home: Path) -> str:
    """This home's name in a shared store: made once (host and path when first used), then kept with it."""
    path = home / "home.id"
    with contextlib.suppress(FileNotFoundError):
        return path.read_text().strip()
    made = f"{socket.gethostname()}:{home.resolve()}#{secrets.token_hex(4)}"
    tmp = atomic_write(home / f".home.id.{secrets.token_hex(4)}", made + "\n")
    try:
        os.link(tmp, path)          # the first process to name the home wins; the others read its name
    except FileExistsError:
        pass
    finally:
        tmp.unlink()
    return path.read_text().strip()


# By value, as a dict: calling the enum for each of an ITHC import's 20,000 rows costs more than the read.
_STATUS = {s.value: s for s in Status}
_SEVERITY = {s.value: s for s in Severity}


def _run_info(row: Any) -> RunInfo:
    keys = row.keys()

    def j(name: str, default: Any) -> Any:
        return json.loads(row[name]) if name in keys and row[name] else default

    assessed = row["assessed_on"] if "assessed_on" in keys else ""
    return RunInfo(
        id=row["id"], kind=row["kind"], started_at=datetime.fromisoformat(row["started_at"]),
        finished_at=datetime.fromisoformat(row["finished_at"]), operator=row["operator"],
        estate_dir=row["estate_dir"], estate_digest=row["estate_digest"], full_scope=bool(row["full_scope"]),
        tool_versions=json.loads(row["tool_versions"]), steps=json.loads(row["steps"]),
        job=row["job"] if "job" in keys else "",
        assessed_on=date.fromisoformat(assessed) if assessed else None,
        selection=j("selection", {}), checks_run=j("checks_run", []), context=j("context", {}),
        rap_update=j("rap_update", {}), evidence_home=row["evidence_home"] if "evidence_home" in keys else "")


def _names(root: Path) -> list[str]:
    """The evidence files under root, by relative path, without reading them (see _index)."""
    if not root.is_dir():
        return []
    return sorted(rel for p in root.rglob("*") if p.is_file() and not p.is_symlink()
                  and (rel := p.relative_to(root).as_posix()) != MANIFEST)


def _write_manifest(path: Path, run: dict[str, Any], verdicts: list[FrameworkVerdict], evidence: list[Any],
                    findings_json: list[str]) -> None:
    """The run's manifest (format estate-run/1), its findings joined in as the store serialised them:
    a run of tens of thousands (an ITHC import) is neither dumped twice nor held whole a second time."""
    head = json.dumps({"format": "estate-run/1", "run": run, "verdicts": [v.model_dump(mode="json") for v in verdicts],
                       "evidence": [e.__dict__ for e in evidence]}, default=str)
    parts = (f"{', ' if i else ''}{text}" for i, text in enumerate(findings_json))
    atomic_write_parts(path, itertools.chain([head[:-1], ', "findings": ['], parts, ["]}"]))


def _index(root: Path) -> list[EvidenceFile]:
    out: list[EvidenceFile] = []
    if not root.is_dir():
        return out
    for path in sorted(p for p in root.rglob("*") if p.is_file() and not p.is_symlink()):
        rel = path.relative_to(root).as_posix()
        if rel == MANIFEST:
            continue
        out.append(EvidenceFile(rel, path.stat().st_size, sha256_file(path), withheld_reason(rel)))
    return out


def _check_citations(findings: list[Finding], evidence: list[EvidenceFile]) -> None:
    by_path = {e.path: e for e in evidence}
    for f in findings:
        for ref in f.evidence:
            have = by_path.get(ref.path)
            if have is None:
                raise EvidenceMismatch(f"finding {f.id} ({f.check_id} on {f.asset}) cites evidence {ref.path} "
                                       "that is not in the run")
            if ref.sha256 and ref.sha256 != have.sha256:
                raise EvidenceMismatch(f"finding {f.id} ({f.check_id} on {f.asset}) cites evidence {ref.path} "
                                       "whose content changed after the finding was made")


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def operator_name() -> str:
    try:
        return os.environ.get("ESTATE_OPERATOR") or getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid())






__all__ = ["Commit", "EvidenceFile", "EvidenceMismatch", "RunInfo", "RunWriter", "Store", "StoreError",
           "default_home", "now", "operator_name", "sha256_file"]
