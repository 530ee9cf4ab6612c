"""Generate the estate schema reference (inventory/SCHEMA.md) from the pydantic models, so the
documentation cannot drift from the code: a test fails when the committed file is stale.

A field required only in some cases (a PaaS or IaaS system's address_space) declares it with
`schema.required_when` / `schema.only_when`: the validator enforces that metadata and this
reference prints it, so the two cannot disagree.

    python -m security_checks.model.docs > inventory/SCHEMA.md
"""

from __future__ import annotations

import enum
import types
import typing
from typing import Any

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from . import schema


def _type_name(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        return _type_name(args[0])
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in args if a is not type(None)) + (
            " (optional)" if type(None) in args else "")
    if origin is list:
        return f"list of {_type_name(args[0])}"
    if origin is typing.Literal:
        return " \\| ".join(f"`{a}`" for a in args)
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return " \\| ".join(f"`{m.value}`" for m in annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return f"[{annotation.__name__}](#{annotation.__name__.lower()})"
    return getattr(annotation, "__name__", str(annotation))


def _models() -> list[type[BaseModel]]:
    seen: list[type[BaseModel]] = []

    def visit(model: type[BaseModel]) -> None:
        if model in seen:
            return
        seen.append(model)
        for f in model.model_fields.values():
            for t in _walk(f.annotation):
                if isinstance(t, type) and issubclass(t, BaseModel):
                    visit(t)

    visit(schema.Estate)
    return seen


def _walk(annotation: Any) -> list[Any]:
    out = [annotation]
    for a in typing.get_args(annotation):
        out += _walk(a)
    return out


def render() -> str:
    lines = ["# Estate model reference", "",
             "Generated from `security_checks/model/schema.py` by `python -m security_checks.model.docs`;",
             "do not edit by hand. See README.md beside this file for how the files fit together.", ""]
    for model in _models():
        lines += [f"## {model.__name__}", ""]
        doc = (model.__doc__ or "").strip()
        if doc and not doc.startswith("!!!"):
            lines += [" ".join(doc.split()), ""]
        lines += ["| field | type | default | meaning |", "| --- | --- | --- | --- |"]
        for name, f in model.model_fields.items():
            extra = f.json_schema_extra if isinstance(f.json_schema_extra, dict) else {}
            when = extra.get("required_when")
            only = extra.get("only_when")
            meaning = f.description or ""
            if isinstance(only, dict) and only != when:
                meaning += f" (only when {schema.condition_text(only)})"   # type: ignore[arg-type]
            elif isinstance(only, dict):
                meaning += " (only then)"
            if f.is_required():
                default = "**required**"
            elif isinstance(when, dict):
                # The same metadata the validator enforces (schema.required_when), so the reference
                # cannot call a field optional that the validator demands.
                default = f"**required** when {schema.condition_text(when)}"   # type: ignore[arg-type]
            elif f.default is PydanticUndefined or f.default is None:
                default = ""
            elif isinstance(f.default, enum.Enum):
                default = f"`{f.default.value}`"
            elif isinstance(f.default, BaseModel):
                default = "(defaults)"
            else:
                default = f"`{f.default}`"
            kind = _type_name(f.annotation)
            if isinstance(when, dict):
                kind = kind.removesuffix(" (optional)")
            lines.append(f"| `{name}` | {kind} | {default} | {meaning} |")
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    print(render())
