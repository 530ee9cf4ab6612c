"""`estate notify` against a real SMTP server (aiosmtpd, STARTTLS required) and a local webhook
receiver: what it prints is what it sends, read from the store, with no secrets and no details
beyond the estate's chosen level."""

from __future__ import annotations

import datetime as dt
import email.policy
import ipaddress
import json
import os
import shutil
import socket
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from security_checks.checks import make_finding
from security_checks.findings import Status
from security_checks.model.loader import load_estate
from tests.conftest import DEMO, ESTATE_BIN
from tests.runs import run_with

GLENMORAY = Path(__file__).resolve().parents[1] / "estates" / "glenmoray"
SMTP_USER, SMTP_PASSWORD = "estate-alerts", "pw-9f2c1d-never-printed"
HOOK_TOKEN = "T0KEN-b7e1-never-printed"
OBSERVED_SECRET = "OBSERVED-VALUE-stays-in-the-store"
TODAY = dt.date.today()


def _tls(tmp: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "estate test SMTP")])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5))
            .not_valid_after(dt.datetime.now(dt.UTC) + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = tmp / "smtp.pem", tmp / "smtp.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


@dataclass
class Mailbox:
    messages: list[Message] = field(default_factory=list)
    tls_seen: list[bool] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Session, envelope: Envelope) -> str:
        self.tls_seen.append(session.ssl is not None)
        self.messages.append(message_from_bytes(envelope.original_content or b"", policy=email.policy.default))
        return "250 OK"


def _auth(server: Any, session: Session, envelope: Envelope, mechanism: str, data: Any) -> AuthResult:
    ok = isinstance(data, LoginPassword) and data.login.decode() == SMTP_USER and \
        data.password.decode() == SMTP_PASSWORD
    return AuthResult(success=ok)


@pytest.fixture
def smtp(tmp_path: Path) -> Iterator[tuple[Controller, Mailbox, Path]]:
    import ssl

    cert, key = _tls(tmp_path)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    box = Mailbox()
    with socket.socket() as probe:  # aiosmtpd checks readiness by connecting, so it needs a real port
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    ctl = Controller(box, hostname="127.0.0.1", port=port, tls_context=ctx, require_starttls=True,
                     auth_require_tls=True, authenticator=_auth, auth_required=True)
    ctl.start()
    try:
        yield ctl, box, cert
    finally:
        ctl.stop()


class _Receiver(BaseHTTPRequestHandler):
    posts: list[tuple[str, dict[str, Any]]]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.posts.append((self.path, json.loads(body)))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def hooks() -> Iterator[tuple[str, list[tuple[str, dict[str, Any]]]]]:
    posts: list[tuple[str, dict[str, Any]]] = []
    handler = type("Receiver", (_Receiver,), {"posts": posts})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", posts
    finally:
        server.shutdown()


def _estate(tmp_path: Path, source: Path, notifications: dict[str, Any], waiver_days: int | None = 10) -> Path:
    dest = tmp_path / "estate"
    shutil.copytree(source, dest)
    (dest / "schedules.yaml").write_text(yaml.safe_dump({"notifications": notifications}))
    if waiver_days is not None:
        (dest / "waivers-soon.yaml").write_text(yaml.safe_dump({"waivers": [{
            "check": "scan.weak_smb", "asset": "host:10.10.99.99", "approved_by": "Test Approver",
            "justification": "an accepted risk whose acceptance runs out soon",
            "approved_on": (TODAY - dt.timedelta(days=100)).isoformat(),
            "expires": (TODAY + dt.timedelta(days=waiver_days)).isoformat(), "reference": "RISK-T1"}]}))
    return dest


