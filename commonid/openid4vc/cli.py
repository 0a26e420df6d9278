"""`commonid credential-issuer`: the SD-JWT VC issuer's signing keys."""

from __future__ import annotations

from datetime import UTC, datetime

import typer

from commonid.oidc.keys import SigningKeys
from commonid.openid4vc.issuer_keys import RETIRED_KEPT
from commonid.settings import Settings

credential_issuer_app = typer.Typer(
    help="The wallet credential (SD-JWT VC) issuer: its ES256 signing keys.",
    no_args_is_help=True,
)


def _key_file() -> SigningKeys:
    settings = Settings()
    return SigningKeys.open(
        settings.credential_issuer_key_file or settings.data_dir / "credential-issuer-keys.json"
    )


@credential_issuer_app.command("rotate-key")
def rotate_key() -> None:
    """Sign new credentials and status lists with a new key from now on.

    Retired keys stay in /.well-known/jwt-vc-issuer for five years and a month,
    longer than a credential can live (it ends with its signature certificate),
    so every credential issued before still verifies. Running instances pick up
    the new key at their next credential. A configured certificate chain
    (credential_issuer_certificate_chain) is for the old key: until it is
    replaced, new credentials go out without x5c.
    """
    keys = _key_file().rotated()
    keys.save()
    typer.echo(f"new issuer key {keys.current_kid} ({len(keys.keys)} in the file)")


@credential_issuer_app.command("keys")
def list_keys() -> None:
    """The keys: kid, created, and which one signs (never the private parts)."""
    keys = _key_file()
    published = {k["kid"] for k in keys.jwks(datetime.now(UTC), retired_kept=RETIRED_KEPT)["keys"]}
    for entry in keys.keys:
        kid = entry["jwk"]["kid"]
        role = (
            "signing" if kid == keys.current_kid else "published" if kid in published else "retired"
        )
        typer.echo(f"{kid}\t{entry['created_at']}\t{role}")
