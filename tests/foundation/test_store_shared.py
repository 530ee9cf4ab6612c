"""A shared PostgreSQL store: several homes (operators, site scanners) writing at once, and least privilege.

Every test here runs a real PostgreSQL server (tests/pgserver.py) and real writer processes
(tests/foundation/shared_writer.py: runs through the one runner), each in its own home, as site
scanners and operators on different machines would be: only the database is shared.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import psycopg
import pytest

from security_checks.model.loader import load_estate
from security_checks.store import Store, StoreError
from security_checks.store.grants import grant_statements
from security_checks.store.lock import writer_lock
from tests.foundation.shared_writer import ASSET, KEY
from tests.pgserver import PgServer
from tests.runs import run_with

REPO = Path(__file__).resolve().parents[2]
PYTHON = REPO / ".venv" / "bin" / "python"
ESTATE = REPO / ".venv" / "bin" / "estate"
GLENMORAY = REPO / "tests" / "estates" / "glenmoray"


def _env(url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ESTATE_")}
    return {**env, "ESTATE_DB": url, **extra}


def start_writer(home: Path, statuses: str, url: str, **extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen([str(PYTHON), "-m", "tests.foundation.shared_writer", str(home), statuses],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO,
                            env=_env(url, **extra))


def finish(proc: subprocess.Popen[str], timeout: float = 300) -> list[dict]:  # type: ignore[type-arg]
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err[-3000:]
    return [json.loads(line) for line in out.splitlines()]


def waiting_on_the_write_lock(url: str) -> int:
    """Sessions of this database waiting for an advisory lock (the store's write lock)."""
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                           " AND wait_event_type = 'Lock' AND wait_event = 'advisory'").fetchone()
        return int(row[0]) if row else 0


def the_item(home: Path, url: str) -> dict:  # type: ignore[type-arg]
    with Store(home, database=url) as store:
        [item] = store.rap_items()
        assert (item.asset, item.key) == (ASSET, KEY)
        return {"status": item.status, "history": item.history}


def test_a_commit_from_another_home_waits_for_the_one_in_progress_and_builds_on_its_rap_change(
        tmp_path: Path, pg_url: str) -> None:
    operator, depot, auditor = tmp_path / "operator", tmp_path / "depot-scanner", tmp_path / "auditor"
    [opened] = finish(start_writer(operator, "fail", pg_url))
    # The operator's re-test passes; hold its commit inside the transaction, with the write lock taken.
    marker = tmp_path / "held"
    held = start_writer(operator, "pass", pg_url, ESTATE_TEST_PAUSE_AT="commit:in-transaction",
                        ESTATE_TEST_PAUSE_FILE=str(marker))
    deadline = time.monotonic() + 120
    while not marker.exists():
        if held.poll() is not None or time.monotonic() > deadline:
            held.kill()
            pytest.fail(f"the operator's run never reached its commit: {held.communicate()}")
        time.sleep(0.05)
    # Meanwhile the depot's scanner still sees the port open. Its commit must wait for the operator's...
    depot_run = start_writer(depot, "fail", pg_url)
    deadline = time.monotonic() + 120
    while waiting_on_the_write_lock(pg_url) < 1:
        if depot_run.poll() is not None or time.monotonic() > deadline:
            for proc in (held, depot_run):
                proc.kill()
            pytest.fail(f"the depot's commit did not wait for the operator's: {depot_run.communicate()}")
        time.sleep(0.1)
    # ...while readers are never held up, and see neither run half-made.
    with Store(auditor, database=pg_url) as store:
        assert [r.id for r in store.runs()] == [opened["run"]]
        assert [i.status for i in store.rap_items()] == ["open"]
    marker.unlink()
    [closed] = finish(held)
    [reopened] = finish(depot_run)
    # Both transitions recorded, in commit order, each from the state the one before left.
    item = the_item(auditor, pg_url)
    assert [(h["seq"], h["from_status"], h["to_status"], h["run_id"]) for h in item["history"]] == [
        (1, None, "open", opened["run"]), (2, "open", "closed", closed["run"]), (3, "closed", "open", reopened["run"])]
    assert closed["rap"]["closed"] == 1 and reopened["rap"]["reopened"] == 1 and item["status"] == "open"


