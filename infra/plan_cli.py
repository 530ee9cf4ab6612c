"""The offline plan as a program of its own: the process boundary between security_checks and infra.

    python -m infra.plan_cli --stack NAME --out FILE [--estate DIR] [--no-policy-refusal]

Runs the Pulumi program under the mock runtime (infra/plan.py), evaluates every policy rule
(infra/policy/pack.py) and writes ONE JSON document to FILE, atomically:

    {"schema": "estate.infra-plan/1",
     "stack", "resource_count", "counts", "resources",   # the resource graph, secrets as [secret]
     "violations": [{check_id, resource_type, resource, urn, message, estate_file, estate_line}],
     "rules": [{check_id, description}],                 # every rule evaluated, violated or not
     "config": {stack, environment, estate_digest, state_backend}}

`security_checks.infra_plan` runs this with the same interpreter and reads the document, so the
Pulumi and Azure SDKs, and the mock runtime's process-global state, never enter the `estate`
process. Exit status: 0 the document is written (violations are in it, not in the status); 2 bad
input (the stack file, the estate, or an estate the program cannot build): one line on stderr
naming the file and field, nothing written. Anything else is a bug, with its traceback.

The stack file gives the environment and SSH key; --estate overrides its estate:dir. Without
--no-policy-refusal the estate is loaded as a deployment loads it, refusing overlapping ranges;
with it, they reach the policy rules and come back as violations (what `estate infra plan` does).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from security_checks.fsutil import atomic_write
from security_checks.model.loader import EstateError, load_estate

from .config import EstateInputError, load_stack_config
from .plan import Plan, evaluate, run_plan
from .policy.pack import RULES
from .policy.rules import Rule, Violation

SCHEMA = "estate.infra-plan/1"
EXIT_BAD_INPUT = 2


def plan_document(plan: Plan, violations: list[Violation], rules: list[Rule]) -> dict[str, Any]:
    """The plan, its violations (each with the estate file:line it came from) and the rules."""
    doc: dict[str, Any] = {"schema": SCHEMA, **plan.to_json(), "violations": []}
    for v in violations:
        where = plan.violation_origin(v)
        doc["violations"].append({"check_id": v.check_id, "resource_type": v.resource_type,
                                  "resource": v.resource_name, "urn": v.urn, "message": v.message,
                                  "estate_file": where[0] if where else None,
                                  "estate_line": where[1] if where else None})
    doc["rules"] = [{"check_id": rule.check_id, "description": rule.description} for rule in rules]
    return doc


class BadInput(Exception):
    """What to say, in one line, before exiting 2."""


def _one_line(text: str) -> str:
    return "; ".join(part.strip() for part in str(text).splitlines() if part.strip())


def build_document(stack: str, estate: Path | None, *, policy_refusal: bool = True) -> dict[str, Any]:
    try:
        cfg = load_stack_config(stack)
    except EstateInputError as exc:
        raise BadInput(_one_line(str(exc))) from None
    if estate is not None:
        cfg = replace(cfg, estate_dir=str(estate.resolve()))
    estate_dir = cfg.estate_path
    try:
        loaded = load_estate(estate_dir, policy=policy_refusal)
    except EstateError as exc:
        first, more = exc.problems[0], len(exc.problems) - 1
        raise BadInput(str(first) + (f" (and {more} more problem(s): `estate validate` lists them)"
                                     if more else "")) from None
    try:
        plan = run_plan(loaded, cfg)
    except EstateInputError as exc:
        raise BadInput(f"{estate_dir}: {_one_line(str(exc))}") from None
    doc = plan_document(plan, evaluate(plan), RULES)
    # The estate by its digest, not its directory: the document is kept as assessment evidence, which
    # should not carry the directory the operator ran from (findings cite the estate relatively too).
    doc["config"] = {"stack": cfg.stack, "environment": cfg.environment, "estate_digest": loaded.digest,
                     "state_backend": cfg.state_backend}
    return doc


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.plan_cli", description=__doc__.split("\n\n")[0])
    parser.add_argument("--stack", default="demo", help="Pulumi stack (Pulumi.<stack>.yaml at the repository root)")
    parser.add_argument("--estate", type=Path, help="estate model directory (default: the stack's estate:dir)")
    parser.add_argument("--out", type=Path, required=True, help="where to write the JSON document")
    parser.add_argument("--no-policy-refusal", action="store_true",
                        help="load the estate with overlapping ranges left to the policy rules")
    args = parser.parse_args(argv)
    try:
        doc = build_document(args.stack, args.estate, policy_refusal=not args.no_policy_refusal)
    except BadInput as exc:
        print(f"{exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    atomic_write(args.out, json.dumps(doc, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