def _runs(home: Path, estate_dir: Path) -> str:
    """Run 1 (20 days ago): one high failure. Run 2 (today): that one, a new critical, a new high,
    a new medium and a stale advisory feed. Returns run 2's id."""
    loaded = load_estate(estate_dir)
    old = make_finding("scan.plaintext_protocol", "host:10.10.30.20", Status.FAIL, key="tcp/23",
                       observed=OBSERVED_SECRET)
    run_with(home, loaded, [old], today=TODAY - dt.timedelta(days=20))
    new = [old,
           make_finding("scan.weak_tls", "host:10.10.30.21", Status.FAIL, key="tcp/443", observed=OBSERVED_SECRET,
                        severity=make_finding("scan.weak_tls", "x", Status.FAIL).severity.__class__("critical")),
           make_finding("scan.plaintext_protocol", "host:10.10.30.22", Status.FAIL, key="tcp/21"),
           make_finding("scan.undeclared_port", "host:10.10.30.23", Status.FAIL, key="tcp/8080",
                        severity=make_finding("scan.weak_tls", "x", Status.FAIL).severity.__class__("medium")),
           make_finding("patch.advisory_feed_stale", "advisory-feed", Status.FAIL,
                        observed="feed dated 2026-01-01 (300 day(s) old)")]
    return run_with(home, loaded, new, today=TODAY).run.id


def _notify(estate_dir: Path, home: Path, *args: str, env: dict[str, str] | None = None
            ) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, "ESTATE_HOME": str(home), **(env or {})}
    full.pop("SERVICE_RESULT", None) if "SERVICE_RESULT" not in (env or {}) else None
    return subprocess.run([str(ESTATE_BIN), "notify", "--estate", str(estate_dir), *args], capture_output=True,
                          text=True, check=False, env=full)


def test_notice_reaches_smtp_over_starttls_and_both_webhooks(tmp_path: Path, smtp: Any, hooks: Any) -> None:
    ctl, box, cert = smtp
    base, posts = hooks
    est = _estate(tmp_path, DEMO, {
        "detail": "titles",
        "email": {"to": ["security@council.example"], "sender": "estate@council.example", "smtp_host": "127.0.0.1",
                  "smtp_port": ctl.port, "ca_file": "smtp-ca.pem", "username_env": "T_SMTP_USER",
                  "password_env": "T_SMTP_PASSWORD"},
        "webhooks": [{"kind": "teams", "url_env": "T_TEAMS"}, {"kind": "slack", "url_env": "T_SLACK"}]})
    shutil.copy(cert, est / "smtp-ca.pem")
    home = tmp_path / "home"
    run_id = _runs(home, est)
    env = {"T_SMTP_USER": SMTP_USER, "T_SMTP_PASSWORD": SMTP_PASSWORD,
           "T_TEAMS": f"{base}/teams/{HOOK_TOKEN}", "T_SLACK": f"{base}/slack/{HOOK_TOKEN}"}
    r = _notify(est, home, env=env)
    assert r.returncode == 0, r.stderr

    # the email: delivered only after STARTTLS (the server refuses anything else) and login
    assert len(box.messages) == 1 and box.tls_seen == [True]
    mail = box.messages[0]
    assert mail["Subject"].strip().startswith("[estate] Harrowdale District Council: 2 new critical/high")
    body = mail.get_payload(decode=True).decode().replace("\r\n", "\n")
    assert body.strip() == r.stdout.strip()                      # what it printed is what it sent
    assert f"Run {run_id}" in body and "1 critical, 1 high" in body
    assert "1 overdue" in body                                   # the first run's high is past its 14 days
    assert "Waivers expiring: 1" in body and "RISK-T1" in body
    assert "Advisory feed: feed dated 2026-01-01" in body
    assert "[critical]" in body and "(1 asset)" in body          # titles, but ...
    assert "10.10.30.21" not in body                              # ... not the assets at this level
    assert "Undeclared" not in body and "medium" not in body     # only critical and high are news

    # the webhooks: Teams gets an Adaptive Card, Slack a message, both with the same subject
    by_path = {p.split("/")[1]: payload for p, payload in posts}
    assert set(by_path) == {"teams", "slack"}
    card = by_path["teams"]["attachments"][0]
    assert card["contentType"] == "application/vnd.microsoft.card.adaptive"
    assert card["content"]["body"][0]["text"] == mail["Subject"].strip()
    assert by_path["slack"]["text"] == mail["Subject"].strip()

    everything = r.stdout + r.stderr + body + json.dumps([payload for _path, payload in posts])
    for secret in (SMTP_PASSWORD, HOOK_TOKEN, OBSERVED_SECRET):
        assert secret not in everything
    assert "sent: email to security@council.example" in r.stderr


