"""Sealed evidence bundles: one directory per run that an auditor can check with standard tools.

    <bundle>/index.html ...          the report site for the run (see security_checks.report)
    <bundle>/evidence/...            the run's evidence files (raw scan XML, runner events, plans...)
    <bundle>/bundle.json             run id, operator, times, tool versions, key fingerprint, chain link
    <bundle>/signing-key.pub.pem     the Ed25519 public key
    <bundle>/VERIFY.txt              how to check it with sha256sum and openssl
    <bundle>/SHA256SUMS              sha256sum format, every file above
    <bundle>/SHA256SUMS.sig          Ed25519 signature over SHA256SUMS (raw 64 bytes)
    <bundle>/SHA256SUMS.tsr          optional RFC 3161 timestamp over SHA256SUMS (+ tsa-ca.pem)

A key-rotation bundle (`estate evidence rotate-key`) takes its place in the same chain but holds no
run: its bundle.json has "kind": "key-rotation" and "announces" the next key, whose public half is
announced-key.pub.pem; it is signed by the key being retired. Verify trusts the announced key for the
bundles after it only when the rotation bundle itself was signed by a trusted key
(security_checks/evidence/trust.py), and a retired key signing anything after its rotation fails.

bundle.json records the SHA-256 of the previous bundle's SHA256SUMS and a sequence number (the
previous one's plus one; the first bundle is 1), so the bundles form a chain: a bundle removed or
rewritten after a later one was sealed breaks a link, leaves a gap in the numbers, or leaves a
later bundle naming a previous one that is not there. Two bundles naming the same previous one are
a fork: the callers hold the home's writer lock while sealing so that cannot happen, and verify
reports one if it ever does.

A seal builds everything in a private temporary directory beside the destination and renames it
into place, so a killed seal leaves nothing that looks like a bundle. Bundles hold findings about
the council's weaknesses: every file is 0600 and every directory 0700 whatever the umask. The copy
for auditors is the archive (security_checks/evidence/archive.py).
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import pairwise
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from ..fsutil import PRIVATE_DIR, PRIVATE_FILE, fsync_dir, fsync_tree, private_dir, write_new
from ..procs import pid_alive
from ..testhooks import pause_at
from . import keys
from .trust import Trust

if TYPE_CHECKING:
    # Verify, which auditors run on their own machines, needs neither the store nor the estate model:
    # importing them would cost more start-up than hashing a large bundle (bench/bench_evidence.py).
    from ..model.loader import LoadedEstate
    from ..store import Store

FORMAT = "estate-evidence-bundle/2"
LEGACY_FORMATS = {"estate-evidence-bundle/1"}  # sealed before sequence numbers: still verified
SUMS, SIG, TSR, PUB, META, VERIFY, TSA_CA = ("SHA256SUMS", "SHA256SUMS.sig", "SHA256SUMS.tsr", "signing-key.pub.pem",
                                             "bundle.json", "VERIFY.txt", "tsa-ca.pem")
ANNOUNCED = "announced-key.pub.pem"
KEY_ROTATION = "key-rotation"
UNLISTED = {SUMS, SIG, TSR}  # files that cover SHA256SUMS rather than being covered by it
PARTIAL_HINT = "pass --allow-partial-chain if you were given only part of the chain"
# Files are hashed this many at a time: hashlib releases the GIL, so a large bundle verifies on
# every core instead of one (sha256sum -c uses one).
HASH_WORKERS = max(1, min(4, os.cpu_count() or 1))


def sha256_file(path: Path) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def _operator() -> str:
    from ..store import operator_name

    return operator_name()


class SealError(Exception):
    pass


@dataclass
class VerifyResult:
    bundle: Path
    problems: list[str] = field(default_factory=list)   # each names the file at fault
    notes: list[str] = field(default_factory=list)
    files: int = 0
    run_id: str = ""
    seq: int | None = None
    chain: list[str] = field(default_factory=list)      # run ids checked, newest first
    # Across the bundles directory (see scan_chain): for tools, beside the sentences in problems.
    forks: list[dict[str, Any]] = field(default_factory=list)
    gaps: list[dict[str, Any]] = field(default_factory=list)
    missing_previous: list[dict[str, str]] = field(default_factory=list)
    bundles_beside: int = 0
    kind: str = "run"
    signer: str | None = None        # SHA-256 fingerprint of the key SHA256SUMS verifies with
    announces: str | None = None     # a key-rotation bundle: the fingerprint of the key it announces
    # Every bundle checked along the chain, newest first: name, seq, signer, and why its key is trusted.
    keys: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def bundles_home(home: Path) -> Path:
    return home / "bundles"


# -- sealing ----------------------------------------------------------------------------------------


def seal(store: Store, run_id: str | None, dest_root: Path, loaded: LoadedEstate | None, *,
         keys_dir: Path, tsa_url: str | None = None, tsa_ca: Path | None = None) -> Path:
    """Seal a run into dest_root/<run id>. The caller holds the home's writer lock (one seal at a time).

    `loaded`, when given, must be the estate the run assessed. The run's evidence must be exactly as
    it committed (every file present, every hash as recorded): a bundle never seals a changed file.
    """
    from ..report import build, render_into

    run = store.get_run(run_id)
    if run is None:
        raise SealError(f"no run {run_id!r} in {store.home}" if run_id else f"no runs in {store.home} yet: "
                        "run `estate assess` first")
    if loaded is not None and loaded.digest != run.estate_digest:
        raise SealError(f"run {run.id} assessed the estate {run.estate_dir} (digest {run.estate_digest[:12]}), not "
                        f"{loaded.root} (digest {loaded.digest[:12]}): seal it with the estate it assessed")
    # Presence, sizes and nothing added, without reading the files: their contents are checked
    # against the committed hashes once, on the copies in the bundle (_evidence_digests).
    _refuse_changed(run.id, store.verify_evidence(run.id, contents=False))
    _bundles_dir(dest_root, store.home)
    finish_rotation(dest_root, keys_dir)
    key = keys.load_or_create(keys_dir)
    final = dest_root / run.id
    if final.exists():
        raise SealError(f"{final}: run {run.id} is already sealed (bundles are never rewritten)")
    _remove_abandoned(dest_root)
    tmp = dest_root / f".seal-{run.id}-{os.getpid()}-{secrets.token_hex(4)}"
    os.mkdir(tmp, PRIVATE_DIR)
    os.chmod(tmp, PRIVATE_DIR)
    try:
        data = build(store, run.id)
        render_into(data, store.evidence_dir(run.id), tmp)
        pause_at("seal:rendered")
        scrubbed = _scrub(tmp)
        withheld = scrubbed + [{"path": "evidence/" + e.path, "reason": e.withheld}
                               for e in data.evidence if e.withheld]
        known = _evidence_digests(tmp, data.evidence, store.evidence_dir(run.id), run.id,
                                  {w["path"] for w in scrubbed})
        previous = _previous(dest_root, exclude=run.id)
        if tsa_ca:
            write_new(tmp / TSA_CA, tsa_ca.read_bytes())
        write_new(tmp / PUB, keys.public_pem(key))
        meta: dict[str, Any] = {
            "format": FORMAT,
            "run": {"id": run.id, "kind": run.kind, "operator": run.operator,
                    "started_at": run.started_at.isoformat(), "finished_at": run.finished_at.isoformat(),
                    # The estate by its digest: the directory the operator ran from is not evidence.
                    "estate_digest": run.estate_digest, "full_scope": run.full_scope, "steps": run.steps},
            "tool_versions": run.tool_versions,
            "sealed_at": datetime.now(UTC).isoformat(timespec="microseconds"),
            "sealed_by": _operator(),
            "signing_key": {"algorithm": "Ed25519", "public_key_file": PUB,
                            "sha256_fingerprint": keys.fingerprint(key)},
            "seq": previous.seq + 1 if previous else 1,
            "previous": {"bundle": previous.name, "sha256_of_SHA256SUMS": sha256_file(previous.path / SUMS)}
            if previous else None,
            "withheld": withheld,
            "timestamp": {"tsa_url": tsa_url} if tsa_url else None,
        }
        _sign_and_place(tmp, final, meta, key, verify_text(meta, tsa=bool(tsa_url), tsa_ca=bool(tsa_ca)), tsa_url,
                        tsa_ca, known)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def _refuse_changed(run_id: str, changed: list[str]) -> None:
    if changed:
        raise SealError(f"run {run_id}: its evidence is not as it committed, so it cannot be sealed: "
                        + "; ".join(changed[:3]) + (f"; and {len(changed) - 3} more" if len(changed) > 3 else ""))


def _evidence_digests(tmp: Path, evidence: list[Any], source: Path, run_id: str,
                      scrubbed: set[str]) -> dict[Path, str]:
    """Hash every evidence file once, as copied into the bundle, and refuse any whose SHA-256 is not
    the one the run committed. This is the store's integrity check (Store.verify_evidence) made on
    the copy itself, so what is sealed is proven to be what the run committed, and the same digests
    go into SHA256SUMS (sums_text) instead of reading the 1 GiB again."""
    copies: dict[Path, Any] = {}
    changed: list[str] = []
    for e in evidence:
        copy = tmp / "evidence" / e.path
        if e.withheld or "evidence/" + e.path in scrubbed:
            # Kept out of the bundle, but still part of the run, which must be all as committed.
            if sha256_file(source / e.path) != e.sha256:
                changed.append(f"{e.path}: changed since the run committed (SHA-256 differs)")
        elif not copy.is_file() or copy.is_symlink():
            changed.append(f"{e.path}: not copied into the bundle")
        else:
            copies[copy] = e
    digests = _hash_all(list(copies))
    changed += [f"{e.path}: changed since the run committed (SHA-256 differs)" for p, e in copies.items()
                if digests[p] != e.sha256]
    _refuse_changed(run_id, changed)
    return digests


def _sign_and_place(tmp: Path, final: Path, meta: dict[str, Any], key: Any, verify_txt: str,
                    tsa_url: str | None = None, tsa_ca: Path | None = None,
                    known: dict[Path, str] | None = None) -> None:
    write_new(tmp / META, json.dumps(meta, indent=2) + "\n")
    write_new(tmp / VERIFY, verify_txt)
    sums = sums_text(tmp, known)
    write_new(tmp / SUMS, sums)
    write_new(tmp / SIG, key.sign(sums.encode()))
    if tsa_url:
        from .tsa import timestamp

        timestamp(tmp / SUMS, tsa_url, tmp / TSR, ca=tmp / TSA_CA if tsa_ca else None)
    make_private(tmp)  # the report renderer and openssl create files with the umask's modes
    fsync_tree(tmp)
    pause_at("seal:signed")
    os.rename(tmp, final)
    fsync_dir(final.parent)


# -- key rotation -----------------------------------------------------------------------------------


def rotate_key(dest_root: Path, keys_dir: Path, home: Path) -> tuple[Path, str, str]:
    """Announce a new signing key in a bundle signed by the current one, then switch to it.

    Returns (the rotation bundle, the old fingerprint, the new fingerprint). The caller holds the
    home's writer lock. The new key waits as keys/signing-key.pending.pem until its announcement is
    sealed into the chain; a rotation killed after that is completed by the next seal or rotation
    (finish_rotation), one killed before it leaves the old key in use and nothing announced.
    """
    _bundles_dir(dest_root, home)
    finish_rotation(dest_root, keys_dir)
    old = keys.load_or_create(keys_dir)
    new = keys.create_pending(keys_dir)
    new_fp = keys.fingerprint(new)
    name = f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{KEY_ROTATION}"
    final = dest_root / name
    if final.exists():
        raise SealError(f"{final}: a key rotation was sealed this very second; wait a second and run it again")
    _remove_abandoned(dest_root)
    tmp = dest_root / f".seal-{name}-{os.getpid()}-{secrets.token_hex(4)}"
    os.mkdir(tmp, PRIVATE_DIR)
    try:
        previous = _previous(dest_root, exclude=name)
        write_new(tmp / PUB, keys.public_pem(old))
        write_new(tmp / ANNOUNCED, keys.public_pem(new))
        meta: dict[str, Any] = {
            "format": FORMAT,
            "kind": KEY_ROTATION,
            "run": None,
            "sealed_at": datetime.now(UTC).isoformat(timespec="microseconds"),
            "sealed_by": _operator(),
            "signing_key": {"algorithm": "Ed25519", "public_key_file": PUB,
                            "sha256_fingerprint": keys.fingerprint(old)},
            "announces": {"algorithm": "Ed25519", "public_key_file": ANNOUNCED, "sha256_fingerprint": new_fp},
            "seq": previous.seq + 1 if previous else 1,
            "previous": {"bundle": previous.name, "sha256_of_SHA256SUMS": sha256_file(previous.path / SUMS)}
            if previous else None,
            "withheld": [],
            "timestamp": None,
        }
        _sign_and_place(tmp, final, meta, old, rotation_text(meta))
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        (keys_dir / keys.PENDING).unlink(missing_ok=True)
        raise
    pause_at("rotate:announced")
    keys.complete_rotation(keys_dir)
    return final, keys.fingerprint(old), new_fp


def finish_rotation(dest_root: Path, keys_dir: Path) -> None:
    """A pending key whose announcement is the latest bundle takes over; any other pending key is dropped."""
    pending = keys.pending_fingerprint(keys_dir)
    if pending is None:
        (keys_dir / keys.PENDING).unlink(missing_ok=True)
        return
    latest = latest_bundle(dest_root)
    announced = None
    if latest is not None:
        try:
            meta = json.loads((latest / META).read_text())
            announced = (meta.get("announces") or {}).get("sha256_fingerprint")
        except (OSError, ValueError, AttributeError):
            announced = None
    if announced == pending:
        keys.complete_rotation(keys_dir)
    else:
        (keys_dir / keys.PENDING).unlink(missing_ok=True)


def rotation_text(meta: dict[str, Any]) -> str:
    old, new = meta["signing_key"]["sha256_fingerprint"], meta["announces"]["sha256_fingerprint"]
    return f"""Key rotation (sealed {meta['sealed_at']}, bundle number {meta['seq']} of the chain)
