"""The `commonid` command. Each area adds its commands as a Typer sub-app."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy.orm import Session as DbSession

from commonid import __version__
from commonid.audit.cli import audit_app
from commonid.demo import demo_command
from commonid.documents.cli import document_app
from commonid.oidc.cli import oidc_app
from commonid.openid4vc.cli import credential_issuer_app
from commonid.records.cli import records_app
from commonid.settings import Settings
from commonid.wallet.cli import wallet_app
from did.cli import did_app, issuer_app
from did.process import run_and_exit
from jpki.testca.cli import card_app, testca_app

app = typer.Typer(
    name="commonid",
    help="Common-ID: reusable identity verification with the My Number Card.",
    no_args_is_help=True,
)
app.add_typer(testca_app, name="testca")
app.add_typer(card_app, name="card")
app.add_typer(issuer_app, name="issuer")
app.add_typer(did_app, name="did")
app.add_typer(document_app, name="document")
app.add_typer(audit_app, name="audit")
app.add_typer(oidc_app, name="oidc")
app.add_typer(records_app, name="records")
app.add_typer(wallet_app, name="wallet")
app.add_typer(credential_issuer_app, name="credential-issuer")
app.command("demo")(demo_command)

db_app = typer.Typer(help="The service database: schema migrations.", no_args_is_help=True)
provider_app = typer.Typer(
    help="Payment providers: API keys, claims, webhooks.", no_args_is_help=True
)
kiosk_app = typer.Typer(help="Kiosks: their credentials.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(provider_app, name="provider")
app.add_typer(kiosk_app, name="kiosk")

CLAIMS = ("name", "birthdate", "gender", "address", "did", "credential")


@app.command()
def version() -> None:
    """Print the Common-ID version."""
    typer.echo(__version__)


def _settings() -> Settings:
    return Settings().with_generated_secrets()


@contextmanager
def _store() -> Iterator[tuple[DbSession, Settings]]:
    """A transaction on the configured database (migrated to head first)."""
    from commonid.store.database import create_engine, session_factory, upgrade

    settings = _settings()
    upgrade(settings.effective_database_url)
    engine = create_engine(settings.effective_database_url)
    try:
        with session_factory(engine).begin() as db:
            yield db, settings
    finally:
        engine.dispose()


def _audit_admin(db: DbSession, action: str, target_type: str, target_id: str) -> None:
    """An admin action taken at the command line goes into the audit log, in the same
    transaction, as the admin API's do (actor ``admin_cli``). The running service
    signs the next checkpoint over it."""
    from sqlalchemy.orm import sessionmaker

    from commonid.audit.log import AuditLog
    from commonid.auditing import admin_action

    log = AuditLog(sessionmaker(bind=db.get_bind()), checkpoint_interval=None)
    log.append_many_in(db, [admin_action("admin_cli", action, target_type, target_id)])


def _cipher(settings: Settings):  # type: ignore[no-untyped-def]
    from commonid.store.encryption import AttributeCipher

    return AttributeCipher(settings.attribute_key_bytes(), settings.current_attribute_key_id)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port")] = 8000,
    workers: Annotated[
        int, typer.Option(min=1, help="worker processes, each on its own SO_REUSEPORT socket")
    ] = 1,
) -> None:
    """Run the service (uvicorn). Migrates the database once before starting workers."""
    import uvicorn

    from commonid.serving import APP, serve_workers
    from commonid.store.database import upgrade

    settings = _settings()
    upgrade(settings.effective_database_url)
    _refuse_unshared_keys(settings)
    if workers > 1:
        # Each worker on its own SO_REUSEPORT socket, so the kernel spreads connections.
        raise typer.Exit(serve_workers(settings, host, port, workers))
    uvicorn.run(
        APP,
        factory=True,
        host=host,
        port=port,
        log_level="info",
        access_log=False,
    )


def _refuse_unshared_keys(settings: Settings) -> None:
    """In the foreground, before any worker: keys that are not the service's are a
    one-line error and exit 1 (commonid.shared_keys), not a worker crash loop."""
    from commonid.runtime import system_clock
    from commonid.shared_keys import SharedKeysMismatch, check_shared_keys
    from commonid.store.database import create_engine, session_factory
    from did.keys import IssuerKeyring

    settings = settings.with_generated_secrets()
    engine = create_engine(settings.effective_database_url)
    try:
        keyring = IssuerKeyring.open(
            settings.issuer_key_file or settings.data_dir / "issuer-key.json"
        )
        check_shared_keys(session_factory(engine), settings, keyring, now=system_clock())
    except SharedKeysMismatch as mismatch:
        typer.echo(f"commonid serve: refusing to start: {mismatch}", err=True)
        raise typer.Exit(1) from None
    finally:
        engine.dispose()


@db_app.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Argument()] = "head") -> None:
    """Apply the checked-in migrations up to REVISION."""
    from commonid.store.database import upgrade

    settings = _settings()
    upgrade(settings.effective_database_url, revision)
    typer.echo(f"database at {revision}")


def _claims(value: str) -> list[str]:
    claims = [claim.strip() for claim in value.split(",") if claim.strip()]
    unknown = sorted(set(claims) - set(CLAIMS))
    if unknown:
        raise typer.BadParameter(f"unknown claims {unknown}; known: {', '.join(CLAIMS)}")
    return claims


@provider_app.command("add")
def provider_add(
    name: str,
    claims: Annotated[str, typer.Option(help="Comma-separated claims it may request")] = ",".join(
        CLAIMS
    ),
    reuse_max_age: Annotated[
        int, typer.Option(help="Oldest verification it accepts for reuse, in seconds")
    ] = 90 * 86400,
    webhook_url: Annotated[str | None, typer.Option(help="Where completion events go")] = None,
) -> None:
    """Register a provider; prints its API key (and webhook secret) once."""
    from commonid.store import accounts
    from commonid.webhooks import new_webhook_secret

    secret = new_webhook_secret() if webhook_url else None
    with _store() as (db, settings):
        created = accounts.add_provider(
            db,
            name=name,
            allowed_claims=_claims(claims),
            reuse_max_age_seconds=reuse_max_age,
            now=datetime.now(UTC),
            cipher=_cipher(settings),
            webhook_url=webhook_url,
            webhook_secret=secret,
        )
        _audit_admin(db, "provider_added", "provider", created.account.id)
        typer.echo(f"provider {created.account.id} ({name})")
    typer.echo(f"api key (shown once): {created.credential}")
    if secret:
        typer.echo(f"webhook secret (shown once): {secret}")


@provider_app.command("list")
def provider_list() -> None:
    """Providers, their claims, reuse policy and state (never keys)."""
    from commonid.store import accounts

    with _store() as (db, _):
        for provider in accounts.list_providers(db):
            state = "disabled" if provider.disabled else "active"
            typer.echo(
                f"{provider.id}\t{provider.name}\t{state}\tclaims={','.join(provider.allowed_claims)}"
                f"\treuse_max_age={provider.reuse_max_age_seconds}s"
                f"\twebhook={provider.webhook_url or '-'}"
            )


def _provider(db: DbSession, name_or_id: str):  # type: ignore[no-untyped-def]
    from commonid.store import accounts

    provider = accounts.provider_by_name_or_id(db, name_or_id)
    if provider is None:
        typer.echo(f"no provider {name_or_id!r}", err=True)
        raise typer.Exit(1)
    return provider


@provider_app.command("rotate-key")
def provider_rotate_key(name_or_id: str) -> None:
    """Replace a provider's API key; the old key stops working at once."""
    from commonid.store import accounts

    with _store() as (db, _):
        provider = _provider(db, name_or_id)
        key = accounts.rotate_provider_key(db, provider)
        _audit_admin(db, "provider_key_rotated", "provider", provider.id)
    typer.echo(f"new api key (shown once): {key}")


