"""Run a playbook of ours through ansible-runner (the execution core AWX uses): the one wrapper the
device baseline (devices/runner.py) and the firewall roles (firewalls/runner.py) share.

The private data directory is a temporary directory under the state directory, removed after the
run: the runner writes the whole environment (passwords, API tokens) into artifacts/<ident>/command
and env there, so nothing from it is ever copied. Events are taken from the event handler as they
arrive, scrubbed of secrets and of this machine's directories (Scrubber), and kept in memory for
findings and evidence. Both sides of the benchmarks (ours against bare `ansible-playbook`) must do
the same Ansible work, so the runner's own defaults that differ from ansible-playbook's (host key
checking off, an on-disk fact cache) are put back.
"""

from __future__ import annotations

import configparser
import copy
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .procs import pid_alive

PLAYBOOKS = Path(__file__).resolve().parents[1] / "playbooks"
KEEP_EVENTS = {"playbook_on_play_start", "playbook_on_task_start", "playbook_on_stats", "runner_on_ok",
               "runner_on_failed", "runner_on_skipped", "runner_on_unreachable", "runner_item_on_ok",
               "runner_item_on_failed", "runner_item_on_skipped"}
MASK = "********"
# Keys whose values are secrets whatever they hold: a Windows host's password, a FortiOS admin's
# `password: ENC ...`, an API token, an IPsec pre-shared key.
SECRET_KEY = re.compile(r"password|passwd|passphrase|secret|token|credential|api[_-]?key|private[_-]?key|"
                        r"auth[_-]?key|psk|session[_-]?key", re.IGNORECASE)
_TRUE = ("1", "true", "yes", "on", "y", "t")


class Scrubber:
    """Secrets out of events: the values of the named environment variables wherever they appear,
    and anything under a key that looks like a secret, whatever its value. Given this machine's
    directories (`naming`), also those: a task is cited as `playbooks/roles/.../main.yml:12`, not by
    where the operator's checkout, state directory or estate happen to be (events are sealed into
    evidence that auditors read elsewhere). One pass over each event does both."""

    def __init__(self, env_names: Iterable[str], environ: dict[str, str] | None = None):
        env = os.environ if environ is None else environ
        # Longest first, so a secret that contains another is masked whole.
        self.values = sorted({env[n] for n in env_names if env.get(n)}, key=len, reverse=True)
        self.names: dict[str, str] = {}
        self.directories: re.Pattern[str] | None = None

    def naming(self, directories: dict[Path, str]) -> Scrubber:
        """This scrubber, also replacing each directory by the name given for it."""
        named = copy.copy(self)
        named.names = {**self.names, **{str(d): n for d, n in directories.items()}}
        # Longest first (the runner's private directory lies inside the state directory), and whole
        # path names only: a state directory /srv/e is not the start of /srv/estate-old.
        named.directories = re.compile("|".join(rf"(?<![\w./-]){re.escape(d)}(?![\w.-])"
                                                for d in sorted(named.names, key=len, reverse=True)))
        return named

    def text(self, value: str) -> str:
        for secret in self.values:
            if secret in value:
                value = value.replace(secret, MASK)
        if self.directories is not None:
            value = self.directories.sub(lambda m: self.names[m.group(0)], value)
        return value

    def __call__(self, data: Any) -> Any:
        if isinstance(data, dict):
            return {k: (MASK if isinstance(k, str) and SECRET_KEY.search(k) and v not in (None, "", [], {})
                        else self(v)) for k, v in data.items()}
        if isinstance(data, list | tuple):
            return [self(v) for v in data]
        if isinstance(data, str):
            return self.text(data)
        return data


@dataclass
class RunnerOutcome:
    status: str
    rc: int
    events: list[dict[str, Any]] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)
    stderr_tail: str = ""


