"""Debian version ordering (dpkg's algorithm, Debian Policy 5.6.12), so advisories can say
"fixed in 2.36-9+deb12u4" and we can tell whether an installed version is older, offline and
without python-apt.
"""

from __future__ import annotations

import functools
import re

_VERSION = re.compile(r"^(?:(\d+):)?([A-Za-z0-9.+~:-]+?)(?:-([A-Za-z0-9.+~]+))?$")


def _order(c: str) -> int:
    if c == "~":
        return -1
    if c.isdigit():
        return 0
    if c.isalpha():
        return ord(c)
    return ord(c) + 256


def _compare_part(a: str, b: str) -> int:
    i = j = 0
    while i < len(a) or j < len(b):
        first_diff = 0
        while (i < len(a) and not a[i].isdigit()) or (j < len(b) and not b[j].isdigit()):
            ac = _order(a[i]) if i < len(a) and not a[i].isdigit() else 0
            bc = _order(b[j]) if j < len(b) and not b[j].isdigit() else 0
            if ac != bc:
                return ac - bc
            i += 1
            j += 1
        while i < len(a) and a[i] == "0":
            i += 1
        while j < len(b) and b[j] == "0":
            j += 1
        while i < len(a) and a[i].isdigit() and j < len(b) and b[j].isdigit():
            if not first_diff:
                first_diff = ord(a[i]) - ord(b[j])
            i += 1
            j += 1
        if i < len(a) and a[i].isdigit():
            return 1
        if j < len(b) and b[j].isdigit():
            return -1
        if first_diff:
            return first_diff
    return 0


def split(version: str) -> tuple[int, str, str]:
    m = _VERSION.match(version.strip())
    if not m:
        raise ValueError(f"not a Debian version: {version!r}")
    return int(m.group(1) or 0), m.group(2), m.group(3) or ""


def compare(a: str, b: str) -> int:
    """<0, 0, >0 as a is older than, equal to or newer than b (dpkg --compare-versions)."""
    ea, ua, ra = split(a)
    eb, ub, rb = split(b)
    if ea != eb:
        return ea - eb
    return _compare_part(ua, ub) or _compare_part(ra, rb)


sort_key = functools.cmp_to_key(compare)
