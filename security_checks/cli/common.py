"""Conventions shared by every `estate` command.

- `--estate DIR` (env ESTATE_DIR, default: the embedded demo estate), `--home DIR` (env
  ESTATE_HOME, default ./.estate: the store, evidence, keys), `--out DIR`, `--format text|json`.
- JSON goes to stdout and nothing else does; messages, progress and warnings go to stderr.
- Exit status: 0 success; 1 findings at or above --fail-on, or policy violations; 2 bad input or
  usage (one line naming the file and field, never a traceback).
"""

from __future__ import annotations

import json
import os
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console

from ..findings import Finding, Severity
from ..model.loader import EstateError, LoadedEstate, load_estate
from ..store import RunInfo, Store

REPO_ROOT = Path(__file__).resolve().parents[2]
DEMO_ESTATE = REPO_ROOT / "inventory" / "demo"

# Messages and progress: stderr, so `--format json` output on stdout stays machine-readable.
err = Console(stderr=True, highlight=False)


class Format(StrEnum):
    TEXT = "text"
    JSON = "json"


class FailOn(StrEnum):
    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"
    NONE = "none"


def _default_estate() -> Path:
    env = os.environ.get("ESTATE_DIR")
    return Path(env) if env else DEMO_ESTATE


EstateOpt = Annotated[Path, typer.Option(
    "--estate", envvar="ESTATE_DIR", show_default="inventory/demo",
    help="Estate model directory (YAML). Default: the embedded demo council.")]
HomeOpt = Annotated[Path, typer.Option(
    "--home", envvar="ESTATE_HOME", help="State directory: findings store, evidence, signing keys.")]
OutOpt = Annotated[Path | None, typer.Option("--out", help="Where to write output files.")]
FormatOpt = Annotated[Format, typer.Option("--format", help="text for people; json (on stdout) for tools.")]
FailOnOpt = Annotated[FailOn, typer.Option(
    "--fail-on", help="Exit 1 when a failing finding is at or above this severity; none: never.")]

DEFAULT_HOME = Path(".estate")


def usage_error(message: str) -> NoReturn:
    """Bad input: one line on stderr, exit status 2."""
    err.print(f"[bold red]error:[/] {message}", soft_wrap=True)
    raise typer.Exit(2)


def load_or_exit(estate_dir: Path, *, policy: bool = True) -> LoadedEstate:
    try:
        return load_estate(estate_dir, policy=policy)
    except EstateError as exc:
        for problem in exc.problems:
            err.print(str(problem), soft_wrap=True, markup=False)
        err.print(f"[bold red]{len(exc.problems)} problem(s)[/] in {estate_dir}", soft_wrap=True)
        raise typer.Exit(2) from None


def run_or_exit(store: Store, run: str | None, home: Path) -> RunInfo:
    """The run a command works on: the given id (or unique prefix), else the latest; exit 2 if none."""
    info = store.get_run(run)
    if info is None:
        usage_error(f"--run {run}: no such run (or the prefix is ambiguous) in {home}" if run
                    else f"{home}: no runs yet: run `estate assess` first")
    return info


def open_store(home: Path) -> Store:
    try:
        return Store(home)
    except OSError as exc:
        usage_error(f"{home}: cannot open the state directory ({exc.strerror or exc})")


def emit_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str, sort_keys=False) + "\n")


def exit_for(findings: list[Finding], fail_on: FailOn) -> int:
    if fail_on is FailOn.NONE:
        return 0
    threshold = Severity(fail_on.value).rank
    failing = [f for f in findings if f.failing and not f.details.get("accepted") and f.severity.rank >= threshold]
    return 1 if failing else 0