==========================================================================

This bundle holds no run. It announces the council's next evidence signing key, and it is signed
by the key it replaces, so whoever trusts the old key can trust the new one from here on.

  retired key (signs this bundle):   {old}
  announced key (signs what follows): {new}

Check it with standard tools in this directory:

  $ sha256sum --check --strict --quiet SHA256SUMS
  $ openssl pkeyutl -verify -pubin -inkey {PUB} -rawin -in SHA256SUMS -sigfile SHA256SUMS.sig
  $ openssl pkey -pubin -in {PUB} -outform DER | sha256sum
  $ openssl pkey -pubin -in {ANNOUNCED} -outform DER | sha256sum

The third must print the retired key's fingerprint (one the security group published), the fourth
the announced key's. Bundles after this one must be signed with the announced key; one signed with
the retired key is not the council's. `estate evidence verify` follows rotations along the chain.
"""


def _bundles_dir(dest_root: Path, home: Path) -> None:
    """Under the home, the bundles directory and every bundle in it are private, old ones included."""
    if not dest_root.resolve().is_relative_to(home.resolve()):
        dest_root.mkdir(parents=True, exist_ok=True)  # somewhere the operator chose: its modes are theirs
        return
    private_dir(dest_root)
    for entry in dest_root.iterdir():
        if entry.is_dir() and not entry.is_symlink() and not entry.name.startswith("."):
            make_private(entry)


def make_private(root: Path) -> None:
    """Every file 0600 and every directory 0700 under root (symlinks are left alone, never followed)."""
    for dirpath, dirs, files in os.walk(root):
        for name in files:
            path = os.path.join(dirpath, name)
            if not os.path.islink(path):
                os.chmod(path, PRIVATE_FILE)
        for name in dirs:
            path = os.path.join(dirpath, name)
            if not os.path.islink(path):
                os.chmod(path, PRIVATE_DIR)
    os.chmod(root, PRIVATE_DIR)


def _remove_abandoned(dest_root: Path) -> None:
    """Temporary directories of seals that were killed (their process is gone) are removed."""
    for entry in dest_root.glob(".seal-*"):
        try:
            pid = int(entry.name.rsplit("-", 2)[-2])
        except (ValueError, IndexError):
            continue
        if not pid_alive(pid):   # a live seal, ours or someone else's, keeps its directory
            shutil.rmtree(entry, ignore_errors=True)


def _scrub(root: Path) -> list[dict[str, str]]:
    """Defence in depth: remove any file named like a runner secret that reached the bundle anyway."""
    from ..store.scrub import withheld_reason

    removed = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = path.relative_to(root).as_posix()
        reason = withheld_reason(rel)
        if reason:
            path.unlink()
            removed.append({"path": rel, "reason": reason})
    return removed


# -- the chain --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChainEntry:
    """What a bundle's bundle.json says about its place in the chain (read, not verified)."""

    name: str
    path: Path
    seq: int | None          # None: a legacy bundle sealed before sequence numbers
    previous: str | None
    sealed_at: str


