"""Run the firewall playbook through ansible-runner (the execution core AWX uses).

As for the device baseline (security_checks/devices/runner.py): the private data directory is a
temporary directory under the state directory, removed after the run, because the runner writes
the whole environment (API tokens included) into artifacts/<ident>/command and env there. Events
are taken from the event handler as they arrive, scrubbed, and kept in memory.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..procs import pid_alive

PLAYBOOKS = Path(__file__).resolve().parents[2] / "playbooks"
PLAYBOOK = "firewalls.yml"
INVENTORY = PLAYBOOKS / "inventory" / "estate.yml"
KEEP_EVENTS = {"playbook_on_play_start", "playbook_on_task_start", "playbook_on_stats", "runner_on_ok",
               "runner_on_failed", "runner_on_skipped", "runner_on_unreachable", "runner_item_on_ok",
               "runner_item_on_failed", "runner_item_on_skipped"}
PREFIX = "firewalls-runner-"
MASK = "********"
SECRET_KEY = re.compile(r"password|passwd|passphrase|secret|token|credential|api[_-]?key|private[_-]?key|"
                        r"auth[_-]?key|psk|session[_-]?key", re.IGNORECASE)


class Scrubber:
    """Secrets out of events: the values of the named environment variables anywhere, and anything
    under a key that looks like a secret (a FortiOS admin's `password: ENC ...`, an access token)."""

    def __init__(self, env_names: Iterable[str], environ: dict[str, str] | None = None):
        env = os.environ if environ is None else environ
        self.values = sorted({env[n] for n in env_names if env.get(n)}, key=len, reverse=True)

    def __call__(self, data: Any) -> Any:
        if isinstance(data, dict):
            return {k: (MASK if isinstance(k, str) and SECRET_KEY.search(k) and v not in (None, "", [], {})
                        else self(v)) for k, v in data.items()}
        if isinstance(data, list | tuple):
            return [self(v) for v in data]
        if isinstance(data, str):
            for secret in self.values:
                data = data.replace(secret, MASK)
            return data
        return data


@dataclass
class RunnerOutcome:
    status: str
    rc: int
    events: list[dict[str, Any]] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)
    stderr_tail: str = ""


def run_playbook(*, estate_dir: Path, home: Path, apply: bool, limit: str | None = None,
                 scrubber: Scrubber | None = None, on_event: Callable[[dict[str, Any]], None] | None = None,
                 inventory: Path = INVENTORY, playbook: str = PLAYBOOK, extra_env: dict[str, str] | None = None,
                 extravars: dict[str, Any] | None = None) -> RunnerOutcome:
    """Run the firewall playbook in check and diff mode (audit) or diff mode (apply)."""
    import ansible_runner

    scrub = scrubber or Scrubber([])
    home = home.resolve()
    work = home / "tmp"
    work.mkdir(mode=0o700, parents=True, exist_ok=True)
    remove_stale_private_dirs(work)
    private = Path(tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-", dir=work))
    events: list[dict[str, Any]] = []

    def handler(event: dict[str, Any]) -> bool:
        clean = scrub({k: v for k, v in event.items() if k in ("event", "event_data", "counter", "created", "uuid")})
        if clean.get("event") in KEEP_EVENTS:
            (clean.get("event_data") or {}).pop("task_args", None)
            events.append(clean)
        if on_event:
            on_event(clean)
        return False

    envvars = {
        "ESTATE_DIR": str(estate_dir.resolve()),
        "ESTATE_HOME": str(home),
        "ANSIBLE_CONFIG": str(PLAYBOOKS / "ansible.cfg"),
        "ANSIBLE_INVENTORY_PLUGINS": str(PLAYBOOKS / "inventory_plugins"),
        "ANSIBLE_ROLES_PATH": str(PLAYBOOKS / "roles"),
        "ANSIBLE_NOCOLOR": "1",
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", os.defpath)]),
        "ANSIBLE_RETRY_FILES_ENABLED": "0",
        # The estate's inventory plugin, and the YAML/JSON inventory the demo lab writes for its routers.
        "ANSIBLE_INVENTORY_ENABLED": "estate,yaml",
        # The httpapi connection's daemon outlives a run by this long: one run, one connection.
        "ANSIBLE_PERSISTENT_CONNECT_TIMEOUT": "30",
        **(extra_env or {}),
    }
    try:
        r = ansible_runner.run(
            private_data_dir=str(private), project_dir=str(PLAYBOOKS), playbook=playbook, inventory=str(inventory),
            **({"limit": limit} if limit else {}), **({"extravars": extravars} if extravars else {}),
            cmdline="--diff" if apply else "--check --diff", envvars=envvars, event_handler=handler, quiet=True,
            suppress_env_files=True, settings={"suppress_ansible_output": True}, timeout=None,
        )
        stats = scrub(r.stats or {})
        tail = ""
        if r.rc not in (0, 2, 4) or not events:
            try:
                tail = scrub("\n".join(r.stdout.read().splitlines()[-15:]))
            except (OSError, ValueError):
                tail = ""
        return RunnerOutcome(status=str(r.status), rc=int(r.rc), events=events, stats=stats, stderr_tail=tail)
    finally:
        shutil.rmtree(private, ignore_errors=True)


def remove_stale_private_dirs(work: Path) -> list[Path]:
    """Remove what a killed run left (its private data holds the environment); live runs are kept."""
    removed = []
    for entry in work.glob(f"{PREFIX}*"):
        pid = entry.name.removeprefix(PREFIX).split("-")[0]
        if pid.isdigit() and pid_alive(int(pid)):
            continue
        shutil.rmtree(entry, ignore_errors=True)
        removed.append(entry)
    return removed
