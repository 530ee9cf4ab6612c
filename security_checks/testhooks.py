"""Fault injection: named points where a test can hold a command still, to kill it exactly there.

`pause_at("seal:signed")` does nothing unless the environment variable ESTATE_TEST_PAUSE_AT names
that phase. Then it says so on stderr (so the test knows the moment has come) and sleeps for
ESTATE_TEST_PAUSE_SECONDS (default an hour) before carrying on. Nothing else changes behaviour.
"""

from __future__ import annotations

import os
import sys
import time

PAUSE_AT, PAUSE_SECONDS = "ESTATE_TEST_PAUSE_AT", "ESTATE_TEST_PAUSE_SECONDS"


def pause_at(phase: str) -> None:
    if os.environ.get(PAUSE_AT) != phase:
        return
    sys.stderr.write(f"{PAUSE_AT}: paused at {phase} (pid {os.getpid()})\n")
    sys.stderr.flush()
    time.sleep(float(os.environ.get(PAUSE_SECONDS) or 3600))
