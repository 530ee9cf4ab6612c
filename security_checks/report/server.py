"""Serving the report site read-only: GET and HEAD only, no listings, nothing outside the site.

Authentication (needed to bind anywhere but loopback, and enforced whenever configured):
- a token in the environment variable ESTATE_SERVE_TOKEN, sent as `Authorization: Bearer <token>`;
- or an auth file of `user:<bcrypt hash>` lines (`estate serve --hash-password` prints one), sent as
  HTTP Basic. Over anything but loopback put TLS in front (a reverse proxy): Basic and Bearer
  credentials are otherwise readable on the wire.
"""

from __future__ import annotations

import base64
import hmac
import ipaddress
import mimetypes
import posixpath
from functools import partial
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

CSP = ("default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src 'self' data:; "
       "frame-ancestors 'none'; base-uri 'none'; form-action 'none'")


class AuthConfigError(Exception):
    pass


class Auth:
    def __init__(self, token: str | None = None, users: dict[str, bytes] | None = None):
        self.token = token or None
        self.users = users or {}

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
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer" and self.token:
            return hmac.compare_digest(value.strip().encode(), self.token.encode())
        if scheme.lower() == "basic" and self.users:
            import bcrypt

            try:
                user, _, password = base64.b64decode(value.strip(), validate=True).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                return False
            hashed = self.users.get(user)
            return bool(hashed) and bcrypt.checkpw(password.encode(), hashed)  # type: ignore[arg-type]
        return False


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class SiteHandler(BaseHTTPRequestHandler):
    server_version = "estate-report"
    sys_version = ""

    def __init__(self, *args: object, root: Path, auth: Auth, **kwargs: object):
        self.root, self.auth = root, auth
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]

    def log_message(self, format: str, *args: object) -> None:
        pass  # no request log: URLs are harmless, but Authorization must never be echoed anywhere

    def do_GET(self) -> None:
        self._serve(body=True)

    def do_HEAD(self) -> None:
        self._serve(body=False)

    def _refuse_method(self) -> None:
        self._plain(HTTPStatus.METHOD_NOT_ALLOWED, "read-only: GET and HEAD only", extra={"Allow": "GET, HEAD"})

    do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_TRACE = do_CONNECT = _refuse_method

    def _serve(self, body: bool) -> None:
        if not self.auth.allows(self.headers.get("Authorization")):
            self._plain(HTTPStatus.UNAUTHORIZED, "authentication required", body=body,
                        extra={"WWW-Authenticate": 'Basic realm="estate report", charset="UTF-8"'
                               if self.auth.users else 'Bearer realm="estate report"'})
            return
        target = self._resolve(urlsplit(self.path).path)
        if target is None:
            self._plain(HTTPStatus.NOT_FOUND, "not found", body=body)
            return
        data = target.read_bytes()
        ctype = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
        if ctype.startswith("text/") or ctype in ("application/json", "image/svg+xml"):
            ctype += "; charset=utf-8"
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self._security_headers()
        self.end_headers()
        if body:
            self.wfile.write(data)

    def _resolve(self, url_path: str) -> Path | None:
        path = unquote(url_path)
        if "\0" in path or "\\" in path:
            return None
        parts = [p for p in path.split("/") if p]
        if any(p in ("..", ".") or p.startswith(".") for p in parts):
            return None
        rel = posixpath.join(*parts) if parts else ""
        candidate = (self.root / rel).resolve() if rel else self.root.resolve()
        root = self.root.resolve()
        if candidate != root and not candidate.is_relative_to(root):
            return None
        if candidate.is_dir():
            candidate = candidate / "index.html"  # never a listing
        return candidate if candidate.is_file() else None

    def _plain(self, status: HTTPStatus, text: str, body: bool = True, extra: dict[str, str] | None = None) -> None:
        data = (text + "\n").encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self._security_headers()
        self.end_headers()
        if body:
            self.wfile.write(data)

    def _security_headers(self) -> None:
        self.send_header("Content-Security-Policy", CSP)
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        self.send_header("Cache-Control", "no-store")


def make_server(root: Path, bind: str, port: int, auth: Auth) -> ThreadingHTTPServer:
    if not is_loopback(bind) and not auth.configured:
        raise AuthConfigError(f"--bind {bind}: not loopback, so authentication is required "
                              "(set ESTATE_SERVE_TOKEN or pass --auth-file)")
    server_cls = ThreadingHTTPServer
    if ":" in bind:
        import socket

        class V6(ThreadingHTTPServer):
            address_family = socket.AF_INET6

        server_cls = V6
    return server_cls((bind, port), partial(SiteHandler, root=root, auth=auth))
