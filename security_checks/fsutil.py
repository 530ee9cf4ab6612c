"""Files written whole or not at all, and private by default.

Everything `estate` writes either replaces its destination in one rename (a reader, a file share
or a killed process never sees half a file) or is a new file created exclusively. Files under the
state directory hold evidence and findings about the council's weaknesses, so they are created
0600 and directories 0700 whatever the umask; a report meant for people to share asks for 0644
explicitly.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

PRIVATE_FILE = 0o600
PRIVATE_DIR = 0o700
SHARED_FILE = 0o644
SHARED_DIR = 0o755


def fsync_dir(path: Path) -> None:
    """Make a rename or a new entry in `path` durable (the directory's own metadata)."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def private_dir(path: Path) -> Path:
    """`path` and any missing parents created 0700 (whatever the umask); an existing one is tightened."""
    missing = []
    p = path
    while not p.exists():
        missing.append(p)
        p = p.parent
    for d in reversed(missing):
        with contextlib.suppress(FileExistsError):
            os.mkdir(d, PRIVATE_DIR)
        os.chmod(d, PRIVATE_DIR)
    if path.is_dir() and (path.stat().st_mode & 0o077) and path.stat().st_uid == os.geteuid():
        os.chmod(path, PRIVATE_DIR)
    return path


def atomic_write(path: Path, data: bytes | str, *, mode: int = PRIVATE_FILE, durable: bool = True) -> Path:
    """Replace `path` with `data` in one rename; the file gets exactly `mode` (umask ignored).

    The temporary file lives beside the destination (same file system, so the rename is atomic) and
    is removed if anything fails. With `durable`, the data and the rename are fsynced.
    """
    return atomic_write_parts(path, [data], mode=mode, durable=durable)


def atomic_write_parts(path: Path, parts: Iterable[bytes | str], *, mode: int = PRIVATE_FILE,
                       durable: bool = True) -> Path:
    """atomic_write of the concatenation of `parts`, encoded one at a time: a large file (a run
    manifest of tens of thousands of findings) is never held whole as text and again as bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    try:
        # A 1 MiB buffer, not 8 KiB: a manifest's 20,000 findings of 2 KB each would otherwise cost a
        # system call every four parts.
        with os.fdopen(fd, "wb", buffering=1 << 20) as fh:
            for part in parts:
                fh.write(part.encode() if isinstance(part, str) else part)
            fh.flush()
            os.fchmod(fh.fileno(), mode)
            if durable:
                os.fsync(fh.fileno())
        os.replace(tmp, path)
        if durable:
            fsync_dir(path.parent)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return path


def write_new(path: Path, data: bytes | str, *, mode: int = PRIVATE_FILE) -> Path:
    """Create `path`, which must not exist, with exactly `mode`; data fsynced."""
    raw = data.encode() if isinstance(data, str) else data
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        os.fchmod(fd, mode)
        view = memoryview(raw)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)
    return path


@contextlib.contextmanager
def umask(mask: int) -> Iterator[None]:
    """Run a block with another umask (for tools we call that create files themselves)."""
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def fsync_tree(root: Path) -> None:
    """Flush every file under root and every directory, before a rename publishes it."""
    for path in sorted(root.rglob("*"), reverse=True):
        if path.is_symlink():
            continue
        if path.is_file():
            with open(path, "rb") as fh:
                os.fsync(fh.fileno())
        elif path.is_dir():
            fsync_dir(path)
    fsync_dir(root)
