"""The chain of bundles: sequence numbers, a missing bundle is a problem, forks and gaps are found
across the whole bundles directory, and VERIFY.txt says what standard tools can and cannot check.

Forks and gaps are laid out with copies of real bundles, re-signed with the home's own key (see
conftest.resign): verify has to find them from the chain itself, not from a bad signature.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from typer.testing import CliRunner

from security_checks.cli.app import app
from security_checks.evidence.bundle import verify
from tests.evidence.helpers import copy_as, link_to, resign


def cli(*args: str) -> tuple[int, str, str]:
    res = CliRunner().invoke(app, list(args))
    return res.exit_code, res.stdout, res.output


def meta(bundle: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((bundle / "bundle.json").read_text())
    return data


def test_bundles_are_numbered_from_one(sealed: SimpleNamespace) -> None:
    assert meta(sealed.first)["seq"] == 1 and meta(sealed.first)["previous"] is None
    assert meta(sealed.second)["seq"] == 2 and meta(sealed.second)["previous"]["bundle"] == sealed.first.name
    assert meta(sealed.second)["format"] == "estate-evidence-bundle/2"
    res = verify(sealed.second)
    assert res.ok and res.seq == 2 and res.forks == [] and res.gaps == [] and res.bundles_beside == 2


def test_a_previous_bundle_that_is_not_beside_it_is_a_problem(sealed: SimpleNamespace, tmp_path: Path) -> None:
    shutil.copytree(sealed.second, tmp_path / sealed.second.name)
    alone = tmp_path / sealed.second.name
    res = verify(alone)
    assert not res.ok
    assert any("a bundle is missing from the chain" in p and sealed.first.name in p for p in res.problems), res.problems
    assert res.missing_previous == [{"bundle": alone.name, "previous": sealed.first.name}]
    code, _stdout, out = cli("evidence", "verify", "--home", str(sealed.home), str(alone))
    assert code == 1 and "missing from the chain" in out and "--allow-partial-chain" in out
    # An auditor handed one bundle says so: then it is a note, and the bundle itself verifies.
    res = verify(alone, allow_partial_chain=True)
    assert res.ok and any(sealed.first.name in n and "not checked" in n for n in res.notes)
    code, stdout, _ = cli("evidence", "verify", "--home", str(sealed.home), str(alone), "--allow-partial-chain",
                          "--format", "json")
    assert code == 0 and json.loads(stdout)[0]["directory"]["missing_previous"][0]["previous"] == sealed.first.name


def test_a_fork_is_reported_from_any_bundle_in_the_directory(sealed: SimpleNamespace, tmp_path: Path) -> None:
    root = tmp_path / "bundles"
    shutil.copytree(sealed.first.parent, root)
    a, b = root / sealed.first.name, root / sealed.second.name
    # A second seal that ran at the same time as b: it also linked to a, and also got number 2.
    c = copy_as(b, root / "20261122T060000Z-c0c0", sealed.home / "keys", sealed_at="2026-11-22T06:00:00+00:00")
    assert verify(c, follow_chain=False).ok and verify(b, follow_chain=False).ok  # each one alone is fine
    for start in (a, b, c):
        res = verify(start)
        assert not res.ok, start
        assert res.forks == [{"previous": a.name, "bundles": sorted([b.name, c.name])}]
        assert any(p.startswith("chain fork:") and b.name in p and c.name in p for p in res.problems)
    code, stdout, _ = cli("evidence", "verify", "--home", str(sealed.home), str(a), "--format", "json")
    assert code == 1
    report = json.loads(stdout)[0]
    assert report["directory"]["forks"] == [{"previous": a.name, "bundles": sorted([b.name, c.name])}]
    code, _, out = cli("evidence", "verify", "--home", str(sealed.home), str(c))
    assert code == 1 and "1 fork(s)" in out and "chain fork" in out
    # --allow-partial-chain never excuses a fork.
    assert not verify(c, allow_partial_chain=True).ok


def test_a_bundle_deleted_on_one_branch_of_a_fork_is_caught(sealed: SimpleNamespace, tmp_path: Path) -> None:
    """b and c both follow a (a fork); d was sealed on b's branch. Deleting b leaves a, c, d: walking
    back from c never visits b's branch, so only d's dangling link can show the loss."""
    root = tmp_path / "bundles"
    shutil.copytree(sealed.first.parent, root)
    a, b = root / sealed.first.name, root / sealed.second.name
    keys_dir = sealed.home / "keys"
    c = copy_as(b, root / "20261122T060000Z-c0c0", keys_dir, sealed_at="2026-11-22T06:00:00+00:00")
    d = copy_as(b, root / "20261122T070000Z-d0d0", keys_dir, sealed_at="2026-11-22T07:00:00+00:00", seq=3,
                previous=link_to(b))
    shutil.rmtree(b)
    for start in (c, d):
        res = verify(start)
        assert not res.ok
        assert any(f"names previous bundle {b.name}, which is not in" in p for p in res.problems), res.problems
    code, _, out = cli("evidence", "verify", "--home", str(sealed.home), str(c))
    assert code == 1 and "missing from the chain" in out
    assert verify(a).ok is False


def test_a_gap_in_the_numbers_is_reported(sealed: SimpleNamespace, tmp_path: Path) -> None:
    root = tmp_path / "bundles"
    shutil.copytree(sealed.first.parent, root)
    a, b = root / sealed.first.name, root / sealed.second.name
    keys_dir = sealed.home / "keys"
    c = copy_as(b, root / "20261122T060000Z-c0c0", keys_dir, seq=3, previous=link_to(b))
    d = copy_as(b, root / "20261122T070000Z-d0d0", keys_dir, seq=4, previous=link_to(c))
    assert verify(d).ok and len(verify(d).chain) == 4
    shutil.rmtree(b)
    shutil.rmtree(c)
    res = verify(d)
    assert not res.ok
    assert res.gaps == [{"after": 1, "before": 4, "missing": [2, 3]}]
    assert any(p.startswith("chain gap: no bundle with sequence number 2 to 3") for p in res.problems), res.problems
    code, stdout, _ = cli("evidence", "verify", "--home", str(sealed.home), str(a), "--format", "json")
    assert code == 1 and json.loads(stdout)[0]["directory"]["gaps"] == [{"after": 1, "before": 4, "missing": [2, 3]}]
    partial = verify(d, allow_partial_chain=True)
    assert partial.ok and any(n.startswith("chain gap") for n in partial.notes)


def test_two_first_bundles_are_a_fork(sealed: SimpleNamespace, tmp_path: Path) -> None:
    root = tmp_path / "bundles"
    root.mkdir()
    a = root / sealed.first.name
    shutil.copytree(sealed.first, a)
    other = copy_as(a, root / "20261122T060000Z-f1f1", sealed.home / "keys")
    from security_checks.evidence.bundle import scan_chain

    res = scan_chain(root)
    assert res.forks == [{"previous": None, "bundles": sorted([a.name, other.name])}]
    assert any("claim to be the first bundle" in p for p in res.problems)


def test_a_sequence_number_that_does_not_follow_its_previous_fails(sealed: SimpleNamespace, tmp_path: Path) -> None:
    root = tmp_path / "bundles"
    shutil.copytree(sealed.first.parent, root)
    b = root / sealed.second.name
    resign(b, sealed.home / "keys", lambda m: m.update(seq=5))
    res = verify(b)
    assert any("sequence number 5 does not follow" in p for p in res.problems), res.problems
    resign(b, sealed.home / "keys", lambda m: m.update(seq=1))
    assert any("(the first) but it names a previous bundle" in p for p in verify(b).problems)


def test_a_bundle_sealed_before_sequence_numbers_still_verifies(sealed: SimpleNamespace, tmp_path: Path) -> None:
    root = tmp_path / "bundles"
    shutil.copytree(sealed.first.parent, root)
    a, b = root / sealed.first.name, root / sealed.second.name

    def legacy(m: dict[str, Any]) -> None:
        m["format"] = "estate-evidence-bundle/1"
        del m["seq"]

    resign(a, sealed.home / "keys", legacy)
    resign(b, sealed.home / "keys", lambda m: m.update(previous=link_to(a)))
    res = verify(b)
    assert res.ok, res.problems
    assert len(res.chain) == 2 and any("sealed before sequence numbers" in n for n in verify(a).notes)


def test_verify_txt_says_what_standard_tools_check_and_the_link_command_works(sealed: SimpleNamespace) -> None:
    text = (sealed.second / "VERIFY.txt").read_text()
    assert "bundle number 2 of the chain" in text
    assert "Standard tools check the chain one link at a time" in text and "fork" in text
    assert "estate evidence verify --strict ." in text
    cmd = next(line.strip() for line in text.splitlines() if line.strip().startswith("sha256sum ../"))
    out = subprocess.run(["bash", "-c", cmd], cwd=sealed.second, capture_output=True, text=True, check=True).stdout
    assert out.split()[0] == meta(sealed.second)["previous"]["sha256_of_SHA256SUMS"]
    assert "the first of the chain" in (sealed.first / "VERIFY.txt").read_text()


def test_verify_dot_from_inside_a_bundle_sees_the_bundles_beside_it(sealed: SimpleNamespace, tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """What VERIFY.txt tells an auditor to run."""
    monkeypatch.chdir(sealed.second)
    res = verify(Path("."))
    assert res.ok and len(res.chain) == 2 and res.bundles_beside == 2
    shutil.copytree(sealed.second, tmp_path / sealed.second.name)
    monkeypatch.chdir(tmp_path / sealed.second.name)
    assert not verify(Path(".")).ok
    code, _, out = cli("evidence", "verify", "--home", str(sealed.home), ".")
    assert code == 1 and "missing from the chain" in out
