"""The `firewalls` step: the declared policy against the configuration read back from each firewall.

Which firewalls a run can read, and why not the others:

- the demo lab's routers, when the harness provides them (StepContext.provisions["lab_firewalls"]):
  an inventory of the lab's namespaces, reached through `ip netns exec` (see security_checks/lab);
- a FortiGate, when its REST API token is in the environment (ESTATE_FORTIOS_TOKEN_<NAME>; an AWX
  credential injects it); without it the firewall is not assessed, and says which variable;
- an nftables router over SSH, only from a machine on the management network (its service
  environment sets ESTATE_MANAGEMENT_HOST): a laptop or CI runner never sends packets to a
  council's management addresses;
- a vendor without a role (Azure Firewall, managed by Pulumi; Palo Alto; Cisco ASA): not assessed,
  its Cyber Essentials evidence stays what the estate declares.

When no firewall can be read, the step is skipped with those reasons.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..step import InputRefused, StepContext, StepResult
from .declared import VENDORS, token_env

MANAGEMENT_HOST_ENV = "ESTATE_MANAGEMENT_HOST"


def reachable(ctx: StepContext) -> tuple[dict[str, str], dict[str, str], Path | None, list[str]]:
    """(hosts to run: name -> vendor, not assessed: name -> why, inventory, env names to scrub)."""
    lab = ctx.provisions.get("lab_firewalls")
    estate = ctx.loaded.estate
    if lab:
        hosts = dict(lab["hosts"])
        left = {fw.name: "not in the demo lab" for fw in estate.firewalls if fw.name not in hosts}
        return hosts, left, Path(lab["inventory"]), []
    hosts, left, secrets = {}, {}, []
    for fw in estate.firewalls:
        if fw.vendor not in VENDORS:
            left[fw.name] = f"no Ansible role for vendor {fw.vendor}: only the declared policy is judged"
        elif not fw.management_address:
            left[fw.name] = "no management_address in the estate: nothing to connect to"
        elif fw.vendor == "fortinet":
            secrets.append(token_env(fw.name))
            if os.environ.get(token_env(fw.name)):
                hosts[fw.name] = fw.vendor
            else:
                left[fw.name] = f"{token_env(fw.name)} is not set (the FortiGate's REST API token)"
        elif os.environ.get(MANAGEMENT_HOST_ENV):
            hosts[fw.name] = fw.vendor
        else:
            left[fw.name] = (f"an SSH router is read only from a management host ({MANAGEMENT_HOST_ENV} set "
                             "in its service environment)")
    return hosts, left, None, secrets


def firewalls_step(ctx: StepContext) -> StepResult:
    from .audit import FirewallsError, run_firewalls

    if not ctx.loaded.estate.firewalls:
        return StepResult(skipped="the estate declares no firewalls")
    hosts, left, inventory, secrets = reachable(ctx)
    if not hosts:
        reasons = sorted(set(left.values()))
        return StepResult(skipped="no firewall reachable: " + "; ".join(reasons))
    apply = bool(ctx.options.get("apply"))
    try:
        result = run_firewalls(ctx.loaded, Path(ctx.home), ctx.run, apply=apply, today=ctx.today, hosts=hosts,
                               limit=ctx.options.get("limit"), inventory=inventory,
                               on_event=ctx.options.get("on_event"), not_assessed=left, scrub_env=secrets)
    except FirewallsError as exc:
        if ctx.options.get("refuse_bad_input"):   # `estate firewalls`: a bad --limit is bad input, exit 2
            raise InputRefused(str(exc)) from None
        raise
    changes = {name: hr.changes for name, hr in result.hosts.items()}
    return StepResult(findings=result.findings, summary=result.summary(apply), data={"changes": changes})
