"""Archiving sealed bundles: S3 with Object Lock (COMPLIANCE mode), or a read-only directory.

S3: every object is written with ObjectLockMode=COMPLIANCE and its own ObjectLockRetainUntilDate
(never relying on a bucket default, which some servers ignore), then read back with HeadObject to
confirm the lock took. An object already there with the same SHA-256 is left alone; one with a
different SHA-256 is a conflict and stops the push (an archive is never overwritten).

When S3 cannot be reached, the bundle waits in the spool (ESTATE_HOME/spool/) and the next push
sends it; the evidence_pushes table records what is stored, so nothing is pushed twice.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from ..report.context import sha256_file
from ..store import Store
from .bundle import SIG, SUMS, verify

# Upload order: the signature last, so a bundle whose .sig is in the archive is complete.
_LAST = {SUMS: 1, SIG: 2}


class ArchiveUnreachable(Exception):
    """The archive could not be reached now: spool and try later."""


class ArchiveConflict(Exception):
    """The archive already holds something different under this bundle's name."""


class Archive(Protocol):
    destination: str

    def put_bundle(self, bundle: Path) -> tuple[int, datetime | None]: ...


@dataclass
class PushOutcome:
    bundle: str
    state: str          # pushed, already, spooled, refused, conflict
    detail: str = ""


def bundle_files(bundle: Path) -> list[tuple[str, Path]]:
    files = [(p.relative_to(bundle).as_posix(), p) for p in bundle.rglob("*") if p.is_file()]
    return sorted(files, key=lambda rp: (_LAST.get(rp[0], 0), rp[0]))


class DirectoryArchive:
    """A local (or mounted) directory: each bundle copied in whole, then made read-only."""

    def __init__(self, root: Path):
        self.root = root
        self.destination = f"dir:{root.resolve()}"

    def put_bundle(self, bundle: Path) -> tuple[int, datetime | None]:
        self.root.mkdir(parents=True, exist_ok=True)
        final = self.root / bundle.name
        if final.exists():
            if (final / SUMS).is_file() and sha256_file(final / SUMS) == sha256_file(bundle / SUMS):
                return 0, None
            raise ArchiveConflict(f"{final}: holds a different bundle under the name {bundle.name}")
        tmp = self.root / f".incoming-{bundle.name}-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.copytree(bundle, tmp)
        for dirpath, _dirs, files in os.walk(tmp, topdown=False):
            for name in files:
                os.chmod(os.path.join(dirpath, name), 0o444)
            os.chmod(dirpath, 0o555)  # noqa: S103 (read-only for all: an archive auditors read)
        os.rename(tmp, final)
        return len(bundle_files(final)), None


class S3Archive:
    def __init__(self, bucket: str, *, endpoint: str | None = None, prefix: str = "", retain_days: int = 2555,
                 region: str | None = None, client: Any = None):
        self.bucket, self.prefix, self.retain_days = bucket, prefix.strip("/"), retain_days
        self.destination = f"s3://{bucket}/{self.prefix}" + (f"@{endpoint}" if endpoint else "")
        if client is None:
            import boto3
            from botocore.config import Config

            client = boto3.client("s3", endpoint_url=endpoint, region_name=region or "us-east-1",
                                  config=Config(connect_timeout=5, read_timeout=60,
                                                retries={"max_attempts": 2, "mode": "standard"},
                                                s3={"addressing_style": "path"}))
        self.s3 = client

    def key(self, bundle: str, rel: str) -> str:
        return "/".join(p for p in (self.prefix, bundle, rel) if p)

    def put_bundle(self, bundle: Path) -> tuple[int, datetime | None]:
        from botocore.exceptions import ClientError

        until = (datetime.now(UTC) + timedelta(days=self.retain_days)).replace(microsecond=0)
        stored = 0
        with _unreachable_as_exception():
            for rel, path in bundle_files(bundle):
                key = self.key(bundle.name, rel)
                body = path.read_bytes()
                digest = hashlib.sha256(body).hexdigest()
                try:
                    head = self.s3.head_object(Bucket=self.bucket, Key=key)
                except ClientError as exc:
                    if exc.response.get("Error", {}).get("Code") not in ("404", "NoSuchKey", "NotFound"):
                        raise
                    head = None
                if head is not None:
                    if head.get("Metadata", {}).get("sha256") != digest:
                        raise ArchiveConflict(f"s3://{self.bucket}/{key}: already holds different content")
                    self._confirm_lock(key, head, None)
                    continue
                self.s3.put_object(
                    Bucket=self.bucket, Key=key, Body=body, Metadata={"sha256": digest},
                    ContentMD5=base64.b64encode(hashlib.md5(body).digest()).decode(),  # noqa: S324 (S3 integrity)
                    ObjectLockMode="COMPLIANCE", ObjectLockRetainUntilDate=until)
                self._confirm_lock(key, self.s3.head_object(Bucket=self.bucket, Key=key), until)
                stored += 1
        return stored, until

    def _confirm_lock(self, key: str, head: dict[str, Any], until: datetime | None) -> None:
        mode, retain = head.get("ObjectLockMode"), head.get("ObjectLockRetainUntilDate")
        if mode != "COMPLIANCE" or retain is None:
            raise ArchiveConflict(f"s3://{self.bucket}/{key}: stored without a COMPLIANCE lock (mode {mode!r}): "
                                  "is Object Lock enabled on the bucket?")
        if until is not None and retain < until - timedelta(seconds=1):
            raise ArchiveConflict(f"s3://{self.bucket}/{key}: locked only until {retain.isoformat()}, "
                                  f"not {until.isoformat()}")


