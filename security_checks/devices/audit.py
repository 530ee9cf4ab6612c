"""One device run (audit or apply): ansible-runner, findings, and the run stored with its evidence."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..checks import make_finding
from ..findings import EvidenceRef, Finding, Status
from ..model.loader import LoadedEstate
from ..step import EvidenceSink
from .results import dumps_events, findings_from_events, verify_apply
from .runner import RunnerOutcome, run_playbook
from .scrub import Scrubber, password_env_names


class DevicesError(RuntimeError):
    """The playbook could not run at all (bad inventory, syntax error): not a per-host problem."""


@dataclass
class DevicesResult:
    findings: list[Finding]
    outcome: RunnerOutcome

    @property
    def hosts(self) -> list[str]:
        return sorted({f.asset.removeprefix("host:") for f in self.findings})

    def summary(self) -> str:
        c = Counter(f.status.value for f in self.findings)
        parts = [f"{c[k]} {k}" for k in ("fail", "error", "pass") if c.get(k)]
        return f"{len(self.hosts)} host(s): " + (", ".join(parts) or "no findings")


def host_sites(loaded: LoadedEstate) -> dict[str, str]:
    return {h.name: h.site for eg in loaded.estate.endpoint_groups for h in eg.hosts if h.site}


def missing_chroots(loaded: LoadedEstate, home: Path) -> dict[str, str]:
    """Chroot hosts whose directory does not exist, with the reason."""
    out = {}
    for eg in loaded.estate.endpoint_groups:
        for h in eg.hosts:
            conn = h.connection or eg.connection
            if conn.kind != "chroot" or not h.address:
                continue
            path = Path(h.address) if Path(h.address).is_absolute() else home / h.address
            if not (path / "usr" / "bin").is_dir():
                out[h.name] = f"chroot {path} does not exist"
    return out


def run_devices(loaded: LoadedEstate, home: Path, run: EvidenceSink, *, apply: bool, limit: str | None = None,
                on_event: Callable[[dict[str, Any]], None] | None = None,
                exclude: dict[str, str] | None = None) -> DevicesResult:
    """Run the baseline and write the scrubbed events as evidence; the findings are returned.

    `exclude`: hosts left out with the reason (a chroot endpoint when not root): each gets a
    not-assessed finding rather than silence.
    """
    scrubber = Scrubber(password_env_names(loaded.estate))
    missing = missing_chroots(loaded, home)
    left_out = {name: why for name, why in (exclude or {}).items() if name not in missing}
    not_assessed = [make_finding("devices.unreachable", f"host:{name}", Status.NOT_ASSESSED, observed=why,
                                 expected="Ansible connects and runs the baseline",
                                 site=host_sites(loaded).get(name))
                    for name, why in sorted(left_out.items())]
    if left_out:
        limit = ":".join([limit or "all", *(f"!{name}" for name in left_out)])
    if missing:
        # A missing chroot fails the first task rather than the connection; say what it is and
        # keep it out of the run so the other hosts are audited.
        limit = ":".join([limit or "all", *(f"!{name}" for name in missing)])
    outcome = run_playbook(estate_dir=loaded.root, home=home, apply=apply, limit=limit, scrubber=scrubber,
                           on_event=on_event)
    mode = "apply" if apply else "audit"
    early = [make_finding("devices.unreachable", f"host:{name}", Status.ERROR, observed=why,
                          expected="Ansible connects and runs the baseline", site=host_sites(loaded).get(name))
             for name, why in sorted(missing.items())]
    early += not_assessed
    if early and not any(e.get("event") == "playbook_on_play_start" for e in outcome.events):
        return DevicesResult(early, outcome)
    if not any(e.get("event") == "playbook_on_play_start" for e in outcome.events):
        reason = outcome.stderr_tail.strip().splitlines()[-1] if outcome.stderr_tail.strip() else ""
        raise DevicesError(f"the baseline playbook did not start (ansible-runner {outcome.status}, rc {outcome.rc})"
                           + (f": {reason}" if reason else ""))
    ref: EvidenceRef = run.write_evidence(
        f"devices/{mode}-events.jsonl", dumps_events(outcome.events),
        f"ansible-runner job events of the baseline {mode} (secrets scrubbed)")
    run.write_evidence(f"devices/{mode}-stats.json", _json({"status": outcome.status, "rc": outcome.rc,
                                                            "stats": outcome.stats}),
                       "per-host counts from the runner (ok, changed, failed, unreachable)")
    found = findings_from_events(outcome.events, apply=apply, sites=host_sites(loaded), evidence=[ref])
    if apply:
        # Fixed means reads compliant afterwards: the same hosts audited again, read-only.
        check = run_playbook(estate_dir=loaded.root, home=home, apply=False, limit=limit, scrubber=scrubber,
                             on_event=on_event)
        vref = run.write_evidence("devices/apply-verify-events.jsonl", dumps_events(check.events),
                                  "ansible-runner job events of the read-only audit straight after the apply")
        found = verify_apply(found, findings_from_events(check.events, apply=False, sites=host_sites(loaded),
                                                         evidence=[vref]))
    return DevicesResult(early + found, outcome)


def _json(data: Any) -> str:
    import json

    return json.dumps(data, indent=2, sort_keys=True, default=str) + "\n"
