"""The `commonid` command. Each area adds its commands as a Typer sub-app."""

from __future__ import annotations

import typer

from commonid import __version__
from did.cli import issuer_app
from jpki.testca.cli import card_app, testca_app

app = typer.Typer(
    name="commonid",
    help="Common-ID: reusable identity verification with the My Number Card.",
    no_args_is_help=True,
)
app.add_typer(testca_app, name="testca")
app.add_typer(card_app, name="card")
app.add_typer(issuer_app, name="issuer")


@app.command()
def version() -> None:
    """Print the Common-ID version."""
    typer.echo(__version__)
