"""Version order for vendor products (OpenSSH, FortiOS, browsers, Java, web servers).

Debian packages have dpkg's own order (debver.py). Vendor products have none written down, but
their versions share a shape: numbers separated by dots, sometimes a letter suffix that means a
later release (OpenSSL 1.1.1k, OpenSSH 7.4p1, Java 8u391) or a pre-release marker that means an
earlier one (2.0rc1, 3.0.0-beta2). The key below orders those the way their vendors do:

    7.4 < 7.4p1 < 7.5          1.1.1 < 1.1.1k < 1.1.1l        2.0rc1 < 2.0 = 2.0.0
    7.2.5 < 7.2.10             120.0.6099.109 < 121.0.6167.85  v7.2.5,build1517 = 7.2.5

Versions of different release lines of a product compare correctly only where the vendor's own
numbering does; the feed's `introduced` bound keeps one line's advisory off another line.
"""

from __future__ import annotations

import re
from functools import cache

# Words that mark a release *before* the plain version they are attached to.
_PRE = {"a", "alpha", "b", "beta", "c", "rc", "pre", "preview", "dev", "snapshot", "m", "milestone"}
_TOKEN = re.compile(r"\d+|[a-z]+")
# A FortiOS-style build suffix (",build1517" or " build 1517") names the same release, not a later one.
_BUILD = re.compile(r"[, ]\s*build\s*\d+.*$", re.IGNORECASE)

Part = tuple[int, int, str]
# Where one version has ended and the other goes on with a number, the missing part is a zero
# (7.2 = 7.2.0); where it goes on with a word, a letter suffix sorts after the end (7.4 < 7.4p1)
# and a pre-release word before it (2.0rc1 < 2.0).
_ZERO: Part = (2, 0, "")
_END: Part = (1, 0, "")


class VersionError(ValueError):
    """Text that holds no version number at all."""


def normalise(version: str) -> str:
    """The version proper: leading 'v' and build suffixes removed, first word only."""
    text = _BUILD.sub("", version.strip())
    text = text.split()[0] if text.split() else ""
    return text[1:] if text[:1] in ("v", "V") and text[1:2].isdigit() else text


@cache
def key(version: str) -> tuple[Part, ...]:
    text = normalise(version).lower()
    tokens = _TOKEN.findall(text)
    if not tokens or not tokens[0].isdigit():
        raise VersionError(f"not a version: {version!r}")
    parts: list[Part] = []
    for tok in tokens:
        if tok.isdigit():
            parts.append((2, int(tok), ""))
        elif tok in _PRE:
            parts.append((0, 0, tok))
        else:
            parts.append((1, 1, tok))
    return tuple(parts)


def compare(a: str, b: str) -> int:
    """-1, 0 or 1 as version a is older than, the same as, or newer than b."""
    ka, kb = key(a), key(b)
    for i in range(max(len(ka), len(kb))):
        pa = ka[i] if i < len(ka) else (_ZERO if kb[i][0] == 2 else _END)
        pb = kb[i] if i < len(kb) else (_ZERO if ka[i][0] == 2 else _END)
        if pa != pb:
            return -1 if pa < pb else 1
    return 0


def in_range(version: str, introduced: str | None, fixed: str) -> bool:
    """True when `version` is affected: at or after `introduced` (if given) and before `fixed`."""
    if compare(version, fixed) >= 0:
        return False
    return introduced is None or compare(version, introduced) >= 0