@pytest.mark.slow
def test_many_writers_at_once_commit_whole_and_lose_no_rap_transition(tmp_path: Path, pg_url: str) -> None:
    plans = {"civic-centre": "fail,pass,fail,pass,fail", "depot": "pass,fail,fail,pass,pass",
             "library": "fail,fail,pass,fail,pass", "operator": "pass,pass,fail,pass,fail"}
    procs = {name: start_writer(tmp_path / name, plan, pg_url) for name, plan in plans.items()}
    made = {name: finish(p, timeout=600) for name, p in procs.items()}
    status_of = {r["run"]: r["status"] for runs in made.values() for r in runs}
    assert len(status_of) == 20
    with Store(tmp_path / "auditor", database=pg_url) as store:
        # Every run whole: its row, its one finding, its evidence index, its verdicts, its RAP application.
        assert {r.id for r in store.runs()} == set(status_of) and set(store.rap_applied_runs()) == set(status_of)
        for run_id, status in status_of.items():
            [f] = [f for f in store.findings(run_id) if f.check_id == "scan.plaintext_protocol"]
            assert f.status.value == status
            assert [e.path for e in store.evidence_files(run_id)] == ["scan/telnet.xml"] and store.verdicts(run_id)
    history = the_item(tmp_path / "auditor", pg_url)["history"]
    # No lost update: each change starts from the state the previous one left, numbered without gaps,
    # and each was made by a run whose finding says so (failing opens, passing closes).
    assert [h["seq"] for h in history] == list(range(1, len(history) + 1))
    assert history[0]["from_status"] is None
    for before, after in itertools.pairwise(history):
        assert after["from_status"] == before["to_status"], history
    for h in history:
        assert status_of[h["run_id"]] == ("fail" if h["to_status"] == "open" else "pass"), h
    assert len(history) >= 3
    # Each home checks only the runs whose evidence it holds: no home sees the others' as missing.
    for name, runs in made.items():
        with Store(tmp_path / name, database=pg_url) as store:
            assert store.problems == [] and store.unknown_run_dirs() == []
            assert sorted(store.own_run_ids()) == sorted(r["run"] for r in runs)
            assert all(store.verify_evidence(r["run"]) == [] for r in runs)


def test_a_writer_killed_inside_its_transaction_leaves_nothing_and_frees_the_lock(
        tmp_path: Path, pg_url: str) -> None:
    site, other = tmp_path / "site", tmp_path / "other"
    proc = start_writer(site, "fail", pg_url, ESTATE_TEST_PAUSE_AT="commit:in-transaction")
    assert proc.stderr is not None
    deadline = time.monotonic() + 120
    while "paused at commit:in-transaction" not in proc.stderr.readline():
        assert proc.poll() is None and time.monotonic() < deadline
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    with Store(tmp_path / "auditor", database=pg_url) as store:
        assert store.runs() == [] and store.rap_items() == [] and store.rap_applied_runs() == []
    # The lock went with the dead connection: another home commits straight away.
    t0 = time.monotonic()
    [run] = finish(start_writer(other, "fail", pg_url), timeout=120)
    assert time.monotonic() - t0 < 60
    # Any home lists that run, but its evidence stays with the home that made it: a report elsewhere
    # says where it is, in one line, rather than failing on files it does not have.
    r = subprocess.run([str(ESTATE), "report", "--run", run["run"], "--out", str(tmp_path / "out")],
                       capture_output=True, text=True, cwd=tmp_path,
                       env=_env(pg_url, ESTATE_HOME=str(tmp_path / "auditor")), timeout=300)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert f"its evidence is kept by the home {(other / 'home.id').read_text().strip()}" in r.stderr
    # The killed run's home: its next writer sets the partial evidence aside (never deletes it).
    with writer_lock(site, "test"), Store(site, writer=True, database=pg_url) as store:
        assert len(store.recovered) == 1 and "never committed" in store.recovered[0]
        [q] = store.quarantined()
        assert (site / "quarantine" / q["name"] / "scan" / "telnet.xml").exists()
        assert [r.id for r in store.runs()] == [run["run"]]


