"""Sealed evidence bundles: one directory per run that an auditor can check with standard tools.

    <bundle>/index.html ...          the report site for the run (see security_checks.report)
    <bundle>/evidence/...            the run's evidence files (raw scan XML, runner events, plans...)
    <bundle>/bundle.json             run id, operator, times, tool versions, key fingerprint, chain link
    <bundle>/signing-key.pub.pem     the Ed25519 public key
    <bundle>/VERIFY.txt              how to check it with sha256sum and openssl
    <bundle>/SHA256SUMS              sha256sum format, every file above
    <bundle>/SHA256SUMS.sig          Ed25519 signature over SHA256SUMS (raw 64 bytes)
    <bundle>/SHA256SUMS.tsr          optional RFC 3161 timestamp over SHA256SUMS (+ tsa-ca.pem)

bundle.json records the SHA-256 of the previous bundle's SHA256SUMS, so the bundles form a chain: a
bundle removed or rewritten after a later one was sealed breaks the link. A seal builds everything
in a temporary directory beside the destination and renames it into place, so a killed seal leaves
nothing that looks like a bundle.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path, PurePosixPath
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from ..model.loader import LoadedEstate
from ..procs import pid_alive
from ..report.context import sha256_file
from ..store import Store, _operator, fsync_tree
from . import keys
from .scrub import withheld_reason

FORMAT = "estate-evidence-bundle/1"
SUMS, SIG, TSR, PUB, META, VERIFY, TSA_CA = ("SHA256SUMS", "SHA256SUMS.sig", "SHA256SUMS.tsr", "signing-key.pub.pem",
                                             "bundle.json", "VERIFY.txt", "tsa-ca.pem")
UNLISTED = {SUMS, SIG, TSR}  # files that cover SHA256SUMS rather than being covered by it


class SealError(Exception):
    pass


@dataclass
class VerifyResult:
    bundle: Path
    problems: list[str] = field(default_factory=list)   # each names the file at fault
    notes: list[str] = field(default_factory=list)
    files: int = 0
    run_id: str = ""
    chain: list[str] = field(default_factory=list)      # run ids checked, newest first

    @property
    def ok(self) -> bool:
        return not self.problems


def bundles_home(home: Path) -> Path:
    return home / "bundles"


# -- sealing ----------------------------------------------------------------------------------------


def seal(store: Store, run_id: str | None, dest_root: Path, loaded: LoadedEstate | None, *,
         keys_dir: Path, tsa_url: str | None = None, tsa_ca: Path | None = None,
         today: date | None = None) -> Path:
    from ..report import build, render_into

    run = store.get_run(run_id)
    if run is None:
        raise SealError(f"no run {run_id!r} in {store.home}" if run_id else f"no runs in {store.home} yet: "
                        "run `estate assess` first")
    key = keys.load_or_create(keys_dir)
    dest_root.mkdir(parents=True, exist_ok=True)
    final = dest_root / run.id
    if final.exists():
        raise SealError(f"{final}: run {run.id} is already sealed (bundles are never rewritten)")
    _remove_abandoned(dest_root)
    tmp = dest_root / f".seal-{run.id}-{os.getpid()}-{secrets.token_hex(4)}"
    tmp.mkdir()
    try:
        data = build(store, run.id, loaded, today)
        render_into(data, store.evidence_dir(run.id), tmp)
        withheld = _scrub(tmp) + [{"path": "evidence/" + e.path, "reason": e.withheld}
                                  for e in data.evidence if e.withheld]
        previous = _previous(dest_root, exclude=run.id)
        if tsa_ca:
            shutil.copyfile(tsa_ca, tmp / TSA_CA)
        (tmp / PUB).write_bytes(keys.public_pem(key))
        meta: dict[str, Any] = {
            "format": FORMAT,
            "run": {"id": run.id, "kind": run.kind, "operator": run.operator,
                    "started_at": run.started_at.isoformat(), "finished_at": run.finished_at.isoformat(),
                    "estate_dir": run.estate_dir, "estate_digest": run.estate_digest, "full_scope": run.full_scope,
                    "steps": run.steps},
            "tool_versions": run.tool_versions,
            "sealed_at": datetime.now(UTC).isoformat(timespec="microseconds"),
            "sealed_by": _operator(),
            "signing_key": {"algorithm": "Ed25519", "public_key_file": PUB,
                            "sha256_fingerprint": keys.fingerprint(key)},
            "previous": previous,
            "withheld": withheld,
            "timestamp": {"tsa_url": tsa_url} if tsa_url else None,
        }
        (tmp / META).write_text(json.dumps(meta, indent=2) + "\n")
        (tmp / VERIFY).write_text(verify_text(meta, tsa=bool(tsa_url), tsa_ca=bool(tsa_ca)))
        sums = sums_text(tmp)
        (tmp / SUMS).write_text(sums)
        (tmp / SIG).write_bytes(key.sign(sums.encode()))
        if tsa_url:
            from .tsa import timestamp

            timestamp(tmp / SUMS, tsa_url, tmp / TSR, ca=tmp / TSA_CA if tsa_ca else None)
        fsync_tree(tmp)
        os.chmod(tmp, 0o755)  # noqa: S103 (mkdtemp-style 0700 would hide it from auditors)
        os.rename(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


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
    removed = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = path.relative_to(root).as_posix()
        reason = withheld_reason(rel)
        if reason:
            path.unlink()
            removed.append({"path": rel, "reason": reason})
    return removed


def latest_bundle(dest_root: Path) -> Path | None:
    """The most recently sealed bundle in a bundles directory."""
    found = _previous(dest_root, exclude="")
    return dest_root / found["bundle"] if found else None


def _previous(dest_root: Path, exclude: str) -> dict[str, str] | None:
    """The most recently sealed bundle beside this one: the next link of the chain."""
    if not dest_root.is_dir():
        return None
    best: tuple[str, str, Path] | None = None
    for entry in dest_root.iterdir():
        if entry.name.startswith(".") or entry.name == exclude or not (entry / META).is_file():
            continue
        try:
            sealed_at = json.loads((entry / META).read_text())["sealed_at"]
        except (OSError, ValueError, KeyError):
            continue
        if best is None or (sealed_at, entry.name) > best[:2]:
            best = (sealed_at, entry.name, entry)
    if best is None:
        return None
    return {"bundle": best[1], "sha256_of_SHA256SUMS": sha256_file(best[2] / SUMS)}


def sums_text(root: Path) -> str:
    lines = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = path.relative_to(root).as_posix()
        if rel in UNLISTED:
            continue
        if "\n" in rel or "\\" in rel:
            raise SealError(f"{rel!r}: file names with newlines or backslashes cannot be listed in SHA256SUMS")
        lines.append(f"{sha256_file(path)}  {rel}\n")
    return "".join(lines)


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
   (compare with the fingerprint the security group publishes; the bundle alone cannot prove it):

  $ openssl pkey -pubin -in {PUB} -outform DER | sha256sum
"""
    if tsa:
        ca = f"-CAfile {TSA_CA}" if tsa_ca else "-CAfile <the TSA's CA certificate>"
        text += f"""
4. The checksums existed no later than the RFC 3161 timestamp:

  $ openssl ts -verify -in {TSR} -data SHA256SUMS {ca}
"""
    text += f"""
Chain: bundle.json names the previous bundle ({prev['bundle'] if prev else 'none: this is the first'}){
    ' and the SHA-256 of its SHA256SUMS, ' + prev['sha256_of_SHA256SUMS'] if prev else ''}.
With that bundle beside this one:  sha256sum ../{prev['bundle'] if prev else '<previous>'}/SHA256SUMS

Or, with the estate tool:  estate evidence verify .
Files withheld because they could hold secrets are listed in bundle.json ("withheld").
"""
    return text


