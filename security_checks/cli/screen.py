"""Tables for a terminal: one line a row, columns sized to the console, so a summary's height is
its row count and it fits a screen (~40 lines) at any terminal width (80 columns, or a CI log's).

Cells are cut with an ellipsis rather than wrapped; --format json always has every value whole.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from rich import box
from rich.console import Console, RenderableType
from rich.table import Table
from rich.text import Text

Column = tuple[str, int, int]   # header, least width, most width (characters)


def widths(columns: Sequence[Column], total: int) -> list[int]:
    """Each column its least width, then what is left to the columns in order, up to their most."""
    out = [least for _, least, _ in columns]
    spare = total - 3 * (len(columns) - 1) - sum(out)   # padding and a rule between columns
    for i, (_, least, most) in enumerate(columns):
        extra = max(0, min(most - least, spare))
        out[i] += extra
        spare -= extra
    return out


def one_line_table(columns: Sequence[Column], rows: Iterable[Sequence[RenderableType]], console: Console) -> Table:
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    for (header, _, _), width in zip(columns, widths(columns, console.width), strict=True):
        table.add_column(header, width=width, no_wrap=True, overflow="ellipsis")
    for row in rows:
        # A plain string in a cell is data (an asset, a title, a path from an estate or a scan), so it
        # is shown as written; a cell that wants style passes rich Text.
        table.add_row(*(Text(c) if isinstance(c, str) else c for c in row))
    return table
