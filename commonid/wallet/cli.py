"""`commonid wallet`: the reference holder on the command line.

    commonid wallet receive 'openid-credential-offer://?...' --tx-code 123456 [--copies 3]
    commonid wallet receive ... --card          (bound to the card in the PC/SC reader)
    commonid wallet list
    commonid wallet present 'openid4vp://?client_id=...&request_uri=...' [--card]
    commonid wallet present '...' --kiosk http://127.0.0.1:8765   (PIN at the kiosk)

With --card the PIN is asked for once (hidden) and verified once; the card signs
the proof or the key binding JWT. The wallet file is <data_dir>/wallet.json.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import httpx
import typer

wallet_app = typer.Typer(
    help="A reference wallet: SD-JWT VCs over OpenID4VCI and OpenID4VP.", no_args_is_help=True
)

WalletPath = Annotated[
    Path | None,
    typer.Option("--wallet", help="The wallet file (default <data_dir>/wallet.json)"),
]
UseCard = Annotated[
    bool, typer.Option("--card", help="Bind to / sign with the My Number Card in the reader")
]
Reader = Annotated[str | None, typer.Option(help="PC/SC reader name (with --card)")]


def _wallet_path(path: Path | None) -> Path:
    if path is not None:
        return path
    from commonid.settings import Settings

    return Settings().data_dir / "wallet.json"


@contextlib.contextmanager
def _card(use: bool, reader: str | None) -> Iterator[object | None]:
    if not use:
        yield None
        return
    from commonid.wallet.card import JpkiCardBinding
    from jpki.card import JPKICard, PinKind
    from jpki.transport import PcscTransport

    card = JPKICard(PcscTransport.connect(reader))
    typer.echo(f"auth PIN tries left: {card.pin_tries_left(PinKind.AUTH)}")
    pin = typer.prompt("auth PIN (4 digits)", hide_input=True)
    with JpkiCardBinding.open(card, pin) as binding:
        del pin
        yield binding


def _fail(error: Exception) -> None:
    typer.echo(f"refused: {error}", err=True)
    raise typer.Exit(1) from error


@wallet_app.command()
def receive(
    offer: Annotated[str, typer.Argument(help="The openid-credential-offer:// link")],
    tx_code: Annotated[str, typer.Option(prompt=True, help="The code shown beside the QR")],
    copies: Annotated[int, typer.Option(min=1, max=20, help="Copies (one key each)")] = 1,
    card: UseCard = False,
    reader: Reader = None,
    wallet: WalletPath = None,
) -> None:
    """Take a credential offer and keep the credentials."""
    from commonid.wallet.holder import Holder, WalletError, WalletFile
    from jpki.errors import JPKIError

    holder = Holder(WalletFile.open(_wallet_path(wallet)), httpx.Client(timeout=30))
    try:
        with _card(card, reader) as binding:
            stored = holder.receive(offer, tx_code, copies=copies, card=binding)  # type: ignore[arg-type]
    except (WalletError, JPKIError, httpx.HTTPError) as error:
        _fail(error)
    typer.echo(f"received {len(stored)} credential(s) of {stored[0]['vct']}")


@wallet_app.command("list")
def list_credentials(wallet: WalletPath = None) -> None:
    """The credentials in the wallet (type, issuer, binding, times presented)."""
    from commonid.wallet.holder import WalletFile

    for index, record in enumerate(WalletFile.open(_wallet_path(wallet)).credentials):
        typer.echo(
            f"{index}: {record['vct']} from {record['issuer']}, bound to {record['binding']}, "
            f"received {record['received_at']}, presented {record['presented']} time(s)"
        )


@wallet_app.command("present")
def present_credential(
    request: Annotated[str, typer.Argument(help="The openid4vp:// link or request URI")],
    card: UseCard = False,
    reader: Reader = None,
    kiosk: Annotated[
        str | None,
        typer.Option(help="A kiosk agent's URL: its card signs, the PIN is entered there"),
    ] = None,
    wallet: WalletPath = None,
) -> None:
    """Answer a verifier's request, disclosing only what its query names."""
    from commonid.wallet.holder import Holder, KioskKeyBinding, WalletError, WalletFile
    from jpki.errors import JPKIError

    holder = Holder(WalletFile.open(_wallet_path(wallet)), httpx.Client(timeout=30))
    try:
        asked = holder.fetch_request(request)
        names = sorted(
            {".".join(c["path"]) for q in asked["dcql_query"]["credentials"] for c in q["claims"]}
        )
        typer.echo(f"{asked['client_id']} asks for: {', '.join(names)}")
        if kiosk is not None:
            typer.echo(f"enter the PIN at the kiosk ({kiosk})")
            holder.present(request, kiosk=KioskKeyBinding(kiosk, holder.http))
        else:
            with _card(card, reader) as binding:
                holder.present(request, card=binding)  # type: ignore[arg-type]
    except (WalletError, JPKIError, httpx.HTTPError) as error:
        _fail(error)
    typer.echo("presented")
