"""The lab's routers are configured by the nftables_gateway role, through Ansible, like a real site router.

Each lab firewall is a network namespace (est-<firewall>). Ansible reaches it with a real
connection: `local`, with the namespace entered by the module's interpreter, a one-line wrapper
`exec ip netns exec est-<firewall> python3 "$@"` (`ip netns exec NS python3` as the interpreter
itself fails in ansible-core 2.19). Every module therefore runs inside the router's namespace:
`nft -c` validates the rendered ruleset against that namespace's kernel, `nft -f` loads it
atomically there, and `nft -j list ruleset` reads it back from there. The host's own ruleset is
never touched (the root namespace gets nothing).

What Python still does here is only what a real estate's inventory does: hand the role the
declared policy (security_checks/firewalls/declared.py) and, for the lab alone, the planted faults
(faults.yaml, `nft-rule`), which the role renders with a "PLANTED FAULT" comment. `render()`
renders the role's own template with the same variables, for tests that need the text without
Ansible (the role is the only thing that loads rulesets).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from ..firewalls.declared import declared_firewall
from ..firewalls.runner import run_playbook
from ..model.located import LoadedEstate
from ..model.schema import Estate, Firewall
from .topology import Lab

ROLE = Path(__file__).resolve().parents[2] / "playbooks" / "roles" / "nftables_gateway"
INVENTORY_FILE = "firewalls-inventory.json"


class RouterConfigError(RuntimeError):
    """The role could not configure a lab router (one line for the user)."""


def planted_rules(faults: list[dict[str, Any]], firewall: str) -> list[dict[str, Any]]:
    return [{k: f[k] for k in ("id", "description", "chain", "protocol", "port", "from_zone", "to_address") if k in f}
            for f in faults if f.get("action") == "nft-rule" and f.get("firewall") == firewall]


def lab_declared(loaded: LoadedEstate, fw: Firewall) -> dict[str, Any]:
    """The firewall's declared policy, as an nftables router: in the lab every firewall is one."""
    return {**declared_firewall(loaded, fw), "vendor": "nftables", "fortios": {}}


def write_inventory(lab: Lab, loaded: LoadedEstate, d: Path) -> Path:
    """The lab's routers as an Ansible inventory (the groups firewalls.yml plays to)."""
    bindir = d / "bin"
    bindir.mkdir(parents=True, exist_ok=True)
    hosts: dict[str, Any] = {}
    for node in lab.firewalls:
        wrapper = bindir / f"python-{node.netns}"
        wrapper.write_text(f'#!/bin/sh\nexec ip netns exec {node.netns} {sys.executable} "$@"\n')
        wrapper.chmod(0o755)
        fw = loaded.estate.firewall(node.name)
        hosts[node.name] = {
            "ansible_connection": "local", "ansible_python_interpreter": str(wrapper),
            "estate_firewall": lab_declared(loaded, fw), "estate_lab_netns": node.netns,
            "nftables_gateway_config_path": str(d / f"{node.name}.nft"),
            "nftables_gateway_planted_rules": planted_rules(lab.faults, node.name),
        }
    path = d / INVENTORY_FILE
    path.write_text(json.dumps({"all": {"children": {"firewalls": {"children": {
        "firewalls_nftables": {"hosts": hosts}}}}}}, indent=1, default=str))
    return path


def configure(lab: Lab, loaded: LoadedEstate, d: Path) -> Path:
    """Apply the nftables_gateway role to every lab router; returns the lab's firewall inventory."""
    inventory = write_inventory(lab, loaded, d)
    outcome = run_playbook(estate_dir=loaded.root, home=d.parent, apply=True, inventory=inventory)
    failed = [e for e in outcome.events if e.get("event") in ("runner_on_failed", "runner_on_unreachable")
              and not (e.get("event_data") or {}).get("ignore_errors")]
    if failed or outcome.rc != 0:
        data = (failed[0].get("event_data") or {}) if failed else {}
        res = data.get("res") or {}
        why = res.get("msg") or res.get("stderr") or outcome.stderr_tail.strip() or f"rc {outcome.rc}"
        raise RouterConfigError(f"nftables_gateway role on {data.get('host', 'the lab routers')}: {why}"[:600])
    return inventory


def render(estate: Estate, fw: Firewall, faults: list[dict[str, Any]] | None = None,
           source: str = "the estate") -> str:
    """The role's template rendered with the variables the role gets (no Ansible, nothing loaded)."""
    # No file was read: the ruleset's header cites `source` where a loaded estate gives file:line.
    loaded = LoadedEstate(estate=estate, root=Path(source), locations={("firewalls",): (source, 0)}, digest="")
    env = Environment(loader=FileSystemLoader(ROLE / "templates"), undefined=StrictUndefined,
                      keep_trailing_newline=True, trim_blocks=True, autoescape=False)  # noqa: S701 (nftables text)
    env.filters["nft_set_name"] = lambda name, prefix: f"{prefix}_{name.replace('-', '_')}"
    return env.get_template("ruleset.nft.j2").render(
        inventory_hostname=fw.name, estate_firewall=lab_declared(loaded, fw),
        nftables_gateway_planted_rules=planted_rules(faults or [], fw.name), ansible_managed="Managed by Ansible")


def check(text: str, path: Path, netns: str | None = None) -> None:
    """`nft -c -f`: the kernel's own parser checks the ruleset without applying it."""
    path.write_text(text)
    cmd = ["nft", "-c", "-f", str(path)]
    if netns:
        cmd = ["ip", "netns", "exec", netns, *cmd]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise ValueError(f"{path}: nft rejects the rendered ruleset: {proc.stderr.strip()}")
