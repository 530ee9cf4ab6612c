"""Locks between `estate` processes sharing one state directory (the home).

Two advisory locks (flock), both under <home>/locks/:

- `writer.lock`, held exclusively for the whole life of a command that writes (a run, a seal, a
  push, a recovery). A second writer waits for it (up to --wait seconds, saying who holds it) or is
  refused with one line. So two runs never interleave their evidence, and two seals never fork the
  bundle chain.
- `store.lock`, held shared by readers (runs, findings, report, check) for as long as they read,
  and exclusively by a writer only for the moments it changes what readers see: recovery, and the
  commit of a run. A reader never sees a recovery half done; a long run does not block readers.

flock locks belong to the open file: they vanish when the process dies (kill -9 included), so a
crashed command never leaves the home locked.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from ..fsutil import private_dir

WRITER, STORE = "writer.lock", "store.lock"
POLL_SECONDS = 0.2


class LockBusy(Exception):
    """Another estate command holds the lock; the message says which and since when."""


def locks_dir(home: Path) -> Path:
    return private_dir(home / "locks")


def _open(path: Path) -> IO[str]:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    return os.fdopen(fd, "r+")


def holder(home: Path) -> dict[str, Any] | None:
    """Who holds the writer lock, as it recorded itself (pid, command, operator, since)."""
    try:
        data: dict[str, Any] = json.loads((home / "locks" / WRITER).read_text() or "null") or None  # type: ignore[assignment]
    except (OSError, ValueError):
        return None
    return data


def describe(info: dict[str, Any] | None) -> str:
    if not info:
        return "another estate command"
    return (f"`{info.get('command', 'estate')}` (pid {info.get('pid')}, {info.get('operator', '?')}, "
            f"since {info.get('since', '?')})")


@contextlib.contextmanager
def writer_lock(home: Path, command: str, *, wait: float = 0.0,
                on_wait: Callable[[str, float], None] | None = None) -> Iterator[None]:
    """Exclusive for the whole command. Waits up to `wait` seconds, reporting progress; else LockBusy."""
    path = locks_dir(home) / WRITER
    fh = _open(path)
    try:
        deadline = time.monotonic() + max(wait, 0.0)
        while True:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                left = deadline - time.monotonic()
                who = describe(holder(home))
                if left <= 0:
                    raise LockBusy(f"{home}: {who} is writing to this state directory; wait for it to finish "
                                   f"or pass --wait SECONDS") from None
                if on_wait:
                    on_wait(who, left)
                time.sleep(min(POLL_SECONDS, left))
        fh.seek(0)
        fh.truncate()
        fh.write(json.dumps({"pid": os.getpid(), "command": command,
                             "operator": os.environ.get("ESTATE_OPERATOR") or _user(),
                             "since": datetime.now(UTC).replace(microsecond=0).isoformat()}))
        fh.flush()
        try:
            yield
        finally:
            fh.seek(0)
            fh.truncate()
            fh.flush()
    finally:
        fh.close()  # releases the lock


def holds_writer_lock(home: Path) -> bool:
    """True when some process (this one included) holds the writer lock now."""
    path = home / "locks" / WRITER
    if not path.exists():
        return False
    with open(path) as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(fh, fcntl.LOCK_UN)
        return False


class _ProcessLock:
    """One open file per home per process: flock locks of two descriptors in one process exclude each
    other, so a command (or a test) holding the store open twice would otherwise deadlock itself."""

    def __init__(self, path: Path):
        self.path = path
        self.fh: IO[str] | None = None
        self.readers = 0
        self.exclusive = 0

    def _file(self) -> IO[str]:
        if self.fh is None:
            self.fh = _open(self.path)
        return self.fh

    def settle(self) -> None:
        """Hold what the in-process users need: exclusive, shared or nothing."""
        fh = self._file()
        if self.exclusive:
            return
        fcntl.flock(fh, fcntl.LOCK_SH if self.readers else fcntl.LOCK_UN)


_PROCESS: dict[str, _ProcessLock] = {}
_GUARD = threading.Lock()


class StoreLock:
    """The readers/writer lock on what the store shows, shared by every Store of this process."""

    def __init__(self, home: Path):
        path = locks_dir(home) / STORE
        with _GUARD:
            self._lock = _PROCESS.setdefault(str(path.resolve()), _ProcessLock(path))
        self._reading = False

    def shared(self) -> None:
        if self._reading:
            return
        with _GUARD:
            self._lock.readers += 1
            self._reading = True
            if self._lock.readers == 1 and not self._lock.exclusive:
                fcntl.flock(self._lock._file(), fcntl.LOCK_SH)

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[None]:
        """Exclusive for a block (other processes' readers drained first); then back to what was held."""
        lock = self._lock
        with _GUARD:
            first = lock.exclusive == 0
            lock.exclusive += 1
        try:
            if first:
                fh = lock._file()
                # flock converts a shared lock by dropping it first: drop it ourselves, so two
                # converting processes cannot deadlock, then wait for the other processes' readers.
                fcntl.flock(fh, fcntl.LOCK_UN)
                fcntl.flock(fh, fcntl.LOCK_EX)
            yield
        finally:
            with _GUARD:
                lock.exclusive -= 1
                if lock.exclusive == 0:
                    lock.settle()

    def release(self) -> None:
        if not self._reading:
            return
        with _GUARD:
            self._reading = False
            self._lock.readers -= 1
            if not self._lock.exclusive:
                self._lock.settle()


def _user() -> str:
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid())
