"""Azurite, the Azure Storage emulator (npm `azurite`), on loopback for the Azure archive tests.

Installed on first use into tests/evidence/azurite-npm/node_modules (pinned in its package.json;
`make` puts npm on a clean machine), started bound to 127.0.0.1 on a free port with a temporary
data directory, telemetry off (Azurite otherwise reports to Application Insights), and killed
after. Its accounts are set with AZURITE_ACCOUNTS, so the tests use the account names the Pulumi
program gives a council's evidence storage account.

What Azurite does NOT do (observed with 3.35.0): it accepts the immutability policy headers of Put
Blob and then drops them (Get Blob Properties reports no policy), does not implement Set Blob
Immutability Policy (501 APINotImplemented), does not keep blob versions, and lets a blob be
deleted or overwritten whatever policy was sent. `RecordingTransport` therefore records every
request the SDK sends (to assert the headers) and, where a test asks for it, stands in for Azure's
version-level immutability by answering reads of a blob with the policy sent when it was written.
"""

from __future__ import annotations

import base64
import fcntl
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from azure.core.pipeline.transport import RequestsTransport

NPM_DIR = Path(__file__).resolve().parent / "azurite-npm"
BIN = NPM_DIR / "node_modules" / ".bin" / "azurite-blob"
UNTIL, MODE = "x-ms-immutability-policy-until-date", "x-ms-immutability-policy-mode"


def ensure_installed() -> Path:
    """The azurite-blob launcher, installed from npm into the repository the first time."""
    if BIN.exists():
        return BIN
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError("npm is not installed: run `make setup` as root (it installs npm), or install Node.js "
                           "with npm")
    with open(NPM_DIR / ".install.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)   # two test processes never install at once
        if not BIN.exists():
            subprocess.run([npm, "install", "--no-audit", "--no-fund", "--no-package-lock", "--loglevel=error"],
                           cwd=NPM_DIR, check=True, timeout=900)
    return BIN


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def account_key() -> str:
    return base64.b64encode(secrets.token_bytes(64)).decode()


class Azurite:
    """One Azurite blob service that can be stopped and started again on the same port and data."""

    def __init__(self, root: Path, accounts: dict[str, str]):
        self.root, self.accounts = root, accounts
        (root / "data").mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    def endpoint(self, account: str) -> str:
        return f"http://127.0.0.1:{self.port}/{account}"

    def connection_string(self, account: str) -> str:
        return (f"DefaultEndpointsProtocol=http;AccountName={account};AccountKey={self.accounts[account]};"
                f"BlobEndpoint={self.endpoint(account)};")

    def start(self) -> None:
        env = {**os.environ, "AZURITE_ACCOUNTS": ";".join(f"{a}:{k}" for a, k in self.accounts.items())}
        args = [str(ensure_installed()), "--blobHost", "127.0.0.1", "--blobPort", str(self.port),
                "--location", str(self.root / "data"), "--disableTelemetry", "--skipApiVersionCheck",
                "--debug", str(self.root / "debug.log")]
        self.log = open(self.root / "azurite.log", "ab")  # noqa: SIM115 (closed in stop)
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT, env=env,
                                     start_new_session=True)
        deadline = time.monotonic() + 60
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"azurite did not start: see {self.root / 'azurite.log'}") from None
                time.sleep(0.2)

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

    def service(self, account: str) -> Any:
        from azure.storage.blob import BlobServiceClient

        return BlobServiceClient.from_connection_string(self.connection_string(account))


class RecordingTransport(RequestsTransport):  # type: ignore[misc]
    """The SDK's own HTTP transport, recording each request as sent (Authorization left out).

    With `policies` (a dict shared between transports, so it outlives one client), it also stands in
    for what Azure does and Azurite does not: the immutability policy a blob was written with is
    reported on every later read of that blob (Get Blob Properties, Get Blob).
    """

    def __init__(self, policies: dict[str, tuple[str, str]] | None = None, **kwargs: Any):
        super().__init__(**kwargs)
        self.requests: list[dict[str, Any]] = []
        self.policies = policies

    def send(self, request: Any, **kwargs: Any) -> Any:
        url = urlsplit(request.url)
        headers = {k.lower(): v for k, v in request.headers.items() if k.lower() != "authorization"}
        response = super().send(request, **kwargs)
        self.requests.append({"method": request.method, "path": url.path, "query": url.query, "headers": headers,
                              "status": response.status_code})
        if self.policies is not None:
            if request.method == "PUT" and response.status_code == 201 and UNTIL in headers:
                self.policies[url.path] = (headers[UNTIL], headers[MODE])
            elif request.method in ("GET", "HEAD") and url.path in self.policies and response.status_code in (200, 206):
                until, mode = self.policies[url.path]
                response.headers[UNTIL], response.headers[MODE] = until, mode
        return response

    def blob_puts(self) -> list[dict[str, Any]]:
        """Put Blob requests (a whole blob in one request; no comp= query)."""
        return [r for r in self.requests if r["method"] == "PUT" and "comp=" not in r["query"]
                and "restype=container" not in r["query"]]
