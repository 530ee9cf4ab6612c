"""Static checks that stand in for Windows hosts: syntax, ansible-lint production profile, and every
ansible.windows / community.windows task's arguments against the module's own `ansible-doc -j` spec
(ansible-lint does not check PowerShell modules' arguments)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from security_checks.devices.controls import all_controls, task_index

from .conftest import REPO

PLAYBOOKS = REPO / "playbooks"
BIN = REPO / ".venv" / "bin"
ENV = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}", "ANSIBLE_NOCOLOR": "1"}
TASK_KEYWORDS = {"name", "tags", "when", "register", "loop", "loop_control", "vars", "notify", "check_mode",
                 "changed_when", "failed_when", "become", "no_log", "ignore_errors", "delegate_to"}


def windows_tasks() -> list[tuple[Path, str, dict[str, Any]]]:
    out = []
    for path in sorted((PLAYBOOKS / "roles" / "windows_baseline" / "tasks").glob("*.yml")):
        for task in yaml.safe_load(path.read_text()) or []:
            modules = [k for k in task if k not in TASK_KEYWORDS]
            assert len(modules) == 1, (path, task.get("name"))
            if modules[0].startswith(("ansible.windows.", "community.windows.")):
                out.append((path, modules[0], task[modules[0]]))
    return out


def test_syntax_check_the_playbook() -> None:
    proc = subprocess.run([str(BIN / "ansible-playbook"), "--syntax-check", "baseline.yml"], cwd=PLAYBOOKS,
                          env=ENV, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.slow
def test_ansible_lint_production_profile(tmp_path: Path) -> None:
    # Lint a copy: ansible-lint keeps a cache (.ansible/) in the directory it lints, and tests
    # write nothing into the repository.
    copy = tmp_path / "playbooks"
    shutil.copytree(PLAYBOOKS, copy, ignore=shutil.ignore_patterns(".ansible", "__pycache__"))
    proc = subprocess.run([str(BIN / "ansible-lint"), "--profile", "production", "--nocolor", "."], cwd=copy,
                          env=ENV, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Passed" in proc.stdout + proc.stderr


def test_windows_module_arguments_match_ansible_doc_specs() -> None:
    tasks = windows_tasks()
    modules = sorted({m for _, m, _ in tasks})
    assert {"ansible.windows.win_updates", "ansible.windows.win_firewall", "ansible.windows.win_regedit",
            "ansible.windows.win_group_membership", "ansible.windows.win_powershell",
            "community.windows.win_security_policy"} <= set(modules)
    docs = json.loads(subprocess.run([str(BIN / "ansible-doc"), "-j", *modules], env=ENV, capture_output=True,
                                     text=True, check=True).stdout)
    problems = []
    for path, module, args in tasks:
        options = docs[module]["doc"]["options"]
        names = {n: n for n in options} | {a: n for n, o in options.items() for a in o.get("aliases", [])}
        for arg, value in args.items():
            if arg not in names:
                problems.append(f"{path.name}: {module}: unknown argument {arg!r}")
                continue
            spec = options[names[arg]]
            templated = isinstance(value, str) and "{{" in value
            if spec.get("choices") and not templated:
                values = value if isinstance(value, list) else [value]
                bad = [v for v in values if v not in spec["choices"]]
                if bad:
                    problems.append(f"{path.name}: {module}: {arg}={bad} not in {spec['choices']}")
            kind = spec.get("type", "str")
            if not templated and kind == "list" and not isinstance(value, list):
                problems.append(f"{path.name}: {module}: {arg} must be a list")
            if not templated and kind == "bool" and not isinstance(value, bool):
                problems.append(f"{path.name}: {module}: {arg} must be a bool")
        for name, spec in options.items():
            if spec.get("required") and name not in args:
                problems.append(f"{path.name}: {module}: missing required {name}")
    assert not problems, "\n".join(problems)


def test_every_control_has_check_metadata_and_one_task_file() -> None:
    from security_checks.checks import registry

    controls = all_controls()
    assert len(controls) == 23
    assert all(c in registry() for c in controls)
    assert "devices.unreachable" in registry()
    assert len(task_index()) == 23


def test_awx_collections_requirements_match() -> None:
    a = yaml.safe_load((PLAYBOOKS / "requirements.yml").read_text())
    b = yaml.safe_load((REPO / "collections" / "requirements.yml").read_text())
    assert a == b and {c["name"] for c in a["collections"]} >= {"ansible.windows", "community.windows",
                                                                 "community.general"}


def test_no_absolute_paths_in_playbooks() -> None:
    for path in PLAYBOOKS.rglob("*.yml"):
        text = path.read_text()
        assert "/work/" not in text and "/root/" not in text, path