# -- verifying --------------------------------------------------------------------------------------


def verify(bundle: Path, trusted_fingerprint: str | None = None, follow_chain: bool = True) -> VerifyResult:
    result = _verify_one(bundle, trusted_fingerprint)
    result.chain.append(result.run_id or bundle.name)
    if not follow_chain or not result.ok:
        return result
    current, seen = bundle, {bundle.resolve()}
    while True:
        try:
            prev = json.loads((current / META).read_text()).get("previous")
        except (OSError, ValueError):
            break
        if not prev:
            result.notes.append("chain: reaches the first bundle")
            break
        prev_dir = current.parent / prev["bundle"]
        if not (prev_dir / SUMS).is_file():
            result.notes.append(f"chain: previous bundle {prev['bundle']} is not beside {current.name}, "
                                "so the link to it is not checked")
            break
        if sha256_file(prev_dir / SUMS) != prev.get("sha256_of_SHA256SUMS"):
            result.problems.append(f"{current.name}/{META}: chain broken: {prev['bundle']}/SHA256SUMS does not "
                                   "match the SHA-256 recorded when this bundle was sealed")
            break
        if prev_dir.resolve() in seen:
            result.problems.append(f"{current.name}/{META}: chain loops back to {prev['bundle']}")
            break
        seen.add(prev_dir.resolve())
        earlier = _verify_one(prev_dir, trusted_fingerprint)
        result.chain.append(earlier.run_id or prev_dir.name)
        if not earlier.ok:
            result.problems += [f"{prev_dir.name}/{p}" for p in earlier.problems]
            break
        current = prev_dir
    return result


def _verify_one(bundle: Path, trusted_fingerprint: str | None) -> VerifyResult:
    res = VerifyResult(bundle)
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
    for rel, digest in sorted(listed.items()):
        path = bundle / rel
        if not path.is_file():
            res.problems.append(f"{rel}: listed in {SUMS} but missing")
        elif sha256_file(path) != digest:
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
        if trusted_fingerprint and keys.fingerprint(pub) != trusted_fingerprint:
            res.problems.append(f"{PUB}: signed with key {keys.fingerprint(pub)[:16]}..., not the trusted key "
                                f"{trusted_fingerprint[:16]}...")
    try:
        meta = json.loads((bundle / META).read_text())
        res.run_id = meta["run"]["id"]
        if meta.get("format") != FORMAT:
            res.problems.append(f"{META}: unknown format {meta.get('format')!r}")
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
        else:
            res.notes.append(f"{TSR}: present, but no {TSA_CA} to check it against")
    return res


def _public_key(path: Path, res: VerifyResult) -> Ed25519PublicKey | None:
    try:
        key = serialization.load_pem_public_key(path.read_bytes())
    except FileNotFoundError:
        res.problems.append(f"{PUB}: missing")
        return None
    except (ValueError, TypeError):
        res.problems.append(f"{PUB}: not a readable public key")
        return None
    if not isinstance(key, Ed25519PublicKey):
        res.problems.append(f"{PUB}: not an Ed25519 key")
        return None
    return key


def _safe(rel: str) -> bool:
    p = PurePosixPath(rel)
    return bool(rel) and not p.is_absolute() and ".." not in p.parts
