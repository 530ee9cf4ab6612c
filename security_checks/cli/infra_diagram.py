"""`estate infra diagram`: the network diagram (SVG + PNG, or JSON data) from the estate model."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Annotated

import typer

from .common import DEMO_ESTATE, EstateOpt, Format, FormatOpt, emit_json, load_or_exit, show, usage_error

DEFAULT_OUT = Path("network-diagram.svg")

EPILOG = """
Examples:

  estate infra diagram                                  # network-diagram.svg and .png, demo council
  estate infra diagram --estate inventory/mycouncil --out psn/network.svg
  estate infra diagram --format json > psn/network.json # the data behind the drawing

The drawing shows every site (trusted VLANs apart from guest/public Wi-Fi and from the pupils' and
device networks kept to their own zone), its WAN link to the Azure hub, the firewall, the internet
breakout (dashed green) and the PSN/SWAN connection (thick purple) with the zones allowed to reach
it. Both images are written whole or not at all.
"""


def diagram(
    estate: EstateOpt = DEMO_ESTATE,
    out: Annotated[Path | None, typer.Option(
        "--out", help="Image file to write (SVG); the PNG goes beside it. Default: ./network-diagram.svg")] = None,
    fmt: FormatOpt = Format.TEXT,
) -> None:
    """Draw the network diagram a PSN application needs, from the estate model."""
    from ..network.diagram import diagram_data, render

    loaded = load_or_exit(estate, policy=False)
    data = diagram_data(loaded.estate)
    if fmt is Format.JSON and out is None:
        emit_json(data)
        return
    target = out or DEFAULT_OUT
    if target.suffix.lower() not in ("", ".svg", ".png"):
        usage_error(f"--out {target}: use a .svg or .png name (both are written)")
    if shutil.which("dot") is None:
        usage_error("Graphviz `dot` is not installed (Debian package graphviz): cannot draw the diagram")
    try:
        written = render(data, target.with_suffix(".svg"))
    except OSError as exc:
        usage_error(f"{target}: cannot write the diagram ({exc.strerror or exc})")
    if fmt is Format.JSON:
        emit_json({**data, "files": [str(p) for p in written]})
        return
    for path in written:
        show.print(f"wrote {path}")
    show.print(f"{len(data['sites'])} sites, {len(data['links'])} links; "
               f"{data['public_sector_network']} reachable from: {', '.join(data['psn']['allowed_zones']) or 'none'}")


diagram.__doc__ = (diagram.__doc__ or "") + "\n" + EPILOG
