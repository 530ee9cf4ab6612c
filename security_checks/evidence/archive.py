"""Archiving sealed bundles: S3 with Object Lock (COMPLIANCE mode), or a read-only directory.

What is recorded is what the archive says it holds, read back after writing, never what the tool
asked for. Each object's row (store/pushes.py) carries the retain-until date and mode the server
reported, its version and its SHA-256, so `audit_archive` can later read every one again and show
any lock that got shorter, any object that went missing or unlocked, any content that changed.

S3: a new object is written with ObjectLockMode=COMPLIANCE and its own ObjectLockRetainUntilDate
(never a bucket default, which some servers ignore). An object already there is only accepted
when its content hashes to the same SHA-256 (read, not taken from its metadata) and it is locked
in COMPLIANCE mode; a shorter lock than wanted is lengthened with PutObjectRetention (COMPLIANCE
allows lengthening, never shortening). GOVERNANCE mode (which privileged users can shorten or
lift) or no lock at all is a conflict: the tool never weakens a lock and never claims one it did
not get. A different object under the same key is a conflict too (an archive is never
overwritten). Retention is read with GetObjectRetention and with HeadObject and the earlier date
wins; where a server does not implement GetObjectRetention, HeadObject's answer stands alone.

When S3 cannot be reached, the bundle waits in the spool (ESTATE_HOME/spool/, private) and the
next push sends it. A bundle is recorded only once all its objects are stored and read back, in
one transaction, so a push killed half-way is simply done again: objects already stored are
found, checked and (if need be) their locks lengthened, and nothing is sent twice.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from ..fsutil import atomic_write, fsync_dir, fsync_tree, private_dir
from ..procs import pid_alive
from ..store import Store, sha256_file
from ..store import pushes as records
from ..store.pushes import ArchivedObject, RecordedObject
from ..testhooks import pause_at
from .bundle import SIG, SUMS, verify
from .trust import Trust

# Upload order: the signature last, so a bundle whose .sig is in the archive is complete.
_LAST = {SUMS: 1, SIG: 2}
COMPLIANCE, GOVERNANCE, READ_ONLY = "COMPLIANCE", "GOVERNANCE", "read-only"
# "No retention on this object": AWS says NoSuchObjectLockConfiguration; SeaweedFS (4.x, observed)
# says ObjectLockConfigurationNotFoundError, also when the key's latest version is a delete marker.
_NO_LOCK = {"NoSuchObjectLockConfiguration", "ObjectLockConfigurationNotFoundError"}
_NOT_FOUND = {"404", "NoSuchKey", "NotFound", "NoSuchVersion"}
_NOT_IMPLEMENTED = {"NotImplemented", "501"}


class ArchiveUnreachable(Exception):
    """The archive could not be reached now: spool and try later."""


class ArchiveConflict(Exception):
    """The archive holds something under this bundle's name that cannot be claimed as archived."""


@dataclass
class Stored:
    """What one put_bundle achieved, per object as read back from the archive."""

    objects: list[ArchivedObject] = field(default_factory=list)
    sent: int = 0        # objects written now
    extended: int = 0    # objects already there whose lock was lengthened


class Archive(Protocol):
    destination: str

    def put_bundle(self, bundle: Path) -> Stored: ...

    def check(self, obj: RecordedObject) -> list[str]: ...


@dataclass
class PushOutcome:
    bundle: str
    state: str          # pushed, already, spooled, refused, conflict
    detail: str = ""
    objects: int = 0
    retain_until: str | None = None   # the earliest of the bundle's objects, as the archive reported


def bundle_files(bundle: Path) -> list[tuple[str, Path]]:
    files = [(p.relative_to(bundle).as_posix(), p) for p in bundle.rglob("*") if p.is_file()]
    return sorted(files, key=lambda rp: (_LAST.get(rp[0], 0), rp[0]))


def _sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# -- a directory ------------------------------------------------------------------------------------


