"""Small real servers that stand in for the services the estate declares (and for the lab's faults).

Each listener is a real socket speaking enough of its protocol for nmap's service detection and
NSE scripts to see what a real one would show: HTTP with or without security headers, TLS with a
chosen protocol range (TLS 1.0 only needs OpenSSL's SECLEVEL=0), an SSH server that sends its
banner and KEXINIT (what ssh2-enum-algos reads), a telnet banner with option negotiation, SIP/UDP.

Two ways to run them:
- in-process threads (`start(specs)`), for the self-test on loopback on any machine;
- as a process inside a lab namespace (`python -m security_checks.lab.listeners SPEC.json`), which
  writes its pid file so `estate lab down` can stop it even after a crash.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import socketserver
import ssl
import struct
import sys
import threading
import warnings
from dataclasses import asdict, dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

STRONG_SSH = {
    "kex": ["curve25519-sha256", "curve25519-sha256@libssh.org", "ecdh-sha2-nistp256"],
    "hostkey": ["ssh-ed25519", "rsa-sha2-512"],
    "enc": ["chacha20-poly1305@openssh.com", "aes256-gcm@openssh.com", "aes128-ctr"],
    "mac": ["hmac-sha2-256-etm@openssh.com", "hmac-sha2-512-etm@openssh.com"],
}
WEAK_SSH = {
    "kex": ["diffie-hellman-group1-sha1", "diffie-hellman-group14-sha1"],
    "hostkey": ["ssh-dss", "ssh-rsa"],
    "enc": ["3des-cbc", "arcfour", "aes128-cbc"],
    "mac": ["hmac-md5", "hmac-sha1-96"],
}
SECURITY_HEADERS = {
    "Strict-Transport-Security": "max-age=31536000; includeSubDomains",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "default-src 'self'",
    "Referrer-Policy": "no-referrer",
}


@dataclass
class ListenerSpec:
    address: str
    port: int
    kind: str  # http | https | tls | ssh | telnet | tcp | sip-udp
    protocol: str = "tcp"
    name: str = ""
    tls_versions: list[str] = field(default_factory=lambda: ["TLSv1.2", "TLSv1.3"])
    headers: bool = True
    ssh_algorithms: str = "strong"  # strong | weak
    cert: str | None = None
    key: str | None = None
    banner: str = ""


class _Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True

    def __init__(self, spec: ListenerSpec, handler: type[socketserver.BaseRequestHandler]):
        self.spec = spec
        self.tls: ssl.SSLContext | None = _tls_context(spec) if spec.kind in ("https", "tls") else None
        super().__init__((spec.address, spec.port), handler)

    def get_request(self) -> tuple[Any, Any]:
        conn, addr = super().get_request()
        if self.tls is not None:
            # Handshake in the handler thread (on first read), never in the accept loop.
            conn = self.tls.wrap_socket(conn, server_side=True, do_handshake_on_connect=False)
        return conn, addr

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # scanners hang up mid-handshake all the time; that is not worth a traceback


class _UdpServer(socketserver.ThreadingUDPServer):
    allow_reuse_address = True
    daemon_threads = True

    def __init__(self, spec: ListenerSpec, handler: type[socketserver.BaseRequestHandler]):
        self.spec = spec
        super().__init__((spec.address, spec.port), handler)


def _tls_context(spec: ListenerSpec) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    if not spec.cert or not spec.key:
        raise ValueError(f"listener {spec.name or spec.port}: TLS needs cert and key")
    ctx.load_cert_chain(spec.cert, spec.key)
    versions = [getattr(ssl.TLSVersion, v.replace(".", "_")) for v in spec.tls_versions]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        if any(v < ssl.TLSVersion.TLSv1_2 for v in versions):
            # OpenSSL 3 refuses TLS 1.0/1.1 at the default security level: the fault needs level 0.
            ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
        ctx.minimum_version = min(versions)
        ctx.maximum_version = max(versions)
    return ctx


def _spec(server: object) -> ListenerSpec:
    spec: ListenerSpec = server.spec  # type: ignore[attr-defined]
    return spec


class _Http(BaseHTTPRequestHandler):
    server_version = "nginx/1.22.1"
    protocol_version = "HTTP/1.1"

    def version_string(self) -> str:
        return self.server_version

    def do_GET(self) -> None:
        body = f"{_spec(self.server).name or 'estate lab'}\n".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        spec: ListenerSpec = _spec(self.server)
        if spec.headers:
            for k, v in SECURITY_HEADERS.items():
                if k == "Strict-Transport-Security" and spec.kind != "https":
                    continue
                self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    do_HEAD = do_GET

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Tls(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        self.request.settimeout(5)
        try:
            self.request.do_handshake()
            self.request.recv(1024)
        except (OSError, ssl.SSLError):
            return


class _Banner(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        spec: ListenerSpec = _spec(self.server)
        self.request.settimeout(5)
        try:
            if spec.kind == "telnet":
                # IAC WILL ECHO, IAC WILL SUPPRESS-GO-AHEAD, IAC DO TERMINAL-TYPE, then a login prompt
                self.request.sendall(b"\xff\xfb\x01\xff\xfb\x03\xff\xfd\x18")
                self.request.sendall((spec.banner or "\r\nHarrowdale BMS controller\r\nlogin: ").encode())
            elif spec.banner:
                self.request.sendall(spec.banner.encode())
            self.request.recv(1024)
        except OSError:
            return


class _Ssh(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        spec: ListenerSpec = _spec(self.server)
        algos = WEAK_SSH if spec.ssh_algorithms == "weak" else STRONG_SSH
        self.request.settimeout(5)
        try:
            self.request.sendall(b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n")
            self.request.recv(256)  # the client's identification
            self.request.sendall(_kexinit(algos))
            self.request.recv(4096)
        except OSError:
            return


def _kexinit(algos: dict[str, list[str]]) -> bytes:
    def namelist(items: list[str]) -> bytes:
        raw = ",".join(items).encode()
        return struct.pack(">I", len(raw)) + raw

    lists = [algos["kex"], algos["hostkey"], algos["enc"], algos["enc"], algos["mac"], algos["mac"],
             ["none"], ["none"], [], []]
    payload = bytes([20]) + secrets.token_bytes(16) + b"".join(namelist(x) for x in lists) + b"\x00" + b"\x00" * 4
    pad = 8 - ((len(payload) + 5) % 8)
    pad = pad + 8 if pad < 4 else pad
    return struct.pack(">IB", len(payload) + pad + 1, pad) + payload + b"\x00" * pad


class _Sip(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        _data, sock = self.request
        sock.sendto(b"SIP/2.0 200 OK\r\nServer: estate-lab-sip\r\nContent-Length: 0\r\n\r\n", self.client_address)


class _UdpEcho(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        _data, sock = self.request
        sock.sendto(b"ok\n", self.client_address)


HANDLERS: dict[str, type[socketserver.BaseRequestHandler]] = {
    "http": _Http, "https": _Http, "tls": _Tls, "ssh": _Ssh, "telnet": _Banner, "tcp": _Banner, "sip-udp": _Sip,
    "udp-echo": _UdpEcho,
}


class Running:
    """Listeners serving in background threads; `stop()` closes every socket."""

    def __init__(self) -> None:
        self.servers: list[socketserver.BaseServer] = []
        self.threads: list[threading.Thread] = []

    def stop(self) -> None:
        for s in self.servers:
            s.shutdown()
            s.server_close()
        for t in self.threads:
            t.join(timeout=5)
        self.servers.clear()
        self.threads.clear()


def start(specs: list[ListenerSpec]) -> Running:
    running = Running()
    try:
        for spec in specs:
            handler = HANDLERS[spec.kind]
            server: socketserver.BaseServer = (_UdpServer(spec, handler) if spec.protocol == "udp"
                                               else _Server(spec, handler))
            running.servers.append(server)
            t = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2},
                                 name=f"listener-{spec.address}:{spec.port}", daemon=True)
            t.start()
            running.threads.append(t)
    except BaseException:
        running.stop()
        raise
    return running


def write_spec_file(path: Path, specs: list[ListenerSpec]) -> None:
    path.write_text(json.dumps([asdict(s) for s in specs], indent=1))


def main(argv: list[str]) -> int:
    """Serve the listeners in SPEC.json until SIGTERM; write PIDFILE first (lab processes)."""
    spec_path, pidfile = Path(argv[0]), Path(argv[1])
    specs = [ListenerSpec(**s) for s in json.loads(spec_path.read_text())]
    running = start(specs)
    pidfile.write_text(str(os.getpid()))
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    print("ready", flush=True)
    done.wait()
    running.stop()
    return 0


def port_is_free(address: str, port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the listeners do: TIME_WAIT is not "in use"
        try:
            s.bind((address, port))
        except OSError:
            return False
    return True


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