@provider_app.command("oidc")
def provider_oidc(
    name_or_id: str,
    redirect_uri: Annotated[
        list[str], typer.Option(help="A redirect URI, matched exactly (repeat for several)")
    ],
    jwks_file: Annotated[
        Path | None,
        typer.Option(help="Its public keys (JWKS) for private_key_jwt client authentication"),
    ] = None,
    jwks_uri: Annotated[
        str | None, typer.Option(help="Where its JWKS is published (private_key_jwt)")
    ] = None,
    client_secret: Annotated[
        bool,
        typer.Option(
            "--client-secret", help="client_secret_basic instead (development): a secret is printed"
        ),
    ] = False,
    require_par: Annotated[
        bool, typer.Option("--require-par", help="accept only pushed authorization requests")
    ] = False,
) -> None:
    """Register a provider as an OpenID Connect client; prints its client_id.

    Scopes follow the provider's allowed claims; its freshness policy for reuse
    (acr urn:commonid:acr:jpki:reuse) is its reuse max age. The API key stays.
    """
    import json

    from commonid.oidc.server import CLIENT_SECRET_BASIC, PRIVATE_KEY_JWT
    from commonid.store import oidc

    if sum((jwks_file is not None, jwks_uri is not None, client_secret)) != 1:
        typer.echo("give exactly one of --jwks-file, --jwks-uri, --client-secret", err=True)
        raise typer.Exit(2)
    if jwks_uri is not None and not jwks_uri.startswith(
        ("https://", "http://127.0.0.1", "http://localhost")
    ):
        typer.echo("--jwks-uri must be https (or http on loopback)", err=True)
        raise typer.Exit(2)
    jwks = None
    if jwks_file is not None:
        try:
            jwks = json.loads(jwks_file.read_text())
            from joserfc.jwk import KeySet

            KeySet.import_key_set(jwks)
        except (OSError, ValueError) as error:
            typer.echo(f"{jwks_file}: not a JWKS: {error}", err=True)
            raise typer.Exit(2) from None
        if any("d" in key for key in jwks.get("keys", [])):
            typer.echo(f"{jwks_file} holds a private key: register the public keys only", err=True)
            raise typer.Exit(2)
    bad = [
        uri
        for uri in redirect_uri
        if not uri.startswith(("https://", "http://127.0.0.1", "http://localhost"))
    ]
    if bad or any("#" in uri for uri in redirect_uri):
        typer.echo("redirect URIs are https (or http on loopback), without a fragment", err=True)
        raise typer.Exit(2)
    with _store() as (db, _):
        provider = _provider(db, name_or_id)
        if oidc.client_of_provider(db, provider.id) is not None:
            typer.echo(f"provider {name_or_id} is already an OpenID client", err=True)
            raise typer.Exit(1)
        client, secret = oidc.add_client(
            db,
            provider_id=provider.id,
            redirect_uris=redirect_uri,
            auth_method=CLIENT_SECRET_BASIC if client_secret else PRIVATE_KEY_JWT,
            jwks=jwks,
            jwks_uri=jwks_uri,
            require_par=require_par,
            now=datetime.now(UTC),
        )
        _audit_admin(db, "oidc_client_added", "provider", provider.id)
        typer.echo(f"client_id: {client.client_id}")
    if secret:
        typer.echo(f"client secret (shown once): {secret}")


