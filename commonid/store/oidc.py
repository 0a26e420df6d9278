"""The OpenID Provider's records: clients, authorizations and their codes, tokens, jtis.

Codes and access tokens are bearer secrets: only their SHA-256 is stored
(:func:`commonid.store.ids.hash_credential`). Nothing here holds a person's
data: the verified claims stay in the Common-ID session's sealed result.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session as DbSession

from commonid.store.ids import hash_credential, new_id, new_secret
from commonid.store.models import OidcAssertionJti, OidcAuthorization, OidcClient, OidcToken


def add_client(
    db: DbSession,
    *,
    provider_id: str,
    redirect_uris: list[str],
    auth_method: str,
    jwks: dict[str, Any] | None,
    jwks_uri: str | None,
    require_par: bool,
    now: datetime,
) -> tuple[OidcClient, str | None]:
    """Register ``provider_id`` as a client; the secret (client_secret_basic) is returned once."""
    secret = new_secret("cid_cs") if auth_method == "client_secret_basic" else None
    client = OidcClient(
        client_id=new_id("oc"),
        provider_id=provider_id,
        redirect_uris=list(redirect_uris),
        auth_method=auth_method,
        secret_hash=hash_credential(secret) if secret else None,
        jwks=jwks,
        jwks_uri=jwks_uri,
        require_par=require_par,
        created_at=now,
    )
    db.add(client)
    db.flush()
    return client, secret


def client_by_id(db: DbSession, client_id: str) -> OidcClient | None:
    return db.get(OidcClient, client_id)


def client_of_provider(db: DbSession, provider_id: str) -> OidcClient | None:
    return db.scalars(sa.select(OidcClient).where(OidcClient.provider_id == provider_id)).first()


def new_authorization(
    db: DbSession,
    *,
    client_id: str,
    params: dict[str, Any],
    pushed: bool,
    now: datetime,
    expires_at: datetime,
) -> OidcAuthorization:
    authorization = OidcAuthorization(
        id=new_id("az"),
        client_id=client_id,
        params=params,
        pushed=pushed,
        created_at=now,
        expires_at=expires_at,
    )
    db.add(authorization)
    db.flush()
    return authorization


def authorization_by_id(db: DbSession, authorization_id: str) -> OidcAuthorization | None:
    return db.get(OidcAuthorization, authorization_id)


def take_pushed_request(
    db: DbSession, authorization_id: str, client_id: str, now: datetime
) -> OidcAuthorization | None:
    """A pushed request, once: RFC 9126 request_uris are single use."""
    taken = db.execute(
        sa.update(OidcAuthorization)
        .where(
            OidcAuthorization.id == authorization_id,
            OidcAuthorization.client_id == client_id,
            OidcAuthorization.pushed.is_(True),
            OidcAuthorization.used_at.is_(None),
            OidcAuthorization.expires_at > now,
        )
        .values(used_at=now)
    )
    if taken.rowcount != 1:
        return None
    return db.get(OidcAuthorization, authorization_id)


def take_code(db: DbSession, code: str, now: datetime) -> OidcAuthorization | None:
    """The authorization a code belongs to, once: a second use finds nothing."""
    code_hash = hash_credential(code)
    taken = db.execute(
        sa.update(OidcAuthorization)
        .where(
            OidcAuthorization.code_hash == code_hash,
            OidcAuthorization.code_used_at.is_(None),
            OidcAuthorization.code_expires_at > now,
        )
        .values(code_used_at=now)
    )
    if taken.rowcount != 1:
        return None
    return db.scalars(
        sa.select(OidcAuthorization).where(OidcAuthorization.code_hash == code_hash)
    ).one()


def save_token(
    db: DbSession,
    *,
    token: str,
    authorization_id: str,
    client_id: str,
    scope: str,
    jkt: str | None,
    now: datetime,
    expires_at: datetime,
) -> None:
    db.add(
        OidcToken(
            token_hash=hash_credential(token),
            authorization_id=authorization_id,
            client_id=client_id,
            scope=scope,
            jkt=jkt,
            created_at=now,
            expires_at=expires_at,
        )
    )
    db.flush()


def token_by_value(db: DbSession, token: str, now: datetime) -> OidcToken | None:
    found = db.get(OidcToken, hash_credential(token))
    if found is None or found.expires_at <= now:
        return None
    return found


def first_use_of_jti(db: DbSession, client_id: str, jti: str, expires_at: datetime) -> bool:
    """True the first time ``client_id`` presents ``jti``; False for a replay."""
    try:
        with db.begin_nested():
            db.add(OidcAssertionJti(client_id=client_id, jti=jti, expires_at=expires_at))
    except IntegrityError:
        return False
    return True
