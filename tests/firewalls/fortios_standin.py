"""A FortiOS REST API stand-in (FortiGate, FortiOS 7.2): HTTPS on loopback, for the tests only.

It stands in for a FortiGate, which cannot run here. It implements exactly the endpoints the
fortigate_policy role uses, the way FortiOS 7.2 answers them:

- `GET /logincheck`, `GET /api/v2/monitor/system/status` (login with an API token: Bearer header);
- `GET /api/v2/monitor/firewall/policy` (hit counts);
- `/api/v2/cmdb/<path>/<name>[/<mkey>]` for firewall/address, firewall/addrgrp,
  firewall.service/custom, firewall/policy, system/admin, system/interface (tables: GET, POST,
  PUT, DELETE; PUT ?action=move&after=|before= reorders policies) and system/global (a singleton:
  GET, PUT). PUT answers `revision_changed` as FortiOS does, so a write that changes nothing is
  reported unchanged.

Every request is recorded (method, path, query, JSON body) for the tests to assert on. A wrong or
missing token is 401. What it does NOT prove is in tests/firewalls/README.md.
"""

from __future__ import annotations

import copy
import json
import ssl
import threading
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

TABLES = {"firewall/address": "name", "firewall/addrgrp": "name", "firewall.service/custom": "name",
          "firewall/policy": "policyid", "system/admin": "name", "system/interface": "name"}
SINGLETONS = ("system/global",)


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    body: Any

    @property
    def write(self) -> bool:
        return self.method in ("POST", "PUT", "DELETE")


