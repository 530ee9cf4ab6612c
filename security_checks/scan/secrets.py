"""Take secrets out of scanner output before it becomes a finding or evidence.

A tester's plugin output quotes what the host said: a default password that worked, an SNMP
community string, an HTTP Authorization header, a private key, a password hash. The finding
must say *that* (so the RAP item is actionable) without repeating the secret into the store,
reports and evidence bundles.
"""

from __future__ import annotations

import re

import ahocorasick_rs

MASK = "********"
# Patterns run on an ASCII-lower-cased copy (same length, so spans carry over to the original):
# case-sensitive patterns are several times faster than (?i) ones on long plugin output.
_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
# (pattern, the group to mask (0: the whole match), words one of which must be in the text for the
# rule to run: the many outputs that hold nothing of the kind are spared the regex).
_RULES: tuple[tuple[re.Pattern[str], int, tuple[str, ...]], ...] = (
    # PEM private keys, whole.
    (re.compile(r"-----begin [a-z ]*private key-----.*?(?:-----end [a-z ]*private key-----|\Z)", re.DOTALL), 0,
     ("private key",)),
    # key: value / key = value / key "value" for the usual secret names.
    (re.compile(r"(?:password|passwd|pwd|passphrase|secret|token|api[_-]?key|community(?: string)?|credentials?|"
                r"private[_-]?key|auth[_-]?key)[ \t]*[:=][ \t]*(\"[^\"]*\"|'[^']*'|[^\s\"']+)"), 1,
     ("pass", "pwd", "secret", "token", "key", "community", "credential")),
    # HTTP authorisation headers and cookies.
    (re.compile(r"authorization:[ \t]*(?:(?:basic|bearer|digest|ntlm|negotiate)[ \t]+)?(\S+)"), 1, ("authorization",)),
    (re.compile(r"(?:set-)?cookie:[ \t]*([^\r\n]+)"), 1, ("cookie",)),
    # user:password@ in URLs.
    (re.compile(r"[a-z][a-z0-9+.-]*://[^/\s:@]+:([^@\s/]+)@"), 1, ("://",)),
    # LM:NT hash pairs (pwdump lines end in ":::"; tools label them as hashes).
    (re.compile(r"[0-9a-f]{32}:[0-9a-f]{32}"), 0, (":::", "hash", "ntlm")),
    # crypt(3) hashes ($1$, $5$, $6$, $y$, $2b$ ...).
    (re.compile(r"\$(?:1|2[abxy]?|5|6|y|7)\$[^\s:]{8,}"), 0, ("$",)),
)


# Which rules a text needs, found in one pass over it for every word at once (Aho-Corasick, in Rust):
# testing the fifteen words one `in` at a time read a tester's 50 MB of plugin output fifteen times.
_WORDS = sorted({w for _, _, words in _RULES for w in words})
_FINDER = ahocorasick_rs.AhoCorasick(_WORDS)
_RULES_OF = [frozenset(i for i, (_, _, words) in enumerate(_RULES) if w in words) for w in _WORDS]


def scrub(text: str) -> str:
    if not text:
        return text
    # str.lower is several times faster than translate, and for ASCII text keeps every offset.
    lowered = text.lower() if text.isascii() else text.translate(_LOWER)
    needed: set[int] = set()
    for word in {match[0] for match in _FINDER.find_matches_as_indexes(lowered, overlapping=True)}:
        needed |= _RULES_OF[word]
    if not needed:
        return text
    spans: list[tuple[int, int]] = []
    for i in sorted(needed):
        pattern, group, _ = _RULES[i]
        spans.extend(m.span(group) for m in pattern.finditer(lowered))
    if not spans:
        return text
    out: list[str] = []
    pos = 0
    for start, end in sorted(spans):
        if end <= pos:
            continue            # inside a span already masked
        out.append(text[pos:max(start, pos)])
        out.append(MASK)
        pos = end
    out.append(text[pos:])
    return "".join(out)
