"""`estate serve` on loopback: read-only, no traversal, no listings, authentication when configured,
bounded in connections, threads, time and memory, and the security headers on every response."""

from __future__ import annotations

import base64
import http.client
import os
import re
import select
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from email.message import Message
from pathlib import Path

import bcrypt
import pytest
from typer.testing import CliRunner

from security_checks.cli.app import app
from security_checks.report.server import SECURITY_HEADERS, Auth, AuthConfigError, Limits, SiteApp, make_server

REPO = Path(__file__).resolve().parents[2]
MiB = 1024 * 1024


@pytest.fixture
def site(tmp_path: Path) -> Path:
    root = tmp_path / "site"
    (root / "evidence" / "scan").mkdir(parents=True)
    (root / "index.html").write_text("<html>dashboard</html>")
    (root / "evidence" / "scan" / "a b.xml").write_text("<nmaprun/>")
    (root / ".hidden").write_text("dotfile")
    (tmp_path / "secret.txt").write_text("outside the site")
    (root / "escape").symlink_to(tmp_path / "secret.txt")
    (root / "alias").symlink_to(root / ".hidden")
    (root / "trap").mkdir()
    (root / "trap" / "index.html").symlink_to(tmp_path / "secret.txt")
    return root


def serving(root: Path, auth: Auth, limits: Limits | None = None) -> Iterator[int]:
    server = make_server(root, "127.0.0.1", 0, auth, limits)
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


def request(port: int, method: str, path: str, headers: dict[str, str] | None = None) -> tuple[int, bytes, Message]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request(method, path, headers=headers or {})
    resp = conn.getresponse()
    body = resp.read()
    conn.close()
    return resp.status, body, resp.headers


