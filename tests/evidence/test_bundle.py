"""Sealed bundles: verified by `estate evidence verify` and by the standard commands in VERIFY.txt,
and one flipped byte in any file makes both fail."""

from __future__ import annotations

import json
import shutil
import stat
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest
from typer.testing import CliRunner

from security_checks.cli.app import app
from security_checks.evidence.bundle import SealError, seal, verify
from tests.evidence.helpers import home_with_bundles
from tests.report.builders import demo_loaded, make_two_runs, patched_catalogue

# Every file a bundle of the fixture's second run holds, by design. The test below checks the sealed
# bundle has exactly these, so parametrising over them covers ANY file of the bundle.
BUNDLE_FILES = [
    "SHA256SUMS", "SHA256SUMS.sig", "VERIFY.txt", "audit.html", "board-report.pdf", "bundle.json",
    "controls.html", "evidence/devices/artifacts/x/job_events/1.json",
    "evidence/scan/selftest.xml", "index.html", "machine/findings.json", "machine/findings.sarif",
    "machine/oscal-assessment-results.json", "machine/oscal-poam.json", "machine/remediation-plan.csv",
    "machine/remediation-plan.xlsx", "signing-key.pub.pem",
]


def files_of(bundle: Path) -> list[str]:
    return sorted(p.relative_to(bundle).as_posix() for p in bundle.rglob("*") if p.is_file())


def verify_txt_commands(bundle: Path) -> list[str]:
    return [line.strip()[2:] for line in (bundle / "VERIFY.txt").read_text().splitlines()
            if line.startswith("  $ ")]


def run_verify_txt(bundle: Path, fingerprint: str) -> list[tuple[str, bool]]:
    """Each command of VERIFY.txt, run in the bundle as an auditor would; the fingerprint one must print it."""
    out = []
    for cmd in verify_txt_commands(bundle):
        proc = subprocess.run(["bash", "-o", "pipefail", "-c", cmd], cwd=bundle, capture_output=True, text=True,
                              check=False)
        ok = proc.returncode == 0 and (fingerprint in proc.stdout if "sha256sum" in cmd and "DER" in cmd else True)
        out.append((cmd, ok))
    return out


def cli(*args: str) -> tuple[int, str]:
    res = CliRunner().invoke(app, list(args))
    return res.exit_code, res.output


def test_bundle_holds_exactly_the_designed_files(sealed: SimpleNamespace) -> None:
    assert files_of(sealed.second) == BUNDLE_FILES


def test_bundle_passes_estate_verify_and_the_verify_txt_commands(sealed: SimpleNamespace) -> None:
    fp = json.loads((sealed.second / "bundle.json").read_text())["signing_key"]["sha256_fingerprint"]
    code, out = cli("evidence", "verify", str(sealed.second), "--fingerprint", fp)
    assert code == 0, out
    assert "OK" in out and "chain checked through 2 bundle(s)" in out
    cmds = run_verify_txt(sealed.second, fp)
    assert [c for c, _ in cmds][:2] == [
        "sha256sum --check --strict --quiet SHA256SUMS",
        "openssl pkeyutl -verify -pubin -inkey signing-key.pub.pem -rawin -in SHA256SUMS -sigfile SHA256SUMS.sig"]
    assert all(ok for _, ok in cmds), cmds


