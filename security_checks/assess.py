"""`estate assess`: the main job. Validate the estate, run every capability's step, store the run
whole, then write the reports.

Each capability plugs in one Step: a function `(StepContext) -> StepResult` named in STEPS by
module path, imported only when it runs (so a broken optional engine cannot stop the others, and
start-up stays fast). A step that cannot run here (not root, no network namespaces) returns
`skipped` with the reason, which the run records and the report shows. Steps run in order; later
steps (compliance) read the findings earlier steps added to the run.
"""

from __future__ import annotations

import importlib
import os
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from rich.console import Console

from .checks import make_finding
from .findings import Finding, Status
from .model.loader import LoadedEstate
from .store import RunWriter, Store
from .waivers import apply_waivers


@dataclass
class StepContext:
    loaded: LoadedEstate
    run: RunWriter
    store: Store
    console: Console
    is_root: bool
    today: date
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def findings(self) -> list[Finding]:
        """Findings earlier steps of this run have produced."""
        return self.run.findings


@dataclass
class StepResult:
    findings: list[Finding] = field(default_factory=list)
    summary: str = ""
    skipped: str | None = None  # why the step did not run here


@dataclass(frozen=True)
class Step:
    name: str
    target: str  # "package.module:function"
    description: str

    def load(self) -> Callable[[StepContext], StepResult]:
        module, _, func = self.target.partition(":")
        fn: Callable[[StepContext], StepResult] = getattr(importlib.import_module(module), func)
        return fn


# The order matters: compliance steps read what the scanning and audit steps found.
STEPS: list[Step] = [
    Step("selftest-scan", "security_checks.scan.steps:selftest_scan", "self-test scan of declared loopback listeners"),
    Step("lab-scan", "security_checks.scan.steps:lab_scan", "scan of the lab from its scanner namespaces (root)"),
    Step("segregation", "security_checks.scan.steps:segregation", "segregation: probes between lab zones (root)"),
    Step("devices", "security_checks.devices.step:devices_step", "end-user device baseline audit (Ansible)"),
    Step("infra-plan", "infra.findings:assess_step", "Azure tenancy and LOB systems: offline Pulumi plan, policy"),
    Step("patch", "security_checks.compliance.steps:patch_step", "patch compliance (14-day rule, unsupported OS)"),
    Step("ce", "security_checks.compliance.steps:ce_step", "Cyber Essentials readiness"),
    Step("psn", "security_checks.compliance.steps:psn_step", "PSN ITHC findings and remediation plan"),
]


def run_steps(ctx: StepContext, steps: list[Step], on_step: Callable[[Step, int], None] | None = None) -> None:
    for i, step in enumerate(steps):
        if on_step:
            on_step(step, i)
        try:
            result = step.load()(ctx)
        except Exception as exc:  # one engine failing must not lose the others' findings
            ctx.run.step(step.name, "error", f"{type(exc).__name__}: {exc}")
            ctx.run.write_evidence(f"errors/{step.name}.txt", traceback.format_exc())
            ctx.run.add([make_finding("assess.step_failed", f"step:{step.name}", Status.ERROR, key=step.name,
                                      observed=f"{type(exc).__name__}: {exc}",
                                      expected="the step completes")])
            continue
        if result.skipped:
            ctx.run.step(step.name, "skipped", result.skipped)
        else:
            ctx.run.step(step.name, "ran", result.summary)
        ctx.run.add(result.findings)
    apply_waivers(ctx.run.findings, ctx.loaded.estate.waivers, ctx.today)


def is_root() -> bool:
    return os.geteuid() == 0