class DirectoryArchive:
    """A local (or mounted) directory: each bundle copied in whole, then made read-only.

    Outside the home (a share for auditors) files are 0444 and directories 0555. Inside the home
    (the default, ESTATE_HOME/archive) they are 0400 and 0500: read-only, and private like
    everything else there.
    """

    def __init__(self, root: Path, home: Path | None = None):
        self.root = root
        self.destination = f"dir:{root.resolve()}"
        self.private = home is not None and root.resolve().is_relative_to(home.resolve())
        self.file_mode, self.dir_mode = (0o400, 0o500) if self.private else (0o444, 0o555)

    def put_bundle(self, bundle: Path) -> Stored:
        if self.private:
            private_dir(self.root)
        else:
            self.root.mkdir(parents=True, exist_ok=True)
        final = self.root / bundle.name
        self._remove_abandoned(bundle.name)
        if final.exists():
            ours = {rel: sha256_file(p) for rel, p in bundle_files(bundle)}
            theirs = {rel: sha256_file(p) for rel, p in bundle_files(final)}
            if ours != theirs:
                raise ArchiveConflict(f"{final}: holds a different bundle under the name {bundle.name}")
            self._read_only(final)  # the same files, but someone may have made them writable again
            return Stored(self._read_back(bundle.name, final))
        tmp = self.root / f".incoming-{bundle.name}-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.copytree(bundle, tmp)
        self._read_only(tmp)
        fsync_tree(tmp)
        pause_at("push:dir-copied")
        os.rename(tmp, final)
        fsync_dir(self.root)
        stored = self._read_back(bundle.name, final)
        return Stored(stored, sent=len(stored))

    def _read_only(self, root: Path) -> None:
        for dirpath, _dirs, files in os.walk(root, topdown=False):
            for name in files:
                os.chmod(os.path.join(dirpath, name), self.file_mode)
            os.chmod(dirpath, self.dir_mode)

    def _read_back(self, name: str, final: Path) -> list[ArchivedObject]:
        out = []
        for rel, path in bundle_files(final):
            st = path.stat()
            if st.st_mode & 0o222:
                raise ArchiveConflict(f"{path}: still writable after it was made read-only")
            out.append(ArchivedObject(key=f"{name}/{rel}", sha256=sha256_file(path), size=st.st_size,
                                      retain_until=None, mode=READ_ONLY))
        return out

    def _remove_abandoned(self, name: str) -> None:
        """Copies left by pushes that were killed before their rename (their process is gone)."""
        for entry in self.root.glob(f".incoming-{name}-*"):
            try:
                pid = int(entry.name.rsplit("-", 1)[-1])
            except ValueError:
                continue
            if not pid_alive(pid):
                for dirpath, _dirs, _files in os.walk(entry):
                    os.chmod(dirpath, 0o700)  # read-only directories cannot be emptied otherwise
                shutil.rmtree(entry, ignore_errors=True)

    def check(self, obj: RecordedObject) -> list[str]:
        path = self.root / obj.key
        if not path.is_file():
            return [f"missing: {path} is gone"]
        problems = []
        if path.stat().st_mode & 0o222:
            problems.append(f"unlocked: {path} is writable again (mode {path.stat().st_mode & 0o777:o})")
        digest = sha256_file(path)
        if digest != obj.sha256:
            problems.append(f"content differs: SHA-256 {digest[:16]}..., archived {obj.sha256[:16]}...")
        return problems


# -- S3 ---------------------------------------------------------------------------------------------


