"""One firewall run (audit or apply): ansible-runner, the configuration read back, findings, evidence.

Audit runs the roles in check and diff mode (nothing is written; the FortiOS modules only GET) and
compares the configuration the roles read back with the declared policy. Apply runs them for
real, reports what changed, and compares what the device holds afterwards.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from ..checks import make_finding
from ..findings import EvidenceRef, Finding, Status
from ..model.loader import LoadedEstate
from ..step import EvidenceSink
from .compare import compare
from .declared import declared_firewall
from .runner import INVENTORY, RunnerOutcome, Scrubber, run_playbook
from .running import Running, from_fortios, from_nft

FACT_MODULES = ("fortinet.fortios.fortios_monitor_fact", "fortinet.fortios.fortios_configuration_fact")


class FirewallsError(RuntimeError):
    """The playbook could not run at all (bad inventory, syntax error): not a per-firewall problem."""


@dataclass
class HostResult:
    running: Running | None = None
    changes: list[str] = field(default_factory=list)     # task: item, of tasks that changed (would change)
    failed: str | None = None


@dataclass
class FirewallsResult:
    findings: list[Finding]
    outcome: RunnerOutcome | None
    hosts: dict[str, HostResult]

    def summary(self, apply: bool) -> str:
        c = Counter(f.status.value for f in self.findings if f.check_id != "firewalls.read")
        changed = sum(len(h.changes) for h in self.hosts.values())
        verb = "changed" if apply else "would change"
        parts = [f"{c[k]} {k}" for k in ("fail", "error", "not_assessed", "pass") if c.get(k)]
        return f"{len(self.hosts)} firewall(s), {changed} object(s) {verb}: " + (", ".join(parts) or "no findings")


def _item_label(data: dict[str, Any]) -> str:
    res = data.get("res") or {}
    label = res.get("_ansible_item_label", res.get("item", ""))
    return str(label.get("name", label) if isinstance(label, dict) else label)


def read_events(events: list[dict[str, Any]], vendors: dict[str, str]) -> dict[str, HostResult]:
    """Per host: what the roles read back (the last read wins: after apply, the state it left)."""
    out: dict[str, HostResult] = {}
    status: dict[str, Any] = {}
    config: dict[str, Any] = {}
    hits: dict[str, Any] = {}
    rulesets: dict[str, Any] = {}
    for e in events:
        data = e.get("event_data") or {}
        host = data.get("host")
        if not host:
            continue
        hr = out.setdefault(host, HostResult())
        res = data.get("res") or {}
        event = e.get("event")
        if event in ("runner_on_unreachable", "runner_on_failed") and not data.get("ignore_errors"):
            hr.failed = str(res.get("msg") or res.get("stderr") or event)[:500]
            continue
        if event == "runner_item_on_ok" and res.get("changed"):
            hr.changes.append(f"{data.get('task')}: {_item_label(data)}")
        elif event == "runner_on_ok" and res.get("changed") and "results" not in res:
            hr.changes.append(str(data.get("task")))
        if event != "runner_on_ok":
            continue
        action = data.get("task_action") or data.get("resolved_action") or ""
        if action in FACT_MODULES:
            args = (res.get("invocation") or {}).get("module_args") or {}
            if args.get("selector") == "system_status":
                status[host] = res.get("meta")
            elif args.get("selector") == "firewall_policy" and action.endswith("monitor_fact"):
                hits[host] = res.get("meta")
            elif args.get("selectors"):
                config[host] = res.get("meta")
        cmd = res.get("cmd")
        if isinstance(cmd, list) and cmd[-3:] == ["-j", "list", "ruleset"] and res.get("stdout"):
            try:
                rulesets[host] = json.loads(res["stdout"])
            except json.JSONDecodeError:
                hr.failed = "nft -j list ruleset did not print JSON"
    for host, hr in out.items():
        if hr.failed:
            continue
        if vendors.get(host) == "fortinet" and host in config:
            hr.running = from_fortios(host, status.get(host), config[host], hits.get(host))
        elif host in rulesets:
            hr.running = from_nft(host, rulesets[host])
    return out


def run_firewalls(loaded: LoadedEstate, home: Path, run: EvidenceSink, *, apply: bool, today: date,
                  hosts: dict[str, str], limit: str | None = None, inventory: Path | None = None,
                  on_event: Callable[[dict[str, Any]], None] | None = None,
                  not_assessed: dict[str, str] | None = None, scrub_env: list[str] | None = None,
                  extra_env: dict[str, str] | None = None) -> FirewallsResult:
    """Run the roles on `hosts` (name -> vendor as configured), write scrubbed evidence, compare.

    `not_assessed`: firewalls left out with the reason (no credential, no role for the vendor):
    each gets a not-assessed finding rather than silence.
    """
    estate = loaded.estate
    skipped = [make_finding("firewalls.unreachable", f"firewall:{name}", Status.NOT_ASSESSED, observed=why,
                            expected="the firewall's running configuration read back by Ansible",
                            site=estate.firewall(name).site, details={"firewall": name})
               for name, why in sorted((not_assessed or {}).items())]
    if not hosts:
        return FirewallsResult(skipped, None, {})
    pattern = ":".join(sorted(hosts)) if limit is None else f"{limit}:&{':'.join(sorted(hosts))}"
    scrubber = Scrubber(scrub_env or [])
    outcome = run_playbook(estate_dir=loaded.root, home=home, apply=apply, limit=pattern, scrubber=scrubber,
                           on_event=on_event, extra_env=extra_env, inventory=inventory or INVENTORY)
    if not any(e.get("event") == "playbook_on_play_start" for e in outcome.events):
        reason = outcome.stderr_tail.strip().splitlines()[-1] if outcome.stderr_tail.strip() else ""
        raise FirewallsError(f"the firewall playbook did not start (ansible-runner {outcome.status}, rc {outcome.rc})"
                             + (f": {reason}" if reason else ""))
    mode = "apply" if apply else "audit"
    ref = run.write_evidence(f"firewalls/{mode}-events.jsonl",
                             "".join(json.dumps(e, sort_keys=True, default=str) + "\n" for e in outcome.events),
                             f"ansible-runner job events of the firewall {mode} (secrets scrubbed)")
    results = read_events(outcome.events, hosts)
    findings = list(skipped)
    for name in sorted(hosts):
        fw = estate.firewall(name)
        if name not in results and limit is not None:
            continue   # left out by --limit (a host Ansible could not reach still has its events)
        hr = results.get(name, HostResult(failed="no result: Ansible did not run the role on it"))
        if hr.failed or hr.running is None:
            findings.append(make_finding(
                "firewalls.unreachable", f"firewall:{name}", Status.ERROR,
                observed=hr.failed or "the roles read nothing back", site=fw.site, evidence=[ref],
                expected="the firewall's running configuration read back by Ansible", details={"firewall": name}))
            continue
        decl = declared_firewall(loaded, fw)
        raw = scrubber(hr.running.raw)
        cfg: EvidenceRef = run.write_evidence(
            f"firewalls/{name}-running.json", json.dumps(raw, indent=1, sort_keys=True, default=str) + "\n",
            f"running configuration of {name} read back by the {hosts[name]} role (secrets scrubbed)")
        evidence = [cfg, ref]
        findings.append(make_finding(
            "firewalls.read", f"firewall:{name}", Status.PASS, site=fw.site, evidence=evidence,
            observed=f"{len(hr.running.rules)} rule(s) read back" +
                     (f"; firmware {hr.running.firmware}" if hr.running.firmware else ""),
            expected="the running configuration read back",
            details={"firewall": name, "vendor": hosts[name], "firmware": hr.running.firmware,
                     "vendor_product": hr.running.product, "changes": hr.changes, "mode": mode}))
        findings += compare(decl, hr.running, today, evidence)
    return FirewallsResult(findings, outcome, results)