@pytest.mark.parametrize("victim", BUNDLE_FILES)
def test_one_flipped_byte_in_any_file_fails_both_checks(sealed: SimpleNamespace, tmp_path: Path, victim: str) -> None:
    fp = json.loads((sealed.second / "bundle.json").read_text())["signing_key"]["sha256_fingerprint"]
    copy = tmp_path / sealed.second.name
    shutil.copytree(sealed.second, copy)
    target = copy / victim
    raw = bytearray(target.read_bytes())
    raw[len(raw) // 2] ^= 0x01
    target.write_bytes(bytes(raw))

    code, out = cli("evidence", "verify", str(copy), "--fingerprint", fp)
    assert code == 1
    named = victim if victim not in ("SHA256SUMS",) else "SHA256SUMS"
    assert named in out, out
    results = run_verify_txt(copy, fp)
    assert not all(ok for _, ok in results), f"VERIFY.txt commands all passed with {victim} changed"


def test_an_added_or_removed_file_fails(sealed: SimpleNamespace, tmp_path: Path) -> None:
    copy = tmp_path / "b"
    shutil.copytree(sealed.second, copy)
    (copy / "evidence" / "extra.txt").write_text("planted later")
    res = verify(copy, follow_chain=False)
    assert res.problems == ["evidence/extra.txt: not listed in SHA256SUMS (added after sealing)"]
    (copy / "evidence" / "extra.txt").unlink()
    (copy / "index.html").unlink()
    assert verify(copy, follow_chain=False).problems == ["index.html: listed in SHA256SUMS but missing"]


def test_bundles_form_a_chain_and_a_rewritten_earlier_bundle_breaks_it(sealed: SimpleNamespace,
                                                                        tmp_path: Path) -> None:
    meta = json.loads((sealed.second / "bundle.json").read_text())
    import hashlib

    assert meta["previous"] == {"bundle": sealed.first.name,
                                "sha256_of_SHA256SUMS": hashlib.sha256((sealed.first / "SHA256SUMS").read_bytes())
                                .hexdigest()}
    assert json.loads((sealed.first / "bundle.json").read_text())["previous"] is None
    # An attacker rewrites the earlier bundle whole and re-signs it with a key of their own.
    root = tmp_path / "bundles"
    shutil.copytree(sealed.first.parent, root)
    first = root / sealed.first.name
    (first / "evidence/scan/selftest.xml").write_text("<nmaprun>nothing to see</nmaprun>")
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from security_checks.evidence.bundle import sums_text
    from security_checks.evidence.keys import public_pem

    evil = Ed25519PrivateKey.generate()
    (first / "signing-key.pub.pem").write_bytes(public_pem(evil))
    bm = json.loads((first / "bundle.json").read_text())
    from security_checks.evidence.keys import fingerprint

    bm["signing_key"]["sha256_fingerprint"] = fingerprint(evil)
    (first / "bundle.json").write_text(json.dumps(bm))
    sums = sums_text(first)
    (first / "SHA256SUMS").write_text(sums)
    (first / "SHA256SUMS.sig").write_bytes(evil.sign(sums.encode()))
    assert verify(first, follow_chain=False).ok  # self-consistent on its own...
    res = verify(root / sealed.second.name)
    assert not res.ok and "chain broken" in res.problems[0]  # ...but the later bundle's link exposes it


def test_signing_key_is_private_and_never_in_a_bundle(sealed: SimpleNamespace) -> None:
    key = sealed.home / "keys" / "signing-key.pem"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert stat.S_IMODE((sealed.home / "keys").stat().st_mode) == 0o700
    secret = b"".join(key.read_bytes().splitlines()[1:-1])
    for bundle in (sealed.first, sealed.second):
        for p in bundle.rglob("*"):
            if p.is_file():
                assert secret not in p.read_bytes() and b"PRIVATE KEY" not in p.read_bytes(), p


def test_runner_command_file_is_withheld_and_listed(sealed: SimpleNamespace) -> None:
    meta = json.loads((sealed.second / "bundle.json").read_text())
    assert [w["path"] for w in meta["withheld"]] == ["evidence/devices/artifacts/x/command"]
    assert not any(b"hunter2" in p.read_bytes() for p in sealed.second.rglob("*") if p.is_file())


def test_bundle_json_records_the_run(sealed: SimpleNamespace) -> None:
    meta = json.loads((sealed.second / "bundle.json").read_text())
    run = sealed.store.get_run(sealed.b)
    assert meta["run"]["id"] == sealed.b and meta["run"]["operator"] == "tester"
    assert meta["tool_versions"] == run.tool_versions and meta["run"]["estate_digest"] == run.estate_digest
    assert run.estate_dir and run.estate_dir not in json.dumps(meta)   # not the operator's directory
    lab = meta["run"]["steps"][1]
    assert {k: lab[k] for k in ("name", "status", "summary")} == {
        "name": "lab", "status": "skipped", "summary": "not root: network namespaces need CAP_NET_ADMIN"}


def test_a_run_is_sealed_once(sealed: SimpleNamespace) -> None:
    with pytest.raises(SealError, match="already sealed"):
        seal(sealed.store, sealed.b, sealed.home / "bundles", sealed.loaded, keys_dir=sealed.home / "keys")


def test_an_interrupted_seal_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with patched_catalogue(tmp_path):
        loaded = demo_loaded()
        store, a, _b = make_two_runs(tmp_path / "home", loaded)

        def interrupted(root: Path, known: object = None) -> str:
            raise KeyboardInterrupt

        monkeypatch.setattr("security_checks.evidence.bundle.sums_text", interrupted)
        with pytest.raises(KeyboardInterrupt):
            seal(store, a, tmp_path / "bundles", loaded, keys_dir=tmp_path / "keys")
    assert list((tmp_path / "bundles").iterdir()) == []


def _flip_last_byte(path: Path) -> None:
    raw = bytearray(path.read_bytes())
    raw[-1] ^= 0x01
    path.write_bytes(bytes(raw))


@pytest.mark.parametrize(("change", "said"), [
    ("same size", "scan/selftest.xml: changed since the run committed (SHA-256 differs)"),
    ("grown", "scan/selftest.xml: changed since the run committed (size differs)"),
    ("withheld", "devices/artifacts/x/command: changed since the run committed (SHA-256 differs)"),
    ("added", "scan/planted.xml: not part of the run as committed"),
    ("removed", "scan/selftest.xml: missing from"),
])
def test_evidence_changed_in_the_store_after_the_run_is_refused_at_seal(tmp_path: Path, change: str,
                                                                        said: str) -> None:
    """The seal hashes each evidence file once, on its copy in the bundle: a change the size does
    not show (one byte flipped), in a file kept out of the bundle (withheld), or a file added or
    removed must still be refused, with nothing left behind."""
    with patched_catalogue(tmp_path):
        loaded = demo_loaded()
        store, _a, b = make_two_runs(tmp_path / "home", loaded)
        ev = store.evidence_dir(b)
        if change == "same size":
            _flip_last_byte(ev / "scan/selftest.xml")
        elif change == "grown":
            with open(ev / "scan/selftest.xml", "ab") as fh:
                fh.write(b"<!-- -->")
        elif change == "withheld":
            _flip_last_byte(ev / "devices/artifacts/x/command")
        elif change == "added":
            (ev / "scan/planted.xml").write_text("<nmaprun/>")
        else:
            (ev / "scan/selftest.xml").unlink()
        with pytest.raises(SealError, match="its evidence is not as it committed") as refused:
            seal(store, b, tmp_path / "bundles", loaded, keys_dir=tmp_path / "keys")
    assert said in str(refused.value)
    bundles = tmp_path / "bundles"   # refused before it is made, or emptied of the half-built bundle
    assert not bundles.exists() or list(bundles.iterdir()) == []


def test_cli_seal_and_bad_input(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ESTATE_HOME", str(tmp_path / "home"))
    code, out = cli("evidence", "seal")
    assert code == 2 and "run `estate assess` first" in out
    from security_checks.store import Store

    Store(tmp_path / "home").close()
    code, out = cli("evidence", "seal")
    assert code == 2 and "no runs yet" in out
    code, out = cli("evidence", "seal", "--run", "nope")
    assert code == 2 and "--run nope" in out
    code, out = cli("evidence", "verify", str(tmp_path / "missing"))
    assert code == 2 and "not a directory" in out


def test_directory_archive_is_read_only_and_idempotent(sealed: SimpleNamespace, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ESTATE_HOME", str(home_with_bundles(sealed.home / "bundles", tmp_path / "home")))
    res = CliRunner().invoke(app, ["evidence", "push", "--to", str(tmp_path / "archive"), "--format", "json"])
    assert res.exit_code == 0, res.output
    assert [b["state"] for b in json.loads(res.stdout)["bundles"]] == ["pushed", "pushed"]
    stored = tmp_path / "archive" / sealed.second.name
    assert all(not (p.stat().st_mode & 0o222) for p in stored.rglob("*"))
    res = CliRunner().invoke(app, ["evidence", "push", "--to", str(tmp_path / "archive"), "--format", "json"])
    assert [b["state"] for b in json.loads(res.stdout)["bundles"]] == ["already", "already"]
    from security_checks.evidence.bundle import verify

    assert verify(stored).ok
