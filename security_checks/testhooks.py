"""Fault injection: named points where a test can hold a command still, to kill it exactly there.

`pause_at("seal:signed")` does nothing unless the environment variable ESTATE_TEST_PAUSE_AT names
that phase. Then it says so on stderr (so the test knows the moment has come) and holds:
- with ESTATE_TEST_PAUSE_FILE set, it writes the phase into that file and carries on once the test
  deletes the file (to let a second command meet it there, then release it);
- otherwise it sleeps for ESTATE_TEST_PAUSE_SECONDS (default an hour) before carrying on.
Nothing else changes behaviour; production never sets these variables.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

PAUSE_AT, PAUSE_SECONDS, PAUSE_FILE = "ESTATE_TEST_PAUSE_AT", "ESTATE_TEST_PAUSE_SECONDS", "ESTATE_TEST_PAUSE_FILE"


def pause_at(phase: str) -> None:
    if os.environ.get(PAUSE_AT) != phase:
        return
    sys.stderr.write(f"{PAUSE_AT}: paused at {phase} (pid {os.getpid()})\n")
    sys.stderr.flush()
    marker = os.environ.get(PAUSE_FILE)
    if marker:
        Path(marker).write_text(phase)
        deadline = time.monotonic() + float(os.environ.get(PAUSE_SECONDS) or 3600)
        while Path(marker).exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        return
    time.sleep(float(os.environ.get(PAUSE_SECONDS) or 3600))
