"""Delivery: SMTP with STARTTLS (always) and Teams/Slack webhooks (HTTPS, or HTTP on loopback only).

Credentials and webhook URLs come from environment variables the estate names; they are never
printed, logged or put in an error message (a webhook URL is itself the credential).
"""

from __future__ import annotations

import ipaddress
import json
import os
import smtplib
import ssl
import urllib.error
import urllib.parse
import urllib.request
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path
from typing import Any

from ..model.schema import EmailNotice, WebhookNotice

TIMEOUT = 30


class SendError(Exception):
    """Delivery failed (server down, refused, TLS). The message names the channel, never a secret."""


class ConfigError(ValueError):
    """The estate names an environment variable that is not set, or a URL that is not allowed."""


def _env(name: str, what: str) -> str:
    value = os.environ.get(name, "")
    if not value:
        raise ConfigError(f"{what}: environment variable {name} is not set")
    return value


def send_email(cfg: EmailNotice, subject: str, body: str, estate_dir: Path) -> str:
    msg = EmailMessage()
    msg["From"] = cfg.sender
    msg["To"] = ", ".join(cfg.to)
    msg["Subject"] = subject
    msg["Date"] = formatdate(localtime=False)
    msg["Message-ID"] = make_msgid(domain=cfg.sender.rpartition("@")[2] or None)
    msg.set_content(body)
    user = _env(cfg.username_env, "notifications.email.username_env") if cfg.username_env else None
    password = _env(cfg.password_env, "notifications.email.password_env") if cfg.password_env else None
    ctx = ssl.create_default_context(cafile=str(estate_dir / cfg.ca_file) if cfg.ca_file else None)
    where = f"SMTP {cfg.smtp_host}:{cfg.smtp_port}"
    try:
        with smtplib.SMTP(cfg.smtp_host, cfg.smtp_port, timeout=TIMEOUT) as smtp:
            smtp.ehlo()
            if not smtp.has_extn("starttls"):
                raise SendError(f"{where} does not offer STARTTLS: not sending a notice in clear text")
            smtp.starttls(context=ctx)
            smtp.ehlo()
            if user is not None and password is not None:
                smtp.login(user, password)
            refused = smtp.send_message(msg)
    except SendError:
        raise
    except ssl.SSLError as exc:
        raise SendError(f"{where}: TLS failed ({exc.reason or exc})") from None
    except smtplib.SMTPAuthenticationError as exc:
        raise SendError(f"{where}: login refused ({exc.smtp_code})") from None
    except (smtplib.SMTPException, OSError) as exc:
        raise SendError(f"{where}: {type(exc).__name__}: {exc}") from None
    if refused:
        raise SendError(f"{where}: refused recipients {', '.join(sorted(refused))}")
    return f"email to {', '.join(cfg.to)} via {where}"


def check_url(url: str, what: str) -> None:
    """HTTPS only, except to this machine's loopback (a local relay, or the tests' receiver)."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    if parts.scheme == "https" and host:
        return
    if parts.scheme == "http":
        try:
            if ipaddress.ip_address(host).is_loopback:
                return
        except ValueError:
            if host == "localhost":
                return
    raise ConfigError(f"{what}: the webhook URL must be https:// (http only to loopback)")


def post_webhook(cfg: WebhookNotice, payload: dict[str, Any]) -> str:
    what = f"{cfg.kind} webhook (${cfg.url_env})"
    url = _env(cfg.url_env, f"notifications.webhooks {cfg.kind}.url_env")
    check_url(url, what)
    req = urllib.request.Request(url, data=json.dumps(payload).encode(), method="POST",  # noqa: S310 (checked)
                                 headers={"Content-Type": "application/json", "User-Agent": "estate-notify"})
    try:
        with urllib.request.urlopen(req, timeout=TIMEOUT) as resp:  # noqa: S310 (scheme checked above)
            status = resp.status
    except urllib.error.HTTPError as exc:
        raise SendError(f"{what}: HTTP {exc.code}") from None
    except (TimeoutError, urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise SendError(f"{what}: {type(reason).__name__}: {reason}") from None
    if not 200 <= status < 300:
        raise SendError(f"{what}: HTTP {status}")
    return what