class _unreachable_as_exception:
    def __enter__(self) -> None:
        return None

    def __exit__(self, typ: Any, exc: BaseException | None, tb: Any) -> None:
        from botocore.exceptions import ConnectionError as BotoConnectionError
        from botocore.exceptions import HTTPClientError

        if exc is not None and isinstance(exc, (BotoConnectionError, HTTPClientError, ConnectionError)):
            raise ArchiveUnreachable(str(exc)) from None


# -- the spool and the push -------------------------------------------------------------------------


def spool_dir(home: Path) -> Path:
    return home / "spool"


def _spool_entry(home: Path, archive: Archive, bundle: Path) -> Path:
    tag = hashlib.sha256(archive.destination.encode()).hexdigest()[:12]
    return spool_dir(home) / tag / f"{bundle.name}.json"


def spooled(home: Path, archive: Archive) -> list[Path]:
    tag = hashlib.sha256(archive.destination.encode()).hexdigest()[:12]
    out = []
    for entry in sorted((spool_dir(home) / tag).glob("*.json")):
        try:
            out.append(Path(json.loads(entry.read_text())["bundle"]))
        except (OSError, ValueError, KeyError):
            continue
    return out


def push(store: Store, archive: Archive, bundles: Iterable[Path], trusted_fingerprint: str | None = None
         ) -> list[PushOutcome]:
    """Push bundles (and whatever waits in the spool for this archive); returns one outcome per bundle."""
    home = store.home
    queue: dict[str, Path] = {}
    for b in [*spooled(home, archive), *bundles]:
        queue.setdefault(b.resolve().as_posix(), b)
    outcomes: list[PushOutcome] = []
    unreachable = False
    for bundle in queue.values():
        entry = _spool_entry(home, archive, bundle)
        if not (bundle / SUMS).is_file():
            outcomes.append(PushOutcome(bundle.name, "refused", f"{bundle}: not a sealed bundle"))
            entry.unlink(missing_ok=True)
            continue
        sums = sha256_file(bundle / SUMS)
        row = store.db.execute("SELECT sums_sha256 FROM evidence_pushes WHERE destination = ? AND bundle = ?",
                               (archive.destination, bundle.name)).fetchone()
        if row is not None:
            entry.unlink(missing_ok=True)
            if row[0] == sums:
                outcomes.append(PushOutcome(bundle.name, "already", "pushed before"))
            else:
                outcomes.append(PushOutcome(bundle.name, "conflict", "a different bundle of this name was pushed"))
            continue
        check = verify(bundle, trusted_fingerprint, follow_chain=False)
        if not check.ok:
            outcomes.append(PushOutcome(bundle.name, "refused", "does not verify: " + "; ".join(check.problems[:3])))
            continue
        if unreachable:
            _spool(entry, bundle, archive)
            outcomes.append(PushOutcome(bundle.name, "spooled", "archive unreachable"))
            continue
        try:
            stored, until = archive.put_bundle(bundle)
        except ArchiveUnreachable as exc:
            unreachable = True
            _spool(entry, bundle, archive)
            outcomes.append(PushOutcome(bundle.name, "spooled", f"archive unreachable: {exc}"))
            continue
        except ArchiveConflict as exc:
            outcomes.append(PushOutcome(bundle.name, "conflict", str(exc)))
            continue
        store.db.execute("INSERT INTO evidence_pushes (destination, bundle, sums_sha256, objects, retain_until,"
                         " pushed_at) VALUES (?,?,?,?,?,?)",
                         (archive.destination, bundle.name, sums, stored, until.isoformat() if until else None,
                          datetime.now(UTC).replace(microsecond=0).isoformat()))
        entry.unlink(missing_ok=True)
        outcomes.append(PushOutcome(bundle.name, "pushed",
                                    f"{stored} object(s)" + (f", locked until {until.date()}" if until else "")))
    return outcomes


def _spool(entry: Path, bundle: Path, archive: Archive) -> None:
    entry.parent.mkdir(parents=True, exist_ok=True)
    tmp = entry.with_suffix(".tmp")
    tmp.write_text(json.dumps({"bundle": str(bundle.resolve()), "destination": archive.destination,
                               "spooled_at": datetime.now(UTC).replace(microsecond=0).isoformat()}))
    os.replace(tmp, entry)
