"""What the `estate` commands need from a Pulumi stack file (Pulumi.<stack>.yaml): that the stack
exists and which estate directory it builds.

The Pulumi program reads its whole configuration itself, in its own process (infra/config.py for
the offline plan, `pulumi.Config` under the engine); this reader lets a command find the estate
and refuse an unknown stack before anything runs, without importing the program. Same keys, same
defaults, same one-line errors as infra/config.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from . import yamlread

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_ESTATE_DIR = "inventory/demo"


class StackConfigError(ValueError):
    """The stack file is missing or malformed: one line naming the file and key."""


@dataclass(frozen=True)
class StackConfig:
    stack: str
    estate_dir: Path        # absolute: estate:dir, relative to the repository root


def stack_file(stack: str, root: Path = REPO_ROOT) -> Path:
    return root / f"Pulumi.{stack}.yaml"


def load_stack_config(stack: str, root: Path = REPO_ROOT) -> StackConfig:
    path = stack_file(stack, root)
    if not path.is_file():
        known = sorted(p.name.removeprefix("Pulumi.").removesuffix(".yaml") for p in root.glob("Pulumi.*.yaml"))
        raise StackConfigError(f"{path}: no such stack file (stacks: {', '.join(known) or 'none'})")
    try:
        data = yamlread.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise StackConfigError(f"{path}: not valid YAML ({exc})") from None
    if not isinstance(data, dict):
        raise StackConfigError(f"{path}: the top level must be a mapping")
    config = data.get("config") or {}
    if not isinstance(config, dict):
        raise StackConfigError(f"{path}: config: must be a mapping")
    value = config.get("estate:dir", DEFAULT_ESTATE_DIR)
    if not isinstance(value, str):
        raise StackConfigError(f"{path}: config.estate:dir: must be a string")
    estate = Path(value)
    return StackConfig(stack=stack, estate_dir=estate if estate.is_absolute() else root / estate)