def raw(port: int, data: bytes) -> tuple[int, bytes, Message]:
    """Bytes http.client would refuse to send; the server's own parser answers them."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(data)
        resp = http.client.HTTPResponse(s)
        resp.begin()
        return resp.status, resp.read(), resp.headers


def basic(credentials: bytes) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(credentials).decode()}


def assert_security_headers(headers: Message) -> None:
    for name, value in SECURITY_HEADERS:
        assert headers[name] == value, name
    assert headers["Server"] == "estate-report"


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
                                  "/escape", "/.hidden", "/alias", "/trap/", "/evidence/", "/evidence/scan",
                                  "/..%2fsecret.txt", "/%2e%2e%2fsecret.txt", "/evidence%5c..%5c..%5csecret.txt",
                                  "/%00index.html", "/index.html%00", "/%ff", "/nothing-here"])
def test_no_traversal_no_listing_no_dotfiles(port: int, path: str) -> None:
    status, body, _ = request(port, "GET", path)
    assert status == 404 and b"outside the site" not in body and b"a b.xml" not in body and b"dotfile" not in body


def test_every_response_carries_the_security_headers(site: Path) -> None:
    token = "t0ken-of-at-least-16-chars"
    for p in serving(site, Auth.load(token, None)):
        ok = {"Authorization": f"Bearer {token}"}
        for method, path, headers, want in [("GET", "/", ok, 200), ("HEAD", "/", ok, 200), ("GET", "/", {}, 401),
                                            ("HEAD", "/", {}, 401), ("GET", "/nothing", ok, 404),
                                            ("HEAD", "/nothing", ok, 404), ("DELETE", "/", ok, 405)]:
            status, _, got = request(p, method, path, headers)
            assert status == want, (method, path)
            assert_security_headers(got)


def test_errors_the_server_itself_generates_carry_the_security_headers(port: int) -> None:
    for data, want in [(b"GARBAGE\r\n\r\n", 400),
                       (b"GET / HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n", 400),
                       (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n", 413),
                       (b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 40_000 + b"\r\n\r\n", 431)]:
        status, body, headers = raw(port, data)
        assert status == want, data[:40]
        assert_security_headers(headers)
        assert b"waitress" not in body


def test_a_crash_is_a_500_with_the_headers_and_no_traceback(port: int, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*_: object) -> None:
        raise RuntimeError("secret detail")

    monkeypatch.setattr(SiteApp, "_open", boom)
    status, body, headers = request(port, "GET", "/")
    assert status == 500 and b"secret detail" not in body and b"Traceback" not in body
    assert_security_headers(headers)
    # and if the application itself blows up, the server's own 500 carries them too
    monkeypatch.setattr(SiteApp, "__call__", boom)
    status, body, headers = request(port, "GET", "/")
    assert status == 500 and b"secret detail" not in body
    assert_security_headers(headers)


def test_head_sends_headers_only_and_the_connection_stays_usable(site: Path, port: int) -> None:
    data = os.urandom(300_000)
    (site / "evidence" / "blob.bin").write_bytes(data)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("HEAD", "/evidence/blob.bin")
    resp = conn.getresponse()
    assert resp.status == 200 and resp.read() == b"" and resp.headers["Content-Length"] == str(len(data))
    conn.request("GET", "/evidence/blob.bin")  # a stray body after HEAD would corrupt this response
    resp = conn.getresponse()
    assert resp.status == 200 and resp.headers["Content-Length"] == str(len(data)) and resp.read() == data
    conn.close()


def test_files_are_handed_over_as_file_objects_in_chunks(site: Path) -> None:
    (site / "evidence" / "big.bin").write_bytes(b"x" * 300_000)
    app_ = SiteApp(site, Auth())
    seen: list[tuple[object, int]] = []

    def file_wrapper(f: object, size: int) -> list[bytes]:
        seen.append((f, size))
        return []

    app_({"REQUEST_METHOD": "GET", "PATH_INFO": "/evidence/big.bin", "wsgi.file_wrapper": file_wrapper},
         lambda *a: None)
    (f, size), = seen
    assert hasattr(f, "read") and not isinstance(f, bytes) and size <= 64 * 1024
    f.close()  # type: ignore[attr-defined]
    body = app_({"REQUEST_METHOD": "GET", "PATH_INFO": "/evidence/big.bin"}, lambda *a: None)
    chunks = list(body)
    assert len(chunks) > 1 and max(map(len, chunks)) <= 64 * 1024 and b"".join(chunks) == b"x" * 300_000


def test_idle_connections_hold_no_threads(site: Path) -> None:
    for p in serving(site, Auth(), Limits(max_connections=300, timeout=30, threads=4)):
        request(p, "GET", "/")
        before = threading.active_count()
        idle = [socket.create_connection(("127.0.0.1", p), timeout=10) for _ in range(200)]
        try:
            time.sleep(0.5)
            assert threading.active_count() <= before + 1
            assert request(p, "GET", "/")[0] == 200  # and the server still answers
        finally:
            for s in idle:
                s.close()


def test_connections_beyond_the_cap_wait_for_a_free_slot(site: Path) -> None:
    for p in serving(site, Auth(), Limits(max_connections=4, timeout=30, threads=2)):
        held = [socket.create_connection(("127.0.0.1", p), timeout=10) for _ in range(4)]
        time.sleep(0.5)
        late = socket.create_connection(("127.0.0.1", p), timeout=10)  # the kernel's backlog takes it
        late.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert select.select([late], [], [], 1.0)[0] == []  # not accepted while four are open
        held.pop().close()
        assert select.select([late], [], [], 10)[0] and late.recv(100).startswith(b"HTTP/1.1 200")
        for s in [*held, late]:
            s.close()


def test_idle_and_slow_clients_are_cut_off(site: Path) -> None:
    for p in serving(site, Auth(), Limits(max_connections=16, timeout=1, threads=2)):
        idle = socket.create_connection(("127.0.0.1", p), timeout=10)
        t0 = time.monotonic()
        assert idle.recv(100) == b""  # closed by the server, not by our timeout
        assert time.monotonic() - t0 < 8
        idle.close()
        # a client trickling header lines keeps the connection active but never finishes its request
        slow = socket.create_connection(("127.0.0.1", p), timeout=10)
        slow.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")
        t0, closed = time.monotonic(), False
        while not closed and time.monotonic() - t0 < 10:
            time.sleep(0.2)
            try:
                slow.sendall(b"X-Slow: 1\r\n")
                closed = bool(select.select([slow], [], [], 0)[0]) and slow.recv(100) == b""
            except OSError:
                closed = True
        assert closed and time.monotonic() - t0 < 8
        slow.close()


def serve_subprocess(site: Path, *args: str) -> tuple[subprocess.Popen[str], int]:
    proc = subprocess.Popen(
        [sys.executable, "-c", "from security_checks.cli.app import main; main()", "serve", "--site", str(site),
         "--port", "0", *args],
        cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    line = proc.stderr.readline()
    found = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
    if not found:
        proc.kill()
        raise AssertionError(f"no address printed: {line!r} {proc.stderr.read()!r}")
    assert int(found.group(1)) != 0  # port 0 asks for any free port; the real one is printed
    return proc, int(found.group(1))


def rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads the server's RSS from /proc")
def test_slow_readers_of_a_large_file_neither_load_it_nor_hold_workers(site: Path) -> None:
    with open(site / "evidence" / "big.bin", "wb") as f:
        f.truncate(64 * MiB)
    proc, p = serve_subprocess(site, "--threads", "2")
    readers: list[socket.socket] = []
    try:
        assert request(p, "GET", "/")[0] == 200
        baseline = rss(proc.pid)
        for _ in range(4):  # twice as many readers as workers
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
            s.settimeout(10)
            s.connect(("127.0.0.1", p))
            s.sendall(b"GET /evidence/big.bin HTTP/1.1\r\nHost: x\r\n\r\n")
            assert re.match(rb"HTTP/1\.[01] 200 ", s.recv(64 * 1024))
            readers.append(s)
        peak = baseline
        for _ in range(15):
            time.sleep(0.1)
            peak = max(peak, rss(proc.pid))
        assert request(p, "GET", "/")[:2] == (200, b"<html>dashboard</html>")  # workers are free
        assert peak - baseline < 32 * MiB, f"server grew by {(peak - baseline) / MiB:.0f} MiB"
    finally:
        for s in readers:
            s.close()
        proc.terminate()
        proc.wait(timeout=10)
        if proc.stderr:
            proc.stderr.close()


def test_token_and_bcrypt_users_are_enforced_when_configured(site: Path, tmp_path: Path) -> None:
    token = "t0ken-of-at-least-16-chars"
    for p in serving(site, Auth.load(token, None)):
        assert request(p, "GET", "/")[0] == 401
        assert request(p, "GET", "/", {"Authorization": "Bearer wrong-token-wrong-token"})[0] == 401
        assert request(p, "GET", "/", {"Authorization": f"Bearer {token}x"})[0] == 401
        assert request(p, "GET", "/", {"Authorization": f"Bearer {token}"})[0] == 200
    users = tmp_path / "users"
    users.write_text(f"auditor:{bcrypt.hashpw(b'correct horse battery', bcrypt.gensalt(rounds=4)).decode()}\n")
    for p in serving(site, Auth.load(None, users)):
        status, _, headers = request(p, "GET", "/")
        assert status == 401 and headers["WWW-Authenticate"].startswith("Basic")
        assert request(p, "GET", "/", basic(b"auditor:wrong"))[0] == 401
        assert request(p, "GET", "/", basic(b"auditor:correct horse battery"))[0] == 200


def test_long_and_malformed_credentials_are_401_without_bcrypt(site: Path, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    password72 = b"p" * 72
    users = tmp_path / "users"
    users.write_text(f"auditor:{bcrypt.hashpw(password72, bcrypt.gensalt(rounds=4)).decode()}\n")
    calls: list[int] = []
    checkpw = bcrypt.checkpw
    monkeypatch.setattr(bcrypt, "checkpw", lambda pw, h: calls.append(len(pw)) or checkpw(pw, h))
    for p in serving(site, Auth.load(None, users)):
        for credentials in [b"auditor:" + password72 + b"p", b"auditor:" + "é".encode() * 37, b"nobody:" + b"q" * 500]:
            assert request(p, "GET", "/", basic(credentials))[0] == 401
        assert calls == []  # refused before bcrypt, which raises past 72 bytes
        for header in ["Basic", "Basic !!!not-base64", "Basic " + base64.b64encode(b"no-colon").decode(),
                       "Basic " + base64.b64encode(b":empty-user").decode(), "Digest username=auditor",
                       "Bearer " + "x" * 40, "basic", "Basic " + base64.b64encode(b"\xff\xfe:\xff").decode()]:
            status, _, headers = request(p, "GET", "/", {"Authorization": header})
            assert status == 401, header
            assert_security_headers(headers)
        assert request(p, "GET", "/", basic(b"auditor:" + password72))[0] == 200


def test_unknown_users_cost_a_bcrypt_check_like_known_ones(tmp_path: Path) -> None:
    users = tmp_path / "users"
    users.write_text(f"auditor:{bcrypt.hashpw(b'correct horse battery', bcrypt.gensalt(rounds=8)).decode()}\n"
                     f"clerk:{bcrypt.hashpw(b'another long password', bcrypt.gensalt(rounds=5)).decode()}\n")
    auth = Auth.load(None, users)
    known: list[float] = []
    unknown: list[float] = []
    for _ in range(7):  # interleaved, so that load on the machine touches both alike
        for creds, times in ((b"auditor:wrong password", known), (b"nobody:wrong password", unknown)):
            header = basic(creds)["Authorization"]
            t0 = time.perf_counter()
            assert not auth.allows(header)
            times.append(time.perf_counter() - t0)
    ratio = statistics.median(unknown) / statistics.median(known)
    assert 0.3 <= ratio <= 3, f"unknown/known = {ratio:.3f}"


def test_a_verified_credential_is_not_rechecked_but_a_wrong_one_always_is(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    users = tmp_path / "users"
    users.write_text(f"auditor:{bcrypt.hashpw(b'correct horse battery', bcrypt.gensalt(rounds=4)).decode()}\n")
    auth = Auth.load(None, users)
    calls: list[int] = []
    checkpw = bcrypt.checkpw
    monkeypatch.setattr(bcrypt, "checkpw", lambda pw, h: calls.append(1) or checkpw(pw, h))
    good = basic(b"auditor:correct horse battery")["Authorization"]
    assert auth.allows(good) and auth.allows(good) and len(calls) == 1
    assert not auth.allows(basic(b"auditor:correct horse batter")["Authorization"]) and len(calls) == 2
    assert not auth.allows(basic(b"auditor:correct horse batter")["Authorization"]) and len(calls) == 3


def test_no_log_or_output_echoes_the_authorization_header(site: Path, caplog: pytest.LogCaptureFixture,
                                                          capfd: pytest.CaptureFixture[str],
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    token = "t0ken-of-at-least-16-chars"
    caplog.set_level("DEBUG")
    for p in serving(site, Auth.load(token, None)):
        request(p, "GET", "/", {"Authorization": "Bearer wrong-secret-wrong-secret"})
        request(p, "GET", "/nothing", {"Authorization": f"Bearer {token}"})
        monkeypatch.setattr(SiteApp, "_open", lambda *_: 1 / 0)
        assert request(p, "GET", "/", {"Authorization": f"Bearer {token}"})[0] == 500
    out, err = capfd.readouterr()
    for text in (caplog.text, out, err):
        assert token not in text and "wrong-secret" not in text


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


def test_help_says_what_is_bounded() -> None:
    res = CliRunner().invoke(app, ["serve", "--help"], terminal_width=200)
    assert res.exit_code == 0
    text = " ".join(res.output.split())
    for option in ("--max-connections", "--timeout", "--threads"):
        assert option in text
    assert "streamed in chunks" in text and "idle" in text
