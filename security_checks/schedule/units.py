"""systemd units for the estate's schedules: one oneshot service and one timer per schedule.

Hardening follows systemd.exec(5): a dedicated user, a read-only system (ProtectSystem=strict) with
only the state directory writable, no new privileges, and for scans only the two capabilities raw
packets need (CAP_NET_RAW, CAP_NET_ADMIN) as ambient capabilities, nothing else.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path

from .plan import SYSTEMD_DAYS, Planned, ordered_days

ENV_FILE = "/etc/estate/estate.env"  # secrets for notify (SMTP password, webhook URLs): root-owned, 0600


@dataclass(frozen=True)
class Unit:
    name: str
    text: str


def _quote(args: list[str]) -> str:
    # systemd splits Exec lines like a shell would with quotes; '%' and '$' are its own specifiers.
    return " ".join(shlex.quote(a).replace("%", "%%").replace("$", "$$") for a in args)


def _under_home(*paths: Path) -> bool:
    return any(p.is_relative_to("/home") or p.is_relative_to("/root") for p in paths)


def service(p: Planned, *, program: Path, estate_dir: Path, home: Path, user: str, organisation: str) -> Unit:
    base = [str(program)]
    common = ["--estate", str(estate_dir)]
    exec_start = _quote([*base, *p.args, *common])
    lines = [
        "[Unit]",
        f"Description=estate {p.schedule.name}: {p.description} ({organisation})",
        "Wants=network-online.target",
        "After=network-online.target",
        "",
        "[Service]",
        "Type=oneshot",
        f"User={user}",
        f"Group={user}",
        f"Environment=ESTATE_HOME={home}",
        f"EnvironmentFile=-{ENV_FILE}",
        f"ExecStart={exec_start}",
    ]
    if p.schedule.notify:
        # ExecStopPost runs whether the run passed or failed; systemd gives it SERVICE_RESULT, which
        # notify reports (a run killed at the end of its window is news too).
        lines.append(f"ExecStopPost={_quote([*base, 'notify', '--kind', p.kind, *common])}")
    lines += [
        f"# Stopped when the earliest authorised window it scans closes ({p.max_minutes} min after the start):",
        "# for a oneshot service the start timeout bounds the whole run (RuntimeMaxSec= would be ignored).",
        "# A run stopped half-way leaves the store consistent: it is not committed.",
        f"TimeoutStartSec={p.max_minutes * 60}",
        "TimeoutStopSec=120",
        "KillMode=control-group",
        "UMask=0077",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        f"ReadWritePaths={home}",
        # The program or the estate may live under /home or /root: then read-only, never writable.
        f"ProtectHome={'read-only' if _under_home(program, estate_dir, home) else 'yes'}",
        "PrivateTmp=yes",
        "PrivateDevices=yes",
        "ProtectKernelTunables=yes",
        "ProtectKernelModules=yes",
        "ProtectKernelLogs=yes",
        "ProtectControlGroups=yes",
        "ProtectClock=yes",
        "ProtectHostname=yes",
        "RestrictSUIDSGID=yes",
        "RestrictRealtime=yes",
        "RestrictNamespaces=yes",
        "LockPersonality=yes",
        "SystemCallArchitectures=native",
    ]
    if p.raw_packets:
        lines += [
            "# nmap SYN scans and ARP discovery need raw sockets; nmap is told it may use them.",
            "AmbientCapabilities=CAP_NET_RAW CAP_NET_ADMIN",
            "CapabilityBoundingSet=CAP_NET_RAW CAP_NET_ADMIN",
            "Environment=NMAP_PRIVILEGED=1",
            "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK AF_PACKET",
        ]
    else:
        lines += ["CapabilityBoundingSet=", "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK"]
    return Unit(f"{p.unit}.service", "\n".join(lines) + "\n")


def timer(p: Planned, organisation: str) -> Unit:
    days = ",".join(SYSTEMD_DAYS[d] for d in ordered_days(list(p.schedule.days)))
    at = p.schedule.at.strftime("%H:%M:00")
    text = "\n".join([
        "[Unit]",
        f"Description=estate {p.schedule.name}: {p.description} ({organisation}), {days} {at[:5]} Europe/London",
        "",
        "[Timer]",
        f"OnCalendar={days} *-*-* {at} Europe/London",
        "# Not Persistent: a run missed while the machine was off must not start later, outside the",
        "# scopes' authorised windows.",
        "Persistent=false",
        "AccuracySec=1min",
        f"Unit={p.unit}.service",
        "",
        "[Install]",
        "WantedBy=timers.target",
    ]) + "\n"
    return Unit(f"{p.unit}.timer", text)


def units(planned: list[Planned], *, program: Path, estate_dir: Path, home: Path, user: str,
          organisation: str) -> list[Unit]:
    out = []
    for p in planned:
        out.append(service(p, program=program, estate_dir=estate_dir, home=home, user=user, organisation=organisation))
        out.append(timer(p, organisation))
    return out
