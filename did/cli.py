"""`commonid issuer ...`: the service's issuer key (did:key / did:web)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from did.keys import IssuerKeyring

issuer_app = typer.Typer(help="The service's issuer key: show, rotate.", no_args_is_help=True)

KeyFile = Annotated[
    Path,
    typer.Option(
        "--key-file",
        envvar="COMMONID_ISSUER_KEY_FILE",
        help="The issuer key file (the service's issuer_key_file setting).",
    ),
]


@issuer_app.command()
def show(
    key_file: KeyFile,
    did_web_domain: Annotated[
        str | None,
        typer.Option("--did-web", help="Print the did:web document (did.json) for this domain."),
    ] = None,
) -> None:
    """Print the current issuer DID and the retired keys still trusted."""
    if not key_file.exists():
        typer.echo(f"No issuer key file at {key_file}: the service creates it on first start.")
        raise typer.Exit(code=1)
    keyring = IssuerKeyring.load(key_file)
    if did_web_domain is not None:
        typer.echo(json.dumps(keyring.did_web_document(did_web_domain), indent=2))
        return
    current = keyring.current
    typer.echo(f"current: {current.did} (since {current.created_at.isoformat()})")
    for key in reversed(keyring.retired):
        retired_at = key.retired_at.isoformat() if key.retired_at else "?"
        typer.echo(f"retired: {key.did} (retired {retired_at}, still verifies)")


@issuer_app.command()
def rotate(key_file: KeyFile) -> None:
    """Start signing with a new key; the old one stays trusted for verification."""
    if not key_file.exists():
        keyring = IssuerKeyring.open(key_file)
        typer.echo(f"created: {keyring.current.did}")
        return
    previous = IssuerKeyring.load(key_file)
    rotated = previous.rotate()
    typer.echo(f"retired: {previous.current.did}")
    typer.echo(f"current: {rotated.current.did}")


did_app = typer.Typer(help="DIDs: resolve a did:key.", no_args_is_help=True)


@did_app.command()
def resolve(did: Annotated[str, typer.Argument(help="A did:key (resolved locally).")]) -> None:
    """Print the DID document of a did:key (a card's auth key, the service's issuer key)."""
    from did._didkit import DIDKitError
    from did.keys import resolve_did_document

    if not did.startswith("did:key:"):
        typer.echo("only did:key resolves here (no network)", err=True)
        raise typer.Exit(code=2)
    try:
        document = resolve_did_document(did)
    except DIDKitError as error:
        typer.echo(f"cannot resolve {did}: {error}", err=True)
        raise typer.Exit(code=1) from error
    typer.echo(json.dumps(document, indent=2))
