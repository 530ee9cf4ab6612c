"""What a notice reports: the difference between a run and the previous run of its kind, read back
from the store, plus the dates that are coming due (RAP targets, waivers) on the day it is sent."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from typing import Any

from ..findings import Finding, Severity, Status
from ..model.schema import Estate
from ..store import RunInfo, Store

# Severities that earn an alert when they newly fail: the security group's queue, not its backlog.
ALERT_SEVERITIES = (Severity.CRITICAL, Severity.HIGH)
FEED_CHECK = "patch.advisory_feed_stale"


@dataclass(frozen=True)
class NewFailure:
    finding_id: str
    check_id: str
    title: str
    severity: str
    asset: str


@dataclass(frozen=True)
class DueItem:
    finding_id: str
    title: str
    severity: str
    asset: str
    target_date: str
    overdue: bool


@dataclass(frozen=True)
class ExpiringWaiver:
    what: str
    approved_by: str
    expires: str
    reference: str


@dataclass
class Notice:
    organisation: str
    network: str
    run_id: str | None
    kind: str
    assessed_on: str | None
    previous_run_id: str | None
    today: str
    service_result: str | None = None       # systemd's SERVICE_RESULT for a scheduled run
    new_failures: list[NewFailure] = field(default_factory=list)
    due: list[DueItem] = field(default_factory=list)
    waivers: list[ExpiringWaiver] = field(default_factory=list)
    feed: str | None = None                 # why the advisory feed is not current, when it is not

    @property
    def run_failed(self) -> bool:
        return self.service_result not in (None, "", "success")

    @property
    def empty(self) -> bool:
        return not (self.run_failed or self.run_id is None or self.new_failures or self.due or self.waivers
                    or self.feed)

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["run_failed"] = self.run_failed
        return d


def _alerting(f: Finding) -> bool:
    return f.open and f.severity in ALERT_SEVERITIES


def build(store: Store, estate: Estate, run: RunInfo | None, today: date, *, service_result: str | None = None,
          due_within_days: int = 7, waiver_warning_days: int = 30, kind: str = "") -> Notice:
    """The notice for `run` (None: no run of this kind has been stored yet, itself worth saying)."""
    notice = Notice(organisation=estate.organisation.name, network=estate.organisation.public_sector_network,
                    run_id=run.id if run else None, kind=run.kind if run else kind,
                    assessed_on=run.assessed_on.isoformat() if run and run.assessed_on else None,
                    previous_run_id=None, today=today.isoformat(), service_result=service_result)
    if run is not None:
        current = store.findings(run.id)
        previous = store.previous_run(run)
        notice.previous_run_id = previous.id if previous else None
        before = {f.id for f in store.findings(previous.id) if _alerting(f)} if previous else set()
        notice.new_failures = sorted(
            (NewFailure(f.id, f.check_id, f.title, f.severity.value, f.asset)
             for f in current if _alerting(f) and f.id not in before),
            key=lambda n: (-Severity(n.severity).rank, n.check_id, n.asset))
        feed = next((f for f in current if f.check_id == FEED_CHECK), None)
        if feed is not None and feed.status in (Status.FAIL, Status.NOT_ASSESSED):
            notice.feed = feed.observed
    horizon = today + timedelta(days=due_within_days)
    for item in store.rap_items(with_history=False):
        if item.status != "open" or not item.target_date:
            continue
        target = date.fromisoformat(item.target_date)
        if target <= horizon:
            notice.due.append(DueItem(item.finding_id, item.title, item.severity, item.asset, item.target_date,
                                      target < today))
    notice.due.sort(key=lambda d: (d.target_date, d.finding_id))
    soon = today + timedelta(days=waiver_warning_days)
    for w in estate.waivers:
        if today <= w.expires <= soon:
            what = w.finding or " on ".join(x for x in (w.check, w.asset) if x)
            notice.waivers.append(ExpiringWaiver(what, w.approved_by, w.expires.isoformat(), w.reference))
    notice.waivers.sort(key=lambda w: w.expires)
    return notice
