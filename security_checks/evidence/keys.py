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
