"""The directory archive: every file recorded as pushed, and `estate evidence audit-archive` reading
each one again (still there, still read-only, same SHA-256)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from typer.testing import CliRunner

from security_checks.cli.app import app
from security_checks.evidence.archive import bundle_files
from tests.evidence.helpers import home_with_bundles


@pytest.fixture
def home(sealed: SimpleNamespace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A home holding copies of the two sealed bundles (and no runs: push needs none)."""
    home = home_with_bundles(sealed.home / "bundles", tmp_path / "home")
    monkeypatch.setenv("ESTATE_HOME", str(home))
    return home


def run(*args: str) -> tuple[int, str, str]:
    res = CliRunner().invoke(app, list(args))
    return res.exit_code, res.stdout, res.output


def rows(home: Path, sql: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(home / "estate.db") as db:
        return db.execute(sql).fetchall()


def test_every_archived_file_is_recorded_and_audit_finds_changes(home: Path, tmp_path: Path) -> None:
    archive = tmp_path / "share"
    code, stdout, out = run("evidence", "push", "--to", str(archive), "--format", "json")
    assert code == 0, out
    bundles = sorted(p for p in (home / "bundles").iterdir())
    expected = sorted(f"{b.name}/{rel}" for b in bundles for rel, _ in bundle_files(b))
    recorded = rows(home, "SELECT key, mode, retain_until, last_checked_at FROM evidence_objects ORDER BY key")
    assert [r[0] for r in recorded] == expected
    assert {(r[1], r[2], r[3]) for r in recorded} == {("read-only", None, None)}

    code, stdout, out = run("evidence", "audit-archive", "--to", str(archive), "--format", "json")
    assert code == 0, out
    report = json.loads(stdout)
    assert report["ok"] and report["checked"] == len(expected) and report["problems"] == []
    assert all(r[0] for r in rows(home, "SELECT last_checked_at FROM evidence_objects"))

    b = archive / bundles[1].name
    (b / "index.html").chmod(0o644)                           # writable again
    (b / "evidence/scan/selftest.xml").chmod(0o644)
    (b / "evidence/scan/selftest.xml").write_text("<nmaprun>rewritten</nmaprun>")
    (b / "audit.html").unlink()
    code, stdout, out = run("evidence", "audit-archive", "--to", str(archive), "--format", "json")
    assert code == 1, out
    found = {(p["key"].split("/", 1)[1], p["problem"].split(":")[0]) for p in json.loads(stdout)["problems"]}
    assert found == {("index.html", "unlocked"), ("evidence/scan/selftest.xml", "unlocked"),
                     ("evidence/scan/selftest.xml", "content differs"), ("audit.html", "missing")}
    problems = dict(rows(home, "SELECT key, last_problem FROM evidence_objects WHERE last_problem IS NOT NULL"))
    assert set(problems) == {f"{b.name}/index.html", f"{b.name}/evidence/scan/selftest.xml", f"{b.name}/audit.html"}
    code, _, out = run("evidence", "audit-archive", "--to", str(archive))
    assert code == 1 and "PROBLEM" in out and "3 with problems" in out


def test_audit_archive_refuses_bad_usage(home: Path, tmp_path: Path) -> None:
    code, _, out = run("evidence", "audit-archive", "--to", str(tmp_path / "a"), "--bucket", "b")
    assert code == 2 and "choose one" in out
    code, _, out = run("evidence", "audit-archive", "--endpoint", "http://127.0.0.1:9")
    assert code == 2 and "--endpoint needs --bucket" in out
    code, _, out = run("evidence", "audit-archive", "--to", str(tmp_path / "never"))
    assert code == 2 and "nothing was pushed to" in out


def test_a_bundle_pushed_before_objects_were_recorded_is_read_back_by_the_next_push(home: Path) -> None:
    code, _, out = run("evidence", "push")
    assert code == 0, out
    with sqlite3.connect(home / "estate.db") as db:  # as an older version left it: bundles, no objects
        db.execute("DELETE FROM evidence_objects")
    code, stdout, out = run("evidence", "audit-archive", "--format", "json")
    assert code == 1 and len(json.loads(stdout)["unaudited_bundles"]) == 2
    code, stdout, out = run("evidence", "push", "--format", "json")
    assert code == 0, out
    assert [b["state"] for b in json.loads(stdout)["bundles"]] == ["pushed", "pushed"]
    assert rows(home, "SELECT COUNT(*) FROM evidence_objects")[0][0] > 0
    code, _, out = run("evidence", "audit-archive")
    assert code == 0, out
    # The archive in the home: read-only and private.
    archived = next((home / "archive").iterdir())
    assert (archived / "index.html").stat().st_mode & 0o777 == 0o400


def test_a_writable_copy_already_in_the_archive_is_made_read_only_again(home: Path, tmp_path: Path) -> None:
    archive = tmp_path / "share"
    assert run("evidence", "push", "--to", str(archive))[0] == 0
    victim = next(archive.iterdir()) / "index.html"
    victim.chmod(0o666)
    # Another home with the same bundles, which has no record of the push: the copy is checked, not trusted.
    other = home_with_bundles(home / "bundles", tmp_path / "other-home")
    code, stdout, out = run("evidence", "push", "--home", str(other), "--to", str(archive), "--format", "json")
    assert code == 0, out
    assert victim.stat().st_mode & 0o777 == 0o444
    assert "0 object(s) sent" in json.loads(stdout)["bundles"][0]["detail"]
