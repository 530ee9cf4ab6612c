"""Conventions shared by every `estate` command.

- `--estate DIR` (env ESTATE_DIR, default: the embedded demo estate), `--home DIR` (env
  ESTATE_HOME, default ./.estate: the store, evidence, keys), `--out DIR`, `--format text|json`.
- stdout carries the command's result: JSON with `--format json` (and nothing else), the summary
  for people otherwise (so `estate check ce > ce.txt` keeps it); progress, warnings and errors go
  to stderr.
- Exit status: 0 success; 1 findings at or above --fail-on, or policy violations; 2 bad input or
  usage (one line naming the file and field, never a traceback); 75 another estate command is
  writing to the same --home and --wait ran out (try again later).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.text import Text

from ..findings import Finding, FindingBrief, Severity
from ..model.loader import EstateError, LoadedEstate, load_estate
from ..store import RunInfo, Store

REPO_ROOT = Path(__file__).resolve().parents[2]
DEMO_ESTATE = REPO_ROOT / "inventory" / "demo"

# The style tags the CLI's own messages use. Anything else in square brackets is text: a path
# (`ITHC [final]/scan.xml`), a target (`-t '[/]'`) or a name from an estate file is printed as given,
# never read as console markup (which would drop it, restyle it or raise MarkupError).
STYLE_TAGS = frozenset({"bold", "dim", "italic", "red", "green", "yellow", "blue", "cyan", "magenta", "white",
                        "bold red", "bold green", "bold yellow"})
_TAG = re.compile(r"(\\*)\[([a-z#/@][^[]*?)]", re.IGNORECASE)   # rich.markup's tag syntax


def escape_foreign_markup(text: str) -> str:
    """`text` with every bracketed tag escaped except a STYLE_TAGS tag and the tag closing it.

    User text should reach a console as rich Text or with `markup=False`; this is the backstop for
    every message that interpolates it into a markup string. A style tag never closed is escaped
    too (the CLI's own always are), and backslashes before an escaped tag are doubled as
    rich.markup.escape does, so they print as written.
    """
    tags = list(_TAG.finditer(text))
    keep: set[int] = set()
    opened: list[tuple[int, str]] = []
    for i, m in enumerate(tags):
        tag = m.group(2).strip()
        if m.group(1):
            continue
        if tag.startswith("/"):
            if opened and tag[1:].strip() in ("", opened[-1][1]):
                keep.update((opened.pop()[0], i))
        elif tag in STYLE_TAGS:
            opened.append((i, tag))
    def plain(segment: str) -> str:
        # rich turns a backslash before a bracket into nothing, even where no tag follows.
        return segment.replace("\\[", "\\\\[")

    out: list[str] = []
    pos = 0
    for i, m in enumerate(tags):
        if i not in keep:
            out.append(plain(text[pos:m.start()]) + m.group(1) * 2 + "\\[" + m.group(2) + "]")
        else:
            out.append(plain(text[pos:m.start()]) + m.group(0))
        pos = m.end()
    out.append(plain(text[pos:]))
    return "".join(out)


class SafeConsole(Console):
    """A Console that reads only the CLI's own style tags as markup and never turns `:name:` into emoji."""

    def __init__(self, **kwargs: Any):
        super().__init__(highlight=False, emoji=False, **kwargs)

    def print(self, *objects: Any, **kwargs: Any) -> None:
        # Into a pipe or a file, a line of text stays one line: rich would break it at 80 columns,
        # splitting a bundle's path or a run id from its summary in a log. Tables keep their layout.
        if "soft_wrap" not in kwargs and not self.is_terminal and all(isinstance(o, str) for o in objects):
            kwargs["soft_wrap"] = True
        super().print(*objects, **kwargs)

    def render_str(self, text: str, **kwargs: Any) -> Any:
        markup = kwargs.get("markup")
        if markup or (markup is None and self._markup):
            text = escape_foreign_markup(text)
        return super().render_str(text, **kwargs)


# Messages and progress: stderr, so `--format json` output on stdout stays machine-readable.
err = SafeConsole(stderr=True)
# A command's result for people (text mode): stdout, where a redirect or a pipe finds it.
show = SafeConsole()


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
WaitOpt = Annotated[float, typer.Option(
    "--wait", min=0, help="When another estate command is writing to --home, wait up to this many seconds "
    "(0: refuse at once).")]
EXIT_BUSY = 75  # EX_TEMPFAIL: the home is busy, nothing was done, try again
DbOpt = Annotated[str | None, typer.Option(
    "--db", metavar="URL", show_default="ESTATE_DB, else <home>/estate.db",
    help="The findings database: postgresql://ROLE@HOST/DB for a store shared by several operators and "
    "site scanners (put the password in ~/.pgpass or PGPASSWORD, not in the URL), or sqlite:///PATH. "
    "Evidence files stay under --home either way.")]


def use_database(url: str | None) -> None:
    """--db: the database every store this command opens uses (the runner never needs to know which)."""
    from ..store.db import select_database

    select_database(url)


def wait_reporter() -> Callable[[str, float], None]:
    """Say, at most every 5 seconds, who a command is waiting for (--wait)."""
    last = [0.0]

    def waiting(who: str, left: float) -> None:
        if time.monotonic() - last[0] >= 5:
            last[0] = time.monotonic()
            err.print(f"waiting for {who} to finish ({left:.0f} s left of --wait)", soft_wrap=True, markup=False)

    return waiting


@contextlib.contextmanager
def busy_exits() -> Iterator[None]:
    """Another command holds the home's writer lock: one line naming it, exit 75."""
    from ..store.lock import LockBusy

    try:
        yield
    except LockBusy as exc:
        err.print(Text.assemble(("busy:", "bold red"), f" {exc}"), soft_wrap=True)
        raise typer.Exit(EXIT_BUSY) from None


@contextlib.contextmanager
def writing(home: Path, command: str, wait: float = 0.0) -> Iterator[None]:
    """Hold the home's writer lock for a command that writes; busy: one line and exit 75."""
    from ..store.lock import writer_lock

    with busy_exits(), writer_lock(home, command, wait=wait, on_wait=wait_reporter()):
        yield


def usage_error(message: str) -> NoReturn:
    """Bad input: one line on stderr, exit status 2."""
    err.print(Text.assemble(("error:", "bold red"), f" {message}"), soft_wrap=True)
    raise typer.Exit(2)


def load_or_exit(estate_dir: Path, *, policy: bool = True) -> LoadedEstate:
    try:
        return load_estate(estate_dir, policy=policy)
    except EstateError as exc:
        for problem in exc.problems:
            err.print(str(problem), soft_wrap=True, markup=False)
        err.print(Text.assemble((f"{len(exc.problems)} problem(s)", "bold red"), f" in {estate_dir}"),
                  soft_wrap=True)
        raise typer.Exit(2) from None


def run_or_exit(store: Store, run: str | None, home: Path, *, kind: str | None = None) -> RunInfo:
    """The run a command works on: the given id (or unique prefix), else the latest; exit 2 if none."""
    info = store.get_run(run, kind=None if run else kind)
    if info is None:
        usage_error(f"--run {run}: no such run (or the prefix is ambiguous) in {home}" if run
                    else f"{home}: no {kind + ' ' if kind else ''}runs yet: run `estate assess` first")
    return info


def same_estate(info: RunInfo, loaded: LoadedEstate) -> None:
    """A command that reads a run must be given the estate that run assessed (exit 2 otherwise).

    Otherwise one council's scope, waivers or network name could be shown beside another's findings.
    """
    if info.estate_digest == loaded.digest:
        return
    usage_error(f"run {info.id} assessed the estate {info.estate_dir} (digest {info.estate_digest[:12]}), but --estate "
                f"is {loaded.root} (digest {loaded.digest[:12]}): pass the estate that run assessed (as it was then), "
                "or run again")


def open_store(home: Path) -> Store:
    """The store for reading (a shared lock while the command runs). Bad store: one line, exit 2."""
    from ..store import StoreError
    from ..store.db import configured

    if not configured() and not (home / "estate.db").exists() and not (home / "runs").is_dir():
        usage_error(f"{home}: no store here yet (nothing has run with this --home): run `estate assess` first")
    try:
        store = Store(home)
    except StoreError as exc:
        usage_error(str(exc))
    except OSError as exc:
        usage_error(f"{home}: cannot open the state directory ({exc.strerror or exc})")
    for problem in store.problems:
        err.print(Text.assemble(("warning:", "yellow"), f" {problem}"), soft_wrap=True)
    return store


def emit_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str, sort_keys=False) + "\n")


