"""Under the home everything evidence writes is private (files 0600, directories 0700) whatever the
umask: bundles, keys, the spool. The directory archive stays read-only: 0400/0500 inside the home,
0444/0555 on a share outside it, for auditors."""

from __future__ import annotations

import shutil
import socket
import stat
from pathlib import Path
from types import SimpleNamespace

import pytest

from security_checks.evidence.archive import DirectoryArchive, S3Archive, push, spool_dir
from security_checks.evidence.bundle import seal
from security_checks.fsutil import umask
from tests.report.builders import demo_loaded, make_two_runs, patched_catalogue


def modes(root: Path) -> dict[str, int]:
    """Mode of root and of everything under it, by path relative to root's parent."""
    out = {root.name: stat.S_IMODE(root.stat().st_mode)}
    for p in root.rglob("*"):
        out[p.relative_to(root.parent).as_posix()] = stat.S_IMODE(p.lstat().st_mode)
    return out


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def assert_private(home: Path, name: str, mask: int) -> None:
    found = modes(home / name)
    for path, mode in found.items():
        want = 0o700 if (home / path).is_dir() else 0o600
        assert mode == want, f"{path}: {mode:o}, not {want:o} (umask {mask:03o})"


@pytest.mark.parametrize("mask", [0o022, 0o000], ids=["umask022", "umask000"])
def test_bundles_keys_spool_and_home_archive_are_private_under_any_umask(
        mask: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAESTATETEST000002")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "estate-test-secret-not-used-0000000000002")
    home = tmp_path / "home"
    with umask(mask), patched_catalogue(tmp_path):
        loaded = demo_loaded()
        store, a, b = make_two_runs(home, loaded)
        first = seal(store, a, home / "bundles", loaded, keys_dir=home / "keys")
        second = seal(store, b, home / "bundles", loaded, keys_dir=home / "keys")
        assert_private(home, "bundles", mask)
        assert_private(home, "keys", mask)
        # S3 that cannot be reached: both bundles wait in the spool.
        down = S3Archive("estate-evidence", endpoint=f"http://127.0.0.1:{closed_port()}")
        assert [o.state for o in push(store, down, [first, second])] == ["spooled", "spooled"]
        assert len(list(spool_dir(home).rglob("*.json"))) == 2
        assert_private(home, "spool", mask)
        assert [o.state for o in push(store, DirectoryArchive(home / "archive", home), [first])] == ["pushed"]
        shared = tmp_path / "share"
        assert [o.state for o in push(store, DirectoryArchive(shared, home), [first])] == ["pushed"]

    archive = modes(home / "archive")
    assert archive.pop("archive") == 0o700
    assert {m for p, m in archive.items() if (home / p).is_dir()} == {0o500}
    assert {m for p, m in archive.items() if (home / p).is_file()} == {0o400}
    outside = modes(shared)
    outside.pop("share")
    assert {m for p, m in outside.items() if (tmp_path / p).is_dir()} == {0o555}
    assert {m for p, m in outside.items() if (tmp_path / p).is_file()} == {0o444}


def test_a_bundles_directory_left_open_by_an_older_version_is_tightened(sealed_home_copy: Path) -> None:
    home = sealed_home_copy
    bundle = next(p for p in (home / "bundles").iterdir())
    for p in [home / "bundles", bundle, *bundle.rglob("*")]:
        p.chmod(0o755 if p.is_dir() else 0o644)
    from security_checks.evidence.bundle import _bundles_dir

    _bundles_dir(home / "bundles", home)
    for path, mode in modes(home / "bundles").items():
        assert mode == (0o700 if (home / path).is_dir() else 0o600), path


@pytest.fixture
def sealed_home_copy(sealed: SimpleNamespace, tmp_path: Path) -> Path:
    home = tmp_path / "home"
    shutil.copytree(sealed.home / "bundles", home / "bundles")
    return home
