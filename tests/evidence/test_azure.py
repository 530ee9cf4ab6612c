"""The Azure archive against a REAL Azurite blob service on loopback (tests/evidence/azurite_server.py).

Azurite stores and serves the blobs for real and answers If-None-Match for real; it accepts the
immutability policy headers but neither keeps nor enforces them. So the tests assert the headers
the SDK sends (a recording transport), read every blob back from Azurite, and, where a test needs
an account that reports the policy as Azure does, use the transport's stand-in for Azure's
version-level immutability (named so below). One test shows what plain Azurite reports.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path
from types import SimpleNamespace

import pytest
from typer.testing import CliRunner

from infra.config import InfraConfig
from infra.naming import Namer
from security_checks.cli.app import app
from security_checks.evidence.archive import audit_archive, bundle_files, push, spool_dir
from security_checks.evidence.azure import ACCOUNT_RE, DEFAULT_CONTAINER, LOCKED, AzureArchive
from security_checks.model.loader import load_estate
from security_checks.store import Store
from security_checks.store.pushes import push_count, recorded_objects
from tests.evidence.azurite_server import MODE, UNTIL, Azurite, RecordingTransport, account_key
from tests.evidence.helpers import home_with_bundles

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]


def evidence_account(estate_dir: Path) -> str:
    """The evidence storage account name the Pulumi program gives this council (infra/tenancy.py)."""
    est = load_estate(estate_dir).estate
    return Namer(est.organisation.short_name, InfraConfig().environment, est.azure.primary_region).name(
        "storage_account", "evidence")


DEMO_ACCOUNT = evidence_account(REPO / "inventory" / "demo")
GLENMORAY_ACCOUNT = evidence_account(REPO / "tests" / "estates" / "glenmoray")


@pytest.fixture(scope="module")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Azurite]:
    accounts = {DEMO_ACCOUNT: account_key(), GLENMORAY_ACCOUNT: account_key()}
    server = Azurite(tmp_path_factory.mktemp("azurite"), accounts)
    server.start()
    for account in server.accounts:
        server.service(account).create_container(DEFAULT_CONTAINER)
    yield server
    server.stop()


@pytest.fixture
def env(azurite: Azurite, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    monkeypatch.delenv("AZURE_STORAGE_KEY", raising=False)
    cs = azurite.connection_string(DEMO_ACCOUNT)
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", cs)
    return {"AZURE_STORAGE_CONNECTION_STRING": cs}


def archive(env: dict[str, str], prefix: str, transport: RecordingTransport, retain_days: int = 3,
            account: str = DEMO_ACCOUNT, endpoint: str | None = None) -> AzureArchive:
    return AzureArchive(account, prefix=prefix, retain_days=retain_days, env=env, transport=transport,
                        endpoint=endpoint)


def blob_bytes(azurite: Azurite, name: str, account: str = DEMO_ACCOUNT) -> bytes:
    data: bytes = azurite.service(account).get_blob_client(DEFAULT_CONTAINER, name).download_blob().readall()
    return data


def test_names_are_those_the_pulumi_program_builds() -> None:
    tenancy = (REPO / "infra" / "tenancy.py").read_text()
    containers = re.search(r"for container in \(([^)]*)\):", tenancy)
    assert containers and f'"{DEFAULT_CONTAINER}"' in containers.group(1)
    assert "immutable_storage_with_versioning" in tenancy   # what makes per-blob policies possible there
    assert DEMO_ACCOUNT == "sthdcevidenceproduks" and GLENMORAY_ACCOUNT.startswith("stgmc")
    assert ACCOUNT_RE.match(DEMO_ACCOUNT) and ACCOUNT_RE.match(GLENMORAY_ACCOUNT)


def test_each_blob_is_written_once_with_a_locked_policy_and_read_back(azurite: Azurite, env: dict[str, str],
                                                                      sealed: SimpleNamespace) -> None:
    # Stand-in for Azure's version-level immutability: reads report the policy the blob was written with.
    transport = RecordingTransport(policies={})
    target = archive(env, "hdc", transport)
    asked = datetime.now(UTC) + timedelta(days=3)
    outcomes = push(sealed.store, target, [sealed.first, sealed.second])
    assert [o.state for o in outcomes] == ["pushed", "pushed"], [o.detail for o in outcomes]
    files = {f"hdc/{b.name}/{rel}": p for b in (sealed.first, sealed.second) for rel, p in bundle_files(b)}
    puts = transport.blob_puts()
    assert sorted(r["path"] for r in puts) == sorted(f"/{DEMO_ACCOUNT}/evidence/{k}" for k in files)
    for r in puts:
        h = r["headers"]
        assert h["if-none-match"] == "*"                       # never over anything already there
        assert h[MODE] == LOCKED
        until = parsedate_to_datetime(h[UNTIL])
        assert abs((until - asked).total_seconds()) < 120
        key = r["path"].split("/evidence/", 1)[1]
        assert h["x-ms-meta-sha256"] == hashlib.sha256(files[key].read_bytes()).hexdigest()
    # Every blob is really in Azurite, byte for byte, and recorded with the policy the account reported.
    recorded = {o.key: o for o in recorded_objects(sealed.store, target.destination)}
    assert set(recorded) == set(files)
    for key, path in files.items():
        assert blob_bytes(azurite, key) == path.read_bytes()
        assert recorded[key].mode == LOCKED and recorded[key].sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
        until = recorded[key].retain_until
        assert until is not None and abs((until - asked).total_seconds()) < 120
    # Each blob was read back after writing: properties, then its content, after its Put.
    for key in files:
        path = f"/{DEMO_ACCOUNT}/evidence/{key}"
        order = [r["method"] for r in transport.requests if r["path"] == path]
        assert order[0] == "PUT" and order.count("HEAD") >= 1 and "GET" in order, order
    # What plain Azurite itself reports: no policy (it accepted the headers and dropped them).
    props = azurite.service(DEMO_ACCOUNT).get_blob_client(DEFAULT_CONTAINER, next(iter(files))).get_blob_properties()
    assert props.immutability_policy.policy_mode is None and props.immutability_policy.expiry_time is None
    # The audit reads everything back; a blob deleted (Azurite lets it be: Azure would refuse) is missing.
    assert audit_archive(sealed.store, target).ok
    gone = next(k for k in files if k.endswith("index.html"))
    azurite.service(DEMO_ACCOUNT).get_blob_client(DEFAULT_CONTAINER, gone).delete_blob()
    report = audit_archive(sealed.store, target)
    assert [(p.key, p.problem.split(":")[0]) for p in report.problems] == [(gone, "missing")]


def test_a_second_push_sends_nothing_and_a_blob_is_never_overwritten(azurite: Azurite, env: dict[str, str],
                                                                      sealed: SimpleNamespace, tmp_path: Path) -> None:
    policies: dict[str, tuple[str, str]] = {}   # the stand-in for Azure's policies, shared by both pushes
    first = RecordingTransport(policies=policies)
    assert [o.state for o in push(sealed.store, archive(env, "again", first), [sealed.first])] == ["pushed"]
    stored = {k: blob_bytes(azurite, f"again/{sealed.first.name}/{k}") for k, _ in bundle_files(sealed.first)}
    # The same home: recorded, so nothing is sent at all.
    again = RecordingTransport(policies=policies)
    outcome = push(sealed.store, archive(env, "again", again), [sealed.first])
    assert [o.state for o in outcome] == ["already"] and again.requests == []
    # Another home that never recorded it: every Put answered 409 (If-None-Match), each blob adopted
    # only after its content hashed the same and its policy reads as locked long enough.
    other = home_with_bundles(sealed.first.parent, tmp_path / "other")
    store = Store(other)
    try:
        third = RecordingTransport(policies=policies)
        outcome = push(store, archive(env, "again", third, retain_days=2), [other / "bundles" / sealed.first.name])
        assert [o.state for o in outcome] == ["pushed"] and outcome[0].detail.startswith("0 object(s) sent, ")
        assert {r["status"] for r in third.blob_puts()} == {409}
    finally:
        store.close()
    # Wanting a longer lock than the blobs have: Azure would lengthen it; Azurite does not implement
    # Set Blob Immutability Policy, and the push says so instead of claiming the longer lock.
    fresh = home_with_bundles(sealed.first.parent, tmp_path / "fresh")
    store = Store(fresh)
    try:
        longer = push(store, archive(env, "again", RecordingTransport(policies=policies), retain_days=9),
                      [fresh / "bundles" / sealed.first.name])
        assert longer[0].state == "conflict" and "refused to lengthen" in longer[0].detail, longer[0].detail
        assert push_count(store, archive(env, "again", RecordingTransport()).destination) == 0
    finally:
        store.close()
    assert {k: blob_bytes(azurite, f"again/{sealed.first.name}/{k}") for k in stored} == stored


def test_a_different_blob_under_the_name_is_a_conflict_and_left_alone(azurite: Azurite, env: dict[str, str],
                                                                       sealed: SimpleNamespace) -> None:
    planted = f"planted/{sealed.second.name}/SHA256SUMS"
    azurite.service(DEMO_ACCOUNT).get_blob_client(DEFAULT_CONTAINER, planted).upload_blob(b"not ours\n")
    outcome = push(sealed.store, archive(env, "planted", RecordingTransport(policies={})), [sealed.second])
    assert outcome[0].state == "conflict" and "already holds different content" in outcome[0].detail
    assert blob_bytes(azurite, planted) == b"not ours\n"
    assert push_count(sealed.store, archive(env, "planted", RecordingTransport()).destination) == 0


def test_bundles_wait_in_the_spool_while_the_account_is_unreachable(azurite: Azurite, env: dict[str, str],
                                                                     sealed: SimpleNamespace, tmp_path: Path) -> None:
    home = home_with_bundles(sealed.first.parent, tmp_path / "home")
    bundles = sorted(p for p in (home / "bundles").iterdir() if p.is_dir())
    policies: dict[str, tuple[str, str]] = {}
    store = Store(home)
    try:
        azurite.stop()
        try:
            down = push(store, archive(env, "spool", RecordingTransport(policies=policies)), bundles)
        finally:
            azurite.start()
        assert [o.state for o in down] == ["spooled", "spooled"]
        entries = list(spool_dir(home).rglob("*.json"))
        assert len(entries) == 2
        key = azurite.accounts[DEMO_ACCOUNT]
        assert not any(key in e.read_text() or "AccountKey" in e.read_text() for e in entries)
        up = push(store, archive(env, "spool", RecordingTransport(policies=policies)), [])
        assert [(o.bundle, o.state) for o in up] == [(b.name, "pushed") for b in bundles]
        assert list(spool_dir(home).rglob("*.json")) == []
        for b in bundles:
            for rel, path in bundle_files(b):
                assert blob_bytes(azurite, f"spool/{b.name}/{rel}") == path.read_bytes()
    finally:
        store.close()


def test_the_cli_against_plain_azurite_claims_no_lock_it_did_not_see(azurite: Azurite, env: dict[str, str],
                                                                      sealed: SimpleNamespace, tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """No stand-in: Azurite reports no policy, so the push says so, exits 1, and records nothing."""
    home = home_with_bundles(sealed.first.parent, tmp_path / "home")
    monkeypatch.setenv("ESTATE_HOME", str(home))
    res = CliRunner().invoke(app, ["evidence", "push", "--azure-account", DEMO_ACCOUNT, "--prefix", "cli",
                                   "--format", "json"])
    assert res.exit_code == 1, res.output
    doc = json.loads(res.stdout)
    assert doc["destination"] == f"azure://{DEMO_ACCOUNT}/evidence/cli@{azurite.endpoint(DEMO_ACCOUNT)}"
    assert {b["state"] for b in doc["bundles"]} == {"conflict"}
    assert all("reports no locked immutability policy" in b["detail"] for b in doc["bundles"])
    store = Store(home)
    try:
        assert push_count(store, doc["destination"]) == 0
    finally:
        store.close()
    key = azurite.accounts[DEMO_ACCOUNT]
    assert key not in res.output
    assert not any(key.encode() in p.read_bytes() for p in home.rglob("*") if p.is_file())


def test_credentials_come_from_the_environment_for_that_account_only(azurite: Azurite, env: dict[str, str],
                                                                      sealed: SimpleNamespace, tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    home = home_with_bundles(sealed.first.parent, tmp_path / "home")
    monkeypatch.setenv("ESTATE_HOME", str(home))
    # A connection string for another account (Glenmoray's) is refused, without printing it.
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", azurite.connection_string(GLENMORAY_ACCOUNT))
    res = CliRunner().invoke(app, ["evidence", "push", "--azure-account", DEMO_ACCOUNT])
    assert res.exit_code == 2 and "refusing to archive into another account" in res.output
    assert azurite.accounts[GLENMORAY_ACCOUNT] not in res.output and len(res.output.strip().splitlines()) == 1
    for bad in (["--azure-account", "Not_An_Account"], ["--azure-account", DEMO_ACCOUNT, "--bucket", "b"],
                ["--azure-account", DEMO_ACCOUNT, "--container", "Bad--Name"], ["--container", "other"]):
        res = CliRunner().invoke(app, ["evidence", "push", *bad])
        assert res.exit_code == 2, (bad, res.output)
    # The account key alone (AZURE_STORAGE_KEY) with the account's endpoint: Glenmoray's own account.
    monkeypatch.delenv("AZURE_STORAGE_CONNECTION_STRING")
    key_env = {"AZURE_STORAGE_KEY": azurite.accounts[GLENMORAY_ACCOUNT]}
    store = Store(home)
    try:
        target = archive(key_env, "gmc", RecordingTransport(policies={}), account=GLENMORAY_ACCOUNT,
                         endpoint=azurite.endpoint(GLENMORAY_ACCOUNT))
        outcome = push(store, target, [home / "bundles" / sealed.first.name])
        assert [o.state for o in outcome] == ["pushed"], outcome
    finally:
        store.close()
    assert blob_bytes(azurite, f"gmc/{sealed.first.name}/SHA256SUMS", GLENMORAY_ACCOUNT) == \
        (sealed.first / "SHA256SUMS").read_bytes()
