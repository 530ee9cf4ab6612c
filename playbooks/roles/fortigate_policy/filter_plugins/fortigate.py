"""Filters of the fortigate_policy role: which declared objects differ from what the device returned.

Each fortinet.fortios module call is a whole module run (seconds each); a FortiGate holds hundreds
of objects. The role reads the running configuration once and calls a module only for objects
that are missing or differ, so a converged device costs one read and an audit in check mode
reports exactly what apply would write. The comparison is deliberately narrow (only the fields
the estate declares); estate's audit (security_checks/firewalls/compare.py) judges the rest.
"""

from __future__ import annotations

from typing import Any


def _norm(value: Any) -> Any:
    if isinstance(value, list):
        if value and all(isinstance(v, dict) and "name" in v for v in value):
            return sorted(str(v["name"]) for v in value)
        return sorted(str(v) for v in value)
    if isinstance(value, str) and " " in value:
        return sorted(value.split())
    return str(value) if value is not None else ""


def _same(wanted: dict[str, Any], running: dict[str, Any]) -> bool:
    have = {str(k).replace("-", "_"): v for k, v in running.items()}
    for k, v in wanted.items():
        h = have.get(k)
        if isinstance(v, list) and isinstance(h, str):  # FortiOS keeps option lists as "ping https"
            h = h.split()
        if _norm(v) != _norm(h):
            return False
    return True


def fortios_results(facts: dict[str, Any], selector: str) -> list[dict[str, Any]]:
    """The results of one selector from a fortios_configuration_fact run with several selectors."""
    meta = facts.get("meta") or []
    if isinstance(meta, dict):
        meta = [meta]
    for entry in meta:
        # FortiOS answers each GET with its path and name: firewall.service + custom.
        if f"{entry.get('path')}_{entry.get('name')}" == selector:
            results = entry.get("results") or []
            return results if isinstance(results, list) else [results]
    return []


def fortios_drifted(wanted: list[dict[str, Any]], running: list[dict[str, Any]], key: str = "name") -> list[Any]:
    """The wanted objects that are missing on the device or differ from it in a field they set."""
    by_key = {str(r.get(key)): r for r in running}
    return [w for w in wanted if str(w[key]) not in by_key or not _same(w, by_key[str(w[key])])]


def fortios_drifted_settings(wanted: dict[str, Any], running: list[dict[str, Any]] | dict[str, Any]) -> list[Any]:
    """A singleton (system global): [wanted] when a field it sets differs, else []."""
    have = running[0] if isinstance(running, list) and running else running if isinstance(running, dict) else {}
    return [] if _same(wanted, have) else [wanted]


def fortios_interface_access(interfaces: list[dict[str, Any]], management: list[str],
                             other: list[str]) -> list[dict[str, Any]]:
    """Each interface's allowaccess: the management list on management-zone interfaces only."""
    return [{"name": i["name"], "allowaccess": list(management if i["management"] else other)} for i in interfaces]


def fortios_admin_trusthosts(names: list[str], trusthosts: list[str]) -> list[dict[str, Any]]:
    """Every administrator limited to the allow-list (unused slots 0.0.0.0/0.0.0.0, as FortiOS keeps them)."""
    slots = (list(trusthosts) + ["0.0.0.0 0.0.0.0"] * 10)[:10]
    return [{"name": n, **{f"trusthost{i}": h for i, h in enumerate(slots, 1)}} for n in names]


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"fortios_drifted": fortios_drifted, "fortios_results": fortios_results,
                "fortios_drifted_settings": fortios_drifted_settings,
                "fortios_interface_access": fortios_interface_access,
                "fortios_admin_trusthosts": fortios_admin_trusthosts}
