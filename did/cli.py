"""`commonid issuer ...`: the service's issuer key (did:key / did:web)."""

from __future__ import annotations

import typer

issuer_app = typer.Typer(help="The service's issuer key: show, rotate.")
