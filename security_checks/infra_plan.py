"""The offline Pulumi plan as a step: the program runs in its own process, its violations come back
as findings.

security_checks never imports the Pulumi program (infra/): it would bring the Pulumi and Azure
SDKs, and the mock runtime's process-global state, into every `estate` process, and tie each engine
to the program's internals. Instead `run_offline_plan` runs `python -m infra.plan_cli` with this
interpreter from the repository root and reads the one JSON document it writes (its shape is in
infra/plan_cli.py): the resource graph, each violation with the estate file:line it came from, and
the rules evaluated.

Each violation becomes a failing finding on the resource (`azure:<module>:<Type>/<logical name>`);
each rule with no violation gives one passing finding for the stack (`infra-plan:<stack>`), so the
control matrix can show the guardrail as met.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .checks import make_finding
from .findings import EvidenceRef, Finding, Status
from .step import InputRefused, StepContext, StepResult

REPO_ROOT = Path(__file__).resolve().parents[1]
PLAN_PROGRAM = "infra.plan_cli"
PLAN_EVIDENCE = "infra-plan/plan.json"
PLAN_DESCRIPTION = "offline Pulumi plan (mock runtime): resource graph and policy violations"
# What `estate infra plan` prints and emits: the plan, without the rule list and stack facts.
PLAN_KEYS = ("stack", "resource_count", "counts", "resources", "violations")
EXIT_BAD_INPUT = 2
_STDERR_TAIL = 2000


class PlanInputError(Exception):
    """The stack file or the estate cannot be built into a Pulumi program; the message is the plan
    program's one line, naming the file and field."""


class PlanError(RuntimeError):
    """The plan program failed for another reason: a bug or a broken installation, not the input."""


def run_offline_plan(estate_dir: Path, stack: str, workdir: Path,
                     say: Callable[[str], None] = lambda message: None) -> dict[str, Any]:
    """Plan `estate_dir` with `stack`'s configuration in a child process; the plan document.

    The estate is loaded as `estate infra plan` loads it: overlapping ranges become policy
    violations instead of a refusal. The document is written under `workdir` and read back.
    """
    estate = Path(estate_dir).resolve()    # the child runs from the repository root, not our cwd
    out = Path(workdir) / "plan.json"
    out.unlink(missing_ok=True)
    say(f"planning stack {stack} offline (Pulumi mock runtime) from {estate}")
    env = dict(os.environ)
    # The child imports infra from the repository, whatever -I/PYTHONSAFEPATH or cwd say.
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH")) if p)
    proc = subprocess.run(
        [sys.executable, "-m", PLAN_PROGRAM, "--stack", stack, "--estate", str(estate), "--out", str(out),
         "--no-policy-refusal"],
        cwd=REPO_ROOT, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    if proc.returncode == EXIT_BAD_INPUT and lines:
        raise PlanInputError(lines[-1].strip())
    if proc.returncode != 0:
        raise PlanError(f"the offline plan ({sys.executable} -m {PLAN_PROGRAM}) exited {proc.returncode}: "
                        f"{proc.stderr.strip()[-_STDERR_TAIL:] or 'no message'}")
    try:
        doc: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise PlanError(f"the offline plan exited 0 but left no readable document at {out}: {exc}") from None
    return doc


def printable(doc: dict[str, Any]) -> dict[str, Any]:
    """The plan as `estate infra plan` shows it: resource graph, counts and violations."""
    return {k: doc[k] for k in PLAN_KEYS}


def asset_for(resource_type: str, name: str) -> str:
    return f"azure:{resource_type.removeprefix('azure-native:')}/{name}"


def to_findings(doc: dict[str, Any], evidence: EvidenceRef | None = None) -> list[Finding]:
    """One failing finding per distinct violation, one passing finding per rule not violated."""
    out: list[Finding] = []
    seen: set[tuple[str, str, str]] = set()
    ev = [evidence] if evidence else []
    stack = doc["stack"]
    violations: list[dict[str, Any]] = doc["violations"]
    for v in violations:
        key = (v["check_id"], v["urn"], v["message"])
        if key in seen:
            continue
        seen.add(key)
        details: dict[str, Any] = {"urn": v["urn"], "resource_type": v["resource_type"], "stack": stack}
        observed = v["message"]
        if v.get("estate_file") is not None:
            details["estate_file"], details["estate_line"] = v["estate_file"], v["estate_line"]
            observed += f" (from {v['estate_file']}:{v['estate_line']})"
        out.append(make_finding(v["check_id"], asset_for(v["resource_type"], v["resource"]), Status.FAIL,
                                key=v["message"], observed=observed, expected="no violation of the guardrail",
                                evidence=ev, details=details))
    failing = {v["check_id"] for v in violations}
    for rule in doc["rules"]:
        if rule["check_id"] not in failing:
            out.append(make_finding(rule["check_id"], f"infra-plan:{stack}", Status.PASS,
                                    observed=f"no violation in {doc['resource_count']} planned resources",
                                    expected=rule["description"], evidence=ev, details={"stack": stack}))
    return out


def infra_plan_step(ctx: StepContext) -> StepResult:
    """The Pulumi program under mocks, in its own process; its policy rules as findings.

    Options: `stack` (default demo): whose Pulumi.<stack>.yaml gives the environment and names.
    `data` carries the printable plan (`plan`) and the stack facts (`config`) for the command.
    """
    stack = str(ctx.options.get("stack", "demo"))
    with tempfile.TemporaryDirectory(prefix="estate-infra-plan-") as tmp:
        try:
            doc = run_offline_plan(ctx.loaded.root, stack, Path(tmp), ctx.say)
        except PlanInputError as exc:
            if ctx.options.get("refuse_bad_input"):   # `estate infra plan`: bad input, exit 2, nothing stored
                raise InputRefused(str(exc)) from None
            return StepResult(skipped=f"the estate cannot be built into a Pulumi program: {exc}")
    ref = ctx.run.write_evidence(PLAN_EVIDENCE, json.dumps(doc, indent=1, default=str), PLAN_DESCRIPTION)
    summary = (f"{doc['resource_count']} resources planned offline (Pulumi mocks), "
               f"{len(doc['violations'])} policy violation(s)")
    return StepResult(findings=to_findings(doc, ref), summary=summary,
                      data={"plan": printable(doc), "config": doc.get("config", {})})
