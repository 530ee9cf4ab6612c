"""`estate schedule`: systemd units that systemd itself accepts, inside the scopes' windows."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import DEMO, ESTATE_BIN

GLENMORAY = Path(__file__).resolve().parents[1] / "estates" / "glenmoray"


def estate(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(ESTATE_BIN), *args], capture_output=True, text=True, check=False)


def split_units(text: str) -> dict[str, str]:
    units: dict[str, str] = {}
    name = None
    for line in text.splitlines(keepends=True):
        if line.startswith("### "):
            name = line[4:].strip()
            units[name] = ""
        elif name is not None:
            units[name] += line
    return units


@pytest.mark.parametrize("estate_dir", [DEMO, GLENMORAY], ids=["demo", "glenmoray"])
def test_dry_run_units_pass_systemd_analyze_verify(estate_dir: Path, tmp_path: Path) -> None:
    if shutil.which("systemd-analyze") is None:
        pytest.fail("systemd-analyze is missing: deps/apt-packages.txt lists systemd; run make setup as root")
    r = estate("schedule", "install", "--dry-run", "--estate", str(estate_dir), "--home", str(tmp_path / "home"))
    assert r.returncode == 0, r.stderr
    units = split_units(r.stdout)
    assert units and all(n.startswith("estate-") for n in units)
    assert not (tmp_path / "home").exists()              # a dry run writes nothing, not even the home
    for name, text in units.items():
        (tmp_path / name).write_text(text)
    v = subprocess.run(["systemd-analyze", "verify", "--man=no", *sorted(str(tmp_path / n) for n in units)],
                       capture_output=True, text=True, check=False)
    # verify exits 0 on settings it ignores, so its warnings count as failures too
    assert v.returncode == 0 and not v.stderr.strip() and not v.stdout.strip(), v.stdout + v.stderr
    other = "Harrowdale" if estate_dir == GLENMORAY else "Glenmoray"
    assert other not in r.stdout


def test_units_are_hardened_and_scans_alone_get_raw_sockets() -> None:
    r = estate("schedule", "install", "--dry-run", "--format", "json")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["written"] is False
    units = {u["name"]: u["text"] for u in data["units"]}
    for name, text in units.items():
        if name.endswith(".service"):
            for line in ("User=estate", "NoNewPrivileges=yes", "ProtectSystem=strict", "PrivateTmp=yes",
                         "ProtectKernelModules=yes", "UMask=0077"):
                assert line in text.splitlines(), (name, line)
            assert not any(ln.startswith("RuntimeMaxSec=") for ln in text.splitlines())  # oneshot ignores it
    scan = units["estate-civic-centre-midweek.service"]
    devices = units["estate-devices-weekday.service"]
    assert "AmbientCapabilities=CAP_NET_RAW CAP_NET_ADMIN" in scan.splitlines()
    assert "AmbientCapabilities" not in devices and "CapabilityBoundingSet=" in devices.splitlines()
    assert any(ln.startswith("ExecStopPost=") and " notify --kind scan " in ln for ln in scan.splitlines())
    timer = units["estate-weekly-assessment.timer"]
    assert "OnCalendar=Sat *-*-* 02:00:00 Europe/London" in timer.splitlines()
    assert "Persistent=false" in timer.splitlines()


def test_a_run_is_stopped_when_the_earliest_window_closes() -> None:
    rows = {r["name"]: r for r in json.loads(estate("schedule", "list", "--format", "json").stdout)["schedules"]}
    # Sat 02:00: civic-centre-internal is open all weekend, sites-quarterly closes at 06:00
    assert rows["weekly-assessment"]["scopes"] == ["civic-centre-internal", "sites-quarterly"]
    assert rows["weekly-assessment"]["stops_after_minutes"] == 240
    assert rows["civic-centre-midweek"]["stops_after_minutes"] == 23 * 60 + 59 - (19 * 60 + 30)
    units = {u["name"]: u["text"] for u in json.loads(
        estate("schedule", "install", "--dry-run", "--format", "json").stdout)["units"]}
    assert "TimeoutStartSec=14400" in units["estate-weekly-assessment.service"].splitlines()


def _schedules(tmp_path: Path, body: str) -> Path:
    dest = tmp_path / "estate"
    shutil.copytree(DEMO, dest)
    (dest / "schedules.yaml").write_text(body)
    return dest


@pytest.mark.parametrize(("body", "line", "message"), [
    ("schedules:\n  - name: daytime\n    job: scan\n    scope: civic-centre-internal\n    days: [mon]\n"
     "    at: '10:00'\n", 6, "outside every authorised window of scan scope civic-centre-internal"),
    ("schedules:\n  - name: sunday-sweep\n    job: assess\n    days: [sun]\n    at: '02:00'\n", 5,
     "outside every authorised window of scan scope sites-quarterly"),
    ("schedules:\n  - name: nowhere\n    job: scan\n    scope: no-such-scope\n    days: [sat]\n    at: '02:00'\n",
     4, "unknown scan scope 'no-such-scope'"),
    ("schedules:\n  - name: too-deep\n    job: scan\n    scope: sites-quarterly\n    profile: deep\n"
     "    days: [sat]\n    at: '02:00'\n", 5, "above scope sites-quarterly's max_profile standard"),
])
def test_a_schedule_outside_its_scope_is_refused_with_file_and_line(tmp_path: Path, body: str, line: int,
                                                                     message: str) -> None:
    est = _schedules(tmp_path, body)
    home = tmp_path / "home"
    r = estate("schedule", "install", "--estate", str(est), "--unit-dir", str(tmp_path / "units"),
               "--home", str(home))
    assert r.returncode == 2
    assert f"{est / 'schedules.yaml'}:{line}" in r.stderr and message in r.stderr, r.stderr
    assert not (tmp_path / "units").exists() and not home.exists()


def test_scan_without_scope_names_the_field(tmp_path: Path) -> None:
    est = _schedules(tmp_path, "schedules:\n  - name: x\n    job: scan\n    days: [sat]\n    at: '02:00'\n")
    r = estate("validate", "--estate", str(est))
    assert r.returncode == 2 and "schedules.yaml:2" in r.stderr and "scope is needed for job: scan" in r.stderr


def test_install_writes_units_and_says_what_to_enable(tmp_path: Path) -> None:
    r = estate("schedule", "install", "--unit-dir", str(tmp_path), "--user", "nobody-estate-test")
    assert r.returncode == 0, r.stderr
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == sorted(f"estate-{n}.{k}" for n in ("weekly-assessment", "civic-centre-midweek",
                                                        "devices-weekday") for k in ("service", "timer"))
    assert all(oct(p.stat().st_mode)[-3:] == "644" for p in tmp_path.iterdir())
    assert "systemctl enable --now estate-weekly-assessment.timer" in r.stderr
    assert "user nobody-estate-test does not exist: useradd --system" in r.stderr
    # idempotent: the same units again, nothing else
    again = estate("schedule", "install", "--unit-dir", str(tmp_path), "--user", "nobody-estate-test")
    assert again.returncode == 0 and sorted(p.name for p in tmp_path.iterdir()) == names


def test_awx_export_has_a_template_and_rrule_per_schedule(tmp_path: Path) -> None:
    out = tmp_path / "awx.json"
    r = estate("schedule", "install", "--estate", str(GLENMORAY), "--awx", str(out), "--awx-project", "estate-git")
    assert r.returncode == 0, r.stderr
    data = json.loads(out.read_text())
    by_name = {t["name"]: t for t in data["job_templates"]}
    hq = by_name["estate hq-midweek"]
    assert hq["playbook"] == "playbooks/estate_job.yml" and hq["project"]["name"] == "estate-git"
    assert hq["extra_vars"]["estate_args"][:3] == ["scan", "--scope", "hq-monthly"]
    assert hq["timeout"] == (23 * 60 + 30 - (19 * 60 + 45)) * 60
    rule = hq["related"]["schedules"][0]["rrule"]
    assert rule.startswith("DTSTART;TZID=Europe/London:") and rule.endswith("T194500 RRULE:FREQ=WEEKLY;BYDAY=WE")
    assert "Harrowdale" not in out.read_text()
    assert (Path(__file__).resolve().parents[2] / "playbooks" / "estate_job.yml").is_file()


def test_no_schedules_is_bad_input(tmp_path: Path) -> None:
    est = tmp_path / "estate"
    shutil.copytree(DEMO, est)
    (est / "schedules.yaml").unlink()
    r = estate("schedule", "install", "--estate", str(est), "--dry-run")
    assert r.returncode == 2 and "declares no schedules" in r.stderr