def exit_for(findings: Sequence[Finding | FindingBrief], fail_on: FailOn) -> int:
    if fail_on is FailOn.NONE:
        return 0
    threshold = Severity(fail_on.value).rank
    failing = [f for f in findings if f.open and f.severity.rank >= threshold]
    return 1 if failing else 0


class Progress:
    """Progress of a run on stderr: a live line on a terminal, numbered lines otherwise (logs, CI)."""

    def __init__(self, quiet: bool = False):
        self.quiet = quiet
        self._live: Any = None
        self._task: Any = None

    def __enter__(self) -> Progress:
        if err.is_terminal and not self.quiet:
            from rich.progress import BarColumn, SpinnerColumn, TextColumn, TimeElapsedColumn
            from rich.progress import Progress as Live

            self._live = Live(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                              TextColumn("{task.completed}/{task.total}"), TimeElapsedColumn(), console=err,
                              transient=True)
            self._live.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.stop()

    def step(self, i: int, n: int, description: str) -> None:
        if self._live is not None:
            if self._task is None:
                self._task = self._live.add_task(description, total=n)
            self._live.update(self._task, completed=i, description=description)
        elif not self.quiet:
            err.print(f"[{i + 1}/{n}] {description}", soft_wrap=True, markup=False, highlight=False)

    def say(self, message: str) -> None:
        if not self.quiet:
            err.print(f"  {message}", soft_wrap=True, markup=False, highlight=False)


