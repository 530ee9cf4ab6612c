"""The control catalogue: frameworks and their requirements, as data (one YAML file per framework).

    framework: cyber-essentials
    version: "3.3"
    prefix: CE3.3
    requirements:
      - id: FW-1
        control: firewalls
        title: ...
        requirement: ...          # in our own words
        auto_fail: false
        checks: [scan.undeclared_port]   # the checks that evidence it; none: manual or not assessed
        manual: false

A requirement's reference is `<prefix>:<id>`, e.g. `CE3.3:FW-1`. Findings carry the references of
every requirement that lists their check, so a report can go from requirement to evidence.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import yaml

CATALOGUE_DIR = Path(__file__).resolve().parent


@cache
def _index() -> dict[str, tuple[str, ...]]:
    index: dict[str, set[str]] = {}
    for path in sorted(CATALOGUE_DIR.glob("*.yaml")):
        data = yaml.safe_load(path.read_text()) or {}
        prefix = data["prefix"]
        for req in data.get("requirements", []):
            for check_id in req.get("checks", []):
                index.setdefault(check_id, set()).add(f"{prefix}:{req['id']}")
    return {k: tuple(sorted(v)) for k, v in index.items()}


def controls_for(check_id: str) -> tuple[str, ...]:
    """Every catalogue requirement that this check evidences."""
    return _index().get(check_id, ())
