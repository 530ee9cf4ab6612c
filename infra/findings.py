"""Policy violations of an offline plan as Findings, and the `infra-plan` step of `estate assess`.

Each violation becomes a failing finding on the resource (`azure:<module>:<Type>/<logical name>`)
naming the estate file and line the resource was built from. Each rule with no violation gives
one passing finding for the stack, so the control matrix can show the guardrail as met.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from security_checks.checks import make_finding
from security_checks.findings import EvidenceRef, Finding, Status

from .plan import Plan, PlannedResource

if TYPE_CHECKING:
    from security_checks.assess import StepContext, StepResult

    from .policy.rules import Rule, Violation

PLAN_EVIDENCE = "infra-plan/plan.json"


def asset_for(resource_type: str, name: str) -> str:
    return f"azure:{resource_type.removeprefix('azure-native:')}/{name}"


def located(plan: Plan, v: Violation) -> tuple[PlannedResource | None, tuple[str, int] | None]:
    r = plan.by_urn(v.urn)
    return r, (plan.origin(r) if r is not None else None)


def to_findings(plan: Plan, violations: list[Violation], rules: list[Rule],
                evidence: EvidenceRef | None = None) -> list[Finding]:
    out: list[Finding] = []
    seen: set[tuple[str, str, str]] = set()
    ev = [evidence] if evidence else []
    for v in violations:
        key = (v.check_id, v.urn, v.message)
        if key in seen:
            continue
        seen.add(key)
        _, where = located(plan, v)
        details: dict[str, Any] = {"urn": v.urn, "resource_type": v.resource_type, "stack": plan.stack}
        observed = v.message
        if where is not None:
            details["estate_file"], details["estate_line"] = where
            observed += f" (from {where[0]}:{where[1]})"
        out.append(make_finding(v.check_id, asset_for(v.resource_type, v.resource_name), Status.FAIL,
                                key=v.message, observed=observed, expected="no violation of the guardrail",
                                evidence=ev, details=details))
    failing = {v.check_id for v in violations}
    for rule in rules:
        if rule.check_id not in failing:
            out.append(make_finding(rule.check_id, f"infra-plan:{plan.stack}", Status.PASS,
                                    observed=f"no violation in {len(plan.resources)} planned resources",
                                    expected=rule.description, evidence=ev,
                                    details={"stack": plan.stack}))
    return out


def plan_document(plan: Plan, violations: list[Violation]) -> dict[str, Any]:
    doc = plan.to_json()
    doc["violations"] = []
    for v in violations:
        _, where = located(plan, v)
        doc["violations"].append({"check_id": v.check_id, "resource_type": v.resource_type,
                                  "resource": v.resource_name, "urn": v.urn, "message": v.message,
                                  "estate_file": where[0] if where else None,
                                  "estate_line": where[1] if where else None})
    return doc


def assess_step(ctx: StepContext) -> StepResult:
    """`estate assess` step `infra-plan`: the program under mocks, its policy rules as findings."""
    from security_checks.assess import StepResult

    from .config import EstateInputError
    from .plan import evaluate, run_plan
    from .policy.pack import RULES

    try:
        plan = run_plan(ctx.loaded)
    except EstateInputError as exc:
        return StepResult(skipped=f"the estate cannot be built into a Pulumi program: {exc}")
    violations = evaluate(plan)
    doc = plan_document(plan, violations)
    ref = ctx.run.write_evidence(PLAN_EVIDENCE, json.dumps(doc, indent=1, default=str),
                                 "offline Pulumi plan (mock runtime): resource graph and policy violations")
    findings = to_findings(plan, violations, RULES, ref)
    summary = (f"{len(plan.resources)} resources planned offline (Pulumi mocks), "
               f"{len(violations)} policy violation(s)")
    return StepResult(findings=findings, summary=summary)
