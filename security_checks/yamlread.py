"""YAML read through libyaml when PyYAML was built with it: the same safe loader, several times faster.

Every command reads the control catalogue, the checks' metadata and the estate; with PyYAML's pure-Python
parser that was a tenth of `estate scan import`. The C parser builds the same events and nodes, and
the Python SafeConstructor and resolver still turn them into values, so what loads is unchanged. A
file either parser refuses is read again by the pure-Python one, whose messages (line, column, what
is wrong) are the ones users and tests know.
"""

from __future__ import annotations

from typing import Any

import yaml

FAST: type[Any] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def safe_load(text: str) -> Any:
    try:
        return yaml.load(text, Loader=FAST)   # noqa: S506 (a safe loader: CSafeLoader or SafeLoader)
    except yaml.YAMLError:
        return yaml.safe_load(text)


def events(text: str) -> list[yaml.Event]:
    """The parse events of a document (yaml.parse), the pure-Python parser's error if it is not YAML."""
    try:
        return list(yaml.parse(text, Loader=FAST))
    except yaml.YAMLError:
        return list(yaml.parse(text, Loader=yaml.SafeLoader))


def compose(text: str) -> yaml.Node | None:
    """The node tree of a document (yaml.compose), with marks for every node; errors as `events`."""
    try:
        return yaml.compose(text, Loader=FAST)
    except yaml.YAMLError:
        return yaml.compose(text, Loader=yaml.SafeLoader)
