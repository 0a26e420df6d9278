"""The `commonid` command. Each area adds its commands as a Typer sub-app."""

from __future__ import annotations

import typer

from commonid import __version__

app = typer.Typer(
    name="commonid",
    help="Common-ID: reusable identity verification with the My Number Card.",
    no_args_is_help=True,
)


@app.command()
def version() -> None:
    """Print the Common-ID version."""
    typer.echo(__version__)
