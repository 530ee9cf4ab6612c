"""Runs made through the one runner with findings a test chooses (tests of what the runner stores).

A test's findings come from a real step (a function returning them), so the run goes through
everything a command's run does: waivers, verdicts, the RAP transition and the commit.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from pathlib import Path

from security_checks.findings import Finding
from security_checks.model.loader import LoadedEstate
from security_checks.runner import Job, Runner, RunOutcome, Selection
from security_checks.step import Step, StepContext, StepResult


def given(findings: Iterable[Finding], *, checks: tuple[str, ...] = ("*",), name: str = "given",
          evidence: dict[str, str] | None = None) -> Step:
    chosen = list(findings)

    def step(ctx: StepContext) -> StepResult:
        refs = [ctx.run.write_evidence(path, text) for path, text in (evidence or {}).items()]
        out = [f.model_copy(deep=True, update={"evidence": refs} if refs else {}) for f in chosen]
        return StepResult(out, f"{len(out)} given finding(s)")

    return Step(name, step, "findings chosen by the test", checks)


def run_with(home: Path, loaded: LoadedEstate, findings: Iterable[Finding], *, today: date,
             full_scope: bool = True, checks: tuple[str, ...] = ("*",), kind: str = "assess",
             selection: Selection | None = None, evidence: dict[str, str] | None = None) -> RunOutcome:
    job = Job(kind, (given(findings, checks=checks, evidence=evidence),), "a test's run", full_scope=full_scope)
    return Runner(loaded, home, today=today).run(job, selection=selection)
