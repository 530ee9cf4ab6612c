"""What a step is: the unit every engine gives the runner.

A step is a plain function `(StepContext) -> StepResult`, registered by a typed import in
`security_checks/jobs.py` (never by a string), so a reader or a tool sees the whole call graph of
a job. A step returns findings; it never opens a run, never applies waivers, never computes a
compliance verdict and never touches the Remediation Action Plan: the runner does each of those
once, at commit (security_checks/runner.py).

A step that cannot run here returns `StepResult(skipped=<why>)`; one that could not read what it
must judge returns findings with status error or not_assessed for each asset it could not read,
never silence (a missing answer must not look like a pass).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Protocol

from .findings import EvidenceRef, Finding
from .model.loader import LoadedEstate


class EvidenceSink(Protocol):
    """Where a step writes the files its findings rest on (the run's staging directory)."""

    id: str

    @property
    def evidence_dir(self) -> Path: ...

    def write_evidence(self, relpath: str, data: bytes | str, description: str = "") -> EvidenceRef: ...

    def copy_evidence(self, src: Path, relpath: str, description: str = "") -> EvidenceRef: ...


class InputRefused(Exception):
    """Bad input a step found (the estate cannot be planned, say): the whole run is refused, nothing
    stored, one line for the user and exit status 2. Raised only when the command asked for it."""


@dataclass
class StepContext:
    loaded: LoadedEstate
    run: EvidenceSink
    home: Path
    is_root: bool
    today: date
    say: Callable[[str], None] = field(default=lambda message: None)   # a progress line for people (stderr)
    options: dict[str, Any] = field(default_factory=dict)
    # What the demo lab harness provides when it is active (vantages, listeners, chroot endpoints);
    # empty for a real estate. Steps read it; they never import the lab.
    provisions: dict[str, Any] = field(default_factory=dict)
    earlier: list[Finding] = field(default_factory=list)
    planned: frozenset[str] = frozenset()   # names of the steps this run will run (after --only/--skip...)

    @property
    def findings(self) -> list[Finding]:
        """Findings earlier steps of this run have produced."""
        return self.earlier


@dataclass
class StepResult:
    findings: list[Finding] = field(default_factory=list)
    summary: str = ""
    skipped: str | None = None       # why the step did not run here
    # Command output that is not a finding (a segregation matrix, a plan's resource graph): returned
    # to the command that asked, never a second channel of truth (everything judged is a finding).
    data: dict[str, Any] = field(default_factory=dict)


StepFn = Callable[[StepContext], StepResult]


@dataclass(frozen=True)
class Step:
    name: str
    fn: StepFn
    description: str
    # The check ids (fnmatch patterns) this step can emit: --check/--exclude-check select steps by them.
    checks: tuple[str, ...] = ()
    needs_root: str | None = None     # why it needs root, when it does: skipped with this reason otherwise


def is_root() -> bool:
    return os.geteuid() == 0
