"""The store's two back-ends for the foundation tests: SQLite in the home, and a real PostgreSQL server."""

from __future__ import annotations

import signal
import sys
from collections.abc import Iterator

import pytest

from tests.pgserver import PgServer, pg_bin, running


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """One PostgreSQL server for the session (started on first use, stopped at the end)."""
    if pg_bin() is None:
        pytest.skip("PostgreSQL is not installed: `make test` installs it as root (deps/apt-packages.txt)")
    # A session stopped by SIGTERM (`timeout`, CI cancelling) must still stop its server: unwind instead.
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    try:
        with running() as server:
            yield server
    finally:
        signal.signal(signal.SIGTERM, previous)


@pytest.fixture
def pg_url(pg_server: PgServer) -> Iterator[str]:
    """A new, empty database on the session's server, as the superuser's URL (password included)."""
    name = pg_server.create_database()
    yield pg_server.url(name)
    pg_server.drop_database(name)


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run a test once on each back-end: ESTATE_DB names the PostgreSQL database (and reaches subprocesses)."""
    if request.param == "sqlite":
        monkeypatch.delenv("ESTATE_DB", raising=False)
        return "sqlite"
    url: str = request.getfixturevalue("pg_url")
    monkeypatch.setenv("ESTATE_DB", url)
    return url
