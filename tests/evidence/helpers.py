"""Helpers for evidence tests: the estate CLI as a real process (to kill -9 at a named point, see
security_checks/testhooks.py), and `resign`, which rewrites a copy of a bundle's bundle.json and
signs it again with the home's own key, so a test can lay out forks and gaps that verify cannot
tell from real seals by their signatures.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from security_checks.evidence import keys
from security_checks.evidence.bundle import SIG, SUMS, sums_text

REPO = Path(__file__).resolve().parents[2]
# The CLI from this checkout (not whatever the virtualenv's entry point was installed from).
ESTATE = [sys.executable, "-c", "from security_checks.cli.app import main; main()"]


def cli_env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ESTATE_TEST_")}
    return {**env, "ESTATE_HOME": str(home), "ESTATE_OPERATOR": "tester", "PYTHONPATH": str(REPO), **extra}


def paused(proc: subprocess.Popen[bytes], stderr: Path, phase: str, timeout: float = 120) -> None:
    """Wait until the child says it has stopped at `phase` (security_checks/testhooks.py)."""
    deadline = time.monotonic() + timeout
    while phase not in stderr.read_text(errors="replace"):
        if proc.poll() is not None:
            raise AssertionError(f"exited {proc.returncode} before reaching {phase}: {stderr.read_text()}")
        if time.monotonic() > deadline:
            raise AssertionError(f"never reached {phase}: {stderr.read_text()}")
        time.sleep(0.05)


def resign(bundle: Path, keys_dir: Path, edit: Callable[[dict[str, Any]], None]) -> Path:
    """Edit bundle.json in place, then rewrite SHA256SUMS and its signature with the home's key."""
    meta = json.loads((bundle / "bundle.json").read_text())
    edit(meta)
    (bundle / "bundle.json").write_text(json.dumps(meta, indent=2) + "\n")
    sums = sums_text(bundle)
    (bundle / SUMS).write_text(sums)
    (bundle / SIG).write_bytes(keys.load_or_create(keys_dir).sign(sums.encode()))
    return bundle


def copy_as(src: Path, dest: Path, keys_dir: Path, **fields: Any) -> Path:
    """A copy of a bundle under another run id, with bundle.json fields replaced, signed again."""
    shutil.copytree(src, dest)

    def edit(meta: dict[str, Any]) -> None:
        meta["run"]["id"] = dest.name
        meta.update(fields)

    return resign(dest, keys_dir, edit)


def link_to(bundle: Path) -> dict[str, str]:
    return {"bundle": bundle.name, "sha256_of_SHA256SUMS": hashlib.sha256((bundle / SUMS).read_bytes()).hexdigest()}


def home_with_bundles(bundles: Path, home: Path) -> Path:
    """A new home holding copies of these bundles, an empty store (no runs: push needs none) and a
    trusted-keys file naming the keys that signed them, as the security group publishes it (push
    refuses a bundle whose signer the home does not trust).

    Tests never point the CLI at the sealed fixture's own home: that store stays open all module
    long, and a store open in this process would hold up the CLI's own opening of it.
    """
    from security_checks.store import Store

    shutil.copytree(bundles, home / "bundles")
    Store(home).close()
    signers = sorted({json.loads(meta.read_text())["signing_key"]["sha256_fingerprint"]
                      for meta in (home / "bundles").glob("*/bundle.json")})
    listed = "".join(f"{fp}  the keys that sealed the test bundles\n" for fp in signers)
    (home / "trusted-keys.txt").write_text("# estate-trusted-keys/1\n" + listed)
    return home
