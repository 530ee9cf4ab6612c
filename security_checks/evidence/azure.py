"""The council's own archive in Azure Blob Storage: each blob written once, with its own locked
version-level immutability policy, and read back.

This is the second target of the one push path (security_checks/evidence/archive.py: the spool,
the records, the audit); it implements the same Archive protocol as the S3 and directory archives.
The account and container are those the Pulumi program builds for evidence (infra/tenancy.py: a
StorageV2 account with immutable storage with versioning, container `evidence`); the account name
is the stack output `evidenceStorageAccount`.

Each blob is written with If-None-Match: * (never over anything) and an immutability policy of its
own: mode Locked, expiry `--retain-days` from now (a locked policy can be lengthened, never
shortened or removed, even by the account owner). Then it is read back: its content hashed, and
its policy as the account reports it in Get Blob Properties. What is recorded is what the account
reported, never what was asked for. A blob already there is accepted only if its content is the
same and it is locked at least as long as wanted (a shorter locked policy is lengthened); an
unlocked policy (which can still be shortened or deleted) or none at all is a conflict.

Credentials come from the environment, never a file and never a log line:
AZURE_STORAGE_CONNECTION_STRING (it must name the same account), else AZURE_STORAGE_KEY (the
account key), else DefaultAzureCredential (managed identity on an Azure VM or Arc machine, or
workload identity, or the Azure CLI's login). The account the Pulumi program builds disables
shared keys (allowSharedKeyAccess false), so against it only the last works.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from ..store.pushes import ArchivedObject, RecordedObject
from ..testhooks import pause_at
from .archive import ArchiveConflict, ArchiveUnreachable, Stored, bundle_files

LOCKED, UNLOCKED = "Locked", "Unlocked"
DEFAULT_CONTAINER = "evidence"    # infra/tenancy.py: the container the evidence storage account holds
ACCOUNT_RE = re.compile(r"^[a-z0-9]{3,24}$")
CONTAINER_RE = re.compile(r"^(?=.{3,63}$)[a-z0-9](?:[a-z0-9]|-(?!-))*[a-z0-9]$")


class AzureSetupError(Exception):
    """The account, container or credentials given cannot be used (one line for the CLI, exit 2)."""


def _connection_string_account(cs: str) -> str | None:
    fields = dict(part.split("=", 1) for part in cs.split(";") if "=" in part)
    if fields.get("UseDevelopmentStorage", "").lower() == "true":
        return "devstoreaccount1"
    return fields.get("AccountName")


def service_client(account: str, endpoint: str | None, env: Mapping[str, str], **client_args: Any) -> Any:
    """A BlobServiceClient for the account, with credentials taken from the environment only."""
    from azure.storage.blob import BlobServiceClient

    if not ACCOUNT_RE.match(account):
        raise AzureSetupError(f"--azure-account {account!r}: a storage account name is 3-24 lower-case letters and "
                              "digits")
    cs = env.get("AZURE_STORAGE_CONNECTION_STRING")
    if cs:
        named = _connection_string_account(cs)
        if named != account:
            # Never print the string itself: it carries the account key.
            raise AzureSetupError(f"AZURE_STORAGE_CONNECTION_STRING is for account {named!r}, not --azure-account "
                                  f"{account!r}: refusing to archive into another account")
        try:
            return BlobServiceClient.from_connection_string(cs, **client_args)
        except ValueError:
            raise AzureSetupError("AZURE_STORAGE_CONNECTION_STRING: not a valid connection string") from None
    url = endpoint or f"https://{account}.blob.core.windows.net"
    key = env.get("AZURE_STORAGE_KEY")
    if key:
        from azure.core.credentials import AzureNamedKeyCredential

        return BlobServiceClient(url, credential=AzureNamedKeyCredential(account, key), **client_args)
    from azure.identity import DefaultAzureCredential

    return BlobServiceClient(url, credential=DefaultAzureCredential(exclude_interactive_browser_credential=True),
                             **client_args)


class AzureArchive:
    def __init__(self, account: str, *, container: str = DEFAULT_CONTAINER, prefix: str = "", retain_days: int = 2555,
                 endpoint: str | None = None, env: Mapping[str, str] | None = None, transport: Any = None):
        from azure.storage.blob import ExponentialRetry

        if not CONTAINER_RE.match(container):
            raise AzureSetupError(f"--container {container!r}: a container name is 3-63 lower-case letters, digits "
                                  "and single hyphens")
        self.account, self.container, self.prefix, self.retain_days = account, container, prefix.strip("/"), retain_days
        args: dict[str, Any] = {
            # Two quick tries, not the SDK's minutes of back-off: an archive that is down is spooled for later.
            "retry_policy": ExponentialRetry(initial_backoff=1, increment_base=2, retry_total=1, random_jitter_range=1),
            "connection_timeout": 10, "read_timeout": 120,
        }
        if transport is not None:
            args["transport"] = transport
        self.service = service_client(account, endpoint, os.environ if env is None else env, **args)
        self.client = self.service.get_container_client(container)
        url = self.service.primary_endpoint.rstrip("/")
        default = f"https://{account}.blob.core.windows.net"
        self.destination = f"azure://{account}/{container}/{self.prefix}" + (f"@{url}" if url != default else "")

    def key(self, bundle: str, rel: str) -> str:
        return "/".join(p for p in (self.prefix, bundle, rel) if p)

    def _where(self, key: str) -> str:
        return f"azure://{self.account}/{self.container}/{key}"

    def put_bundle(self, bundle: Path) -> Stored:
        from azure.core.exceptions import ResourceExistsError
        from azure.storage.blob import ContentSettings, ImmutabilityPolicy

        wanted = (datetime.now(UTC) + timedelta(days=self.retain_days)).replace(microsecond=0)
        out = Stored()
        with _azure_errors(self):
            for rel, path in bundle_files(bundle):
                key = self.key(bundle.name, rel)
                blob = self.client.get_blob_client(key)
                body = path.read_bytes()
                digest = hashlib.sha256(body).hexdigest()
                try:
                    blob.upload_blob(
                        body, overwrite=False, metadata={"sha256": digest},   # overwrite=False: If-None-Match: *
                        content_settings=ContentSettings(content_md5=bytearray(hashlib.md5(body).digest())),  # noqa: S324 (transfer integrity)
                        immutability_policy=ImmutabilityPolicy(expiry_time=wanted, policy_mode=LOCKED))
                    out.sent += 1
                except ResourceExistsError:
                    out.extended += self._adopt(blob, key, digest, wanted)
                props = blob.get_blob_properties()
                if self._sha256(blob, props.version_id) != digest:
                    raise ArchiveConflict(f"{self._where(key)}: read back with different content")
                mode, until = _policy(props)
                if mode != LOCKED or until is None:
                    raise ArchiveConflict(
                        f"{self._where(key)}: the account reports no locked immutability policy on it (mode "
                        f"{mode!r}): is version-level immutability enabled on the container? It is not claimed as "
                        "archived")
                if until < wanted:
                    raise ArchiveConflict(f"{self._where(key)}: the account reports it locked only until "
                                          f"{until.isoformat()}, not {wanted.isoformat()} as asked")
                out.objects.append(ArchivedObject(key=key, sha256=digest, size=len(body), retain_until=until,
                                                  mode=mode, version_id=props.version_id))
                pause_at("push:object-stored")
        return out

    def _adopt(self, blob: Any, key: str, digest: str, wanted: datetime) -> int:
        """A blob already under this name: ours only if identical and locked. Returns 1 if its policy was
        lengthened to `wanted`."""
        from azure.core.exceptions import HttpResponseError
        from azure.storage.blob import ImmutabilityPolicy

        where = self._where(key)
        props = blob.get_blob_properties()
        if (props.metadata or {}).get("sha256") != digest or self._sha256(blob, props.version_id) != digest:
            raise ArchiveConflict(f"{where}: already holds different content")
        mode, until = _policy(props)
        if mode == UNLOCKED:
            raise ArchiveConflict(f"{where}: already there with an UNLOCKED immutability policy (until "
                                  f"{until.isoformat() if until else '?'}), which can still be shortened or removed; "
                                  "it is not claimed as archived (use another --prefix or container)")
        if mode != LOCKED or until is None:
            raise ArchiveConflict(f"{where}: already there with no immutability policy the account reports (mode "
                                  f"{mode!r}); it is not claimed as archived (use another --prefix or container)")
        if until >= wanted:
            return 0
        try:
            blob.set_immutability_policy(ImmutabilityPolicy(expiry_time=wanted, policy_mode=LOCKED),
                                         **_version(props.version_id))
        except HttpResponseError as exc:
            raise ArchiveConflict(f"{where}: already there but locked only until {until.isoformat()}, and the "
                                  f"account refused to lengthen it to {wanted.isoformat()} "
                                  f"({_code(exc)})") from None
        return 1

    def _sha256(self, blob: Any, version: str | None) -> str:
        h = hashlib.sha256()
        for chunk in blob.download_blob(**_version(version)).chunks():
            h.update(chunk)
        return h.hexdigest()

    def check(self, obj: RecordedObject) -> list[str]:
        from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

        blob = self.client.get_blob_client(obj.key)
        try:
            with _azure_errors(self):
                try:
                    props = blob.get_blob_properties(**_version(obj.version_id))
                except ResourceNotFoundError:
                    return [f"missing: {self._where(obj.key)} (version {obj.version_id}) is no longer in the archive"]
                problems = []
                mode, until = _policy(props)
                if mode is None or until is None:
                    problems.append("unlocked: the account reports no immutability policy")
                elif mode != obj.mode:
                    problems.append(f"lock weakened: mode {mode}, archived {obj.mode}")
                if until is not None and obj.retain_until is not None and until < obj.retain_until:
                    problems.append(f"lock shorter than recorded: until {until.isoformat()}, recorded "
                                    f"{obj.retain_until.isoformat()}")
                digest = self._sha256(blob, obj.version_id)
                if digest != obj.sha256:
                    problems.append(f"content differs: SHA-256 {digest[:16]}..., archived {obj.sha256[:16]}...")
                if obj.version_id:
                    try:
                        latest = blob.get_blob_properties()
                    except ResourceNotFoundError:
                        problems.append("hidden: the blob's current version is gone (only the archived version "
                                        "remains)")
                    else:
                        if latest.version_id != obj.version_id:
                            problems.append(f"shadowed: a newer version ({latest.version_id}) lies over the "
                                            "archived one; readers by name get that instead")
                return problems
        except ArchiveConflict as exc:
            return [f"unreadable: {exc}"]
        except HttpResponseError as exc:
            return [f"unreadable: the account answered {_code(exc)} to reading it back"]


def _policy(props: Any) -> tuple[str | None, datetime | None]:
    policy = getattr(props, "immutability_policy", None)
    mode = getattr(policy, "policy_mode", None)
    until = getattr(policy, "expiry_time", None)
    if isinstance(mode, str):
        mode = {"locked": LOCKED, "unlocked": UNLOCKED}.get(mode.lower(), mode)
    return mode, until.astimezone(UTC) if isinstance(until, datetime) else None


def _code(exc: Any) -> str:
    return str(getattr(exc, "error_code", None) or getattr(exc, "status_code", None) or type(exc).__name__)


def _version(version: str | None) -> dict[str, str]:
    return {"version_id": version} if version else {}


@contextmanager
def _azure_errors(archive: AzureArchive) -> Iterator[None]:
    """Unreachable (spool and try later), or a refusal that names the account, never its credentials."""
    from azure.core.exceptions import (
        ClientAuthenticationError,
        ResourceNotFoundError,
        ServiceRequestError,
        ServiceResponseError,
    )

    try:
        yield
    except (ServiceRequestError, ServiceResponseError) as exc:
        raise ArchiveUnreachable(f"azure://{archive.account}: {type(exc).__name__}") from None
    except ClientAuthenticationError as exc:
        # No credential (no managed identity here, say) or one refused: the bundle waits until it is fixed.
        raise ArchiveUnreachable(f"azure://{archive.account}: authentication failed ({type(exc).__name__}: "
                                 f"{str(exc).splitlines()[0][:200] if str(exc) else 'no detail'})") from None
    except ResourceNotFoundError as exc:
        if getattr(exc, "error_code", None) == "ContainerNotFound":
            raise ArchiveConflict(f"azure://{archive.account}/{archive.container}: no such container (the Pulumi "
                                  "program creates it, with version-level immutability)") from None
        raise