def chain_entries(root: Path) -> tuple[list[ChainEntry], list[str]]:
    """The bundles in a directory, and the names of directories whose bundle.json cannot be read."""
    entries, unreadable = [], []
    if not root.is_dir():
        return [], []
    for entry in sorted(root.iterdir()):
        if entry.name.startswith(".") or not entry.is_dir() or not (entry / META).is_file():
            continue
        try:
            meta = json.loads((entry / META).read_text())
            prev = meta.get("previous")
            seq = meta.get("seq")
            entries.append(ChainEntry(name=entry.name, path=entry,
                                      seq=seq if isinstance(seq, int) and not isinstance(seq, bool) else None,
                                      previous=prev["bundle"] if prev else None, sealed_at=str(meta["sealed_at"])))
        except (OSError, ValueError, KeyError, TypeError):
            unreadable.append(entry.name)
    return entries, unreadable


@dataclass(frozen=True)
class _Latest:
    name: str
    path: Path
    seq: int


def _previous(dest_root: Path, exclude: str) -> _Latest | None:
    """The bundle the next seal links to: the highest sequence number (then the latest sealed)."""
    entries = [e for e in chain_entries(dest_root)[0] if e.name != exclude]
    if not entries:
        return None
    numbered = _numbered(entries)
    best = max(entries, key=lambda e: (numbered[e.name], e.sealed_at, e.name))
    return _Latest(best.name, best.path, numbered[best.name])