class S3Archive:
    def __init__(self, bucket: str, *, endpoint: str | None = None, prefix: str = "", retain_days: int = 2555,
                 region: str | None = None, client: Any = None):
        self.bucket, self.prefix, self.retain_days = bucket, prefix.strip("/"), retain_days
        self.destination = f"s3://{bucket}/{self.prefix}" + (f"@{endpoint}" if endpoint else "")
        if client is None:
            import boto3
            from botocore.config import Config

            # A session of its own: boto3's default one keeps the first credentials it found for good.
            client = boto3.session.Session().client(
                "s3", endpoint_url=endpoint, region_name=region or "us-east-1",
                config=Config(connect_timeout=5, read_timeout=60, retries={"max_attempts": 2, "mode": "standard"},
                              s3={"addressing_style": "path"}))
        self.s3 = client

    def key(self, bundle: str, rel: str) -> str:
        return "/".join(p for p in (self.prefix, bundle, rel) if p)

    def _where(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    def put_bundle(self, bundle: Path) -> Stored:
        wanted = (datetime.now(UTC) + timedelta(days=self.retain_days)).replace(microsecond=0)
        out = Stored()
        with _unreachable_as_exception():
            for rel, path in bundle_files(bundle):
                key = self.key(bundle.name, rel)
                body = path.read_bytes()
                digest = _sha256_bytes(body)
                head = self._head(key)
                if head is None:
                    put = self.s3.put_object(
                        Bucket=self.bucket, Key=key, Body=body, Metadata={"sha256": digest},
                        ContentMD5=base64.b64encode(hashlib.md5(body).digest()).decode(),  # noqa: S324 (S3 integrity)
                        ObjectLockMode=COMPLIANCE, ObjectLockRetainUntilDate=wanted)
                    version = put.get("VersionId")
                    out.sent += 1
                else:
                    version = head.get("VersionId")
                    out.extended += self._adopt(key, version, head, digest, wanted)
                mode, until = self._lock(key, version)
                if mode != COMPLIANCE or until is None:
                    raise ArchiveConflict(f"{self._where(key)}: stored without a COMPLIANCE lock (the server reports "
                                          f"mode {mode!r}): is Object Lock enabled on the bucket?")
                if until < wanted:
                    raise ArchiveConflict(f"{self._where(key)}: the server reports it locked only until "
                                          f"{until.isoformat()}, not {wanted.isoformat()} as asked")
                out.objects.append(ArchivedObject(key=key, sha256=digest, size=len(body), retain_until=until,
                                                  mode=mode, version_id=version))
                pause_at("push:object-stored")
        return out

    def _adopt(self, key: str, version: str | None, head: dict[str, Any], digest: str, wanted: datetime) -> int:
        """An object already under this key: ours only if identical and COMPLIANCE-locked. Returns 1 if
        its lock had to be lengthened to `wanted`."""
        from botocore.exceptions import ClientError

        where = self._where(key)
        if head.get("Metadata", {}).get("sha256") != digest or self._sha256(key, version) != digest:
            raise ArchiveConflict(f"{where}: already holds different content")
        mode, until = self._lock(key, version)
        if mode == GOVERNANCE:
            raise ArchiveConflict(f"{where}: already there, locked in GOVERNANCE mode (until "
                                  f"{until.isoformat() if until else '?'}), which privileged users can shorten or "
                                  "lift; it is not claimed as archived (use another --prefix or bucket)")
        if mode != COMPLIANCE or until is None:
            raise ArchiveConflict(f"{where}: already there with no Object Lock retention (mode {mode!r}); it is not "
                                  "claimed as archived (use another --prefix or bucket)")
        if until >= wanted:
            return 0
        try:
            self.s3.put_object_retention(Bucket=self.bucket, Key=key, **_version(version),
                                         Retention={"Mode": COMPLIANCE, "RetainUntilDate": wanted})
        except ClientError as exc:
            raise ArchiveConflict(f"{where}: already there but locked only until {until.isoformat()}, and the "
                                  f"server refused to lengthen it to {wanted.isoformat()} ({_code(exc)})") from None
        return 1

    def _head(self, key: str, version: str | None = None) -> dict[str, Any] | None:
        from botocore.exceptions import ClientError

        try:
            head: dict[str, Any] = self.s3.head_object(Bucket=self.bucket, Key=key, **_version(version))
        except ClientError as exc:
            if _code(exc) in _NOT_FOUND:
                return None
            raise
        return head

    def _sha256(self, key: str, version: str | None) -> str:
        h = hashlib.sha256()
        body = self.s3.get_object(Bucket=self.bucket, Key=key, **_version(version))["Body"]
        for chunk in body.iter_chunks(1 << 20):
            h.update(chunk)
        return h.hexdigest()

    def _lock(self, key: str, version: str | None) -> tuple[str | None, datetime | None]:
        """The lock the server reports now: (mode, retain-until in UTC), or (None, None) for none.

        GetObjectRetention is the lock's own API; HeadObject reports it too. Both are read and the
        weaker answer wins, so a server whose two answers disagree is never taken at its word.
        """
        from botocore.exceptions import ClientError

        head = self._head(key, version)
        if head is None:
            return None, None
        h_mode, h_until = head.get("ObjectLockMode"), _utc(head.get("ObjectLockRetainUntilDate"))
        try:
            ret = self.s3.get_object_retention(Bucket=self.bucket, Key=key, **_version(version)).get("Retention") or {}
        except ClientError as exc:
            if _code(exc) in _NO_LOCK:
                return None, None
            if _code(exc) in _NOT_IMPLEMENTED:
                return h_mode, h_until  # a server without GetObjectRetention: HeadObject is all there is
            raise
        mode, until = ret.get("Mode"), _utc(ret.get("RetainUntilDate"))
        if h_mode is not None and h_mode != mode:
            mode = GOVERNANCE if GOVERNANCE in (h_mode, mode) else None
        if h_until is not None and until is not None:
            until = min(until, h_until)
        return mode, until

    def check(self, obj: RecordedObject) -> list[str]:
        from botocore.exceptions import ClientError

        try:
            return self._check(obj)
        except ClientError as exc:
            return [f"unreadable: the server answered {_code(exc) or 'an error'} to reading it back"]

    def _check(self, obj: RecordedObject) -> list[str]:
        with _unreachable_as_exception():
            if self._head(obj.key, obj.version_id) is None:
                return [f"missing: {self._where(obj.key)} (version {obj.version_id}) is no longer in the archive"]
            problems = []
            mode, until = self._lock(obj.key, obj.version_id)
            if mode is None or until is None:
                problems.append("unlocked: the server reports no Object Lock retention")
            elif mode != obj.mode:
                problems.append(f"lock weakened: mode {mode}, archived in {obj.mode}")
            if until is not None and obj.retain_until is not None and until < obj.retain_until:
                problems.append(f"lock shorter than recorded: until {until.isoformat()}, recorded "
                                f"{obj.retain_until.isoformat()}")
            digest = self._sha256(obj.key, obj.version_id)
            if digest != obj.sha256:
                problems.append(f"content differs: SHA-256 {digest[:16]}..., archived {obj.sha256[:16]}...")
            if obj.version_id:
                latest = self._head(obj.key)
                if latest is None:
                    problems.append("hidden: the key answers 404 (a delete marker lies over the archived version)")
                elif latest.get("VersionId") != obj.version_id:
                    problems.append(f"shadowed: a newer version ({latest.get('VersionId')}) lies over the archived "
                                    "one; readers by key get that instead")
        return problems


def _version(version: str | None) -> dict[str, str]:
    return {"VersionId": version} if version else {}


def _code(exc: Any) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _utc(at: Any) -> datetime | None:
    return at.astimezone(UTC) if isinstance(at, datetime) else None


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


def push(store: Store, archive: Archive, bundles: Iterable[Path], trust: Trust | None = None) -> list[PushOutcome]:
    """Push bundles (and whatever waits in the spool for this archive); returns one outcome per bundle.

    The caller holds the home's writer lock, so two pushes never race over the same records.
    """
    home = store.home
    _tighten_spool(home)
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
        known = records.push_record(store, archive.destination, bundle.name)
        if known is not None and known.sums_sha256 != sums:
            entry.unlink(missing_ok=True)
            outcomes.append(PushOutcome(bundle.name, "conflict", "a different bundle of this name was pushed"))
            continue
        if known is not None and known.objects:
            entry.unlink(missing_ok=True)
            outcomes.append(PushOutcome(bundle.name, "already", "pushed before", known.objects, known.retain_until))
            continue
        # Not pushed, or pushed before objects were recorded one by one: then it is read back now.
        check = verify(bundle, trust, follow_chain=False)
        if not check.ok:
            outcomes.append(PushOutcome(bundle.name, "refused", "does not verify: " + "; ".join(check.problems[:3])))
            continue
        if unreachable:
            _spool(entry, bundle, archive)
            outcomes.append(PushOutcome(bundle.name, "spooled", "archive unreachable"))
            continue
        try:
            stored = archive.put_bundle(bundle)
        except ArchiveUnreachable as exc:
            unreachable = True
            _spool(entry, bundle, archive)
            outcomes.append(PushOutcome(bundle.name, "spooled", f"archive unreachable: {exc}"))
            continue
        except ArchiveConflict as exc:
            outcomes.append(PushOutcome(bundle.name, "conflict", str(exc)))
            continue
        until = records.record_push(store, archive.destination, bundle.name, sums, stored.objects,
                                    datetime.now(UTC).replace(microsecond=0))
        entry.unlink(missing_ok=True)
        there = len(stored.objects) - stored.sent
        detail = f"{stored.sent} object(s) sent" + (f", {there} already in the archive" if there else "")
        if stored.extended:
            detail += f" ({stored.extended} lock(s) lengthened)"
        if until:
            detail += f", locked until {until.isoformat()} (as the archive reports)"
        outcomes.append(PushOutcome(bundle.name, "pushed", detail, len(stored.objects),
                                    until.isoformat() if until else None))
    return outcomes


def _spool(entry: Path, bundle: Path, archive: Archive) -> None:
    private_dir(entry.parent)
    atomic_write(entry, json.dumps({"bundle": str(bundle.resolve()), "destination": archive.destination,
                                    "spooled_at": datetime.now(UTC).replace(microsecond=0).isoformat()}))


def _tighten_spool(home: Path) -> None:
    """A spool written by an older version, or under another umask, is made private like the rest."""
    root = spool_dir(home)
    if not root.is_dir():
        return
    private_dir(root)
    for tag in root.iterdir():
        if tag.is_dir() and not tag.is_symlink():
            private_dir(tag)
            for entry in tag.iterdir():
                if entry.is_file() and not entry.is_symlink() and entry.stat().st_mode & 0o077:
                    os.chmod(entry, 0o600)


# -- the audit --------------------------------------------------------------------------------------


@dataclass
class AuditProblem:
    bundle: str
    key: str
    problem: str


@dataclass
class AuditReport:
    destination: str
    checked: int = 0
    problems: list[AuditProblem] = field(default_factory=list)
    unaudited: list[str] = field(default_factory=list)   # bundles recorded without their objects

    @property
    def ok(self) -> bool:
        return not self.problems and not self.unaudited


def audit_archive(store: Store, archive: Archive) -> AuditReport:
    """Read every recorded object of this archive again: its lock, its content, that it is there.

    Raises ArchiveUnreachable when the archive cannot be read (nothing is marked as checked then).
    """
    report = AuditReport(archive.destination)
    objects = records.recorded_objects(store, archive.destination)
    results: list[tuple[str, str | None]] = []
    for obj in objects:
        problems = archive.check(obj)
        report.checked += 1
        report.problems += [AuditProblem(obj.bundle, obj.key, p) for p in problems]
        results.append((obj.key, "; ".join(problems) or None))
    report.unaudited = records.bundles_without_objects(store, archive.destination)
    records.mark_checked(store, archive.destination, results, datetime.now(UTC).replace(microsecond=0))
    return report

