"""`estate infra`: the Pulumi program for the council's Azure tenancy, WAN, Wi-Fi and LOB systems.

- `plan`: offline. Runs the program under Pulumi's mock runtime (no CLI, no Azure) in a process of
  its own (security_checks/infra_plan.py), prints the resource graph and evaluates the policy
  rules; violations are findings in a stored run of kind `infra-plan` with the plan as evidence.
  Exit 1 when any rule is violated.
- `preview` / `up`: the real thing, through the Automation API (the Pulumi CLI runs the program);
  they need the Pulumi CLI and Azure credentials and say exactly what is missing when either is.

This module never imports the Pulumi program (infra/): the offline plan is a child process and the
real one is the Pulumi CLI's.
"""

from __future__ import annotations

import json
import os
import shutil
from collections import defaultdict
from pathlib import Path
from typing import Annotated, Any

import typer

from .common import (
    DEFAULT_HOME,
    REPO_ROOT,
    Format,
    FormatOpt,
    HomeOpt,
    WaitOpt,
    emit_json,
    err,
    load_or_exit,
    print_steps,
    run_job,
    show,
    usage_error,
)

app = typer.Typer(
    help=("The Pulumi program: Azure tenancy, connectivity hub, LOB systems, WAN and Wi-Fi, from the estate model.\n\n"
          "plan runs offline under Pulumi's mock runtime and checks the policy rules; preview and up "
          "use the Pulumi CLI against Azure."),
    rich_markup_mode="rich", no_args_is_help=True)

StackOpt = Annotated[str, typer.Option("--stack", "-s",
                                       help="Pulumi stack (Pulumi.<stack>.yaml at the repository root).")]
EstateDirOpt = Annotated[Path | None, typer.Option(
    "--estate", envvar="ESTATE_DIR", help="Estate model directory. Default: the stack's estate:dir (inventory/demo).")]

# Inputs worth showing next to a resource in the text graph, in this order.
_KEY_INPUTS = ("location", "addressSpace.addressPrefixes", "addressPrefix", "sku.name", "kind",
               "hardwareProfile.vmSize", "storageProfile.imageReference.sku", "policyDefinitionId", "scope",
               "groupId", "pricingName", "cnameRecord.cname", "properties.schedulePolicy.scheduleRunFrequency",
               "tags.tier")