def run_job(job: Any, loaded: LoadedEstate, home: Path, *, options: dict[str, Any] | None = None,
            selection: Any = None, harness: Any = None, wait: float = 0.0, quiet: bool = False) -> Any:
    """Hand a job to the runner; every failure mode becomes one line and its exit status."""
    from ..runner import Runner
    from ..step import InputRefused
    from ..store import StoreError

    with Progress(quiet) as progress, busy_exits():
        runner = Runner(loaded, home, say=progress.say, wait=wait, on_wait=wait_reporter())
        try:
            return runner.run(job, options=options, selection=selection, harness=harness, on_step=progress.step)
        except (StoreError, InputRefused) as exc:
            usage_error(str(exc))


def print_steps(steps: list[dict[str, Any]]) -> None:
    colour = {"ran": "green", "skipped": "yellow", "error": "red"}
    for s in steps:
        show.print(f"  [{colour.get(s['status'], 'white')}]{s['status']:>7}[/] {s['name']}: {s['summary']}",
                   soft_wrap=True)


SUMMARY_OBSERVED = 200   # characters of a finding's observed text on a summary line


def print_failing(findings: Sequence[Finding | FindingBrief], limit: int = 15) -> None:
    """Failing findings worst first, one line per check however many assets it fails on, at most
    `limit` lines (a summary fits on a screen; `estate findings --run <id>` lists every one)."""
    from ..report.grouping import group_by_check

    fails = sorted((f for f in findings if f.failing),
                   key=lambda f: (f.accepted, -f.severity.rank, f.check_id, f.asset))
    groups = group_by_check(fails, lambda f: f"{f.check_id} {f.accepted}", lambda f: f.title, lambda f: f.asset)
    for g in groups[:limit]:
        f = g.first
        state = " (accepted)" if f.accepted else ""
        if g.count == 1:
            # At most a line or two each: a tester's result quotes 400 characters of plugin output,
            # which `estate findings --run <id>` shows whole.
            seen = f.observed if len(f.observed) <= SUMMARY_OBSERVED else f.observed[:SUMMARY_OBSERVED - 3] + "..."
            line = f"  {f.severity.value:>8}{state} {f.check_id} {f.asset} {f.key}: {seen}"
        else:
            line = f"  {f.severity.value:>8}{state} {f.check_id}: {f.title}: {g.count} findings on {g.assets_text()}"
        show.print(line, soft_wrap=True, markup=False, highlight=False)
    if len(groups) > limit:
        rest = groups[limit:]
        checks = len({g.first.check_id for g in rest})   # groups are per check, waiver and title
        show.print(f"  ... and {sum(g.count for g in rest)} more from {checks} check(s) "
                   "(estate findings --run <id>)", markup=False)