@provider_app.command("disable")
def provider_disable(name_or_id: str) -> None:
    """Refuse the provider's requests from now on (its data stays until purged)."""
    with _store() as (db, _):
        provider = _provider(db, name_or_id)
        provider.disabled = True
        _audit_admin(db, "provider_disabled", "provider", provider.id)
    typer.echo(f"provider {name_or_id} disabled")


@kiosk_app.command("add")
def kiosk_add(name: str) -> None:
    """Register a kiosk; prints its credential once."""
    from commonid.store import accounts

    with _store() as (db, _):
        created = accounts.add_kiosk(db, name=name, now=datetime.now(UTC))
        _audit_admin(db, "kiosk_added", "kiosk", created.account.id)
        typer.echo(f"kiosk {created.account.id} ({name})")
    typer.echo(f"kiosk credential (shown once): {created.credential}")


@kiosk_app.command("list")
def kiosk_list() -> None:
    from commonid.store import accounts

    with _store() as (db, _):
        for kiosk in accounts.list_kiosks(db):
            typer.echo(f"{kiosk.id}\t{kiosk.name}\t{'disabled' if kiosk.disabled else 'active'}")


@kiosk_app.command("disable")
def kiosk_disable(name_or_id: str) -> None:
    from commonid.store import accounts

    with _store() as (db, _):
        kiosk = accounts.kiosk_by_name_or_id(db, name_or_id)
        if kiosk is None:
            typer.echo(f"no kiosk {name_or_id!r}", err=True)
            raise typer.Exit(1)
        kiosk.disabled = True
        _audit_admin(db, "kiosk_disabled", "kiosk", kiosk.id)
    typer.echo(f"kiosk {name_or_id} disabled")


