"""`estate schedule`: the estate's scheduled runs, as systemd timers or AWX job templates."""

from __future__ import annotations

import pwd
import shutil
import sys
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer

from ..fsutil import SHARED_FILE, atomic_write
from ..schedule import awx, units
from ..schedule.plan import Planned, plan
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
    usage_error,
)

app = typer.Typer(
    help=("Scheduled runs: the estate's `schedules:` (job, weekdays, start time, Europe/London) as hardened "
          "systemd timers, or as AWX job templates with schedules. A scan's start must fall inside an authorised "
          "window of every scope it scans (checked by `estate validate`), and the run is stopped when the "
          "earliest of those windows closes. After each run `estate notify` tells the security group what "
          "changed."),
    rich_markup_mode="rich", no_args_is_help=True,
)

INSTALL_EPILOG = (
    "Examples:\n\n"
    "  estate schedule install --dry-run                 print the units, write nothing\n\n"
    "  sudo estate schedule install --estate /srv/estate/council --home /var/lib/estate\n\n"
    "  estate schedule install --awx awx-estate.json --awx-project estate --awx-inventory council\n\n"
    "Then, for systemd: create the service user once (useradd --system --home-dir HOME --shell "
    "/usr/sbin/nologin estate; chown -R estate: HOME), put notify's secrets in /etc/estate/estate.env "
    "(root, mode 0600), systemctl daemon-reload, systemctl enable --now estate-NAME.timer. For AWX: "
    "awx import < awx-estate.json.\n\n"
    "Exit status: 0 written (or printed); 2 bad input (an invalid estate, no schedules)."
)


def _program(given: Path | None) -> Path:
    if given is not None:
        return given.resolve()
    beside = Path(sys.executable).parent / "estate"
    found = beside if beside.exists() else Path(shutil.which("estate") or beside)
    return found.absolute()


def _rows(planned: list[Planned]) -> list[dict[str, Any]]:
    return [{"name": p.schedule.name, "unit": p.unit, "job": p.schedule.job, "what": p.description,
             "days": list(p.schedule.days), "at": p.schedule.at.strftime("%H:%M"), "timezone": "Europe/London",
             "scopes": p.scopes, "stops_after_minutes": p.max_minutes, "notify": p.schedule.notify,
             "command": ["estate", *p.args]} for p in planned]


@app.command(name="list")
def list_(estate: EstateOpt = DEMO_ESTATE, fmt: FormatOpt = Format.TEXT) -> None:
    """The estate's schedules: when each starts, which scopes it scans, when it is stopped."""
    loaded = load_or_exit(estate)
    rows = _rows(plan(loaded.estate))
    if fmt is Format.JSON:
        emit_json({"organisation": loaded.estate.organisation.name, "schedules": rows})
        return
    if not rows:
        print(f"{loaded.estate.organisation.name}: no schedules (add `schedules:` to the estate)")
        return
    for r in rows:
        scopes = f" scopes {', '.join(r['scopes'])};" if r["scopes"] else ""
        print(f"{r['name']}: {r['what']}, {','.join(r['days'])} {r['at']} Europe/London;{scopes} "
              f"stopped after {r['stops_after_minutes']} min; notify {'on' if r['notify'] else 'off'}")


@app.command(epilog=INSTALL_EPILOG)
def install(
    estate: EstateOpt = DEMO_ESTATE,
    home: HomeOpt = DEFAULT_HOME,
    unit_dir: Annotated[Path, typer.Option(
        "--unit-dir", help="Where the unit files go.")] = Path("/etc/systemd/system"),
    user: Annotated[str, typer.Option("--user", help="The dedicated service user the runs execute as.")] = "estate",
    program: Annotated[Path | None, typer.Option(
        "--program", help="The estate program the units run. Default: this one.")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the units; write nothing.")] = False,
    awx_file: Annotated[Path | None, typer.Option(
        "--awx", help="Write AWX job templates and schedules (awx import format) to this file instead of units.")
    ] = None,
    awx_project: Annotated[str, typer.Option("--awx-project", help="AWX project holding this repository.")
                           ] = "estate",
    awx_inventory: Annotated[str, typer.Option("--awx-inventory", help="AWX inventory the jobs run against.")
                             ] = "estate",
    fmt: FormatOpt = Format.TEXT,
) -> None:
    """Write a systemd service and timer for each of the estate's schedules (or AWX job templates)."""
    loaded = load_or_exit(estate)
    planned = plan(loaded.estate)
    org = loaded.estate.organisation.name
    if not planned:
        usage_error(f"{estate}: the estate declares no schedules (add a `schedules:` section; see SCHEMA.md)")
    if awx_file is not None:
        data = awx.export(planned, project=awx_project, inventory=awx_inventory, organisation=org,
                          start=date.today())
        import json

        text = json.dumps(data, indent=2) + "\n"
        if dry_run:
            sys.stdout.write(text)
            return
        atomic_write(awx_file, text, mode=SHARED_FILE)
        err.print(f"wrote {len(planned)} AWX job template(s) with schedules to {awx_file}", markup=False,
                  soft_wrap=True)
        return
    made = units.units(planned, program=_program(program), estate_dir=estate.resolve(), home=home.resolve(),
                       user=user, organisation=org)
    if fmt is Format.JSON:
        emit_json({"organisation": org, "unit_dir": str(unit_dir), "written": not dry_run,
                   "units": [{"name": u.name, "text": u.text} for u in made], "schedules": _rows(planned)})
    elif dry_run:
        for u in made:
            sys.stdout.write(f"### {u.name}\n{u.text}\n")
    if dry_run:
        return
    try:
        for u in made:
            atomic_write(unit_dir / u.name, u.text, mode=SHARED_FILE)
    except OSError as exc:
        usage_error(f"{unit_dir}: cannot write the units ({exc.strerror or exc}); run as root or pass --unit-dir")
    scheduled = {u.name for u in made}
    stale = sorted(p.name for p in unit_dir.glob("estate-*.timer") if p.name not in scheduled)
    timers = " ".join(u.name for u in made if u.name.endswith(".timer"))
    err.print(f"wrote {len(made)} unit(s) to {unit_dir} for {org}", markup=False, soft_wrap=True)
    try:
        pwd.getpwnam(user)
    except KeyError:
        err.print(f"note: user {user} does not exist: useradd --system --home-dir {home.resolve()} "
                  f"--shell /usr/sbin/nologin {user} && chown -R {user}: {home.resolve()}", markup=False,
                  soft_wrap=True)
    if stale:
        err.print(f"note: no longer scheduled, still installed: {', '.join(stale)} "
                  "(systemctl disable --now them, then remove the files)", markup=False, soft_wrap=True)
    err.print(f"next: systemctl daemon-reload && systemctl enable --now {timers}", markup=False, soft_wrap=True)
