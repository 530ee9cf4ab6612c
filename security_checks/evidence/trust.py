"""Which signing keys the council trusts, so a bundle re-signed with any other key fails verify.

A valid signature only shows that SHA256SUMS was signed by the key whose public half sits beside
it: anyone can rewrite a bundle and sign it again with a key of their own. What makes a bundle the
council's is the key, so verify always compares the signer's fingerprint with the keys trusted:

- this home's own key (ESTATE_HOME/keys/signing-key.pem) and the keys it retired by rotation
  (ESTATE_HOME/keys/retired/*.pub.pem): the machine that seals trusts what it sealed with;
- the trusted-keys file the security group publishes (format below): `--trusted-keys FILE`, or
  ESTATE_TRUSTED_KEYS, or ESTATE_HOME/trusted-keys.txt when it exists;
- a fingerprint the auditor names on the command line (`--trust-fingerprint`), having confirmed it
  with the security group out of band;
- a key announced by a key-rotation bundle in the chain that was itself signed by a trusted key
  (security_checks/evidence/bundle.py follows these).

The trusted-keys file (`estate-trusted-keys/1`), one key a line:

    # estate-trusted-keys/1: evidence signing keys of <council>'s security group
    <64 hex digits: SHA-256 of the DER public key>  <free text: whose key, since when>

Blank lines and lines starting with # are ignored. The fingerprint is the one
`openssl pkey -pubin -in signing-key.pub.pem -outform DER | sha256sum` prints, so the security
group can publish it (intranet, the estate repository, a signed letter) without this tool.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from . import keys

FILE_FORMAT = "estate-trusted-keys/1"
HOME_FILE = "trusted-keys.txt"
ENV = "ESTATE_TRUSTED_KEYS"
_FP = re.compile(r"^[0-9a-f]{64}$")


class TrustFileError(Exception):
    """A trusted-keys file (or a fingerprint given on the command line) that cannot be read: file:line and why."""


@dataclass
class Trust:
    """Fingerprints trusted directly, each with the reason it is trusted (printed beside it)."""

    keys: dict[str, str] = field(default_factory=dict)
    sources: list[str] = field(default_factory=list)   # where trust was looked for, for the failure message

    def why(self, fp: str) -> str | None:
        return self.keys.get(fp)

    def add(self, fp: str, why: str) -> None:
        self.keys.setdefault(fp, why)


def normalise(fp: str, where: str) -> str:
    """A fingerprint as 64 lower-case hex digits (colons, spaces and a SHA256: prefix are tolerated)."""
    text = fp.strip()
    if text.lower().startswith("sha256:"):
        text = text[7:]
    text = text.replace(":", "").replace(" ", "").lower()
    if not _FP.match(text):
        raise TrustFileError(f"{where}: {fp.strip()[:80]!r} is not a SHA-256 key fingerprint (64 hex digits)")
    return text


def read_file(path: Path) -> dict[str, str]:
    """Fingerprint -> label for every key in a trusted-keys file; TrustFileError names file:line."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise TrustFileError(f"{path}: no such trusted-keys file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise TrustFileError(f"{path}: cannot be read ({type(exc).__name__})") from None
    out: dict[str, str] = {}
    for n, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        fp_text, _, label = stripped.partition(" ")
        fp = normalise(fp_text, f"{path}:{n}")
        out.setdefault(fp, f"{path.name}:{n}" + (f" ({label.strip()})" if label.strip() else ""))
    if not out:
        raise TrustFileError(f"{path}: lists no key (one `<fingerprint>  <label>` a line; see `estate evidence "
                             "verify --help`)")
    return out


def home_keys(keys_dir: Path) -> dict[str, str]:
    """The home's current key and the keys it retired, without creating anything."""
    out: dict[str, str] = {}
    current = keys_dir / keys.KEY_NAME
    if current.is_file():
        try:
            key = serialization.load_pem_private_key(current.read_bytes(), password=None)
        except (OSError, ValueError, TypeError):
            key = None
        if isinstance(key, Ed25519PrivateKey):
            out[keys.fingerprint(key)] = "this home's signing key"
    for pub in sorted((keys_dir / keys.RETIRED).glob("*.pub.pem")):
        try:
            loaded = serialization.load_pem_public_key(pub.read_bytes())
        except (OSError, ValueError, TypeError):
            continue
        if isinstance(loaded, Ed25519PublicKey):
            out.setdefault(keys.fingerprint(loaded), "a key this home retired by rotation")
    return out


def load(home: Path, files: list[Path], fingerprints: list[str], *, env_file: str | None = None) -> Trust:
    """The keys trusted for one verify: the home's, the trusted-keys files', the named fingerprints'."""
    trust = Trust()
    trust.sources.append(f"this home's keys ({home / 'keys'})")
    for fp, why in home_keys(home / "keys").items():
        trust.add(fp, why)
    chosen = list(files)
    if not chosen and env_file:
        chosen = [Path(env_file)]
    if not chosen and (home / HOME_FILE).is_file():
        chosen = [home / HOME_FILE]
    for path in chosen:
        trust.sources.append(str(path))
        for fp, why in read_file(path).items():
            trust.add(fp, f"listed in {why}")
    for given in fingerprints:
        trust.add(normalise(given, "--trust-fingerprint"), "named with --trust-fingerprint")
    if fingerprints:
        trust.sources.append("--trust-fingerprint")
    return trust
