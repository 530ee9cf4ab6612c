"""`estate serve`: the report site over HTTP, read-only, on loopback unless authentication is set up."""

from __future__ import annotations

import os
from pathlib import Path

import typer

from .common import err, usage_error

EPILOG = ("Examples:\n\n  estate serve                                   (http://127.0.0.1:8080/)\n\n"
          "  estate serve --site .estate/bundles/20261122T050512Z-3f9a --port 9000\n\n"
          "  estate serve --hash-password >> serve-users   (then: estate serve --bind 0.0.0.0 --auth-file "
          "serve-users)\n\n  ESTATE_SERVE_TOKEN=$(openssl rand -hex 24) estate serve --bind 10.10.10.5")


def serve(
    site: Path = typer.Option(Path("out/report"), "--site", help="The report site (or a bundle) to serve."),
    port: int = typer.Option(8080, "--port", min=0, max=65535, help="TCP port (0: any free port)."),
    bind: str = typer.Option("127.0.0.1", "--bind", help="Address to listen on. Anything but loopback needs "
                             "authentication."),
    auth_file: Path | None = typer.Option(None, "--auth-file", help="Lines of user:<bcrypt hash> (HTTP Basic)."),
    hash_password: bool = typer.Option(False, "--hash-password", help="Read a user name and password, print an "
                                       "auth-file line, and exit."),
    max_connections: int = typer.Option(64, "--max-connections", min=1, max=10000,
                                        help="Open connections at most; further clients wait in the listen "
                                        "backlog until one closes."),
    timeout: int = typer.Option(30, "--timeout", min=1, max=3600,
                                help="Seconds: a connection idle this long is closed, and so is one whose "
                                "request has not fully arrived this long after it began."),
    threads: int = typer.Option(4, "--threads", min=1, max=256,
                                help="Worker threads answering requests (idle connections hold none)."),
) -> None:
    """Serve the report site read-only: GET and HEAD only, no directory listings, nothing outside --site.

    Bound to 127.0.0.1 by default. To bind elsewhere, configure authentication: a bearer token in
    ESTATE_SERVE_TOKEN (16+ characters), or --auth-file with bcrypt hashes (HTTP Basic). Put TLS in front
    of it (a reverse proxy) when it is reachable from other machines.

    The server is bounded so that no client can exhaust it: at most --max-connections open connections
    (the rest queue in the kernel's backlog), a fixed pool of --threads workers (idle and keep-alive
    connections hold no thread), and --timeout seconds for an idle connection or for a request to arrive
    in full (slow and idle clients are cut off). Files are streamed in chunks, never read whole into memory.
    Every response, errors included, carries the security headers (CSP, nosniff, no-referrer, no-store,
    frame DENY, same-origin resources). An unknown user costs the same bcrypt check as a known one.
    """
    from ..report.server import BCRYPT_MAX_BYTES, Auth, AuthConfigError, Limits, make_server

    if hash_password:
        import getpass

        import bcrypt

        user = input("user: ").strip()
        password = getpass.getpass("password: ")
        if not user or ":" in user or len(password) < 12:
            usage_error("a user name without ':' and a password of 12+ characters, please")
        if len(password.encode()) > BCRYPT_MAX_BYTES:
            usage_error(f"a password of at most {BCRYPT_MAX_BYTES} bytes (UTF-8), please: bcrypt ignores the rest")
        print(f"{user}:{bcrypt.hashpw(password.encode(), bcrypt.gensalt()).decode()}")
        return
    if not (site / "index.html").is_file():
        usage_error(f"--site {site}: no index.html there (write one with `estate report`)")
    try:
        auth = Auth.load(os.environ.get("ESTATE_SERVE_TOKEN"), auth_file)
        server = make_server(site, bind, port, auth, Limits(max_connections, timeout, threads))
    except AuthConfigError as exc:
        usage_error(str(exc))
    except OSError as exc:
        usage_error(f"--bind {bind} --port {port}: {exc.strerror or exc}")
    host, real_port = str(server.server_address[0]), int(server.server_address[1])
    shown = f"[{host}]" if ":" in host else host
    err.print(f"serving {site} read-only at http://{shown}:{real_port}/ "
              f"({'authentication required' if auth.configured else 'no authentication: loopback only'}; "
              f"at most {max_connections} connections, {threads} workers, {timeout} s timeout); "
              "Ctrl-C stops", soft_wrap=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
