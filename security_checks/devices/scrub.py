"""Remove secrets from runner events before they become evidence.

Two rules: (1) the value of every environment variable the estate names in a `password_env` is
replaced wherever it appears, in any string; (2) anything under a key that looks like a secret
(password, secret, token, ...) is replaced whatever its value. The runner's own artifacts
(artifacts/<ident>/command and env hold the whole environment) are never read or copied.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from typing import Any

MASK = "********"
SECRET_KEY = re.compile(r"password|passwd|passphrase|secret|token|credential|api[_-]?key|private[_-]?key|auth[_-]?key",
                        re.IGNORECASE)


def password_env_names(estate: Any) -> set[str]:
    names: set[str] = set()
    for eg in estate.endpoint_groups:
        if eg.connection.password_env:
            names.add(eg.connection.password_env)
        for host in eg.hosts:
            if host.connection and host.connection.password_env:
                names.add(host.connection.password_env)
    return names


class Scrubber:
    def __init__(self, env_names: Iterable[str], environ: dict[str, str] | None = None):
        env = os.environ if environ is None else environ
        # Longest first, so a secret that contains another is masked whole.
        self.values = sorted({env[n] for n in env_names if env.get(n)}, key=len, reverse=True)

    def text(self, value: str) -> str:
        for secret in self.values:
            if secret in value:
                value = value.replace(secret, MASK)
        return value

    def __call__(self, data: Any) -> Any:
        if isinstance(data, dict):
            return {k: (MASK if isinstance(k, str) and SECRET_KEY.search(k) and v not in (None, "", [], {})
                        else self(v)) for k, v in data.items()}
        if isinstance(data, list | tuple):
            return [self(v) for v in data]
        if isinstance(data, str):
            return self.text(data)
        return data
