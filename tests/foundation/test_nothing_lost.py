"""Nothing lost, no one in: what a careful operator does to the store (kill -9, two commands at
once, a restored backup, a damaged file, a full disk), each through the real command line.

Writers are made quick with `estate scan import` (a real run: evidence, findings, verdicts, RAP)
and `estate assess --only ce-config`. ESTATE_TEST_PAUSE_AT holds a command at a named phase
(security_checks/testhooks.py) so a test can kill it exactly there, or release it.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ESTATE = REPO / ".venv" / "bin" / "estate"
XML = (b'<?xml version="1.0"?>\n<nmaprun scanner="nmap" start="1" version="7.93">'
       b'<scaninfo type="connect" protocol="tcp" services="1-1024"/>'
       b'<host><status state="up"/><address addr="127.0.0.1" addrtype="ipv4"/><ports>'
       b'<port protocol="tcp" portid="23"><state state="open"/><service name="telnet"/></port>'
       b'<port protocol="tcp" portid="18080"><state state="open"/><service name="http"/></port>'
       b'</ports></host><runstats><finished time="2"/></runstats></nmaprun>')


@pytest.fixture
def xml(tmp_path: Path) -> Path:
    p = tmp_path / "ithc.xml"
    p.write_bytes(XML)
    return p


def env(home: Path, **extra: str) -> dict[str, str]:
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "ESTATE_HOME": str(home), **extra}


def estate(home: Path, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(ESTATE), *args], capture_output=True, text=True, cwd=home.parent,
                          env=env(home, **extra), timeout=300)


def paused(home: Path, phase: str, *args: str, resumable: bool = False) -> tuple[subprocess.Popen[str], Path]:
    """Start a command held at `phase`; returns it once it is there, with the marker file."""
    marker = home.parent / f"paused-{phase.replace(':', '-')}"
    marker.unlink(missing_ok=True)
    extra = {"ESTATE_TEST_PAUSE_AT": phase}
    if resumable:
        extra["ESTATE_TEST_PAUSE_FILE"] = str(marker)
    proc = subprocess.Popen([str(ESTATE), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=home.parent, env=env(home, **extra))
    assert proc.stderr is not None
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if resumable and marker.exists():
            return proc, marker
        if not resumable:
            line = proc.stderr.readline()
            if f"paused at {phase}" in line:
                return proc, marker
            if not line and proc.poll() is not None:
                break
        time.sleep(0.02)
    proc.kill()
    raise AssertionError(f"never reached {phase}: {proc.communicate()}")


def kill(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def runs(home: Path) -> list[dict]:  # type: ignore[type-arg]
    r = estate(home, "runs", "--format", "json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)  # type: ignore[no-any-return]


def run_dirs(home: Path) -> set[str]:
    return {p.name for p in (home / "runs").iterdir()}


def rows(home: Path, sql: str) -> list[tuple]:  # type: ignore[type-arg]
    db = sqlite3.connect(f"file:{home / 'estate.db'}?mode=ro", uri=True)
    try:
        return db.execute(sql).fetchall()
    finally:
        db.close()


def imports(home: Path, xml: Path, n: int) -> list[str]:
    out = []
    for _ in range(n):
        r = estate(home, "scan", "import", str(xml), "--format", "json", "--fail-on", "none")
        assert r.returncode == 0, r.stderr
        out.append(json.loads(r.stdout)["run"])
        time.sleep(1.05)   # run ids have one-second resolution
    return out


# -- recovery never deletes --------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("damage", ["missing", "empty", "older-backup"])
def test_a_store_that_lost_runs_is_refused_and_no_run_directory_is_deleted(tmp_path: Path, xml: Path,
                                                                           damage: str) -> None:
    home = tmp_path / "home"
    first = imports(home, xml, 1)
    if damage == "older-backup":
        shutil.copy(home / "estate.db", tmp_path / "backup.db")
    later = imports(home, xml, 2)
    dirs = run_dirs(home)
    assert dirs == {*first, *later}
    for suffix in ("", "-wal", "-shm"):
        (home / f"estate.db{suffix}").unlink(missing_ok=True)
    if damage == "empty":
        (home / "estate.db").write_bytes(b"")
    elif damage == "older-backup":
        shutil.copy(tmp_path / "backup.db", home / "estate.db")
    for cmd in (["runs"], ["findings"], ["report", "--out", str(tmp_path / "out")], ["check", "psn"],
                ["scan", "import", str(xml)]):
        r = estate(home, *cmd)
        assert r.returncode == 2, (cmd, r.stdout, r.stderr)
        line = r.stderr.strip()
        assert len(line.splitlines()) == 1 and "estate.db" in line and str(home / "runs") in line, line
        assert "estate store recover" in line
        assert run_dirs(home) == dirs   # nothing deleted, nothing added
    # The operator chooses: adopt them back from their manifests.
    r = estate(home, "store", "recover")
    assert r.returncode == 1 and "--adopt" in r.stderr and run_dirs(home) == dirs
    r = estate(home, "store", "recover", "--adopt")
    assert r.returncode == 0, r.stderr
    assert {x["id"] for x in runs(home)} == dirs
    for run_id in dirs:
        r = estate(home, "findings", "--run", run_id, "--format", "json")
        assert r.returncode == 0 and json.loads(r.stdout)["findings"]
    assert estate(home, "store", "status", "--verify").returncode == 0


@pytest.mark.slow
def test_quarantine_moves_unknown_runs_aside_instead_of_deleting_them(tmp_path: Path, xml: Path) -> None:
    home = tmp_path / "home"
    made = imports(home, xml, 2)
    (home / "estate.db").unlink()
    r = estate(home, "store", "recover", "--quarantine")
    assert r.returncode == 0, r.stderr
    assert run_dirs(home) == set()
    kept = {p.name.split("-", 2)[0] + "-" + p.name.split("-", 2)[1] for p in (home / "quarantine").iterdir()}
    assert kept == set(made)
    status = json.loads(estate(home, "store", "status", "--format", "json").stdout)
    assert {q["run_id"] for q in status["quarantine"]} == set(made) and status["ok"]


# -- locks: two writers, a reader during a write --------------------------------------------------

@pytest.mark.slow
def test_a_second_writer_is_refused_or_waits_and_a_reader_never_disturbs_a_run(tmp_path: Path, xml: Path) -> None:
    home = tmp_path / "home"
    first, marker = paused(home, "run:before-commit", "scan", "import", str(xml), "--format", "json",
                           "--fail-on", "none", resumable=True)
    staging = [p for p in (home / "runs").iterdir() if p.name.startswith(".staging-")]
    assert len(staging) == 1 and list(staging[0].rglob("*.xml"))
    # A second writer is refused at once, naming who is writing.
    r = estate(home, "assess", "--only", "ce-config", "--no-report")
    assert r.returncode == 75 and "estate scan-import" in r.stderr and f"pid {first.pid}" in r.stderr
    # Readers read, and leave the running writer's staging alone.
    assert estate(home, "runs").returncode == 0
    assert estate(home, "store", "status").returncode == 0
    assert staging[0].exists() and list(staging[0].rglob("*.xml"))
    # A second writer given --wait waits for the first, then runs.
    second = subprocess.Popen([str(ESTATE), "assess", "--only", "ce-config", "--no-report", "--wait", "120",
                               "--fail-on", "none", "--format", "json"], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, cwd=tmp_path, env=env(home))
    time.sleep(2)
    assert second.poll() is None   # still waiting
    marker.unlink()                # release the first
    out1, err1 = first.communicate(timeout=120)
    out2, err2 = second.communicate(timeout=120)
    assert first.returncode == 0 and second.returncode == 0, (err1, err2)
    ids = [json.loads(out1)["run"], json.loads(out2)["run"]]
    assert sorted(x["id"] for x in runs(home)) == sorted(ids)
    # Every evidence file of both runs is there and matches the hash stored at commit.
    assert estate(home, "store", "status", "--verify").returncode == 0
    assert rows(home, f"SELECT COUNT(*) FROM evidence_files WHERE run_id = '{ids[0]}'")[0][0] >= 1


# -- kill -9 at every phase of a run --------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("phase,committed", [("run:before-commit", False), ("commit:before-transaction", False),
                                             ("commit:in-transaction", False), ("commit:before-rename", True)])
def test_kill_at_any_phase_leaves_a_whole_run_or_none_and_the_rap_in_step(tmp_path: Path, xml: Path, phase: str,
                                                                           committed: bool) -> None:
    home = tmp_path / "home"
    [before] = imports(home, xml, 1)
    rap_before = rows(home, "SELECT finding_id, status, last_seen_run FROM rap_items ORDER BY finding_id")
    proc, _ = paused(home, phase, "scan", "import", str(xml))
    kill(proc)
    listed = [x["id"] for x in runs(home)]           # a reader sees a whole run or none
    assert len(listed) == (2 if committed else 1) and before in listed
    applied = {r[0] for r in rows(home, "SELECT run_id FROM rap_runs")}
    assert applied == set(listed)                     # the plan moved with the run, or not at all
    if not committed:
        assert rows(home, "SELECT finding_id, status, last_seen_run FROM rap_items ORDER BY finding_id") == rap_before
    else:
        killed = next(x for x in listed if x != before)
        r = estate(home, "findings", "--run", killed, "--format", "json")
        assert r.returncode == 0 and json.loads(r.stdout)["findings"]
    # The next writer finishes or sets aside what the killed one left; nothing is deleted.
    [after] = imports(home, xml, 1)
    status = json.loads(estate(home, "store", "status", "--verify", "--format", "json").stdout)
    assert status["ok"] and status["staging"] == [] and status["damaged_evidence"] == {}
    assert len(status["quarantine"]) == (0 if committed else 1)
    assert run_dirs(home) == {x["id"] for x in runs(home)} and after in run_dirs(home)


# -- the report directory is swapped whole -----------------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("phase", ["report:before-swap", "report:after-swap"])
def test_a_killed_report_write_leaves_a_whole_site_and_the_next_write_cleans_up(tmp_path: Path, xml: Path,
                                                                                 phase: str) -> None:
    home = tmp_path / "home"
    first, second = imports(home, xml, 2)
    out = tmp_path / "out"
    assert estate(home, "report", "--run", first, "--out", str(out), "--no-pdf").returncode == 0
    proc, _ = paused(home, phase, "report", "--run", second, "--out", str(out), "--no-pdf")
    kill(proc)
    index = (out / "index.html").read_text()
    assert (first if phase == "report:before-swap" else second) in index
    assert (out / "machine" / "findings.json").is_file()
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith(".out.")]
    assert leftovers, "the killed write left its temporary directory (cleaned by the next write)"
    assert estate(home, "report", "--run", second, "--out", str(out), "--no-pdf").returncode == 0
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".out.")] == []
    assert second in (out / "index.html").read_text()


# -- schema and damage ------------------------------------------------------------------------------------

def test_a_store_from_a_newer_estate_is_refused_at_open(tmp_path: Path, xml: Path) -> None:
    home = tmp_path / "home"
    imports(home, xml, 1)
    db = sqlite3.connect(home / "estate.db")
    db.execute("INSERT INTO schema_migrations VALUES ('999_from_the_future', '2027-01-01')")
    db.commit()
    db.close()
    for cmd in (["runs"], ["scan", "import", str(xml)]):
        r = estate(home, *cmd)
        assert r.returncode == 2 and "newer version of estate" in r.stderr and "999_from_the_future" in r.stderr
        assert len(r.stderr.strip().splitlines()) == 1


@pytest.mark.slow
def test_single_page_damage_is_refused_in_one_line_never_read_as_data(tmp_path: Path, xml: Path) -> None:
    home = tmp_path / "home"
    _, last = imports(home, xml, 2)
    good = tmp_path / "good.db"
    shutil.copy(home / "estate.db", good)
    page = 4096
    pages = good.stat().st_size // page
    assert pages >= 7
    expected = {}
    for cmd in ("runs --format json", "findings --format json", f"check psn --run {last} --format json"):
        r = estate(home, *cmd.split())
        assert r.returncode == 0, (cmd, r.stderr)
        expected[cmd] = r.stdout
    refused = 0
    chosen = sorted({round(i * (pages - 1) / 9) for i in range(10)})   # ten pages, first to last
    for n in chosen:
        data = bytearray(good.read_bytes())
        data[n * page + 100:n * page + 1100] = os.urandom(1000)
        (home / "estate.db").write_bytes(bytes(data))
        for cmd, before in expected.items():
            r = estate(home, *cmd.split())
            assert r.returncode in (0, 2) and "Traceback" not in r.stderr and "internal error" not in r.stderr, \
                (n, cmd, r.stderr)
            if r.returncode == 2:
                assert len(r.stderr.strip().splitlines()) == 1 and "damaged" in r.stderr
                refused += 1
            else:
                assert r.stdout == before, (n, cmd)   # the damage touched nothing this command reads
    assert refused >= len(chosen)   # every damaged page was refused by at least one command


# -- files private whatever the umask ---------------------------------------------------------------------

@pytest.mark.parametrize("mask", [0o022, 0o000])
def test_everything_under_the_home_is_private_whatever_the_umask(tmp_path: Path, xml: Path, mask: int) -> None:
    home = tmp_path / "home"
    r = subprocess.run([str(ESTATE), "scan", "import", str(xml), "--fail-on", "none"], capture_output=True,
                       text=True, cwd=tmp_path, env=env(home), preexec_fn=lambda: os.umask(mask))
    assert r.returncode == 0, r.stderr
    r = subprocess.run([str(ESTATE), "report", "--out", str(tmp_path / "out"), "--no-pdf"], capture_output=True,
                       text=True, cwd=tmp_path, env=env(home), preexec_fn=lambda: os.umask(mask))
    assert r.returncode == 0, r.stderr
    loose = [(p, oct(p.stat().st_mode & 0o777)) for p in [home, *home.rglob("*")]
             if p.stat().st_mode & 0o077]
    assert loose == []
    # The report is for people on a share: readable, not writable, by others.
    assert (tmp_path / "out" / "index.html").stat().st_mode & 0o777 == 0o644


# -- a full disk -----------------------------------------------------------------------------------------------

@pytest.mark.root
@pytest.mark.slow
def test_a_full_disk_stores_nothing_half_written(tmp_path: Path, xml: Path) -> None:
    disk = tmp_path / "disk"
    disk.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(disk)], check=True)
    try:
        home = disk / "home"
        [first] = imports(home, xml, 1)
        big = tmp_path / "big.xml"
        padding = b"<!-- " + b"x" * (6 * 1024 * 1024) + b" -->"
        big.write_bytes(XML.replace(b"<runstats>", padding + b"<runstats>"))
        r = estate(home, "scan", "import", str(big))
        assert r.returncode == 74, (r.stdout, r.stderr)
        assert "No space left on device" in r.stderr and "Traceback" not in r.stderr
        assert [x["id"] for x in runs(home)] == [first]
        assert rows(home, "SELECT run_id FROM rap_runs") == [(first,)]
        assert not any(p.name.startswith(".staging-") for p in (home / "runs").iterdir())
        assert estate(home, "store", "status", "--verify").returncode == 0
    finally:
        subprocess.run(["umount", str(disk)], check=False)
