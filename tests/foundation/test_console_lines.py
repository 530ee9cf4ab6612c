"""Text for people, sent into a pipe or a log file, keeps one line per line: rich would break it at
80 columns, splitting a bundle's path or a run id from its summary."""

from __future__ import annotations

import io

from rich.table import Table

from security_checks.cli.common import SafeConsole


def test_a_long_line_into_a_pipe_stays_whole_and_tables_keep_their_width() -> None:
    out = io.StringIO()
    console = SafeConsole(file=out)
    path = "/var/lib/estate/" + "/".join(f"part-{n:02d}" for n in range(20)) + "/bundles/20261203T140512Z-cffe95"
    console.print(f"sealed run [bold]20261203T140512Z-cffe95[/]: {path} (14 files, signed)")
    table = Table()
    table.add_column("requirement")
    table.add_column("reason")
    table.add_row("CE3.3:FW-2", "a reason " * 30)
    console.print(table)
    lines = out.getvalue().splitlines()
    assert lines[0] == f"sealed run 20261203T140512Z-cffe95: {path} (14 files, signed)"
    assert len(lines) > 4 and max(len(line) for line in lines[1:]) <= 80   # the table wraps in its cells