def _dig(data: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        if not isinstance(data, dict) or part not in data:
            return None
        data = data[part]
    return data


def key_inputs(inputs: dict[str, Any]) -> str:
    parts = []
    for key in _KEY_INPUTS:
        value = _dig(inputs, key)
        if value is None or value == "":
            continue
        if isinstance(value, str) and value.startswith("/providers/Microsoft.Authorization/"):
            value = value.rsplit("/", 1)[-1]
        if isinstance(value, list):
            value = ",".join(map(str, value))
        label = key.split(".")
        parts.append(f"{label[-2] if label[-1] == 'name' and len(label) > 1 else label[-1]}={value}")
    return " ".join(parts)


def _estate_dir_for(stack: str, estate: Path | None) -> Path:
    """The estate to plan: --estate, else the stack's estate:dir; an unknown stack is bad input."""
    from ..stack_config import StackConfigError, load_stack_config

    try:
        cfg = load_stack_config(stack)
    except StackConfigError as exc:
        usage_error(str(exc))
    return estate.resolve() if estate is not None else cfg.estate_dir


@app.command(epilog=(
    "Examples:\n\n  estate infra plan\n\n  estate infra plan --stack production --format json > plan.json\n\n"
    "  estate infra plan --estate ../our-estate --home /srv/estate\n\n"
    "Exit status: 0 no violation, 1 policy violations (each names the resource and the estate file:line), "
    "2 bad input."))
def plan(
    stack: StackOpt = "demo",
    estate: EstateDirOpt = None,
    home: HomeOpt = DEFAULT_HOME,
    format: FormatOpt = Format.TEXT,
    wait: WaitOpt = 0.0,
    graph: Annotated[bool, typer.Option(
        "--graph", help="Print the whole resource graph (hundreds of lines for a large council).")] = False,
) -> None:
    """Run the Pulumi program offline (mock runtime: no Pulumi CLI, no Azure) and check the policy rules.

    Prints the largest counts by type and the policy violations, each with the estate file:line it
    came from (a screenful; --graph adds the resource graph: type, name, parent, key inputs; --format
    json has everything). The run is stored (kind infra-plan) with the
    plan JSON as evidence; the same rules run as a CrossGuard pack under `estate infra preview`.
    """
    from ..infra_plan import PLAN_EVIDENCE
    from ..jobs import INFRA

    estate_dir = _estate_dir_for(stack, estate)
    # policy=False: overlapping ranges reach the policy rules as violations instead of being refused.
    loaded = load_or_exit(estate_dir, policy=False)
    outcome = run_job(INFRA, loaded, home, options={"stack": stack, "refuse_bad_input": True}, wait=wait,
                      quiet=format is Format.JSON)
    run = outcome.run
    step = run.steps[-1]
    if step["status"] != "ran":
        print_steps(run.steps)
        raise typer.Exit(1)
    doc = outcome.data.get("infra-plan", {}).get("plan", {})
    violations = doc.get("violations", [])
    if format is Format.JSON:
        emit_json({"run": run.id, "stack": stack, "estate": str(estate_dir), **doc})
    else:
        _print_graph(doc, graph)
        _print_violations(violations)
        show.print(f"run [bold]{run.id}[/]: {doc.get('resource_count', 0)} resources, "
                   f"{len(violations)} policy violation(s), {len(outcome.findings)} findings stored; "
                   f"plan: {home / 'runs' / run.id / PLAN_EVIDENCE}")
    raise typer.Exit(1 if violations else 0)


# A summary fits a screen however large the council (1,277 resources at 43 sites); --graph and
# --format json have the rest.
SCREEN_ROWS = 12


def _print_graph(plan: dict[str, Any], graph: bool) -> None:
    """The resource graph of a plan document (each resource indented under its parent) when asked,
    then the largest counts by type."""
    resources: list[dict[str, Any]] = plan["resources"]
    children: dict[str | None, list[dict[str, Any]]] = defaultdict(list)
    urns = {r["urn"] for r in resources}
    for r in resources:
        children[r["parent"] if r["parent"] in urns else None].append(r)

    def tree(parent: str | None, depth: int) -> None:
        for r in sorted(children.get(parent, []), key=lambda x: (x["type"], x["name"])):
            show.print(f"{'  ' * depth}{r['type']} [bold]{r['name']}[/] {key_inputs(r['inputs'])}", soft_wrap=True,
                       highlight=False, markup=True)
            tree(r["urn"], depth + 1)

    if graph:
        show.print("[bold]resource graph[/] (indented under its parent)")
        tree(None, 1)
    counts = sorted(plan["counts"].items(), key=lambda kv: (-kv[1], kv[0]))
    show.print("[bold]counts by type[/]" + (f" (the largest {SCREEN_ROWS} of {len(counts)})"
                                            if len(counts) > SCREEN_ROWS else ""))
    for t, n in counts[:SCREEN_ROWS]:
        show.print(f"  {n:5d}  {t}", highlight=False, soft_wrap=True)
    show.print(f"  {len(resources):5d}  total", highlight=False)


def _print_violations(violations: list[dict[str, Any]]) -> None:
    if not violations:
        show.print("[green]no policy violations[/]")
        return
    show.print(f"[bold red]{len(violations)} policy violation(s)[/]")
    for v in violations[:SCREEN_ROWS * 2]:
        where = f" ({v['estate_file']}:{v['estate_line']})" if v.get("estate_file") else ""
        show.print(f"  [red]{v['check_id']}[/] {v['resource_type']} {v['resource']}{where}: {v['message']}",
                   soft_wrap=True, highlight=False)
    if len(violations) > SCREEN_ROWS * 2:
        show.print(f"  ... and {len(violations) - SCREEN_ROWS * 2} more (--format json for all)")


# ---- the real path: Automation API ---------------------------------------------------------------


def missing_prerequisites(env: dict[str, str] | None = None, home: Path | None = None) -> list[str]:
    """What `preview`/`up` need and this machine lacks, each with how to get it."""
    env = dict(os.environ if env is None else env)
    home = home or Path.home()
    missing = []
    if shutil.which("pulumi", path=env.get("PATH")) is None:
        missing.append("the Pulumi CLI (install: curl -fsSL https://get.pulumi.com | sh, or see "
                       "https://www.pulumi.com/docs/install/; then `pulumi login` to the state backend, "
                       "e.g. azblob://pulumi-state for production)")
    azure_env = (env.get("ARM_CLIENT_ID") and (env.get("ARM_CLIENT_SECRET") or env.get("ARM_USE_OIDC")
                                               or env.get("ARM_CLIENT_CERTIFICATE_PATH"))) or env.get("ARM_USE_MSI")
    az_profile = home / ".azure" / "azureProfile.json"
    if not azure_env and not _az_logged_in(az_profile):
        missing.append("Azure credentials (run `az login`, or set ARM_TENANT_ID and ARM_CLIENT_ID with "
                       "ARM_CLIENT_SECRET or ARM_USE_OIDC=true, or ARM_USE_MSI=true on an Azure host)")
    return missing


def _az_logged_in(profile: Path) -> bool:
    try:
        data = json.loads(profile.read_text(encoding="utf-8-sig"))
    except (OSError, ValueError):
        return False
    return bool(data.get("subscriptions"))


def _automation(stack: str, action: str, yes: bool) -> None:
    estate_dir = _estate_dir_for(stack, None)
    missing = missing_prerequisites()
    if missing:
        usage_error(f"cannot run `pulumi {action}` for stack {stack}: missing " + "; and ".join(missing)
                    + ". Meanwhile `estate infra plan` checks the program offline.")
    load_or_exit(estate_dir)  # a real deployment refuses any estate problem, overlaps included
    if action == "up" and not yes and not typer.confirm(f"Deploy stack {stack} to Azure?"):
        raise typer.Exit(1)
    from pulumi import automation as auto

    try:
        ws_stack = auto.create_or_select_stack(stack_name=stack, work_dir=str(REPO_ROOT))
        policy = [str(REPO_ROOT / "infra" / "policy")]
        if action == "preview":
            result: Any = ws_stack.preview(on_output=lambda line: err.print(line, end="", markup=False),
                                           policy_packs=policy)
            err.print(f"preview: {result.change_summary}")
        else:
            result = ws_stack.up(on_output=lambda line: err.print(line, end="", markup=False), policy_packs=policy)
            err.print(f"up: {result.summary.result} {result.summary.resource_changes}")
    except auto.errors.CommandError as exc:
        err.print(f"[bold red]pulumi {action} failed[/]: {str(exc).strip().splitlines()[-1]}", soft_wrap=True)
        raise typer.Exit(1) from None


@app.command(epilog="Examples:\n\n  estate infra preview --stack production\n\n"
                    "Needs the Pulumi CLI and Azure credentials; without them it says what is missing (exit 2).")
def preview(stack: StackOpt = "production") -> None:
    """`pulumi preview` with the policy pack, through the Automation API (real Azure, changes nothing)."""
    _automation(stack, "preview", yes=False)


@app.command(epilog="Examples:\n\n  estate infra up --stack production\n\n  estate infra up --stack production --yes")
def up(stack: StackOpt = "production",
       yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation.")) -> None:
    """`pulumi up` with the policy pack, through the Automation API: deploys to Azure."""
    _automation(stack, "up", yes=yes)


# ---- WAN helper: `estate infra diagram` registers below (one line; they own cli/infra_diagram.py) ----
from .infra_diagram import diagram; app.command()(diagram)  # noqa: E402, E702, I001
