"""The per-namespace nmap wrapper that parallel scan jobs share.

The demo's lab scan once failed with python-nmap's "nmap program was not found in path": several
jobs for one scanner namespace wrote the wrapper at once, and one ran it before it was whole or
executable. Every caller must get a complete, executable file.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from security_checks.scan.nmaprun import wrapper

BODY = "#!/bin/sh\nexec ip netns exec est-scan nmap \"$@\"\n"


def test_concurrent_callers_always_get_a_whole_executable_wrapper(tmp_path: Path) -> None:
    def one(i: int) -> tuple[bool, str]:
        if i % 4 == 0:   # someone else's stale copy: the next caller must rewrite it
            p = tmp_path / "nmap-est-scan"
            if p.exists():
                p.write_text("stale")
        path = wrapper("est-scan", tmp_path)
        return os.access(path, os.X_OK), path.read_text()

    for _ in range(20):
        with ThreadPoolExecutor(max_workers=8) as pool:
            results = list(pool.map(one, range(8)))
        assert all(ok for ok, _ in results)
    final = tmp_path / "nmap-est-scan"
    assert wrapper("est-scan", tmp_path) == final and final.read_text() == BODY
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]   # no temporary files left