def _numbered(entries: list[ChainEntry]) -> dict[str, int]:
    """Sequence numbers, counting legacy bundles (none recorded) along their previous links."""
    by_name = {e.name: e for e in entries}
    out: dict[str, int] = {}

    def number(e: ChainEntry, depth: int = 0) -> int:
        if e.name not in out:
            if e.seq is not None:
                out[e.name] = e.seq
            elif e.previous in by_name and depth < len(entries):
                out[e.name] = number(by_name[e.previous], depth + 1) + 1
            else:
                out[e.name] = 1
        return out[e.name]

    for e in entries:
        number(e)
    return out


def latest_bundle(dest_root: Path) -> Path | None:
    """The most recently sealed bundle in a bundles directory."""
    found = _previous(dest_root, exclude="")
    return found.path if found else None


def scan_chain(root: Path, allow_partial: bool = False) -> VerifyResult:
    """Forks, gaps and missing links across every bundle in a directory (from bundle.json alone).

    Only this can show a fork (two bundles naming the same previous bundle, or two first bundles)
    or a gap in the sequence numbers: following one bundle's links back never visits the other
    branch. With allow_partial (an auditor given some bundles, not all), a missing previous bundle
    and gaps are notes, not problems; forks are always problems.
    """
    res = VerifyResult(root)
    entries, unreadable = chain_entries(root)
    res.bundles_beside = len(entries)
    for name in unreadable:
        res.problems.append(f"{name}/{META}: unreadable, so its place in the chain is unknown")
    names = {e.name: e for e in entries}
    by_previous: dict[str | None, list[str]] = {}
    for e in entries:
        by_previous.setdefault(e.previous, []).append(e.name)
    for prev, children in sorted(by_previous.items(), key=lambda kv: kv[0] or ""):
        if len(children) < 2:
            continue
        res.forks.append({"previous": prev, "bundles": children})
        what = f"name the same previous bundle {prev}" if prev else "claim to be the first bundle (no previous)"
        res.problems.append(f"chain fork: {', '.join(children)} all {what}; two seals ran at once, or one was "
                            "sealed from another copy of the bundles")
    for e in entries:
        if e.previous is not None and e.previous not in names:
            res.missing_previous.append({"bundle": e.name, "previous": e.previous})
            if allow_partial:
                res.notes.append(f"{e.name}/{META}: previous bundle {e.previous} is not in {root}, so that link "
                                 "is not checked (--allow-partial-chain)")
            else:
                res.problems.append(f"{e.name}/{META}: names previous bundle {e.previous}, which is not in "
                                    f"{root}: a bundle is missing from the chain ({PARTIAL_HINT})")
            continue
        before = names[e.previous].seq if e.previous is not None else None
        if e.seq is not None and before is not None and e.seq != before + 1:
            res.problems.append(f"{e.name}/{META}: sequence number {e.seq} does not follow {e.previous}'s "
                                f"{before}")
    seqs: dict[int, list[str]] = {}
    for e in entries:
        if e.seq is not None:
            seqs.setdefault(e.seq, []).append(e.name)
    forked = {n for f in res.forks for n in f["bundles"]}
    for n, holders in sorted(seqs.items()):
        if len(holders) > 1 and not set(holders) <= forked:
            res.problems.append(f"chain: {', '.join(holders)} all have sequence number {n}")
    ordered = sorted(seqs)
    for lo, hi in pairwise(ordered):
        if hi - lo > 1:
            missing = list(range(lo + 1, hi))
            res.gaps.append({"after": lo, "before": hi, "missing": missing})
            span = str(missing[0]) if len(missing) == 1 else f"{missing[0]} to {missing[-1]}"
            where = f"between {', '.join(seqs[lo])} ({lo}) and {', '.join(seqs[hi])} ({hi})"
            if allow_partial:
                res.notes.append(f"chain gap: no bundle with sequence number {span} {where} (--allow-partial-chain)")
            else:
                res.problems.append(f"chain gap: no bundle with sequence number {span} {where}: a bundle is missing "
                                    f"from the chain ({PARTIAL_HINT})")
    return res


