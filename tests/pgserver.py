"""A real PostgreSQL server for the tests and the store benchmark: Debian's `postgresql` package.

initdb makes a cluster in a new temporary directory; the server listens on 127.0.0.1 (a free port)
and on a unix socket in that directory, nowhere else. PostgreSQL refuses to run as root, so as root
(CI) the cluster belongs to `nobody` and the server runs under runuser; otherwise it runs as the
current user. The superuser `estate` logs in over TCP with a password (scram-sha-256), as an
operator's URL would; each test gets its own database. fsync is off for the tests (nothing there
tests surviving a power cut of the database host, only what estate does with the database), on for
the benchmark.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

SUPERUSER = "estate"
RUN_AS = "nobody"


def pg_bin() -> Path | None:
    """The newest installed server's bin directory (/usr/lib/postgresql/<version>/bin), or None."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parent.parent.name))
    return found[-1].parent if found else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PgServer:
    def __init__(self, root: Path, port: int, password: str, bin_dir: Path):
        self.root, self.port, self.password, self.bin_dir = root, port, password, bin_dir

    def url(self, database: str, user: str = SUPERUSER, password: str | None = None) -> str:
        pw = self.password if user == SUPERUSER and password is None else password
        cred = f"{user}:{pw}" if pw else user
        return f"postgresql://{cred}@127.0.0.1:{self.port}/{database}"

    def sql(self, statement: str, database: str = "postgres") -> None:
        """Run statements as the superuser (autocommit: CREATE DATABASE cannot run in a transaction)."""
        import psycopg

        with psycopg.connect(self.url(database), autocommit=True) as conn:
            conn.execute(statement.encode())

    def create_database(self, prefix: str = "t") -> str:
        name = f"{prefix}_{secrets.token_hex(4)}"
        self.sql(f'CREATE DATABASE "{name}"')
        return name

    def drop_database(self, name: str) -> None:
        with contextlib.suppress(Exception):
            self.sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _as_owner(argv: list[str]) -> list[str]:
    return ["runuser", "-u", RUN_AS, "--", *argv] if os.geteuid() == 0 else argv


@contextlib.contextmanager
def running(*, durable: bool = False) -> Iterator[PgServer]:
    """Start a throw-away cluster; stop it and remove its directory on the way out (durable: fsync on)."""
    bin_dir = pg_bin()
    if bin_dir is None:
        raise RuntimeError("PostgreSQL is not installed (Debian package `postgresql`, see deps/apt-packages.txt)")
    root = Path(tempfile.mkdtemp(prefix="estate-pg-"))
    password = secrets.token_urlsafe(16)
    data, pwfile = root / "data", root / "pw"
    pwfile.write_text(password + "\n")
    if os.geteuid() == 0:
        owner = pwd.getpwnam(RUN_AS)
        for path in (root, pwfile):
            os.chown(path, owner.pw_uid, owner.pw_gid)
    port = _free_port()
    started = False
    try:
        subprocess.run(_as_owner([str(bin_dir / "initdb"), "-D", str(data), "-U", SUPERUSER, "-E", "UTF8",
                                  "--no-sync", "--auth-local=trust", "--auth-host=scram-sha-256",
                                  f"--pwfile={pwfile}"]),
                       check=True, capture_output=True, cwd=root)
        options = (f"-c listen_addresses=127.0.0.1 -p {port} -k {root} -c fsync={'on' if durable else 'off'} "
                   "-c max_connections=60 -c shared_buffers=32MB")
        subprocess.run(_as_owner([str(bin_dir / "pg_ctl"), "-D", str(data), "-o", options, "-l",
                                  str(root / "server.log"), "-w", "-t", "60", "start"]),
                       check=True, capture_output=True, cwd=root)
        started = True
        server = PgServer(root, port, password, bin_dir)
        deadline = time.monotonic() + 30
        while True:
            try:
                server.sql("SELECT 1")
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        yield server
    finally:
        if started:
            subprocess.run(_as_owner([str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"]),
                           capture_output=True, cwd=root)
        shutil.rmtree(root, ignore_errors=True)