def test_detail_assets_names_them_and_counts_names_nothing(tmp_path: Path) -> None:
    home = tmp_path / "home"
    est = _estate(tmp_path, DEMO, {"detail": "assets"})
    _runs(home, est)
    shown = _notify(est, home, "--dry-run")
    assert shown.returncode == 0 and "host:10.10.30.21" in shown.stdout
    (est / "schedules.yaml").write_text(yaml.safe_dump({"notifications": {"detail": "counts"}}))
    counts = _notify(est, home, "--dry-run", "--format", "json")
    data = json.loads(counts.stdout)
    assert data["detail"] == "counts" and data["sent"] == [] and data["dry_run"] is True
    assert "host:10.10.30.2" not in data["text"] and "Plaintext" not in data["text"]
    assert "New critical/high findings: 1 critical, 1 high" in data["text"]


def test_a_failed_scheduled_run_is_news_and_nothing_new_is_not_sent(tmp_path: Path, hooks: Any) -> None:
    base, posts = hooks
    est = _estate(tmp_path, DEMO, {"webhooks": [{"kind": "slack", "url_env": "T_SLACK"}]}, waiver_days=None)
    home = tmp_path / "home"
    loaded = load_estate(est)
    f = make_finding("scan.plaintext_protocol", "host:10.10.30.20", Status.FAIL, key="tcp/23")
    run_with(home, loaded, [f], today=TODAY)
    run_with(home, loaded, [f], today=TODAY)
    env = {"T_SLACK": f"{base}/slack/x"}
    quiet = _notify(est, home, env=env)
    assert quiet.returncode == 0 and posts == [] and "nothing new: not sent" in quiet.stderr
    failed = _notify(est, home, env={**env, "SERVICE_RESULT": "timeout"})
    assert failed.returncode == 0 and len(posts) == 1
    assert "scheduled assess did not finish (timeout)" in posts[0][1]["text"]


def test_bad_channels_are_refused_without_leaking(tmp_path: Path, smtp: Any) -> None:
    ctl, box, _cert = smtp
    home = tmp_path / "home"
    est = _estate(tmp_path, DEMO, {"webhooks": [{"kind": "teams", "url_env": "T_TEAMS"}]})
    _runs(home, est)
    plain = _notify(est, home, env={"T_TEAMS": f"http://192.0.2.10/hook/{HOOK_TOKEN}"})
    assert plain.returncode == 2 and "must be https://" in plain.stderr and HOOK_TOKEN not in plain.stderr
    unset = _notify(est, home)
    assert unset.returncode == 2 and "environment variable T_TEAMS is not set" in unset.stderr
    # the server's certificate is not trusted (no ca_file): TLS fails, nothing is delivered, exit 69
    (est / "schedules.yaml").write_text(yaml.safe_dump({"notifications": {"email": {
        "to": ["a@council.example"], "sender": "b@council.example", "smtp_host": "127.0.0.1",
        "smtp_port": ctl.port}}}))
    untrusted = _notify(est, home)
    assert untrusted.returncode == 69 and "TLS failed" in untrusted.stderr and box.messages == []


def test_second_estate_gets_its_own_notice(tmp_path: Path, hooks: Any) -> None:
    base, posts = hooks
    home = tmp_path / "home"
    est = _estate(tmp_path, GLENMORAY, {"detail": "titles", "webhooks": [{"kind": "slack", "url_env": "G_SLACK"}]})
    _runs(home, est)
    r = _notify(est, home, env={"G_SLACK": f"{base}/slack/gmc"})
    assert r.returncode == 0, r.stderr
    text = r.stdout + json.dumps(posts)
    assert "Glenmoray Council" in text
    for demo in ("Harrowdale", "harrowdale", "hdc-"):
        assert demo not in text
    # a run of one council is never reported under another's name
    other = _notify(DEMO, home, "--dry-run")
    assert other.returncode == 2 and "Glenmoray Council's" in other.stderr
