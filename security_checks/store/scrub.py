"""Files that never leave the store: defence in depth against secrets in evidence.

The device audit strips secrets from ansible-runner's output before it stores it, but runner's own
layout has files that hold the whole environment or the credentials it was given (`command`,
`env/envvars`, `env/passwords`, `env/ssh_key`...). Should one of them ever reach a run's evidence,
reports and bundles leave it out and say so, rather than copy it onwards.
"""

from __future__ import annotations

from fnmatch import fnmatchcase
from pathlib import PurePosixPath

# ansible-runner: artifacts/<ident>/command holds argv *and* the environment; env/* are its inputs.
_RUNNER_NAMES = {"command", "cmdline", "envvars", "extravars", "passwords", "ssh_key", "ssh_key_data", "env"}
_SECRET_PATTERNS = ("*.key", "id_rsa*", "id_ed25519*", "id_ecdsa*", "*password*", "*secret*", "*.kdbx",
                    "*.pfx", "*.p12", ".env")


def withheld_reason(relpath: str) -> str | None:
    """Why this evidence file must not be copied into a report or bundle, or None when it may be."""
    p = PurePosixPath(relpath)
    if "\n" in relpath or "\\" in relpath:
        return "file name contains a newline or backslash (cannot be listed safely in SHA256SUMS)"
    if "env" in p.parts[:-1]:
        return "inside an ansible-runner env/ directory (runner inputs hold credentials)"
    name = p.name.lower()
    if name in _RUNNER_NAMES:
        return f"named like ansible-runner's {name!r} file, which can hold the environment or credentials"
    for pattern in _SECRET_PATTERNS:
        if fnmatchcase(name, pattern):
            return f"name matches {pattern!r}: may hold a secret"
    return None
