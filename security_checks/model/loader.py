"""Load an estate directory of YAML files into the typed model, keeping file and line of every value.

Each `*.yaml` / `*.yml` file under the directory (recursively, in sorted order) is a mapping whose
top-level keys are estate sections (`sites`, `firewalls`, ...). List sections may be split across
files (one file per site, say) and are concatenated; mapping sections (`organisation`, `azure`) must
appear once. Every problem becomes a `Problem(file, line, field, message)` so that `estate validate`
can print `file:line: field: message` for all of them at once.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from .. import yamlread
from .crossref import cross_reference
from .located import EstateError, LoadedEstate, Path_, Problem, field_name
from .schema import SECTIONS, Estate

# Many callers import these from here, where they used to live (see located.py).
__all__ = ["MAX_FILE_BYTES", "EstateError", "LoadedEstate", "Path_", "Problem", "field_name", "load_estate"]

# An estate file is hand-written configuration: anything this large is a mistake or an attack.
MAX_FILE_BYTES = 5 * 1024 * 1024


# The tags plain YAML resolves by itself; anything else written with `!` is refused, not guessed at.
_STANDARD_TAGS = {f"tag:yaml.org,2002:{t}" for t in
                  ("map", "seq", "str", "int", "float", "bool", "null", "timestamp", "binary")}


class _BadValue(Exception):
    """A value that cannot be read (an impossible date, an unknown tag); recorded as a Problem."""


class _Composer:
    """Turns a YAML node tree into plain Python, recording (file, line) for every value.

    `rel` (the file relative to the estate directory) is what locations record, for findings;
    `file` (the path as the operator gave it) is what Problems name, for the terminal.
    """

    def __init__(self, file: str, rel: str, locations: dict[Path_, tuple[str, int]], problems: list[Problem]):
        self.file = file
        self.rel = rel
        self.locations = locations
        self.problems = problems

    def build(self, node: yaml.Node, path: Path_) -> Any:
        self.locations[path] = (self.rel, node.start_mark.line + 1)
        if node.tag not in _STANDARD_TAGS:
            self.problems.append(Problem(self.file, node.start_mark.line + 1, field_name(path),
                                         f"unknown YAML tag {node.tag!r}: estate files use plain YAML values"))
            return None
        if isinstance(node, yaml.MappingNode):
            out: dict[str, Any] = {}
            for key_node, value_node in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    self.problems.append(Problem(self.file, key_node.start_mark.line + 1, field_name(path),
                                                 "YAML merge keys (<<) are not supported: write values out"))
                    continue
                if not isinstance(key_node, yaml.ScalarNode) or key_node.tag not in _STANDARD_TAGS:
                    self.problems.append(Problem(self.file, key_node.start_mark.line + 1, field_name(path),
                                                 "a key must be a plain name"))
                    continue
                key = str(self._value(key_node, path))
                if key in out:
                    self.problems.append(Problem(self.file, key_node.start_mark.line + 1,
                                                 field_name((*path, key)), "duplicate key"))
                    continue
                out[key] = self.build(value_node, (*path, key))
            return out
        if isinstance(node, yaml.SequenceNode):
            return [self.build(n, (*path, i)) for i, n in enumerate(node.value)]
        return self._value(node, path)

    def _value(self, node: yaml.Node, path: Path_) -> Any:
        try:
            return self._scalar(node)
        except (ValueError, OverflowError, yaml.YAMLError) as exc:
            # 2026-02-30 matches YAML's date pattern but is no date; datetime says why.
            what = "date" if node.tag == "tag:yaml.org,2002:timestamp" else "value"
            self.problems.append(Problem(self.file, node.start_mark.line + 1, field_name(path),
                                         f"{str(node.value)[:40]!r} is not a valid {what} ({exc})"))
            return None

    @staticmethod
    def _scalar(node: yaml.Node) -> Any:
        # The composer has resolved the tag (int, bool, date, null...); the safe constructor
        # turns it into the Python value and refuses any non-standard tag.
        return yaml.constructor.SafeConstructor().construct_object(node, deep=True)


def _read_capped(path: Path) -> bytes | None:
    """The file's bytes, or None past the cap: a bounded read, since a size from stat() says nothing
    about a file that grows while it is read (or a device behind a bind mount)."""
    with path.open("rb") as f:
        data = f.read(MAX_FILE_BYTES + 1)
    return None if len(data) > MAX_FILE_BYTES else data


def _yaml_files(root: Path) -> list[Path]:
    """Every estate file: `*.yaml` / `*.yml` under root that is not a directory or hidden (a pipe or
    a device among them is returned too, so that it is refused rather than silently skipped)."""
    return sorted(p for p in root.rglob("*") if p.suffix in (".yaml", ".yml") and not p.is_dir()
                  and not any(part.startswith(".") for part in p.relative_to(root).parts))


def load_estate(root: str | Path, *, policy: bool = True) -> LoadedEstate:
    """Load and validate an estate directory; raise EstateError listing every problem.

    With policy=False, problems that the infrastructure policy pack enforces (overlapping ranges)
    are left to it, so `estate infra plan` can report them as violations rather than refuse.
    """
    root = Path(root)
    if not root.is_dir():
        raise EstateError([Problem(str(root), 0, "(estate)", "not a directory")])
    files = _yaml_files(root)
    if not files:
        raise EstateError([Problem(str(root), 0, "(estate)", "no .yaml files found")])

    problems: list[Problem] = []
    locations: dict[Path_, tuple[str, int]] = {}
    merged: dict[str, Any] = {}
    digest = hashlib.sha256()
    for path in files:
        # Problems name the file as the operator gave the estate (a terminal message they can open);
        # locations keep it relative to the estate directory (see LoadedEstate.locations).
        given, rel = str(path), path.relative_to(root).as_posix()
        if not path.is_file():
            # Opening a FIFO would wait for a writer for ever; a device has no end (/dev/zero).
            problems.append(Problem(given, 1, "(file)", "not a regular file (a pipe, device or broken link): estate "
                                                        "files are plain files"))
            continue
        raw = _read_capped(path)
        if raw is None:
            limit = MAX_FILE_BYTES // 1024 // 1024
            problems.append(Problem(given, 1, "(file)", f"larger than {limit} MB: not an estate file"))
            continue
        digest.update(rel.encode() + b"\0" + raw + b"\0")
        try:
            text = raw.decode("utf-8")
            # Aliases let a few lines expand into gigabytes ("billion laughs"); an estate never
            # needs them, so refuse them before building anything.
            alias = next((ev for ev in yamlread.events(text) if isinstance(ev, yaml.AliasEvent)), None)
            if alias is not None:
                problems.append(Problem(given, alias.start_mark.line + 1 if alias.start_mark else 0, "(file)",
                                        "YAML aliases (*name) are not supported: write values out"))
                continue
            node = yamlread.compose(text)
        except UnicodeDecodeError as exc:
            problems.append(Problem(given, 1, "(file)", f"not UTF-8 text ({exc.reason})"))
            continue
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line = mark.line + 1 if mark else 1
            what = " ".join(" ".join(x.split()) for x in (exc.context, exc.problem) if x)
            problems.append(Problem(given, line, "(file)", f"not valid YAML: {what}"))
            continue
        except yaml.reader.ReaderError as exc:
            # A character YAML does not allow (NUL, most control characters): say which and where.
            line = text.count("\n", 0, max(exc.position, 0)) + 1
            code = exc.character if isinstance(exc.character, int) else ord(exc.character)
            problems.append(Problem(given, line, "(file)", f"not valid YAML: character U+{code:04X} is not allowed in "
                                                           "YAML text"))
            continue
        except yaml.YAMLError as exc:
            problems.append(Problem(given, 1, "(file)", "not valid YAML: " + " ".join(str(exc).split())))
            continue
        if node is None:
            continue
        if not isinstance(node, yaml.MappingNode):
            problems.append(Problem(given, node.start_mark.line + 1, "(file)",
                                    "the top level must be a mapping of estate sections"))
            continue
        composer = _Composer(given, rel, locations, problems)
        here: dict[str, int] = {}
        for key_node, value_node in node.value:
            line = key_node.start_mark.line + 1
            if not isinstance(key_node, yaml.ScalarNode) or not str(key_node.value).strip():
                # `? ` (an empty key) or a list or mapping used as a key: there is no section name to report.
                problems.append(Problem(given, line, "(file)", "a top-level key must be a section name "
                                                               f"(one of: {', '.join(SECTIONS)})"))
                continue
            section = str(key_node.value)
            if section in here:
                # Two `zones:` in one file would otherwise be merged (or one dropped) without a word.
                problems.append(Problem(given, line, section, f"duplicate key (first at line {here[section]})"))
                continue
            here[section] = line
            if value_node.tag not in _STANDARD_TAGS:
                problems.append(Problem(given, line, section, f"unknown YAML tag {value_node.tag!r}: estate files use "
                                                              "plain YAML values"))
                continue
            if section not in SECTIONS:
                problems.append(Problem(given, line, section,
                                        f"unknown section (expected one of: {', '.join(SECTIONS)})"))
                continue
            if SECTIONS[section]:
                if not isinstance(value_node, yaml.SequenceNode):
                    problems.append(Problem(given, line, section, "must be a list"))
                    continue
                items = merged.setdefault(section, [])
                locations.setdefault((section,), (rel, line))
                for item in value_node.value:
                    items.append(composer.build(item, (section, len(items))))
            else:
                if section in merged:
                    first = locations[(section,)]
                    problems.append(Problem(given, line, section,
                                            f"already given in {root / first[0]}:{first[1]}"))
                    continue
                merged[section] = composer.build(value_node, (section,))

    for section in SECTIONS:
        if section not in merged and Estate.model_fields[section].is_required():
            problems.append(Problem(str(root), 0, section, "missing section"))

    if problems:
        raise EstateError(problems)

    try:
        estate = Estate.model_validate(merged)
    except ValidationError as exc:
        loaded = LoadedEstate(Estate.model_construct(), root, locations, "")  # type: ignore[call-arg]
        for err in exc.errors():
            loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and "[" in p))
            msg = err["msg"].removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                msg = "unknown field (check the spelling against inventory/README.md)"
            problems.append(loaded.problem(loc, msg))
        raise EstateError(problems) from None

    loaded = LoadedEstate(estate, root, locations, digest.hexdigest())
    problems = [p for p in cross_reference(loaded) if policy or not p.policy]
    if problems:
        raise EstateError(problems)
    return loaded
