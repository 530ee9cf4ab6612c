"""The CrossGuard policy pack: `pulumi preview --policy-pack infra/policy` (needs the Pulumi CLI).

Built from the same rules `estate infra plan` evaluates offline (infra/policy/pack.py: the
landing-zone rules and the network rules). Constructing PolicyPack starts the policy gRPC server
and blocks until the engine is done, which is why it happens only here, never on import.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

# The CLI runs this file as a script from infra/policy: make the repository importable.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from pulumi_policy import (
    EnforcementLevel,
    PolicyPack,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

from infra.policy.pack import RULES
from infra.policy.rules import PolicyResource, Rule


def _resource_policy(rule: Rule) -> ResourceValidationPolicy:
    def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        if rule.types is not None and args.resource_type not in rule.types:
            return
        assert rule.resource is not None
        for message in rule.resource(args.resource_type, args.props):
            report_violation(f"[{rule.check_id}] {message}", args.urn)

    return ResourceValidationPolicy(name=rule.policy_name, description=rule.description, validate=validate,
                                    enforcement_level=EnforcementLevel.MANDATORY)


def _stack_policy(rule: Rule) -> StackValidationPolicy:
    def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
        assert rule.stack is not None
        resources = [PolicyResource(type=r.resource_type, name=r.name, urn=r.urn, props=r.props,
                                    id=_id(r.props),
                                    property_dependencies={k: tuple(d.urn for d in deps)
                                                           for k, deps in r.property_dependencies.items()})
                     for r in args.resources]
        for res, message in rule.stack(resources):
            report_violation(f"[{rule.check_id}] {message}", res.urn)

    return StackValidationPolicy(name=f"{rule.policy_name}-stack", description=rule.description,
                                 validate=validate, enforcement_level=EnforcementLevel.MANDATORY)


def _id(props: Any) -> str | None:
    value = props.get("id") if hasattr(props, "get") else None
    return value if isinstance(value, str) else None


def policies() -> list[Any]:
    out: list[Any] = []
    for rule in RULES:
        if rule.resource is not None:
            out.append(_resource_policy(rule))
        if rule.stack is not None:
            out.append(_stack_policy(rule))
    return out


if __name__ == "__main__":
    PolicyPack(name="estate-landing-zone", enforcement_level=EnforcementLevel.MANDATORY, policies=policies())
