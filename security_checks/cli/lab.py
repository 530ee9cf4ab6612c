"""`estate lab`: the lab of network namespaces built from the estate, with deliberate faults."""

from __future__ import annotations

import typer

from .common import DEFAULT_HOME, DEMO_ESTATE, EstateOpt, Format, FormatOpt, HomeOpt, emit_json, err, load_or_exit

app = typer.Typer(
    help=("The lab: the demo estate's zones as network namespaces (HQ corporate, servers, guest and public Wi-Fi, "
          "PSN DMZ, management, the central library behind its own nftables firewall, Azure spokes, the internet "
          "breakout), routed by firewall namespaces whose nftables rulesets are rendered from the estate's firewall "
          "policy, with listeners for every declared service and the faults in security_checks/lab/faults.yaml. "
          "Needs root. Nothing is added to this machine's own network namespace."),
    rich_markup_mode="rich", no_args_is_help=True)


def _labmod():  # type: ignore[no-untyped-def]
    from ..lab import build

    return build


@app.command(epilog="Examples:\n\n  sudo estate lab up\n\n  sudo estate lab up --format json")
def up(estate: EstateOpt = DEMO_ESTATE, home: HomeOpt = DEFAULT_HOME, format: FormatOpt = Format.TEXT) -> None:
    """Build the lab (idempotent: a healthy lab is left as it is; a half-built one is rebuilt)."""
    build = _labmod()
    loaded = load_or_exit(estate)
    try:
        st = build.up(loaded, home, log=lambda m: err.print(f"lab: {m}"))
    except build.LabError as exc:
        err.print(f"[bold red]error:[/] {exc}", soft_wrap=True)
        raise typer.Exit(2) from None
    _show(st, format)


@app.command(epilog="Examples:\n\n  sudo estate lab down")
def down(home: HomeOpt = DEFAULT_HOME, format: FormatOpt = Format.TEXT) -> None:
    """Remove the lab: listeners, namespaces (every est-* one, even without a state file), state."""
    build = _labmod()
    try:
        out = build.down(home, log=lambda m: err.print(f"lab: {m}"))
    except build.LabError as exc:
        err.print(f"[bold red]error:[/] {exc}", soft_wrap=True)
        raise typer.Exit(2) from None
    if format is Format.JSON:
        emit_json(out)


@app.command(epilog="Examples:\n\n  estate lab status\n\n  estate lab status --format json | jq .up")
def status(home: HomeOpt = DEFAULT_HOME, format: FormatOpt = Format.TEXT) -> None:
    """Is the lab up? Namespaces, listener processes, leftovers. Exit 0 when up, 1 when not."""
    st = _labmod().status(home)
    _show(st, format)
    raise typer.Exit(0 if st["up"] else 1)


def _show(st: dict[str, object], format: Format) -> None:
    if format is Format.JSON:
        emit_json(st)
        return
    namespaces = st.get("namespaces") or []
    listeners = st.get("listeners") or {}
    err.print(f"lab is {'[green]up[/]' if st['up'] else '[yellow]not up[/]'}"
              f" ({len(namespaces)} namespaces, {len(listeners)} listener processes)")  # type: ignore[arg-type]
    for key in ("missing_listeners", "leftover_links"):
        if st.get(key):
            err.print(f"  {key.replace('_', ' ')}: {st[key]}")
