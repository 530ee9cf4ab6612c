"""Which control each task implements, read from the tags in the roles' task files.

Runner events carry the task's file and line (task_path) but not its tags, so the index is built
from the task files themselves: every task is tagged with exactly one control id (devices.*), and
each task file holds one control area. A task file whose tasks carry no or several control ids is
a packaging bug, reported by `task_index()` rather than guessed around.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from .. import yamlread

PLAYBOOKS = Path(__file__).resolve().parents[2] / "playbooks"
ROLES = ("linux_baseline", "windows_baseline")
CONTROL_PREFIX = "devices."


def _task_tags(task: dict[str, object]) -> set[str]:
    tags = task.get("tags") or []
    if isinstance(tags, str):
        tags = [tags]
    return {str(t) for t in tags if str(t).startswith(CONTROL_PREFIX)} if isinstance(tags, list) else set()


@cache
def task_index(playbooks: Path = PLAYBOOKS) -> dict[str, str]:
    """Map 'roles/<role>/tasks/<file>.yml' to the control id its tasks are tagged with."""
    out: dict[str, str] = {}
    for role in ROLES:
        for path in sorted((playbooks / "roles" / role / "tasks").glob("*.yml")):
            if path.name == "main.yml":
                continue
            tasks = yamlread.safe_load(path.read_text()) or []
            controls = set().union(*(_task_tags(t) for t in tasks if isinstance(t, dict)))
            if len(controls) != 1:
                raise ValueError(f"{path}: tasks must carry exactly one control tag (devices.*),"
                                 f" found {sorted(controls)}")
            out[path.relative_to(playbooks).as_posix()] = controls.pop()
    return out


def control_for(task_path: str | None, index: dict[str, str] | None = None) -> str | None:
    """The control id of the task at `task_path` ('/any/prefix/roles/<role>/tasks/x.yml:12')."""
    if not task_path:
        return None
    file = task_path.rsplit(":", 1)[0] if task_path.rsplit(":", 1)[-1].isdigit() else task_path
    marker = file.rfind("roles/")
    if marker < 0:
        return None
    return (index if index is not None else task_index()).get(file[marker:])


def all_controls() -> list[str]:
    return sorted(set(task_index().values()))
