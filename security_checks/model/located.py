"""An estate as loaded, with where each value came from, and what can be wrong with it.

`LoadedEstate` (the model, its directory, file and line per value, and its digest) and `Problem`
(file, line, field, message) are shared by the loader, which makes them, and the cross-reference
rules, which judge a loaded estate; neither needs the other to name them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .schema import Estate

Path_ = tuple[str | int, ...]


@dataclass(frozen=True, order=True)
class Problem:
    file: str
    line: int
    field: str
    message: str
    policy: bool = False  # also enforced by the infrastructure policy pack (see crossref.py)

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.field}: {self.message}"


class EstateError(Exception):
    """The estate could not be loaded; `problems` lists every reason."""

    def __init__(self, problems: list[Problem]):
        self.problems = sorted(set(problems))
        super().__init__("\n".join(str(p) for p in self.problems))


@dataclass
class LoadedEstate:
    estate: Estate
    root: Path  # the estate directory as the caller named it (relative or absolute)
    # (file, line) per value, the file relative to `root` in POSIX form ("sites/north.yaml"). Findings,
    # reports and signed evidence cite these, so they must read the same whatever directory the estate
    # was loaded from, and must not carry an operator's local directory into an auditor's evidence.
    locations: dict[Path_, tuple[str, int]]
    digest: str  # sha256 over the files, in order: which estate a run assessed

    def where(self, path: Path_) -> tuple[str, int]:
        """Estate-relative file and line of the value at `path`, or of its closest enclosing value
        ("." and 0, the estate directory itself, when nothing encloses it)."""
        p = tuple(path)
        while p:
            if p in self.locations:
                return self.locations[p]
            p = p[:-1]
        return (".", 0)

    def shown(self, file: str) -> str:
        """An estate-relative file as the operator named the estate: what a terminal message prints
        (`estate validate`, load problems), so that it opens from where the command was run."""
        return str(self.root / file)

    def cited(self, path: Path) -> str:
        """An input file (the advisory feed, a tenant export) as findings and evidence name it: relative
        to the estate directory when it lies inside it, else by its name alone, so that an operator's
        directories never reach a report or an auditor's evidence."""
        try:
            return path.resolve().relative_to(self.root.resolve()).as_posix()
        except ValueError:
            return path.name

    def problem(self, path: Path_, message: str, policy: bool = False) -> Problem:
        """A Problem with the value at `path`, naming its file as the operator named the estate."""
        file, line = self.where(path)
        return Problem(self.shown(file), line, field_name(path), message, policy)


def field_name(path: Path_) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top)"