def run_playbook(*, prefix: str, estate_dir: Path, home: Path, apply: bool, playbook: str, inventory: Path,
                 limit: str | None = None, tags: str | None = None, scrubber: Scrubber | None = None,
                 on_event: Callable[[dict[str, Any]], None] | None = None, extra_env: dict[str, str] | None = None,
                 extravars: dict[str, Any] | None = None) -> RunnerOutcome:
    """Run `playbook` in check and diff mode (audit) or diff mode (apply); `prefix` names the
    private directory (and lets a later run of the same kind remove one a killed run left)."""
    import ansible_runner

    home = home.resolve()
    work = home / "tmp"
    work.mkdir(mode=0o700, parents=True, exist_ok=True)
    remove_stale_private_dirs(work, prefix)
    private = Path(tempfile.mkdtemp(prefix=f"{prefix}{os.getpid()}-", dir=work))
    # The checkout itself too: the collections and the virtualenv in it show in controller-side errors.
    scrub = (scrubber or Scrubber([])).naming({PLAYBOOKS: "playbooks", PLAYBOOKS.parent: "<repo>", private: "<runner>",
                                               home: "<state>", estate_dir.resolve(): "<estate>"})
    events: list[dict[str, Any]] = []

    def handler(event: dict[str, Any]) -> bool:
        clean = scrub({k: v for k, v in event.items() if k in ("event", "event_data", "counter", "created", "uuid")})
        if clean.get("event") in KEEP_EVENTS:
            # The task's arguments may hold resolved variables; results and diffs are what we need.
            (clean.get("event_data") or {}).pop("task_args", None)
            events.append(clean)
        if on_event:
            on_event(clean)
        return False  # nothing written to the artifacts' job_events: we keep them in memory

    checking = host_key_checking()
    envvars = {
        "ESTATE_DIR": str(estate_dir.resolve()),
        "ESTATE_HOME": str(home),
        "ANSIBLE_CONFIG": str(PLAYBOOKS / "ansible.cfg"),
        "ANSIBLE_INVENTORY_PLUGINS": str(PLAYBOOKS / "inventory_plugins"),
        "ANSIBLE_ROLES_PATH": str(PLAYBOOKS / "roles"),
        "ANSIBLE_NOCOLOR": "1",
        # This interpreter's environment first: a virtualenv need not be on the caller's PATH.
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", os.defpath)]),
        "ANSIBLE_RETRY_FILES_ENABLED": "0",
        # ansible-runner turns host key checking off unless told; keep ansible.cfg's (on): a lab or
        # production host presenting an unknown key is refused, as `ansible-playbook` refuses it.
        "ANSIBLE_HOST_KEY_CHECKING": checking,
    }
    if checking.strip().lower() in _TRUE:
        # ...and refused at once: the runner gives ansible-playbook a terminal, on which ssh would ask
        # "continue connecting?" and wait for ever. Appended, so a StrictHostKeyChecking the caller set
        # (in ANSIBLE_SSH_COMMON_ARGS or here) comes first and wins, as ssh takes an option's first value.
        envvars["ANSIBLE_SSH_EXTRA_ARGS"] = " ".join(
            x for x in (os.environ.get("ANSIBLE_SSH_EXTRA_ARGS", ""), "-o StrictHostKeyChecking=yes") if x)
    envvars.update(extra_env or {})
    try:
        r = ansible_runner.run(
            private_data_dir=str(private),
            project_dir=str(PLAYBOOKS),
            playbook=playbook,
            inventory=str(inventory),
            **({"limit": limit} if limit else {}),
            **({"tags": tags} if tags else {}),
            **({"extravars": extravars} if extravars else {}),
            cmdline="--diff" if apply else "--check --diff",
            envvars=envvars,
            event_handler=handler,
            quiet=True,
            suppress_env_files=True,
            settings={"suppress_ansible_output": True},
            timeout=None,
            # The runner's default jsonfile fact cache writes every host's facts to the artifacts and
            # reads them back per task; ansible-playbook keeps them in memory, and so do we.
            fact_cache_type="memory",
        )
        stats = scrub(r.stats or {})
        tail = ""
        if r.rc not in (0, 2, 4) or not events:
            # No host results: the playbook or inventory itself failed; keep the reason, scrubbed.
            try:
                tail = scrub("\n".join(r.stdout.read().splitlines()[-15:]))
            except (OSError, ValueError):
                tail = ""
        return RunnerOutcome(status=str(r.status), rc=int(r.rc), events=events, stats=stats, stderr_tail=tail)
    finally:
        shutil.rmtree(private, ignore_errors=True)


def host_key_checking() -> str:
    """ansible.cfg's host_key_checking (Ansible's own default, on, when unset); the environment's
    ANSIBLE_HOST_KEY_CHECKING wins, as it does for ansible-playbook."""
    if "ANSIBLE_HOST_KEY_CHECKING" in os.environ:
        return os.environ["ANSIBLE_HOST_KEY_CHECKING"]
    cfg = configparser.ConfigParser(interpolation=None)
    cfg.read(PLAYBOOKS / "ansible.cfg")
    return cfg.get("defaults", "host_key_checking", fallback="true")


def remove_stale_private_dirs(work: Path, prefix: str) -> list[Path]:
    """Remove what a killed run left: its private data holds the environment (artifacts/*/command).

    A directory is stale when the process named in it is gone; live runs beside this one are kept.
    """
    removed = []
    for entry in work.glob(f"{prefix}*"):
        pid = entry.name.removeprefix(prefix).split("-")[0]
        if pid.isdigit() and pid_alive(int(pid)):
            continue
        shutil.rmtree(entry, ignore_errors=True)
        removed.append(entry)
    return removed