@app.command()
def purge() -> None:
    """Delete sessions, webhook deliveries and idempotency keys past retention."""
    from commonid.store.purge import RetentionPolicy
    from commonid.store.purge import purge as run_purge

    with _store() as (db, settings):
        report = run_purge(
            db,
            RetentionPolicy(
                sessions=timedelta(days=settings.retention_sessions_days),
                webhook_deliveries=timedelta(days=settings.retention_webhook_deliveries_days),
                idempotency_keys=timedelta(hours=settings.retention_idempotency_hours),
            ),
            now=datetime.now(UTC),
        )
        # Verification records go by their own retention (seven years from the end of
        # the relationship their provider declared), each purge in the audit log.
        from sqlalchemy.orm import sessionmaker

        from commonid.audit.log import AuditLog
        from commonid.flows.records import purge_expired

        log = AuditLog(sessionmaker(bind=db.get_bind()), checkpoint_interval=None)
        purged_records = purge_expired(
            db, now=datetime.now(UTC), audit=lambda events: log.append_many_in(db, events)
        )
    typer.echo(
        f"purged {report.sessions} sessions ({report.signed_documents} signed documents), "
        f"{purged_records} verification records past retention, "
        f"{report.rejected_responses} rejected responses, "
        f"{report.webhook_deliveries} webhook deliveries, "
        f"{report.idempotency_keys} idempotency keys, "
        f"{report.oidc_authorizations} OpenID authorizations"
    )


@app.command("verify-session")
def verify_session(
    user_code: str,
    service_url: Annotated[str, typer.Option(envvar="COMMONID_SERVICE_URL")] = (
        "http://127.0.0.1:8000"
    ),
    kiosk_credential: Annotated[
        str, typer.Option(envvar="COMMONID_KIOSK_CREDENTIAL", prompt=True, hide_input=True)
    ] = "",
    reader: Annotated[str | None, typer.Option(help="PC/SC reader name")] = None,
) -> None:
    """Walk a session through in the terminal with a card in a PC/SC reader."""
    from commonid.card_answer import answer_challenge
    from commonid.client import CommonIdError, KioskClient
    from jpki.card import JPKICard, PinKind
    from jpki.errors import JPKIError
    from jpki.transport import PcscTransport

    with KioskClient(service_url, kiosk_credential) as kiosk:
        try:
            session = kiosk.session(user_code)
        except CommonIdError as error:
            typer.echo(f"{error.code}: {error.detail}", err=True)
            raise typer.Exit(1) from error
        typer.echo(f"{session.provider_name} asks for: {', '.join(session.claims) or '(none)'}")
        typer.echo(f"purpose: {session.purpose}")
        typer.echo(f"mode: {session.mode}; expires {session.expires_at.isoformat()}")
        typer.echo(f"you will sign: {session.challenge.to_be_signed.decode(errors='replace')}")
        if not typer.confirm("Do you consent?", default=False):
            kiosk.consent(session.id, approved=False)
            typer.echo("declined")
            raise typer.Exit(1)
        kiosk.consent(session.id)
        try:
            card = JPKICard(PcscTransport.connect(reader))
            typer.echo(f"auth PIN tries left: {card.pin_tries_left(PinKind.AUTH)}")
            # Hidden prompts (getpass underneath); the PIN lives only in this frame.
            pin = typer.prompt("auth PIN (4 digits)", hide_input=True)
            password = None
            if session.mode == "identity":
                typer.echo(f"sign password tries left: {card.pin_tries_left(PinKind.SIGN)}")
                password = typer.prompt("sign password (6-16 characters)", hide_input=True)
            answer = answer_challenge(
                card, session.challenge.to_be_signed, auth_pin=pin, sign_password=password
            )
            del pin, password
        except JPKIError as error:
            typer.echo(f"card: {error}", err=True)
            raise typer.Exit(1) from error
        try:
            outcome = kiosk.submit_card_answer(session.id, answer)
        except CommonIdError as error:
            typer.echo(f"refused: {error.code}: {error.detail}", err=True)
            raise typer.Exit(1) from error
        typer.echo(f"session {outcome['session_id']}: {outcome['status']}")


def main() -> None:
    """The `commonid` command: ends with its status every time (did.process)."""
    run_and_exit(app)


if __name__ == "__main__":
    main()
