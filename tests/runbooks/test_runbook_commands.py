"""Every `estate` command in the runbooks must parse against the real CLI.

Runbooks are procedures people follow under pressure (an incident, an ITHC week); a command that
was renamed since the runbook was written fails them at the worst moment. This parses each
`$ estate ...` line of every runbook with the CLI's own parser: unknown commands, options or
choices fail the test. Commands that only read (validate, --help) are also run for real.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import typer.main
from typer._click.exceptions import ClickException  # typer vendors its own click: not PyPI's
from typer.exceptions import Exit

from security_checks.cli.app import app

RUNBOOKS = Path(__file__).resolve().parents[2] / "runbooks"
COMMAND = re.compile(r"^\s*\$ (estate\b.*)$")


def runbook_commands() -> list[tuple[str, int, str]]:
    out = []
    for path in sorted(RUNBOOKS.glob("*.md")):
        for n, line in enumerate(path.read_text().splitlines(), 1):
            m = COMMAND.match(line)
            if m:
                out.append((path.name, n, m.group(1).split(" #")[0].strip()))
    return out


def parse(command: str) -> None:
    """Resolve the command through the click tree and parse its arguments, without running it."""
    args = shlex.split(command)[1:]
    cmd = typer.main.get_command(app)
    ctx = cmd.make_context("estate", list(args), resilient_parsing=False)
    while hasattr(cmd, "resolve_command"):  # a group
        rest = [*ctx._protected_args, *ctx.args]  # the subcommand name is held back there
        if not rest:
            return
        name, sub, rest = cmd.resolve_command(ctx, rest)
        assert sub is not None, f"unknown command {name!r}"
        cmd = sub
        ctx = cmd.make_context(name or "", rest, parent=ctx, resilient_parsing=False)


@pytest.mark.parametrize("bad", ["estate nosuch", "estate validate --bogus", "estate validate --format xml",
                                 "estate assess --fail-on sometimes"])
def test_the_parser_rejects_what_the_cli_rejects(bad: str) -> None:
    with pytest.raises((ClickException, AssertionError)):
        parse(bad)


def test_runbooks_exist_and_hold_commands() -> None:
    names = {p.name for p in RUNBOOKS.glob("*.md")}
    assert {"deploy-infrastructure.md", "patch-and-baseline.md", "incident-response.md",
            "ithc-preparation.md", "evidence-for-auditors.md"} <= names
    assert len(runbook_commands()) >= 20


@pytest.mark.parametrize("where, line, command", runbook_commands(),
                         ids=[f"{w}:{n}" for w, n, _ in runbook_commands()])
def test_runbook_command_parses(where: str, line: int, command: str) -> None:
    try:
        parse(command)
    except Exit:
        pass  # --help and --version exit early: they parsed
    except ClickException as exc:
        pytest.fail(f"{where}:{line}: `{command}`: {exc.format_message()}")
