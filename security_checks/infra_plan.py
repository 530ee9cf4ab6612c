"""The offline Pulumi plan as a step: the program runs in its own process, its violations come back
as findings.

security_checks never imports the Pulumi program (infra/): it would bring the Pulumi and Azure
SDKs, and the mock runtime's process-global state, into every `estate` process, and tie each engine
to the program's internals. Instead `run_offline_plan` runs `python -m infra.plan_cli` with this
interpreter from the repository root and reads the one JSON document it writes (its shape is in
infra/plan_cli.py): the resource graph, each violation with the estate file:line it came from, and
the rules evaluated.

One misconfiguration in the estate shows on every resource built from it (a non-UK region on every
resource of a spoke, a guest SSID's VLAN at every site), so violations are grouped by their cause:
the rule, the thing in the estate they were built from and where in it. Each group is ONE failing
finding, on the estate's name for that thing (`lob:<system>` by the resources' `system` tag when it
is a LOB system, else `site:`, `ssid:`, `firewall:`, `hub:<region>` or `tenancy:<org>`: see
security_checks/model/assets.py), with the estate file:line, every affected resource in
details.resources and their count in `observed`. Its id (check, asset, key = the field inside that
thing) follows the cause, never the order the engine registered resources in. Each rule with no
violation gives one passing finding for the stack (`infra-plan:<stack>`), so the control matrix can
show the guardrail as met.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .checks import make_finding
from .findings import EvidenceRef, Finding, Status
from .model.assets import Origins, asset_for_path
from .model.located import LoadedEstate
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
    """A planned resource's own name (kept in details.resources; findings are about the estate's things)."""
    return f"azure:{resource_type.removeprefix('azure-native:')}/{name}"


# The connectivity hub's resources: tagged as its system, or inside the WAN component (infra/wan.py).
HUB_SYSTEM = "platform-connectivity"
HUB_COMPONENT = "estate:wan:Wan"
# How many affected resources `observed` names before it says "and N more" (details list them all).
_NAMED_IN_OBSERVED = 8


def _cause(v: dict[str, Any], resources: dict[str, dict[str, Any]], loaded: LoadedEstate,
           origins: Origins) -> tuple[str, str]:
    """(asset, key): the thing in the estate the violating resource was built from, and where in it."""
    estate = loaded.estate
    resource = resources.get(v["urn"])
    tags = _tags(resource)
    path = origins.path_at(v.get("estate_file"), v.get("estate_line"))
    asset, inside = asset_for_path(estate, path) if path is not None else (
        f"tenancy:{estate.organisation.short_name}", "")
    system = tags.get("system")
    if isinstance(system, str) and any(lob.name == system for lob in estate.lob_systems):
        # The system tag says whose resource it is, wherever in the estate its settings came from.
        own = f"lob:{system}"
        return own, inside if asset == own else ""
    if asset.startswith("tenancy:") and _in_hub(resource, resources):
        # Built from estate-wide settings (every firewall's PSN rules, say) into the hub: the hub's.
        location = str(((resource or {}).get("inputs") or {}).get("location") or "").replace(" ", "").lower()
        region = location if location in (estate.azure.primary_region, estate.azure.secondary_region) \
            else estate.azure.primary_region
        return f"hub:{region}", inside
    return asset, inside


def _in_hub(resource: dict[str, Any] | None, resources: dict[str, dict[str, Any]]) -> bool:
    if _tags(resource).get("system") == HUB_SYSTEM:
        return True
    seen: set[str] = set()
    while resource is not None and resource.get("parent") and resource["parent"] not in seen:
        seen.add(resource["parent"])
        resource = resources.get(resource["parent"])
        if resource is not None and resource.get("type") == HUB_COMPONENT:
            return True
    return False


def _tags(resource: dict[str, Any] | None) -> dict[str, Any]:
    tags = ((resource or {}).get("inputs") or {}).get("tags")
    return tags if isinstance(tags, dict) else {}


def to_findings(doc: dict[str, Any], loaded: LoadedEstate, evidence: EvidenceRef | None = None) -> list[Finding]:
    """One failing finding per rule and cause (every resource it shows on), one passing finding per
    rule not violated."""
    ev = [evidence] if evidence else []
    stack = doc["stack"]
    estate = loaded.estate
    say = _network_namer(estate.organisation.public_sector_network)
    origins = Origins(loaded)
    resources = {r["urn"]: r for r in doc.get("resources", [])}
    violations: list[dict[str, Any]] = doc["violations"]
    groups: dict[tuple[str, str, str], dict[tuple[str, str], dict[str, Any]]] = {}
    for v in violations:
        tags = _tags(resources.get(v["urn"]))
        cause = (v["check_id"], *_cause(v, resources, loaded, origins))
        # A rule may see a resource twice with the same message: it is listed once.
        groups.setdefault(cause, {}).setdefault((v["urn"], v["message"]), {**v, "tags": tags})
    out: list[Finding] = []
    for (check_id, asset, key), found in sorted(groups.items()):
        items = sorted(found.values(), key=lambda x: (x["resource"], x["resource_type"], x["urn"], x["message"]))
        names = sorted({x["resource"] for x in items})
        messages = list(dict.fromkeys(x["message"] for x in sorted(items, key=lambda x: x["message"])))
        places = sorted({(x["estate_file"], x["estate_line"]) for x in items if x.get("estate_file") is not None})
        shown = ", ".join(names[:_NAMED_IN_OBSERVED]) + (
            f" and {len(names) - _NAMED_IN_OBSERVED} more" if len(names) > _NAMED_IN_OBSERVED else "")
        observed = messages[0] if len(messages) == 1 else (
            f"{messages[0]}; and {len(messages) - 1} similar violation(s) of this rule (details.resources)")
        observed += f" - {len(names)} planned resource(s): {shown}"
        if places:
            observed += " (from " + ", ".join(f"{f}:{line}" for f, line in places) + ")"
        kind, _, name = asset.partition(":")
        owner = next((lob.owner for lob in estate.lob_systems if kind == "lob" and lob.name == name), None) or \
            ", ".join(sorted({str(x["tags"]["information-asset-owner"]) for x in items
                              if x["tags"].get("information-asset-owner")})) or None
        details: dict[str, Any] = {
            "stack": stack, "system": asset, "owner": owner, "resource_count": len(names),
            "resources": [{"resource": x["resource"], "resource_type": x["resource_type"], "urn": x["urn"],
                           "asset": asset_for(x["resource_type"], x["resource"]), "message": x["message"],
                           "estate_file": x.get("estate_file"), "estate_line": x.get("estate_line")}
                          for x in items]}
        if kind == "lob":
            details["lob"] = name
        if places:
            details["estate_file"], details["estate_line"] = places[0]
        out.append(make_finding(check_id, asset, Status.FAIL, key=key, observed=say(observed),
                                expected="no violation of the guardrail", evidence=ev, details=details,
                                site=name if kind == "site" else None))
    failing = {v["check_id"] for v in violations}
    for rule in doc["rules"]:
        if rule["check_id"] not in failing:
            out.append(make_finding(rule["check_id"], f"infra-plan:{stack}", Status.PASS,
                                    observed=f"no violation in {doc['resource_count']} planned resources",
                                    expected=say(rule["description"]), evidence=ev, details={"stack": stack}))
    return out


def _network_namer(network: str) -> Callable[[str], str]:
    """The policy rules (infra/policy) judge planned resources and know no council, so their texts
    call the public-sector network "PSN"; what people read names the council's own (SWAN...)."""
    if network == "PSN":
        return lambda text: text
    word = re.compile(r"\bPSN\b")
    return lambda text: word.sub(network, text)


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
    findings = to_findings(doc, ctx.loaded, ref)
    summary = (f"{doc['resource_count']} resources planned offline (Pulumi mocks), "
               f"{len(doc['violations'])} policy violation(s) from {sum(1 for f in findings if f.failing)} cause(s)")
    return StepResult(findings=findings, summary=summary,
                      data={"plan": printable(doc), "config": doc.get("config", {})})