def sums_text(root: Path, known: dict[Path, str] | None = None) -> str:
    """SHA256SUMS for every file under root; `known` holds digests already taken of files under root
    (the seal's evidence copies, hashed once and checked against the store), which are not re-read."""
    known = known or {}
    listed = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = path.relative_to(root).as_posix()
        if rel in UNLISTED:
            continue
        if "\n" in rel or "\\" in rel:
            raise SealError(f"{rel!r}: file names with newlines or backslashes cannot be listed in SHA256SUMS")
        listed.append((rel, path))
    digests = {**_hash_all([p for _, p in listed if p not in known]), **known}
    return "".join(f"{digests[p]}  {rel}\n" for rel, p in listed)


def _hash_all(paths: list[Path]) -> dict[Path, str]:
    if len(paths) < 2 or HASH_WORKERS == 1:
        return {p: sha256_file(p) for p in paths}
    with ThreadPoolExecutor(max_workers=HASH_WORKERS) as pool:
        return dict(zip(paths, pool.map(sha256_file, paths), strict=True))


def verify_text(meta: dict[str, Any], tsa: bool, tsa_ca: bool) -> str:
    fp = meta["signing_key"]["sha256_fingerprint"]
    prev = meta["previous"]
    text = f"""How to verify this evidence bundle (run {meta['run']['id']}, sealed {meta['sealed_at']})
====================================================================================

Run these in this directory with standard tools (GNU coreutils, OpenSSL 3). Each must succeed.

1. Every file is exactly as sealed:

  $ sha256sum --check --strict --quiet SHA256SUMS

2. The list of checksums was signed with the council's evidence key (Ed25519):

  $ openssl pkeyutl -verify -pubin -inkey {PUB} -rawin -in SHA256SUMS -sigfile SHA256SUMS.sig

3. The key is the council's: its fingerprint must be {fp}
   and must be listed in the trusted-keys file the security group publishes (a bundle re-signed
   with someone else's key passes 1 and 2; only this step catches it):

  $ openssl pkey -pubin -in {PUB} -outform DER | sha256sum
"""
    if tsa:
        ca = f"-CAfile {TSA_CA}" if tsa_ca else "-CAfile <the TSA's CA certificate>"
        text += f"""
4. The checksums existed no later than the RFC 3161 timestamp:

  $ openssl ts -verify -in {TSR} -data SHA256SUMS {ca}
"""
    if prev:
        link = f"""This is bundle number {meta['seq']} of the chain. bundle.json names the previous bundle,
{prev['bundle']}, and the SHA-256 of its SHA256SUMS:
{prev['sha256_of_SHA256SUMS']}
With that bundle beside this one, this prints the same SHA-256 (then check that bundle the same way):

    sha256sum ../{prev['bundle']}/SHA256SUMS
"""
    else:
        link = f"This is bundle number {meta['seq']}, the first of the chain: it names no previous bundle.\n"
    text += f"""
What these commands cannot show, and how to check it
----------------------------------------------------
A file ADDED after sealing: `sha256sum --check` reads only the files SHA256SUMS lists, so it passes
with an extra file planted beside them. This (bash) prints nothing when every file is listed:

  $ diff <(cut -c67- SHA256SUMS | sort) <(find . -type f -printf '%P\\n' | grep -v '^SHA256SUMS' | sort)

A bundle REMOVED from the chain: each bundle can only vouch for the one before it (below), so a
missing bundle, or the newest ones deleted, does not show in any single bundle. Compare the
newest sequence number with the one the security group last published (or the archive holds),
and check every link across the whole directory (`--strict` fails on anything short of a complete
chain from bundle 1, signed only with keys you trust):

    estate evidence verify --strict --trusted-keys trusted-keys.txt .

A key not the council's: steps 1 and 2 pass for any key at all; only the fingerprint decides.
`estate evidence verify` always prints it and fails on a key not in the trusted-keys file unless
you name it (--trust-fingerprint FP) after confirming it with the security group.

Chain
-----
{link}
Standard tools check the chain one link at a time, back from the bundle you start at. They cannot
show that no bundle is missing after it, or that two bundles name the same previous bundle (a
fork, which hides a branch from a walk back). With all the bundles in one directory, this checks
every link, that the sequence numbers run without a gap, and that there is no fork:

    estate evidence verify --strict .

Files withheld because they could hold secrets are listed in bundle.json ("withheld").
"""
    return text


