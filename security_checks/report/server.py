"""Serving the report site read-only: GET and HEAD only, no listings, nothing outside the site.

Authentication (needed to bind anywhere but loopback, and enforced whenever configured):
- a token in the environment variable ESTATE_SERVE_TOKEN, sent as `Authorization: Bearer <token>`;
- or an auth file of `user:<bcrypt hash>` lines (`estate serve --hash-password` prints one), sent as
  HTTP Basic. Over anything but loopback put TLS in front (a reverse proxy): Basic and Bearer
  credentials are otherwise readable on the wire.

What the server bounds, and why:
- connections: at most `max_connections` open at once; past that the listener stops accepting and
  further clients wait in the kernel's listen backlog (sized at least twice the cap), so a flood of
  connections costs queue slots, not threads or memory;
- threads: a fixed pool of `threads` workers runs requests. Idle and keep-alive connections hold no
  thread (one event loop watches them all), so 3,000 idle connections cost no more threads than one;
- time: a connection with no traffic for `timeout` seconds is closed, and so is one whose request
  (head and body) is still arriving `timeout` seconds after its first byte, so slow-header clients
  cannot hold a connection slot by trickling bytes;
- memory: files are streamed from an open file object in chunks as the socket drains, never read
  whole; request heads are capped at 32 KiB and bodies (refused anyway) at 8 KiB.

Why waitress (measured with wrk: 5,000 requests at 50 keep-alive connections over six files, on the
shared 2-core machine with a load average of 2-5 from other work, so rounds vary by 2-3x):
- the old ThreadingHTTPServer (listen backlog 5, a thread per connection, HTTP/1.0): 760-930
  requests/s, p99 0.7-2.5 s, max 3.3 s (connections dropped from the full backlog wait for SYN
  retries); serving a 64 MiB file to 4 slow readers grew it by 256 MiB;
- http.server behind a bounded ThreadPoolExecutor, HTTP/1.1, sendfile: about 1,070 requests/s and
  p50 44 ms, because every keep-alive connection pins a worker and 50 threads contend for the GIL;
- cheroot 11 (thread pool, idle connections parked in a selector): steadier p99 under contention
  (40-65 ms) at about 2,000 requests/s, but in 4 rounds of 30 about 25 connections failed and the
  round stalled for 30-90 s;
- waitress, 4 workers (this module): 3,000-5,200 requests/s, p50 8-12 ms, p99 24-90 ms in most rounds
  (up to 200-300 ms while the machine was busiest), never an error. Fewer workers (2) or more (8) and
  a shorter GIL switch interval were no better within the noise; more workers only add contention
  for the GIL, and 4 still lets bcrypt (which releases it) use both cores.
waitress is pure Python with a maintained HTTP/1.1 parser, and its `wsgi.file_wrapper` hands the
open file to the event loop, which sends it as the client reads: a slow reader of a large file holds
neither a worker nor the file's contents (a 64 MiB file to 4 and 20 slow readers: the server grew by
15 and 23 MiB, against 256 MiB and 1.3 GB before). Its own error responses (400, 413, 431, 500) go
through a task class that is subclassed here to add the security headers.

Basic authentication costs one bcrypt check whether or not the user exists (a dummy hash of the same
cost stands in for an unknown user, and user names are compared by digest without an early exit), so
timing does not reveal which user names are valid. Passwords over bcrypt's 72-byte limit are refused
before bcrypt sees them. A verified Basic credential is remembered for a few minutes, keyed by an
HMAC under a per-process random key, so a browser that sends it with every request does not cost a
bcrypt check (about 0.25 s of CPU) for each page and asset.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import logging
import mimetypes
import os
import secrets
import socket
import stat
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path
from typing import IO, Any

from waitress import wasyncore
from waitress.adjustments import Adjustments
from waitress.channel import HTTPChannel
from waitress.server import TcpWSGIServer
from waitress.task import ErrorTask

CSP = ("default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src 'self' data:; "
       "frame-ancestors 'none'; base-uri 'none'; form-action 'none'")
SECURITY_HEADERS: tuple[tuple[str, str], ...] = (
    ("Content-Security-Policy", CSP),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    ("Cache-Control", "no-store"),
    ("X-Frame-Options", "DENY"),
    ("Cross-Origin-Resource-Policy", "same-origin"),
)
SERVER_NAME = "estate-report"
BCRYPT_MAX_BYTES = 72
CHUNK = 64 * 1024
MAX_HEADER_BYTES = 32 * 1024
MAX_BODY_BYTES = 8 * 1024
CREDENTIAL_TTL = 300.0
CREDENTIAL_CACHE_SIZE = 256

log = logging.getLogger(__name__)

StartResponse = Callable[..., Any]


class AuthConfigError(Exception):
    pass


def _bcrypt_cost(hashed: bytes) -> int:
    try:
        return int(hashed.split(b"$")[2])
    except (IndexError, ValueError):
        return 12


class Auth:
    def __init__(self, token: str | None = None, users: dict[str, bytes] | None = None):
        self.token = token or None
        self.users = users or {}
        self._token_digest = hashlib.sha256(self.token.encode()).digest() if self.token else b""
        # Digests, so that comparing user names takes the same time whatever their length.
        self._user_digests = [(hashlib.sha256(u.encode()).digest(), h) for u, h in self.users.items()]
        self._dummy = b""
        if self.users:
            import bcrypt

            cost = max(_bcrypt_cost(h) for h in self.users.values())
            self._dummy = bcrypt.hashpw(secrets.token_hex(16).encode(), bcrypt.gensalt(rounds=cost))
        self._cache_key = secrets.token_bytes(32)
        self._verified: dict[bytes, float] = {}
        self._lock = threading.Lock()

    @property
    def configured(self) -> bool:
        return bool(self.token or self.users)

    @classmethod
    def load(cls, token: str | None, auth_file: Path | None) -> Auth:
        users: dict[str, bytes] = {}
        if auth_file is not None:
            try:
                lines = auth_file.read_text().splitlines()
            except OSError as exc:
                raise AuthConfigError(f"--auth-file {auth_file}: {exc.strerror or exc}") from None
            for n, line in enumerate(lines, start=1):
                if not line.strip() or line.lstrip().startswith("#"):
                    continue
                user, sep, hashed = line.strip().partition(":")
                if not sep or not user or not hashed.startswith(("$2a$", "$2b$", "$2y$")):
                    raise AuthConfigError(f"{auth_file}:{n}: expected user:<bcrypt hash>")
                users[user] = hashed.encode()
            if not users:
                raise AuthConfigError(f"{auth_file}: no users")
        if token is not None and len(token) < 16:
            raise AuthConfigError("ESTATE_SERVE_TOKEN: use at least 16 characters")
        return cls(token, users)

    def allows(self, header: str | None) -> bool:
        if not self.configured:
            return True
        if not header:
            return False
        scheme, _, value = header.strip().partition(" ")
        value = value.strip()
        if scheme.lower() == "bearer" and self.token:
            # WSGI hands headers over as latin-1 text: encoding back gives the bytes the client sent.
            return hmac.compare_digest(hashlib.sha256(value.encode("latin-1", "replace")).digest(),
                                       self._token_digest)
        if scheme.lower() == "basic" and self.users:
            return self._basic(value)
        return False

    def _basic(self, value: str) -> bool:
        try:
            decoded = base64.b64decode(value, validate=True)
        except ValueError:
            return False
        user, sep, password = decoded.partition(b":")
        if not sep or not user or len(password) > BCRYPT_MAX_BYTES:
            return False  # refused outright: bcrypt raises on more than 72 bytes, and none of this names a user
        key = hmac.new(self._cache_key, decoded, hashlib.sha256).digest()
        now = time.monotonic()
        with self._lock:
            if self._verified.get(key, 0.0) > now:
                return True
        user_digest = hashlib.sha256(user).digest()
        hashed = None
        for digest, candidate in self._user_digests:  # no early exit: every lookup takes as long
            if hmac.compare_digest(digest, user_digest):
                hashed = candidate
        import bcrypt

        try:
            ok = bcrypt.checkpw(password, hashed or self._dummy)
        except ValueError:
            ok = False
        if not (ok and hashed is not None):
            return False
        with self._lock:
            if len(self._verified) >= CREDENTIAL_CACHE_SIZE:
                self._verified.pop(next(iter(self._verified)))
            self._verified[key] = now + CREDENTIAL_TTL
        return True


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _file_chunks(f: IO[bytes], size: int) -> Iterator[bytes]:
    with f:
        while chunk := f.read(size):
            yield chunk


class SiteApp:
    """The WSGI application: everything a client can get from the server comes out of here or `_ErrorTask`."""

    def __init__(self, root: Path, auth: Auth):
        self.root = root.resolve()
        self._root = str(self.root).rstrip("/")
        self.auth = auth
        self.realm = ('Basic realm="estate report", charset="UTF-8"' if auth.users
                      else 'Bearer realm="estate report"')

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        try:
            return self._respond(environ, start_response)
        except Exception:
            # Logged without the environ: it holds the Authorization header.
            log.exception("estate serve: internal error")
            return self._plain(start_response, HTTPStatus.INTERNAL_SERVER_ERROR, "internal error",
                               head=environ.get("REQUEST_METHOD") == "HEAD", exc_info=sys.exc_info())

    def _respond(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "")
        head = method == "HEAD"
        if method not in ("GET", "HEAD"):
            return self._plain(start_response, HTTPStatus.METHOD_NOT_ALLOWED, "read-only: GET and HEAD only",
                               extra=[("Allow", "GET, HEAD")])
        if not self.auth.allows(environ.get("HTTP_AUTHORIZATION")):
            return self._plain(start_response, HTTPStatus.UNAUTHORIZED, "authentication required", head=head,
                               extra=[("WWW-Authenticate", self.realm)])
        opened = self._open(environ.get("PATH_INFO", "/"))
        if opened is None:
            return self._plain(start_response, HTTPStatus.NOT_FOUND, "not found", head=head)
        f, name, size = opened
        ctype = mimetypes.guess_type(name)[0] or "application/octet-stream"
        if ctype.startswith("text/") or ctype in ("application/json", "image/svg+xml"):
            ctype += "; charset=utf-8"
        try:
            start_response("200 OK", [("Content-Type", ctype), ("Content-Length", str(size)), *SECURITY_HEADERS])
        except BaseException:
            f.close()
            raise
        if head:
            f.close()
            return []
        wrapper = environ.get("wsgi.file_wrapper")
        return wrapper(f, CHUNK) if wrapper else _file_chunks(f, CHUNK)

    def _open(self, path_info: str) -> tuple[IO[bytes], str, int] | None:
        try:
            # PEP 3333: PATH_INFO is the percent-decoded bytes as latin-1; decode once, never unquote again.
            path = path_info.encode("latin-1").decode("utf-8")
        except UnicodeError:
            return None
        if "\0" in path or "\\" in path:
            return None
        parts = [p for p in path.split("/") if p]
        if any(p in ("..", ".") or p.startswith(".") for p in parts):
            return None
        for tail in ([], ["index.html"]):  # a directory serves its index.html, never a listing
            target = self._locate([*parts, *tail])
            if target is None:
                return None
            try:
                # The located path has no symlinks left; O_NOFOLLOW refuses one swapped in since.
                fd = os.open(target, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
            except OSError:
                return None
            st = os.fstat(fd)
            if stat.S_ISREG(st.st_mode):
                return os.fdopen(fd, "rb"), os.path.basename(target), st.st_size
            os.close(fd)
            if not stat.S_ISDIR(st.st_mode) or tail:
                return None
        return None

    def _locate(self, parts: list[str]) -> str | None:
        """The real path of `parts` under the root, or None when it is missing, leaves the root or is a dot-file.

        Walks from the already-resolved root with one lstat a component rather than resolving the whole
        path each time (realpath was a tenth of the server's time under load); only a path that
        meets a symlink pays for realpath.
        """
        path = self._root
        for n, part in enumerate(parts):
            path = f"{path}/{part}"
            try:
                mode = os.lstat(path).st_mode
            except OSError:
                return None
            if stat.S_ISLNK(mode):
                return self._inside(os.path.realpath(os.path.join(path, *parts[n + 1:])))
        return path

    def _inside(self, real: str) -> str | None:
        if real == self._root:
            return real
        if not real.startswith(self._root + "/"):
            return None
        if any(p.startswith(".") for p in real[len(self._root) + 1:].split("/")):
            return None  # a symlink to a dot-file is still a dot-file
        return real

    @staticmethod
    def _plain(start_response: StartResponse, status: HTTPStatus, text: str, head: bool = False,
               extra: list[tuple[str, str]] | None = None, exc_info: Any = None) -> list[bytes]:
        data = (text + "\n").encode()
        start_response(f"{status.value} {status.phrase}",
                       [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(data))),
                        *(extra or []), *SECURITY_HEADERS], exc_info)
        return [] if head else [data]


class _ErrorTask(ErrorTask):
    """waitress's own responses to malformed or oversized requests, and to a crash, with the security headers."""

    def execute(self) -> None:
        self.response_headers.extend(SECURITY_HEADERS)
        super().execute()


class _Channel(HTTPChannel):
    """Remembers when the request now arriving began: waitress only times inactivity, which a client
    trickling one header line at a time never shows, so `ReportServer.maintenance` also closes a
    connection whose request has not arrived in full within the timeout."""

    error_task_class = _ErrorTask
    request_started: float | None = None

    def received(self, data: bytes) -> bool:
        if self.request is None and data:
            self.request_started = time.time()
        result: bool = super().received(data)
        if self.request is None:
            self.request_started = None
        return result


@dataclass(frozen=True)
class Limits:
    max_connections: int = 64
    timeout: int = 30
    threads: int = 4


class ReportServer(TcpWSGIServer):
    channel_class = _Channel

    def __init__(self, app: SiteApp, sockinfo: tuple[Any, ...], limits: Limits):
        adj = Adjustments(
            threads=limits.threads,
            channel_timeout=limits.timeout,
            # How often idle and slow connections are looked for: the cut-off is at most this late.
            cleanup_interval=max(1, min(5, limits.timeout // 2)),
            backlog=max(128, 2 * limits.max_connections),
            ident=SERVER_NAME,
            max_request_header_size=MAX_HEADER_BYTES,
            max_request_body_size=MAX_BODY_BYTES,
            expose_tracebacks=False,
            asyncore_use_poll=True,  # select() fails past file descriptor 1023
        )
        super().__init__(app, map={}, adj=adj, sockinfo=sockinfo)
        # waitress counts its listener and wake-up pipe against connection_limit.
        self.adj.connection_limit = limits.max_connections + len(self._map)
        self._stopping = threading.Event()
        self._stopped = threading.Event()
        self._stopped.set()

    @property
    def server_address(self) -> tuple[str, int]:
        return str(self.effective_host), int(self.effective_port)

    def maintenance(self, now: float) -> None:
        super().maintenance(now)
        cutoff = now - self.adj.channel_timeout
        for channel in self.active_channels.values():
            started = getattr(channel, "request_started", None)
            if started is not None and started < cutoff:
                channel.will_close = True

    def serve_forever(self) -> None:
        self._stopped.clear()
        try:
            while not self._stopping.is_set():
                wasyncore.loop(timeout=self.adj.asyncore_loop_timeout, map=self._map, use_poll=True, count=1)
        finally:
            self._stopped.set()

    def shutdown(self) -> None:
        self._stopping.set()
        self.pull_trigger()
        self._stopped.wait(timeout=10)

    def server_close(self) -> None:
        self.task_dispatcher.shutdown()
        wasyncore.close_all(self._map)


def make_server(root: Path, bind: str, port: int, auth: Auth, limits: Limits | None = None) -> ReportServer:
    if not is_loopback(bind) and not auth.configured:
        raise AuthConfigError(f"--bind {bind}: not loopback, so authentication is required "
                              "(set ESTATE_SERVE_TOKEN or pass --auth-file)")
    # Under load waitress warns once per queued task; the queue is bounded by the connection cap anyway.
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)
    family = socket.AF_INET6 if ":" in bind else socket.AF_INET
    return ReportServer(SiteApp(root, auth), (family, socket.SOCK_STREAM, socket.IPPROTO_TCP, (bind, port)),
                        limits or Limits())
