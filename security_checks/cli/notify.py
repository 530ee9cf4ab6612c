"""`estate notify`: what changed since the previous run, by email and to Teams or Slack."""

from __future__ import annotations

import os
import sys
from datetime import date
from typing import Annotated

import typer

from ..notify import changes, message, send
from .common import (
    DEFAULT_HOME,
    DEMO_ESTATE,
    EstateOpt,
    Format,
    FormatOpt,
    HomeOpt,
    emit_json,
    err,
    load_or_exit,
    open_store,
    usage_error,
)

EXIT_UNDELIVERED = 69  # EX_UNAVAILABLE: a channel could not be reached; the notice was printed

EPILOG = (
    "What a notice holds: new critical and high findings since the previous run of the same kind, Remediation "
    "Action Plan items overdue or due within notifications.due_within_days, waivers expiring within "
    "notifications.waiver_warning_days, an advisory feed that is not current, and a scheduled run that did not "
    "finish (systemd's SERVICE_RESULT). How much it says is the estate's choice (notifications.detail: counts, "
    "titles or assets); observed values and evidence never leave the store.\n\n"
    "Secrets (SMTP user and password, webhook URLs) are read from the environment variables the estate names; "
    "email always uses STARTTLS; webhooks only https:// (http only to loopback).\n\n"
    "Examples:\n\n"
    "  estate notify --dry-run                      print the notice for the latest assessment, send nothing\n\n"
    "  estate notify --kind scan --format json      the notice as data\n\n"
    "Exit status: 0 sent (or nothing new); 2 bad input (no notifications section, a variable not set); "
    f"{EXIT_UNDELIVERED} a channel could not be reached (the others were still tried)."
)


def notify(
    estate: EstateOpt = DEMO_ESTATE,
    home: HomeOpt = DEFAULT_HOME,
    kind: Annotated[str, typer.Option("--kind", help="Which runs to compare: assess, scan, devices-audit, "
                                                     "infra-plan, scan-import.")] = "assess",
    run: Annotated[str | None, typer.Option("--run", help="The run to report (id or prefix). Default: the "
                                                         "latest of --kind.")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the notice; send nothing.")] = False,
    always: Annotated[bool, typer.Option("--always", help="Send even when nothing is new.")] = False,
    fmt: FormatOpt = Format.TEXT,
) -> None:
    """Tell the security group what changed since the previous run (email, Teams, Slack)."""
    loaded = load_or_exit(estate)
    cfg = loaded.estate.notifications
    if cfg is None and not dry_run:
        usage_error(f"{estate}: the estate has no `notifications:` section (where to send): add one, or --dry-run")
    store = open_store(home)
    with store:
        info = store.get_run(run, kind=None if run else kind)
        if run and info is None:
            usage_error(f"--run {run}: no such run (or the prefix is ambiguous) in {home}")
        if info is not None and info.organisation and info.organisation != loaded.estate.organisation.name:
            usage_error(f"run {info.id} is {info.organisation}'s, but --estate is "
                        f"{loaded.estate.organisation.name}'s: pass the estate that run assessed")
        notice = changes.build(store, loaded.estate, info, date.today(), kind=kind,
                               service_result=os.environ.get("SERVICE_RESULT") or None,
                               due_within_days=cfg.due_within_days if cfg else 7,
                               waiver_warning_days=cfg.waiver_warning_days if cfg else 30)
    detail: message.Detail = cfg.detail if cfg else "counts"
    body = message.text(notice, detail)
    sent: list[str] = []
    failed: list[str] = []
    if cfg is not None and not dry_run and (always or not notice.empty):
        if cfg.email is not None:
            try:
                sent.append(send.send_email(cfg.email, message.subject(notice), body, loaded.root))
            except send.ConfigError as exc:
                usage_error(f"{estate}: {exc}")
            except send.SendError as exc:
                failed.append(str(exc))
        for hook in cfg.webhooks:
            payload = message.teams_payload(notice, detail) if hook.kind == "teams" else message.slack_payload(
                notice, detail)
            try:
                sent.append(send.post_webhook(hook, payload))
            except send.ConfigError as exc:
                usage_error(f"{estate}: {exc}")
            except send.SendError as exc:
                failed.append(str(exc))
    if fmt is Format.JSON:
        emit_json({"notice": notice.as_dict(), "detail": detail, "empty": notice.empty, "text": body,
                   "sent": sent, "failed": failed, "dry_run": dry_run})
    else:
        sys.stdout.write(body)
        for s in sent:
            err.print(f"sent: {s}", markup=False, soft_wrap=True)
        if notice.empty and not always and not dry_run:
            err.print("nothing new: not sent (--always sends anyway)", markup=False, soft_wrap=True)
    for f in failed:
        err.print(f"not delivered: {f}", markup=False, soft_wrap=True)
    if failed:
        raise typer.Exit(EXIT_UNDELIVERED)