# -- verifying --------------------------------------------------------------------------------------


def verify(bundle: Path, trust: Trust | None = None, follow_chain: bool = True,
           allow_partial_chain: bool = False, strict: bool = False) -> VerifyResult:
    """Check one bundle; with follow_chain, also every earlier bundle it links to and the whole
    directory it sits in (forks, gaps, missing bundles).

    With `trust`, every bundle checked must be signed by a trusted key, or by one announced by a
    trusted key-rotation bundle earlier in the chain (and not retired by one before it). Without it
    (the seal's and push's own integrity checks) the keys are reported but not judged: everything
    an auditor runs passes a Trust. `strict` is what auditors use: nothing is excused (no partial
    chain, no legacy bundle without a sequence number, no timestamp left unchecked), the chain must
    reach bundle 1, and the newest bundle in the directory is checked too, not only the one named.
    """
    if strict:
        follow_chain, allow_partial_chain = True, False
    result = _verify_one(bundle, strict)
    result.chain.append(result.run_id or bundle.name)
    result.keys.append(_key_entry(bundle.name, result))
    if not follow_chain:
        if trust is not None:
            _judge_keys(result, trust)
        return result
    here = bundle.resolve()  # `verify .` from inside a bundle must still see the bundles beside it
    if result.ok:
        _follow(here, result, strict)
    if trust is not None:
        _judge_keys(result, trust)
    if strict and result.ok and result.keys[-1].get("seq") not in (1, None):
        result.problems.append(f"{result.keys[-1]['bundle']}/{META}: the chain stops at sequence number "
                               f"{result.keys[-1]['seq']}: bundles 1 to {result.keys[-1]['seq'] - 1} are not all "
                               "here (--strict needs the whole chain)")
    scan = scan_chain(here.parent, allow_partial=allow_partial_chain)
    result.forks, result.gaps, result.missing_previous = scan.forks, scan.gaps, scan.missing_previous
    result.bundles_beside = scan.bundles_beside
    result.problems += [p for p in scan.problems if p not in result.problems]
    result.notes += [n for n in scan.notes if n not in result.notes]
    if strict:
        newest = latest_bundle(here.parent)
        if newest is not None and newest.resolve() != here:
            later = verify(newest, trust, strict=False)
            result.notes.append(f"--strict: also checked the newest bundle beside it, {newest.name}")
            result.problems += [f"{newest.name} (the newest bundle): {p}" for p in later.problems
                                if p not in result.problems]
    return result