def test_reader_and_writer_roles_from_the_printed_grants(tmp_path: Path, pg_server: PgServer) -> None:
    name = pg_server.create_database("grants")
    with Store(tmp_path / "owner", database=pg_server.url(name)) as store:   # the owner's estate: the schema
        assert store.schema_version
    printed = subprocess.run([str(ESTATE), "store", "grants", "--database", name], capture_output=True, text=True,
                             cwd=tmp_path, env=_env(""), timeout=120)
    assert printed.returncode == 0 and printed.stdout.splitlines() == grant_statements(name)
    pg_server.sql(printed.stdout, name)
    pg_server.sql("CREATE ROLE auditor_jones LOGIN PASSWORD 'pw-auditor' IN ROLE estate_reader;"
                  "CREATE ROLE scanner_depot LOGIN PASSWORD 'pw-scanner' IN ROLE estate_writer;", name)
    reader = pg_server.url(name, "auditor_jones", "pw-auditor")
    writer = pg_server.url(name, "scanner_depot", "pw-scanner")
    # A site scanner's run commits through the writer role.
    [run] = finish(start_writer(tmp_path / "depot", "fail", writer))
    # The auditor reads it...
    with Store(tmp_path / "audit", database=reader) as store:
        assert [r.id for r in store.runs()] == [run["run"]] and len(store.rap_items()) == 1
    # ...and cannot write: estate refuses a run before it starts, and the database refuses any change.
    with pytest.raises(StoreError, match="'auditor_jones' may only read"):
        Store(tmp_path / "audit", writer=True, database=reader)
    assert not [p for p in (tmp_path / "audit" / "runs").iterdir()]
    with psycopg.connect(reader, autocommit=True) as conn:
        for statement in ("INSERT INTO quarantine VALUES ('n', 'r', 'x', 'now')",
                          "UPDATE rap_items SET status = 'closed'", "DELETE FROM runs", "CREATE TABLE mine (x TEXT)"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(statement)
    # The writer moves the plan on, but deletes no run and touches no schema.
    with psycopg.connect(writer, autocommit=True) as conn:
        for statement in ("DELETE FROM runs", "DELETE FROM findings", "DROP TABLE findings",
                          "ALTER TABLE runs ADD COLUMN x TEXT",
                          "INSERT INTO schema_migrations VALUES ('999_x', 'now')"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(statement)
    with Store(tmp_path / "audit", database=reader) as store:
        assert [r.id for r in store.runs()] == [run["run"]] and [i.status for i in store.rap_items()] == ["open"]
    # `estate store status` says which back-end and where, never the password.
    shown = {}
    for fmt in ("json", "text"):
        r = subprocess.run([str(ESTATE), "--db", reader, "store", "status", "--home", str(tmp_path / "audit"),
                            "--format", fmt], capture_output=True, text=True, cwd=tmp_path, env=_env(""), timeout=120)
        assert r.returncode == 0, r.stderr
        assert "pw-auditor" not in r.stdout + r.stderr
        assert f"postgresql://auditor_jones:***@127.0.0.1:{pg_server.port}/{name}" in r.stdout + r.stderr
        shown[fmt] = r.stdout
    doc = json.loads(shown["json"])
    assert doc["backend"] == "postgresql" and doc["runs"] == 1 and doc["runs_with_evidence_here"] == 0


def test_a_second_council_on_its_own_database_sees_only_its_own_runs(tmp_path: Path, pg_server: PgServer,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from security_checks.checks import make_finding
    from security_checks.findings import Severity, Status
    from tests.foundation.shared_writer import TODAY

    loaded = load_estate(GLENMORAY)
    urls = {c: pg_server.url(pg_server.create_database(c)) for c in ("glenmoray", "harrowdale")}
    monkeypatch.setenv("ESTATE_DB", urls["glenmoray"])
    f = make_finding("scan.plaintext_protocol", "host:10.40.0.10", Status.FAIL, key="tcp/23", severity=Severity.HIGH)
    out = run_with(tmp_path / "gmc", loaded, [f], today=TODAY)
    assert out.run.context["network"] == loaded.estate.organisation.public_sector_network
    env = _env(urls["glenmoray"], ESTATE_HOME=str(tmp_path / "gmc"), ESTATE_DIR=str(GLENMORAY))
    listed = subprocess.run([str(ESTATE), "runs", "--format", "json"], capture_output=True, text=True,
                            cwd=tmp_path, env=env, timeout=120)
    assert listed.returncode == 0, listed.stderr
    assert [r["id"] for r in json.loads(listed.stdout)] == [out.run.id]
    assert "Harrowdale" not in listed.stdout + listed.stderr
    status = subprocess.run([str(ESTATE), "store", "status", "--format", "json"], capture_output=True, text=True,
                            cwd=tmp_path, env=env, timeout=120)
    assert status.returncode == 0 and json.loads(status.stdout)["runs"] == 1
    # The other council's database, on the same server, holds nothing of Glenmoray's.
    with Store(tmp_path / "hdc", database=urls["harrowdale"]) as store:
        assert store.runs() == [] and store.rap_items() == []


@pytest.mark.parametrize("url,says", [
    ("mysql://estate@db/estate", "not a database URL estate knows"),
    ("postgresql://estate:s3cret-pw@127.0.0.1:1/estate", "cannot connect to the PostgreSQL store"),
])
def test_a_database_that_cannot_be_used_is_one_line_without_its_password(tmp_path: Path, url: str,
                                                                          says: str) -> None:
    r = subprocess.run([str(ESTATE), "--db", url, "runs"], capture_output=True, text=True, cwd=tmp_path,
                       env=_env("", ESTATE_HOME=str(tmp_path / "home")), timeout=120)
    assert r.returncode == 2 and says in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "s3cret-pw" not in r.stdout + r.stderr


def test_the_readme_shows_the_grants_estate_prints() -> None:
    text = (REPO / "README.md").read_text()
    block = text.split("<!-- estate store grants: begin -->", 1)[1].split("<!-- estate store grants: end -->", 1)[0]
    assert block.strip().removeprefix("```sql").removesuffix("```").strip().splitlines() == grant_statements("estate")


@pytest.mark.parametrize("url,shown", [
    ("postgresql://scanner:pa55@db.council.internal:5432/estate", "postgresql://scanner:***@db.council.internal:5432/estate"),
    ("postgresql://scanner@db/estate?sslmode=require&password=pa55", "postgresql://scanner@db/estate?sslmode=require&password=***"),
    ("postgres://db/estate", "postgres://db/estate"),
])
def test_a_database_url_is_shown_without_its_password(url: str, shown: str) -> None:
    from security_checks.store.db import locate

    where = locate(Path("/nonexistent"), url)
    assert where.shown == shown and where.backend == "postgresql" and "pa55" not in repr(where)


def test_sqlite_url_names_another_file_and_the_home_keeps_the_evidence(tmp_path: Path) -> None:
    elsewhere = tmp_path / "db" / "council.db"
    elsewhere.parent.mkdir()
    with Store(tmp_path / "home", database=f"sqlite://{elsewhere}") as store:
        assert store.location.backend == "sqlite" and store.schema_version
    assert elsewhere.stat().st_size > 0 and not (tmp_path / "home" / "estate.db").exists()
