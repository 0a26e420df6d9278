"""`commonid oidc`: the OpenID Provider's signing keys."""

from __future__ import annotations

from datetime import UTC, datetime

import typer

from commonid.oidc.keys import SigningKeys
from commonid.settings import Settings

oidc_app = typer.Typer(help="The OpenID Provider: its ID token signing keys.", no_args_is_help=True)


def _key_file() -> SigningKeys:
    settings = Settings()
    return SigningKeys.open(
        settings.oidc_signing_key_file or settings.data_dir / "oidc-signing-keys.json"
    )


@oidc_app.command("rotate-key")
def rotate_key() -> None:
    """Sign ID tokens with a new key from now on; the old ones stay in the JWKS.

    Running instances pick the new key up at their next token (the file is
    re-read when it changes). Retired keys stay published for 30 days, longer
    than any ID token lives.
    """
    keys = _key_file().rotated()
    keys.save()
    typer.echo(f"new signing key {keys.current_kid} ({len(keys.keys)} in the file)")


@oidc_app.command("keys")
def list_keys() -> None:
    """The keys in the file: kid, created, and which one signs (never the private parts)."""
    keys = _key_file()
    published = {key["kid"] for key in keys.jwks(datetime.now(UTC))["keys"]}
    for entry in keys.keys:
        kid = entry["jwk"]["kid"]
        role = (
            "signing" if kid == keys.current_kid else "published" if kid in published else "retired"
        )
        typer.echo(f"{kid}\t{entry['created_at']}\t{role}")
