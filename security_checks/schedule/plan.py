"""What each schedule runs, when, and for how long: shared by the systemd and AWX renderings so
the two can never disagree about a window."""

from __future__ import annotations

from dataclasses import dataclass

from ..model.crossref import scheduled_scopes
from ..model.schema import DAYS, Estate, Schedule

SYSTEMD_DAYS = {"mon": "Mon", "tue": "Tue", "wed": "Wed", "thu": "Thu", "fri": "Fri", "sat": "Sat", "sun": "Sun"}
RRULE_DAYS = {"mon": "MO", "tue": "TU", "wed": "WE", "thu": "TH", "fri": "FR", "sat": "SA", "sun": "SU"}
# A run with no window to respect still gets a ceiling, so a hung run cannot hold the store's
# writer lock until the next one.
DEFAULT_MAX_MINUTES = 6 * 60
WAIT_SECONDS = 600
WHAT = {"assess": "the whole assessment", "scan": "a scan of scope {scope}", "devices-audit": "device baseline audit",
        "infra-plan": "offline infrastructure plan"}


@dataclass(frozen=True)
class Planned:
    schedule: Schedule
    unit: str                # estate-<name>
    args: list[str]          # estate's arguments, after the program name
    kind: str                # the store's run kind, for estate notify --kind
    max_minutes: int         # until the earliest window closes (or the default ceiling)
    scopes: list[str]        # scopes it sends packets to
    raw_packets: bool        # needs CAP_NET_RAW (SYN scans, ARP)

    @property
    def description(self) -> str:
        return WHAT[self.schedule.job].format(scope=self.schedule.scope)


def plan(estate: Estate) -> list[Planned]:
    out = []
    for s in estate.schedules:
        scopes = scheduled_scopes(estate, s)
        lefts = [m for sc in scopes for d in s.days if (m := sc.minutes_left(d, s.at)) is not None]
        limit = min([DEFAULT_MAX_MINUTES, *lefts])
        # --fail-on none: failing findings are the run's result, not the service's failure (a unit
        # that "fails" every week teaches people to ignore it); --wait: a run still writing when the
        # next timer fires is waited for, not refused.
        wait = ["--wait", str(WAIT_SECONDS)]
        if s.job == "assess":
            args, kind = ["assess", "--fail-on", "none", "--no-report", *wait], "assess"
        elif s.job == "scan":
            args, kind = ["scan", "--scope", str(s.scope), "--profile", s.profile, "--fail-on", "none", *wait], "scan"
        elif s.job == "devices-audit":
            args, kind = ["devices", "audit", "--fail-on", "none", *wait], "devices-audit"
        else:
            args, kind = ["infra", "plan", *wait], "infra-plan"
        out.append(Planned(s, f"estate-{s.name}", args, kind, max(limit, 1), [sc.name for sc in scopes],
                           s.job in ("assess", "scan")))
    return out


def ordered_days(days: list[str]) -> list[str]:
    return [d for d in DAYS if d in days]
