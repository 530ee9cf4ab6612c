"""The layers as contracts a tool checks, and the demo lab kept out of a real estate's runs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
GLENMORAY = REPO / "tests" / "estates" / "glenmoray"

PROBE = """
import sys
from security_checks.cli.app import app
try:
    app(sys.argv[1:], standalone_mode=False)
except SystemExit:
    pass
print("LAB-IMPORTED" if any(m == "security_checks.lab" or m.startswith("security_checks.lab.")
                            for m in sys.modules) else "NO-LAB")
"""


def test_the_import_contracts_hold() -> None:
    r = subprocess.run([str(REPO / ".venv" / "bin" / "lint-imports"), "--no-cache"], capture_output=True, text=True,
                       cwd=REPO)
    assert r.returncode == 0, r.stdout[-3000:]
    assert "0 broken" in r.stdout and "nothing but the CLI imports the demo lab KEPT" in r.stdout


def _assess(estate: Path, tmp_path: Path) -> str:
    r = subprocess.run([sys.executable, "-c", PROBE, "assess", "--estate", str(estate), "--home", str(tmp_path / "h"),
                        "--no-report", "--fail-on", "none", "--skip", "infra-plan"],
                       capture_output=True, text=True, cwd=REPO, timeout=600)
    assert "Traceback" not in r.stderr, r.stderr
    return r.stdout.strip().splitlines()[-1]


def test_a_real_estates_assessment_never_runs_lab_code(tmp_path: Path) -> None:
    assert _assess(GLENMORAY, tmp_path) == "NO-LAB"


def test_the_demo_brings_its_lab_harness(tmp_path: Path) -> None:
    # The demo declares loopback self-test hosts and a lab scope: the CLI wraps its runs in the harness.
    assert _assess(REPO / "inventory" / "demo", tmp_path) == "LAB-IMPORTED"
