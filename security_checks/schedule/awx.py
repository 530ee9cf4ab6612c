"""The same schedules for councils that run AWX (or Ansible Automation Platform): one job template
per schedule running playbooks/estate_job.yml (which runs the estate command on the execution
node), each with its schedule as an RFC 5545 rule, in the layout `awx export` writes and
`awx import` reads (job_templates[], each with related.schedules[])."""

from __future__ import annotations

from datetime import date
from typing import Any

from .plan import RRULE_DAYS, Planned, ordered_days

PLAYBOOK = "playbooks/estate_job.yml"


def rrule(p: Planned, start: date) -> str:
    days = ",".join(RRULE_DAYS[d] for d in ordered_days(list(p.schedule.days)))
    at = p.schedule.at.strftime("%H%M00")
    return f"DTSTART;TZID=Europe/London:{start.strftime('%Y%m%d')}T{at} RRULE:FREQ=WEEKLY;BYDAY={days}"


def export(planned: list[Planned], *, project: str, inventory: str, organisation: str, start: date) -> dict[str, Any]:
    templates = []
    for p in planned:
        templates.append({
            "name": f"estate {p.schedule.name}",
            "description": f"{p.description} ({organisation})",
            "job_type": "run",
            "playbook": PLAYBOOK,
            "project": {"name": project, "type": "project"},
            "inventory": {"name": inventory, "type": "inventory"},
            # AWX stops the job at the timeout: the end of the earliest window it scans.
            "timeout": p.max_minutes * 60,
            "extra_vars": {"estate_args": p.args, "estate_notify": p.schedule.notify, "estate_kind": p.kind},
            "ask_variables_on_launch": False,
            "related": {"schedules": [{"name": f"estate {p.schedule.name}", "enabled": True,
                                       "rrule": rrule(p, start), "extra_data": {}}]},
        })
    return {"job_templates": templates}
