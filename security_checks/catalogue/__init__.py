"""The control catalogue: frameworks and their requirements, as data (one YAML file per framework
version, beside this file).

    framework: cyber-essentials          # cyber-essentials | psn | cis-style
    version: "3.3"
    prefix: CE3.3                        # references are <prefix>:<id>, e.g. CE3.3:FW-1
    title: Cyber Essentials requirements for IT infrastructure v3.3 (Danzell)
    source: NCSC / IASME, in force for assessments opened from 27 April 2026
    requirements:
      - id: FW-1
        control: firewalls               # the framework's control area
        applies_to: sites                # its population: devices, sites, firewalls, cloud_services,
                                         # users, network, plan or organisation (coverage.py)
        title: ...
        requirement: ...                 # in our own words
        clause: ...                      # where it is in the source document
        auto_fail: false
        checks: [scan.undeclared_port]   # the checks whose findings evidence it
        manual: false                    # true: a person attests (recorded in the estate)
        maps_to: [CIS-WIN-18.9.8.1]      # related references in other frameworks

A requirement with no check is manual or not assessed, never met (see matrix.py).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, model_validator

from .. import yamlread

# What a requirement is about, so a verdict can say how much of it was examined (coverage.py).
AppliesTo = Literal["devices", "sites", "firewalls", "cloud_services", "users", "network", "plan", "organisation"]

CATALOGUE_DIR = Path(__file__).resolve().parent


class Requirement(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    control: str
    title: str
    requirement: str
    clause: str = ""
    auto_fail: bool = False
    checks: list[str] = []
    manual: bool = False
    maps_to: list[str] = []
    guidance: str = ""
    applies_to: AppliesTo | None = None


class Framework(BaseModel):
    model_config = ConfigDict(extra="forbid")

    framework: str
    version: str
    prefix: str
    title: str
    source: str = ""
    applies_to: AppliesTo = "organisation"   # the default for its requirements
    requirements: list[Requirement]

    @model_validator(mode="after")
    def _populations(self) -> Framework:
        for req in self.requirements:
            if req.applies_to is None:
                req.applies_to = self.applies_to
        return self

    def ref(self, requirement: Requirement) -> str:
        return f"{self.prefix}:{requirement.id}"


@cache
def frameworks() -> tuple[Framework, ...]:
    out = []
    for path in sorted(CATALOGUE_DIR.glob("*.yaml")):
        try:
            out.append(Framework.model_validate(yamlread.safe_load(path.read_text())))
        except Exception as exc:  # a broken catalogue file is a packaging bug: name the file
            raise ValueError(f"{path}: invalid control catalogue: {exc}") from exc
    return tuple(out)


def framework(name: str, version: str | None = None) -> Framework:
    """A framework by name (e.g. cyber-essentials) and version; the newest version when None."""
    found = [f for f in frameworks() if f.framework == name and (version is None or f.version == version)]
    if not found:
        have = ", ".join(f"{f.framework} {f.version}" for f in frameworks()) or "none"
        raise KeyError(f"no catalogue for {name} {version or ''} (have: {have})")
    return sorted(found, key=lambda f: [int(x) if x.isdigit() else x for x in f.version.split(".")])[-1]


@cache
def _index() -> dict[str, tuple[str, ...]]:
    index: dict[str, set[str]] = {}
    for fw in frameworks():
        for req in fw.requirements:
            for check_id in req.checks:
                index.setdefault(check_id, set()).add(fw.ref(req))
    return {k: tuple(sorted(v)) for k, v in index.items()}


def controls_for(check_id: str) -> tuple[str, ...]:
    """Every catalogue requirement (any framework, any version) that this check evidences."""
    return _index().get(check_id, ())
