"""Remove secrets from runner events before they become evidence.

Two rules: (1) the value of every environment variable the estate names in a `password_env` is
replaced wherever it appears, in any string; (2) anything under a key that looks like a secret
(password, secret, token, ...) is replaced whatever its value. The runner's own artifacts
(artifacts/<ident>/command and env hold the whole environment) are never read or copied.
"""

from __future__ import annotations

from typing import Any

# One scrubber for every playbook run (security_checks/playbook_run.py); re-exported for the device code.
from ..playbook_run import MASK, SECRET_KEY, Scrubber

__all__ = ["MASK", "SECRET_KEY", "Scrubber", "password_env_names"]


def password_env_names(estate: Any) -> set[str]:
    names: set[str] = set()
    for eg in estate.endpoint_groups:
        if eg.connection.password_env:
            names.add(eg.connection.password_env)
        for host in eg.hosts:
            if host.connection and host.connection.password_env:
                names.add(host.connection.password_env)
    return names
