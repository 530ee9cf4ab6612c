"""Trust in a bundle does not depend on a flag: verify always prints the signer's key and fails on one
the council does not trust; a rotated key is trusted through the announcement its old key signed;
--strict fails on a bundle removed from the chain; VERIFY.txt shows how to catch an added file.

Bundles are copies of the fixture's real seals. "Re-signed with another key" is what an attacker
who rewrites a bundle does: a fresh Ed25519 key, its public half put in the bundle, SHA256SUMS and
its signature written again, so every file, checksum and signature in the bundle is consistent.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from typer.testing import CliRunner

from security_checks.cli.app import app
from security_checks.evidence import keys
from security_checks.evidence.bundle import SIG, SUMS, finish_rotation, rotate_key, sums_text, verify
from security_checks.evidence.trust import Trust
from tests.evidence.helpers import copy_as, home_with_bundles, link_to


def cli(*args: str) -> tuple[int, str, str]:
    res = CliRunner().invoke(app, list(args))
    return res.exit_code, res.stdout, res.output


def fp_of(bundle: Path) -> str:
    fp: str = json.loads((bundle / "bundle.json").read_text())["signing_key"]["sha256_fingerprint"]
    return fp


def resign_with(bundle: Path, key: Ed25519PrivateKey) -> str:
    """Put key's public half in the bundle and sign it again with key: a self-consistent forgery."""
    (bundle / "signing-key.pub.pem").write_bytes(keys.public_pem(key))
    meta = json.loads((bundle / "bundle.json").read_text())
    meta["signing_key"]["sha256_fingerprint"] = keys.fingerprint(key)
    (bundle / "bundle.json").write_text(json.dumps(meta, indent=2) + "\n")
    sums = sums_text(bundle)
    (bundle / SUMS).write_text(sums)
    (bundle / SIG).write_bytes(key.sign(sums.encode()))
    return keys.fingerprint(key)


@pytest.fixture
def copies(sealed: SimpleNamespace, tmp_path: Path) -> SimpleNamespace:
    """A home of its own (copies of the bundles and of the signing key) that a test may change."""
    home = home_with_bundles(sealed.home / "bundles", tmp_path / "home")
    shutil.copytree(sealed.home / "keys", home / "keys")
    root = home / "bundles"
    return SimpleNamespace(home=home, root=root, first=root / sealed.first.name, second=root / sealed.second.name,
                           auditor=tmp_path / "auditor")


def test_a_bundle_re_signed_with_another_key_fails_verify_without_any_flag(copies: SimpleNamespace) -> None:
    home_fp = fp_of(copies.second)
    code, _, out = cli("evidence", "verify", "--home", str(copies.home), str(copies.second))
    assert code == 0, out
    assert home_fp in out and "this home's signing key" in out   # the fingerprint is always printed

    evil_fp = resign_with(copies.second, Ed25519PrivateKey.generate())
    assert evil_fp != home_fp
    assert verify(copies.second, follow_chain=False).ok   # checksums and signature alone: all consistent
    code, stdout, out = cli("evidence", "verify", "--home", str(copies.home), str(copies.second))
    assert code == 1, out
    assert "FAILED" in out and evil_fp in out and "not trusted" in out
    assert "--trust-fingerprint" in out   # says how to accept it once confirmed out of band
    code, stdout, _ = cli("evidence", "verify", "--home", str(copies.home), str(copies.second), "--format", "json")
    doc = json.loads(stdout)[0]
    assert code == 1 and doc["signer"] == {"fingerprint": evil_fp, "trusted": None}
    assert [k["fingerprint"] for k in doc["keys"]] == [evil_fp, home_fp]   # newest first, down the chain
    # The auditor names the key after confirming it: then it verifies, and says why it is trusted.
    code, _, out = cli("evidence", "verify", "--home", str(copies.home), str(copies.second),
                       "--trust-fingerprint", evil_fp.upper())
    assert code == 0, out
    assert "named with --trust-fingerprint" in out


