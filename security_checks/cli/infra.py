"""`estate infra`: not built yet (see the open issues)."""

import typer

app = typer.Typer(help="(not built yet)", no_args_is_help=True)
