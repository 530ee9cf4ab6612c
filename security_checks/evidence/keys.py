"""The Ed25519 signing key: created on first use under ESTATE_HOME/keys/ (0600), never copied anywhere.

Only the public key goes into bundles. The private key file is created atomically (written under a
temporary name, then hard-linked into place), so two seals racing, or a seal killed half-way, can
never leave a truncated key that would sign bundles nobody can verify.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ..fsutil import private_dir

KEY_NAME = "signing-key.pem"
PENDING = "signing-key.pending.pem"   # the next key, between its announcement being sealed and taking over
RETIRED = "retired"                   # public halves of keys replaced by rotation (keys/retired/<fp>.pub.pem)


class SigningKeyError(Exception):
    """The signing key exists but cannot be used (unreadable, wrong type, too permissive)."""


def load_or_create(keys_dir: Path) -> Ed25519PrivateKey:
    private_dir(keys_dir)
    path = keys_dir / KEY_NAME
    if not path.exists():
        _create(path)
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        raise SigningKeyError(f"{path}: mode {mode:o} lets others read the signing key; chmod 600 it")
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (ValueError, TypeError) as exc:
        raise SigningKeyError(f"{path}: not a readable PEM private key ({exc})") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise SigningKeyError(f"{path}: not an Ed25519 key")
    return key


def create_pending(keys_dir: Path) -> Ed25519PrivateKey:
    """The key a rotation will switch to, kept beside the current one until its announcement is sealed."""
    private_dir(keys_dir)
    path = keys_dir / PENDING
    path.unlink(missing_ok=True)  # a rotation that never announced its key: that key was never used
    _create(path)
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    assert isinstance(key, Ed25519PrivateKey)
    return key


def pending_fingerprint(keys_dir: Path) -> str | None:
    path = keys_dir / PENDING
    if not path.is_file():
        return None
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    return fingerprint(key) if isinstance(key, Ed25519PrivateKey) else None


def complete_rotation(keys_dir: Path) -> str:
    """Make the pending key the signing key; keep only the public half of the old one. Returns the new fingerprint.

    The old private key is replaced in one rename, so no later bundle can be signed with it; its
    public half stays in keys/retired/ so this home still trusts the bundles it sealed before.
    """
    old = load_or_create(keys_dir)
    retired = keys_dir / RETIRED
    private_dir(retired)
    pub = retired / f"{fingerprint(old)}.pub.pem"
    if not pub.exists():
        tmp = pub.with_name(f".{pub.name}.{os.getpid()}.tmp")
        tmp.write_bytes(public_pem(old))
        os.replace(tmp, pub)
    new_fp = pending_fingerprint(keys_dir)
    if new_fp is None:
        raise SigningKeyError(f"{keys_dir / PENDING}: no pending key to switch to")
    os.chmod(keys_dir / PENDING, 0o600)
    os.replace(keys_dir / PENDING, keys_dir / KEY_NAME)
    fd = os.open(keys_dir, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    return new_fp


def _create(path: Path) -> None:
    pem = Ed25519PrivateKey.generate().private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                     serialization.NoEncryption())
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, pem)
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(tmp, path)  # fails if another process created the key first: then we use theirs
    except FileExistsError:
        pass
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def public_pem(key: Ed25519PrivateKey | Ed25519PublicKey) -> bytes:
    pub = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return pub.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def fingerprint(key: Ed25519PrivateKey | Ed25519PublicKey) -> str:
    """SHA-256 of the DER public key: what `openssl pkey -pubin -outform DER | sha256sum` prints."""
    pub = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    der = pub.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()