@dataclass
class FortiGate:
    token: str
    version: str = "v7.2.5"
    build: int = 1517
    serial: str = "FG200FTK00000001"
    hostname: str = "fw-civic"
    tables: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: {t: [] for t in TABLES})
    singletons: dict[str, dict[str, Any]] = field(default_factory=lambda: {s: {} for s in SINGLETONS})
    hits: dict[int, int] = field(default_factory=dict)
    requests: list[Request] = field(default_factory=list)
    revision: int = 1
    lock: threading.Lock = field(default_factory=threading.Lock)

    def config(self) -> dict[str, Any]:
        return copy.deepcopy({"tables": self.tables, "singletons": self.singletons})

    def writes(self) -> list[Request]:
        return [r for r in self.requests if r.write]

    # -- the API ---------------------------------------------------------------------------------

    def _envelope(self, path: str, name: str, results: Any, status: int = 200) -> tuple[int, dict[str, Any]]:
        body = {"http_method": "GET", "results": results, "vdom": "root", "path": path, "name": name,
                "status": "success" if status == 200 else "error", "http_status": status, "serial": self.serial,
                "version": self.version, "build": self.build}
        return status, body

    def handle(self, method: str, raw_path: str, body: Any) -> tuple[int, dict[str, Any]]:
        parsed = urllib.parse.urlsplit(raw_path)
        query = dict(urllib.parse.parse_qsl(parsed.query))
        path = urllib.parse.unquote(parsed.path)
        with self.lock:
            self.requests.append(Request(method, path, query, body))
            if path == "/logincheck":
                return 200, {}
            if path == "/api/v2/monitor/system/status":
                return 200, {"http_method": "GET", "results": {"model_name": "FortiGate", "model_number": "200F",
                                                                "model": "FGT200F", "hostname": self.hostname,
                                                                "log_disk_status": "available"},
                             "vdom": "root", "path": "system", "name": "status", "status": "success",
                             "serial": self.serial, "version": self.version, "build": self.build}
            if path == "/api/v2/monitor/firewall/policy":
                res = [{"policyid": p["policyid"], "hit_count": self.hits.get(p["policyid"], 0),
                        "bytes": self.hits.get(p["policyid"], 0) * 1500, "packets": self.hits.get(p["policyid"], 0)}
                       for p in self.tables["firewall/policy"]]
                return self._envelope("firewall", "policy", res)
            if path.startswith("/api/v2/cmdb/"):
                return self._cmdb(method, path.removeprefix("/api/v2/cmdb/"), query, body)
            return 404, {"status": "error", "http_status": 404}

    def _cmdb(self, method: str, rest: str, query: dict[str, str], body: Any) -> tuple[int, dict[str, Any]]:
        parts = rest.split("/")
        table = "/".join(parts[:2])
        mkey = parts[2] if len(parts) > 2 else None
        pname, name = parts[0], parts[1] if len(parts) > 1 else ""
        if table in SINGLETONS:
            obj = self.singletons[table]
            if method == "GET":
                return self._envelope(pname, name, obj)
            if method == "PUT":
                return self._put(obj, body)
            return 405, {"status": "error", "http_status": 405}
        if table not in TABLES:
            return 404, {"status": "error", "http_status": 404}
        key = TABLES[table]
        rows = self.tables[table]

        def find(k: str) -> dict[str, Any] | None:
            return next((r for r in rows if str(r[key]) == k), None)

        if method == "GET":
            if mkey is None:
                return self._envelope(pname, name, rows)
            row = find(mkey)
            return self._envelope(pname, name, [row]) if row else self._envelope(pname, name, [], 404)
        if method == "POST":
            data = dict(body or {})
            if find(str(data.get(key))):
                return 500, {"status": "error", "http_status": 500, "error": -5}
            data.setdefault("status", "enable") if table == "firewall/policy" else None
            rows.append(_coerce(table, data))
            self.revision += 1
            return 200, {"status": "success", "http_status": 200, "mkey": data.get(key), "revision_changed": True}
        if method == "PUT" and mkey is not None:
            row = find(mkey)
            if row is None:
                return 404, {"status": "error", "http_status": 404}
            if query.get("action") == "move":
                rows.remove(row)
                anchor = find(query.get("after") or query.get("before") or "")
                if anchor is None:
                    rows.append(row)
                    return 500, {"status": "error", "http_status": 500}
                at = rows.index(anchor) + (1 if "after" in query else 0)
                rows.insert(at, row)
                self.revision += 1
                return 200, {"status": "success", "http_status": 200, "revision_changed": True}
            return self._put(row, body)
        if method == "DELETE" and mkey is not None:
            row = find(mkey)
            if row is None:
                return 404, {"status": "error", "http_status": 404, "http_method": "DELETE"}
            rows.remove(row)
            self.revision += 1
            return 200, {"status": "success", "http_status": 200, "revision_changed": True}
        return 405, {"status": "error", "http_status": 405}

    def _put(self, obj: dict[str, Any], body: Any) -> tuple[int, dict[str, Any]]:
        before = copy.deepcopy(obj)
        obj.update(body or {})
        changed = obj != before
        if changed:
            self.revision += 1
        return 200, {"status": "success", "http_status": 200, "revision_changed": changed}


def _coerce(table: str, data: dict[str, Any]) -> dict[str, Any]:
    if table == "firewall/policy" and "policyid" in data:
        data["policyid"] = int(data["policyid"])
    return data


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # quiet: the test reads the record
        return

    def _serve(self) -> None:
        gate = self.server.gate
        if self.headers.get("Authorization") != f"Bearer {gate.token}":
            self._reply(401, {"status": "error", "http_status": 401})
            return
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except json.JSONDecodeError:
            body = raw.decode(errors="replace")
        status, reply = gate.handle(self.command, self.path, body)
        self._reply(status, reply)

    def _reply(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_DELETE = _serve


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    gate: FortiGate


def serve(gate: FortiGate, cert: Path, key: Path) -> tuple[_Server, int]:
    """Start the stand-in on 127.0.0.1 (an ephemeral port) in a thread; returns the server and port."""
    server = _Server(("127.0.0.1", 0), _Handler)
    server.gate = gate
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(str(cert), str(key))
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, int(server.server_address[1])