def _key_entry(name: str, res: VerifyResult) -> dict[str, Any]:
    return {"bundle": name, "seq": res.seq, "kind": res.kind, "fingerprint": res.signer, "announces": res.announces,
            "trusted": None}


def _judge_keys(result: VerifyResult, trust: Trust) -> None:
    """Walk the checked bundles oldest first: each signer must be trusted and not retired before it."""
    trusted = dict(trust.keys)
    retired: dict[str, str] = {}
    for entry in reversed(result.keys):
        fp, name = entry["fingerprint"], entry["bundle"]
        if fp is None:
            continue  # no readable key: already a problem of that bundle
        if fp in retired:
            entry["trusted"] = None
            result.problems.append(f"{name}/{PUB}: signed with key {fp}, which the key rotation {retired[fp]} "
                                   "retired before it: not sealed by the council's current key")
            continue
        why = trusted.get(fp)
        entry["trusted"] = why
        if why is None:
            result.problems.append(
                f"{name}/{PUB}: signed with key {fp}, which is not trusted (looked in: {', '.join(trust.sources)}); "
                "if the security group confirms this key is theirs, pass --trust-fingerprint with it")
            continue
        if entry["announces"]:
            trusted.setdefault(entry["announces"], f"announced by key rotation {name}, signed by trusted key "
                                                   f"{fp[:16]}...")
            if entry["announces"] != fp:
                retired[fp] = name


def _follow(bundle: Path, result: VerifyResult, strict: bool = False) -> None:
    """Walk the previous links back, checking each link's SHA-256, sequence number and bundle."""
    current, seq, seen = bundle, result.seq, {bundle.resolve()}
    while True:
        try:
            prev = json.loads((current / META).read_text()).get("previous")
        except (OSError, ValueError):
            return
        if not prev:
            result.notes.append("chain: reaches the first bundle")
            return
        prev_dir = current.parent / prev["bundle"]
        if not (prev_dir / SUMS).is_file():
            return  # scan_chain reports the missing bundle, as a problem or (partial chain) a note
        if sha256_file(prev_dir / SUMS) != prev.get("sha256_of_SHA256SUMS"):
            result.problems.append(f"{current.name}/{META}: chain broken: {prev['bundle']}/SHA256SUMS does not "
                                   "match the SHA-256 recorded when this bundle was sealed")
            return
        if prev_dir.resolve() in seen:
            result.problems.append(f"{current.name}/{META}: chain loops back to {prev['bundle']}")
            return
        seen.add(prev_dir.resolve())
        earlier = _verify_one(prev_dir, strict)
        result.chain.append(earlier.run_id or prev_dir.name)
        result.keys.append(_key_entry(prev_dir.name, earlier))
        if not earlier.ok:
            result.problems += [f"{prev_dir.name}/{p}" for p in earlier.problems]
            return
        if seq is not None and earlier.seq is not None and earlier.seq != seq - 1:
            result.problems.append(f"{current.name}/{META}: sequence number {seq} does not follow "
                                   f"{prev_dir.name}'s {earlier.seq}")
        current, seq = prev_dir, earlier.seq


def check_sealed(bundle: Path, evidence: list[Any]) -> VerifyResult:
    """The seal's own check of the bundle it just wrote, without reading the evidence a third time.

    Everything verify checks of one bundle is checked (the signature over SHA256SUMS, the key and
    bundle.json, every listed file present, nothing unlisted, every file other than the run's
    evidence re-hashed), except that the evidence copies are checked by size against the run's
    record instead of re-hashed. That is enough: their digests in SHA256SUMS were taken from those
    very copies and matched to the hashes the run committed before the list was signed
    (_evidence_digests), in a private directory only this user could write; re-hashing them here
    would re-read the same 1 GiB to catch only a deliberate change by root in the seconds since,
    which every auditor's `estate evidence verify` or `sha256sum -c` still catches.
    """
    return _verify_one(bundle, sized={"evidence/" + e.path: e.size for e in evidence if not e.withheld})


