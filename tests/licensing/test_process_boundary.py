"""scapy (GPL-2.0-only) and python-nmap (GPL-3.0+) must never share a process (README: Licences).

scapy is imported only by modules that run as their own program (`python -m ...`, started with
subprocess, usually inside a lab namespace); nothing that runs in the `estate` process may import
them, directly or through another module.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("security_checks", "infra")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    out: set[str] = set()
    pkg = module_name(path).rsplit(".", 1)[0] if path.name != "__init__.py" else module_name(path)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg.split(".")
                base = base[: len(base) - (node.level - 1)] if node.level > 1 else base
                mod = ".".join([*base, node.module] if node.module else base)
            else:
                mod = node.module or ""
            out.add(mod)
            out.update(f"{mod}.{a.name}" for a in node.names)
    return out


def all_modules() -> dict[str, set[str]]:
    return {module_name(p): imports_of(p) for pkg in PACKAGES for p in (REPO / pkg).rglob("*.py")}


def test_scapy_and_nmap_are_imported_by_different_modules_only() -> None:
    mods = all_modules()
    scapy_users = {m for m, imps in mods.items() if any(i == "scapy" or i.startswith("scapy.") for i in imps)}
    nmap_users = {m for m, imps in mods.items() if "nmap" in imps}
    assert scapy_users, "expected the probe module to use scapy"
    assert not scapy_users & nmap_users
    # No module imports a scapy user: they run only as separate programs.
    importers = {m: sorted(u for u in scapy_users if u in imps) for m, imps in mods.items()}
    offenders = {m: u for m, u in importers.items() if u}
    assert not offenders, f"these modules import scapy users into their own process: {offenders}"


def test_the_cli_process_never_loads_scapy() -> None:
    code = ("import sys, security_checks.cli.app, security_checks.scan.engine, security_checks.jobs,"
            " security_checks.runner, security_checks.lab.harness; print('scapy' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    assert out.stdout.strip() == "False"
