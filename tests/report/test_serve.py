"""`estate serve` on loopback: read-only, no traversal, no listings, authentication when configured."""

from __future__ import annotations

import base64
import http.client
import threading
from collections.abc import Iterator
from pathlib import Path

import bcrypt
import pytest
from typer.testing import CliRunner

from security_checks.cli.app import app
from security_checks.report.server import Auth, AuthConfigError, make_server


@pytest.fixture
def site(tmp_path: Path) -> Path:
    root = tmp_path / "site"
    (root / "evidence" / "scan").mkdir(parents=True)
    (root / "index.html").write_text("<html>dashboard</html>")
    (root / "evidence" / "scan" / "a b.xml").write_text("<nmaprun/>")
    (root / ".hidden").write_text("dotfile")
    (tmp_path / "secret.txt").write_text("outside the site")
    (root / "escape").symlink_to(tmp_path / "secret.txt")
    return root


def serving(root: Path, auth: Auth) -> Iterator[int]:
    server = make_server(root, "127.0.0.1", 0, auth)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def port(site: Path) -> Iterator[int]:
    yield from serving(site, Auth())


def request(port: int, method: str, path: str, headers: dict[str, str] | None = None) -> tuple[int, bytes, dict]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request(method, path, headers=headers or {})
    resp = conn.getresponse()
    body = resp.read()
    conn.close()
    return resp.status, body, dict(resp.getheaders())


def test_serves_pages_and_evidence_read_only(port: int) -> None:
    status, body, headers = request(port, "GET", "/")
    assert status == 200 and body == b"<html>dashboard</html>"
    assert "default-src 'none'" in headers["Content-Security-Policy"]
    assert request(port, "GET", "/evidence/scan/a%20b.xml")[:2] == (200, b"<nmaprun/>")
    status, body, headers = request(port, "HEAD", "/index.html")
    assert status == 200 and body == b"" and headers["Content-Length"] == "22"
    for method in ("POST", "PUT", "DELETE", "PATCH", "OPTIONS"):
        status, _, headers = request(port, method, "/index.html")
        assert status == 405 and headers["Allow"] == "GET, HEAD"


@pytest.mark.parametrize("path", ["/../secret.txt", "/%2e%2e/secret.txt", "/evidence/../../secret.txt",
                                  "/escape", "/.hidden", "/evidence/", "/evidence/scan", "/..%2fsecret.txt",
                                  "/%00index.html", "/nothing-here"])
def test_no_traversal_no_listing_no_dotfiles(port: int, path: str) -> None:
    status, body, _ = request(port, "GET", path)
    assert status == 404 and b"outside the site" not in body and b"a b.xml" not in body


def test_token_and_bcrypt_users_are_enforced_when_configured(site: Path, tmp_path: Path) -> None:
    token = "t0ken-of-at-least-16-chars"
    for p in serving(site, Auth.load(token, None)):
        assert request(p, "GET", "/")[0] == 401
        assert request(p, "GET", "/", {"Authorization": "Bearer wrong-token-wrong-token"})[0] == 401
        assert request(p, "GET", "/", {"Authorization": f"Bearer {token}"})[0] == 200
    users = tmp_path / "users"
    users.write_text(f"auditor:{bcrypt.hashpw(b'correct horse battery', bcrypt.gensalt(rounds=4)).decode()}\n")
    for p in serving(site, Auth.load(None, users)):
        good = base64.b64encode(b"auditor:correct horse battery").decode()
        bad = base64.b64encode(b"auditor:wrong").decode()
        status, _, headers = request(p, "GET", "/")
        assert status == 401 and headers["WWW-Authenticate"].startswith("Basic")
        assert request(p, "GET", "/", {"Authorization": f"Basic {bad}"})[0] == 401
        assert request(p, "GET", "/", {"Authorization": f"Basic {good}"})[0] == 200


def test_refuses_to_bind_beyond_loopback_without_authentication(site: Path, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(AuthConfigError, match="authentication is required"):
        make_server(site, "0.0.0.0", 0, Auth())
    monkeypatch.delenv("ESTATE_SERVE_TOKEN", raising=False)
    res = CliRunner().invoke(app, ["serve", "--site", str(site), "--bind", "0.0.0.0"])
    assert res.exit_code == 2 and "authentication is required" in res.output
    bad = tmp_path / "users"
    bad.write_text("auditor:plaintext-password\n")
    res = CliRunner().invoke(app, ["serve", "--site", str(site), "--auth-file", str(bad)])
    assert res.exit_code == 2 and f"{bad}:1: expected user:<bcrypt hash>" in res.output.replace("\n", "")
    res = CliRunner().invoke(app, ["serve", "--site", str(tmp_path / "nowhere")])
    assert res.exit_code == 2 and "no index.html" in res.output
    with pytest.raises(AuthConfigError, match="16 characters"):
        Auth.load("short", None)