def _verify_one(bundle: Path, strict: bool = False, sized: dict[str, int] | None = None) -> VerifyResult:
    res = VerifyResult(bundle)
    sized = sized or {}
    sums_path = bundle / SUMS
    if not sums_path.is_file():
        res.problems.append(f"{SUMS}: missing: not a sealed bundle")
        return res
    raw = sums_path.read_bytes()
    listed: dict[str, str] = {}
    for n, line in enumerate(raw.decode("utf-8", errors="replace").splitlines(), start=1):
        digest, sep, rel = line.partition("  ")
        if not sep or len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest) or not _safe(rel):
            res.problems.append(f"{SUMS}: line {n} is not a valid sha256sum line")
            continue
        listed[rel] = digest
    present = {rel: bundle / rel for rel in listed if (bundle / rel).is_file()}
    digests = _hash_all([p for rel, p in present.items() if rel not in sized])
    for rel, digest in sorted(listed.items()):
        if rel not in present:
            res.problems.append(f"{rel}: listed in {SUMS} but missing")
        elif rel in sized:
            if present[rel].stat().st_size != sized[rel]:
                res.problems.append(f"{rel}: not the size the run committed")
        elif digests[present[rel]] != digest:
            res.problems.append(f"{rel}: content changed since sealing (SHA-256 differs)")
    for path in sorted(p for p in bundle.rglob("*") if p.is_file()):
        rel = path.relative_to(bundle).as_posix()
        if rel not in listed and rel not in UNLISTED:
            res.problems.append(f"{rel}: not listed in {SUMS} (added after sealing)")
    res.files = len(listed)
    pub = _public_key(bundle / PUB, res)
    sig_path = bundle / SIG
    if not sig_path.is_file():
        res.problems.append(f"{SIG}: missing")
    elif pub is not None:
        try:
            pub.verify(sig_path.read_bytes(), raw)
        except InvalidSignature:
            res.problems.append(f"{SIG}: the signature over {SUMS} does not verify ({SUMS} or {SIG} changed)")
        else:
            res.signer = keys.fingerprint(pub)
    try:
        meta = json.loads((bundle / META).read_text())
        if meta.get("kind") == KEY_ROTATION:
            res.kind, res.run_id = KEY_ROTATION, bundle.name
            res.announces = _announced(bundle, meta, res)
        else:
            res.run_id = meta["run"]["id"]
        if meta.get("format") in LEGACY_FORMATS:
            legacy = (f"{META}: format {meta['format']} (sealed before sequence numbers): its place in "
                      "the chain rests on its previous link alone")
            (res.problems if strict else res.notes).append(legacy + (" (--strict)" if strict else ""))
        elif meta.get("format") != FORMAT:
            res.problems.append(f"{META}: unknown format {meta.get('format')!r}")
        else:
            seq = meta.get("seq")
            if not isinstance(seq, int) or isinstance(seq, bool) or seq < 1:
                res.problems.append(f"{META}: no valid sequence number (seq {seq!r})")
            elif (seq == 1) != (meta.get("previous") is None):
                res.problems.append(f"{META}: sequence number {seq} "
                                    + ("but it names no previous bundle" if seq > 1 else
                                       "(the first) but it names a previous bundle"))
            else:
                res.seq = seq
        if pub is not None and meta["signing_key"]["sha256_fingerprint"] != keys.fingerprint(pub):
            res.problems.append(f"{META}: records a different key fingerprint from {PUB}")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        res.problems.append(f"{META}: unreadable ({type(exc).__name__})")
    if (bundle / TSR).is_file():
        if (bundle / TSA_CA).is_file():
            proc = subprocess.run(["openssl", "ts", "-verify", "-in", TSR, "-data", SUMS, "-CAfile", TSA_CA],
                                  cwd=bundle, capture_output=True, text=True, check=False)
            if proc.returncode != 0:
                res.problems.append(f"{TSR}: the RFC 3161 timestamp does not verify against {SUMS}")
            else:
                res.notes.append(f"{TSR}: RFC 3161 timestamp verified")
        elif strict:
            res.problems.append(f"{TSR}: present, but no {TSA_CA} to check it against (--strict)")
        else:
            res.notes.append(f"{TSR}: present, but no {TSA_CA} to check it against")
    return res


def _announced(bundle: Path, meta: dict[str, Any], res: VerifyResult) -> str | None:
    """The key a rotation bundle announces, only if its file is there and matches bundle.json."""
    key = _public_key(bundle / ANNOUNCED, res, ANNOUNCED)
    if key is None:
        return None
    fp = keys.fingerprint(key)
    if meta["announces"]["sha256_fingerprint"] != fp:
        res.problems.append(f"{META}: announces a different key fingerprint from {ANNOUNCED}")
        return None
    return fp


def _public_key(path: Path, res: VerifyResult, name: str = PUB) -> Ed25519PublicKey | None:
    try:
        key = serialization.load_pem_public_key(path.read_bytes())
    except FileNotFoundError:
        res.problems.append(f"{name}: missing")
        return None
    except (ValueError, TypeError):
        res.problems.append(f"{name}: not a readable public key")
        return None
    if not isinstance(key, Ed25519PublicKey):
        res.problems.append(f"{name}: not an Ed25519 key")
        return None
    return key


def _safe(rel: str) -> bool:
    p = PurePosixPath(rel)
    return bool(rel) and not p.is_absolute() and ".." not in p.parts