def test_an_auditor_trusts_what_the_security_group_publishes(copies: SimpleNamespace,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """An auditor's own home has no key: trust comes from the trusted-keys file, nothing else."""
    monkeypatch.delenv("ESTATE_TRUSTED_KEYS", raising=False)
    auditor = copies.auditor
    auditor.mkdir()
    code, _, out = cli("evidence", "verify", "--home", str(auditor), str(copies.second))
    assert code == 1 and "not trusted" in out and fp_of(copies.second) in out

    published = auditor / "trusted-keys.txt"
    published.write_text(f"# estate-trusted-keys/1\n\n{fp_of(copies.second)}  evidence key, security group, 2026\n")
    code, _, out = cli("evidence", "verify", "--home", str(auditor), "--trusted-keys", str(published),
                       str(copies.second))
    assert code == 0, out
    assert "listed in trusted-keys.txt:3 (evidence key, security group, 2026)" in out
    # The same file found by the environment, and as ESTATE_HOME/trusted-keys.txt by default.
    monkeypatch.setenv("ESTATE_TRUSTED_KEYS", str(published))
    assert cli("evidence", "verify", "--home", str(auditor / "elsewhere"), str(copies.second))[0] == 0
    monkeypatch.delenv("ESTATE_TRUSTED_KEYS")
    assert cli("evidence", "verify", "--home", str(auditor), str(copies.second))[0] == 0
    # A directory of bundles checks its newest.
    assert cli("evidence", "verify", "--home", str(auditor), str(copies.root))[0] == 0


@pytest.mark.parametrize(("content", "line"), [
    ("# keys\nnot-a-fingerprint  someone\n", 2),
    ("0123456789abcdef  too short\n", 1),
    ("# nothing but comments\n", None),
])
def test_a_bad_trusted_keys_file_is_refused_naming_the_line(copies: SimpleNamespace, tmp_path: Path, content: str,
                                                            line: int | None) -> None:
    bad = tmp_path / "trusted-keys.txt"
    bad.write_text(content)
    code, stdout, out = cli("evidence", "verify", "--home", str(copies.home), "--trusted-keys", str(bad),
                            str(copies.second), "--format", "json")
    assert code == 2 and stdout == ""
    assert (f"{bad}:{line}:" if line else f"{bad}: lists no key") in out
    assert len(out.strip().splitlines()) == 1
    assert cli("evidence", "verify", "--home", str(copies.home), "--trust-fingerprint", "xyz",
               str(copies.second))[0] == 2


def test_rotation_announces_the_new_key_and_verify_follows_it(copies: SimpleNamespace, tmp_path: Path) -> None:
    old_fp = fp_of(copies.second)
    old_keys = tmp_path / "old-keys"
    shutil.copytree(copies.home / "keys", old_keys)   # to forge with the retired key below
    code, stdout, out = cli("evidence", "rotate-key", "--home", str(copies.home), "--format", "json")
    assert code == 0, out
    done = json.loads(stdout)
    rotation = Path(done["bundle"])
    new_fp = done["new_fingerprint"]
    assert done["retired_fingerprint"] == old_fp and new_fp != old_fp
    meta = json.loads((rotation / "bundle.json").read_text())
    assert meta["kind"] == "key-rotation" and meta["seq"] == 3 and meta["previous"] == link_to(copies.second)
    assert meta["signing_key"]["sha256_fingerprint"] == old_fp and meta["announces"]["sha256_fingerprint"] == new_fp
    # The home signs with the new key now; the old private key is gone, its public half kept.
    assert keys.fingerprint(keys.load_or_create(copies.home / "keys")) == new_fp
    assert (copies.home / "keys" / "retired" / f"{old_fp}.pub.pem").is_file()
    assert not (copies.home / "keys" / "signing-key.pending.pem").exists()
    # VERIFY.txt's standard commands check the rotation bundle and print both fingerprints.
    cmds = [ln.strip()[2:] for ln in (rotation / "VERIFY.txt").read_text().splitlines() if ln.startswith("  $ ")]
    outputs = [subprocess.run(["bash", "-o", "pipefail", "-c", c], cwd=rotation, capture_output=True, text=True,
                              check=True).stdout for c in cmds]
    assert old_fp in outputs[2] and new_fp in outputs[3]

    # A later bundle, signed with the home's (new) key.
    later = copy_as(copies.second, copies.root / "20261130T050000Z-4d4d", copies.home / "keys", seq=4,
                    previous=link_to(rotation), sealed_at="2026-11-30T05:00:00+00:00")
    assert resign_with(later, keys.load_or_create(copies.home / "keys")) == new_fp
    # An auditor who was only ever given the OLD key trusts the new one through the announcement.
    auditor = copies.auditor
    auditor.mkdir()
    (auditor / "trusted-keys.txt").write_text(f"{old_fp}  evidence key until the rotation\n")
    code, stdout, out = cli("evidence", "verify", "--home", str(auditor), "--strict", str(later), "--format", "json")
    assert code == 0, out
    doc = json.loads(stdout)[0]
    assert [(k["seq"], k["fingerprint"]) for k in doc["keys"]] == [(4, new_fp), (3, old_fp), (2, old_fp),
                                                                    (1, old_fp)]
    assert doc["keys"][0]["trusted"].startswith(f"announced by key rotation {rotation.name}")
    # Without the rotation bundle the new key is a stranger (and the chain has a gap).
    hidden = tmp_path / "hidden"
    rotation.rename(hidden)
    code, _, out = cli("evidence", "verify", "--home", str(auditor), str(later), "--allow-partial-chain")
    assert code == 1 and "not trusted" in out and new_fp in out
    hidden.rename(rotation)
    # A bundle signed with the retired key after its rotation is not the council's.
    forged = copy_as(copies.second, copies.root / "20261201T050000Z-5e5e", old_keys, seq=5,
                     previous=link_to(later), sealed_at="2026-12-01T05:00:00+00:00")
    assert fp_of(forged) == old_fp
    code, _, out = cli("evidence", "verify", "--home", str(auditor), str(forged))
    assert code == 1 and "retired before it" in out and rotation.name in out
    # The home that rotated still trusts its own old bundles by itself (its retired public key).
    assert cli("evidence", "verify", "--home", str(copies.home), "--no-chain", str(copies.first))[0] == 0


def test_a_rotation_killed_after_its_announcement_is_finished_by_the_next_seal(copies: SimpleNamespace,
                                                                                monkeypatch: pytest.MonkeyPatch
                                                                                ) -> None:
    keys_dir = copies.home / "keys"
    old_fp = keys.fingerprint(keys.load_or_create(keys_dir))

    def killed(_keys_dir: Path) -> str:
        raise KeyboardInterrupt  # the process dies between sealing the announcement and switching keys

    monkeypatch.setattr(keys, "complete_rotation", killed)
    with pytest.raises(KeyboardInterrupt):
        rotate_key(copies.root, keys_dir, copies.home)
    monkeypatch.undo()
    pending = keys.pending_fingerprint(keys_dir)
    assert pending is not None and keys.fingerprint(keys.load_or_create(keys_dir)) == old_fp
    finish_rotation(copies.root, keys_dir)   # what seal and rotate-key do first
    assert keys.fingerprint(keys.load_or_create(keys_dir)) == pending
    # A pending key never announced (killed before the announcement was sealed) is dropped unused.
    keys.create_pending(keys_dir)
    finish_rotation(copies.root, keys_dir)
    assert keys.pending_fingerprint(keys_dir) is None and keys.fingerprint(keys.load_or_create(keys_dir)) == pending


def test_a_removed_bundle_fails_strict(copies: SimpleNamespace) -> None:
    third = copy_as(copies.second, copies.root / "20261130T050000Z-3c3c", copies.home / "keys", seq=3,
                    previous=link_to(copies.second), sealed_at="2026-11-30T05:00:00+00:00")
    home = ["--home", str(copies.home)]
    assert cli("evidence", "verify", *home, "--strict", str(third))[0] == 0
    shutil.rmtree(copies.second)
    code, stdout, out = cli("evidence", "verify", *home, "--strict", str(third), "--format", "json")
    assert code == 1
    doc = json.loads(stdout)[0]
    assert doc["directory"]["gaps"] == [{"after": 1, "before": 3, "missing": [2]}]
    assert any("missing from the chain" in p for p in doc["problems"])
    code, _, out = cli("evidence", "verify", *home, "--strict", "--allow-partial-chain", str(third))
    assert code == 2 and "--strict" in out
    # Given only the later bundles, --strict still wants the chain from bundle 1.
    shutil.rmtree(copies.first)
    res = verify(third, Trust(keys={fp_of(third): "test"}), strict=True)
    assert not res.ok and any("the chain stops at sequence number 3" in p for p in res.problems), res.problems


def test_strict_also_checks_the_newest_bundle_beside_the_one_named(copies: SimpleNamespace) -> None:
    third = copy_as(copies.second, copies.root / "20261130T050000Z-3c3c", copies.home / "keys", seq=3,
                    previous=link_to(copies.second), sealed_at="2026-11-30T05:00:00+00:00")
    (third / "index.html").write_text("rewritten after sealing")
    home = ["--home", str(copies.home)]
    assert cli("evidence", "verify", *home, str(copies.second))[0] == 0   # its own chain is intact
    code, _, out = cli("evidence", "verify", *home, "--strict", str(copies.second))
    assert code == 1 and f"{third.name} (the newest bundle): index.html: content changed" in out


def test_verify_txt_shows_how_to_catch_a_file_added_after_sealing(sealed: SimpleNamespace, tmp_path: Path) -> None:
    text = (sealed.second / "VERIFY.txt").read_text()
    assert "A file ADDED after sealing" in text and "A bundle REMOVED from the chain" in text
    cmd = next(ln.strip()[2:] for ln in text.splitlines() if ln.startswith("  $ diff "))
    ok = subprocess.run(["bash", "-c", cmd], cwd=sealed.second, capture_output=True, text=True, check=False)
    assert ok.returncode == 0 and ok.stdout == ""
    copy = tmp_path / "b"
    shutil.copytree(sealed.second, copy)
    (copy / "evidence" / "planted.xml").write_text("<nmaprun/>")
    standard = subprocess.run(["sha256sum", "--check", "--strict", "--quiet", "SHA256SUMS"], cwd=copy, check=False)
    assert standard.returncode == 0   # what sha256sum alone cannot show
    caught = subprocess.run(["bash", "-c", cmd], cwd=copy, capture_output=True, text=True, check=False)
    assert caught.returncode == 1 and "evidence/planted.xml" in caught.stdout


def test_push_refuses_a_bundle_whose_signer_is_not_trusted(copies: SimpleNamespace, tmp_path: Path) -> None:
    """A forged bundle must not reach the archive: there it would be locked for seven years beside
    the real ones, and an auditor reading the archive would meet it first."""
    archive = tmp_path / "archive"
    evil_fp = resign_with(copies.second, Ed25519PrivateKey.generate())
    code, stdout, out = cli("evidence", "push", "--home", str(copies.home), "--to", str(archive),
                            "--format", "json")
    assert code == 1, out
    states = {b["bundle"]: (b["state"], b["detail"]) for b in json.loads(stdout)["bundles"]}
    assert states[copies.first.name][0] == "pushed"
    state, detail = states[copies.second.name]
    assert state == "refused" and evil_fp in detail and "not trusted" in detail
    assert not (archive / copies.second.name).exists()
    # Once the security group confirms the key out of band, the same push sends it.
    code, stdout, out = cli("evidence", "push", "--home", str(copies.home), "--to", str(archive),
                            "--trust-fingerprint", evil_fp, "--format", "json")
    assert code == 0, out
    states = {b["bundle"]: (b["state"], b["detail"]) for b in json.loads(stdout)["bundles"]}
    assert states[copies.second.name][0] == "pushed" and states[copies.first.name][0] == "already"
    assert (archive / copies.second.name / SUMS).is_file()
