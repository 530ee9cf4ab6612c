"""Repeated findings as one row: the same check failing on many assets is one thing to fix.

At 40+ sites one misconfiguration shows up on every site, every school office, every printer;
listed one per asset it buries everything else (a board PDF of identical rows, `estate check psn`
printing thousands of lines). Pages for people and CLI summaries group by check and title; the
machine outputs, the full findings list and the RAP files keep one row per finding.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass
class Group(Generic[T]):
    check_id: str
    title: str
    items: list[T] = field(default_factory=list)
    assets: list[str] = field(default_factory=list)

    @property
    def first(self) -> T:
        return self.items[0]

    @property
    def count(self) -> int:
        return len(self.items)

    def assets_text(self, shown: int = 3) -> str:
        """'a, b, c and 12 more' (distinct assets, in the order they came)."""
        distinct = list(dict.fromkeys(self.assets))
        head = ", ".join(distinct[:shown])
        rest = len(distinct) - shown
        return f"{head} and {rest} more" if rest > 0 else head


def group_by_check(items: Iterable[T], check_id: Callable[[T], str], title: Callable[[T], str],
                   asset: Callable[[T], str]) -> list[Group[T]]:
    """Groups in the order of their first item (so a worst-first list stays worst-first)."""
    groups: dict[tuple[str, str], Group[T]] = {}
    for item in items:
        key = (check_id(item), title(item))
        g = groups.get(key)
        if g is None:
            g = groups[key] = Group(check_id=key[0], title=key[1])
        g.items.append(item)
        g.assets.append(asset(item))
    return list(groups.values())
