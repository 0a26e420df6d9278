"""Wallet credentials in the store: token status lists, offers, proof nonces,
issued SD-JWT VCs (their status only) and providers' presentation requests."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session as DbSession

from commonid.store.ids import hash_credential
from commonid.store.models import (
    CredentialOffer,
    PresentationRequest,
    TokenStatusListRow,
    WalletCredential,
    WalletNonce,
)
from commonid.store.status_lists import locked_list_row
from did.token_status import TokenStatus, TokenStatusList


def token_list_uri(base_url: str, list_id: str) -> str:
    return f"{base_url.rstrip('/')}/v1/token-status-lists/{list_id}"


def ensure_token_list(db: DbSession, list_id: str, *, base_url: str, now: datetime) -> None:
    if db.get(TokenStatusListRow, list_id) is not None:
        return
    status_list = TokenStatusList.new(token_list_uri(base_url, list_id))
    try:
        with db.begin_nested():
            db.add(
                TokenStatusListRow(
                    id=list_id,
                    uri=status_list.uri,
                    serialized=status_list.to_bytes(),
                    updated_at=now,
                )
            )
    except IntegrityError:  # another worker made it first
        pass


def load_token_list_for_update(
    db: DbSession, list_id: str, *, now: datetime
) -> tuple[TokenStatusListRow, TokenStatusList]:
    """The list's row, locked until commit (status_lists.locked_list_row), and the list."""
    row = locked_list_row(db, TokenStatusListRow, list_id, now=now)
    return row, TokenStatusList.from_bytes(row.serialized)


def save_token_list(
    row: TokenStatusListRow, status_list: TokenStatusList, *, now: datetime
) -> None:
    row.serialized = status_list.to_bytes()
    row.updated_at = now


def token_list(db: DbSession, list_id: str) -> TokenStatusList | None:
    row = db.get(TokenStatusListRow, list_id)
    return TokenStatusList.from_bytes(row.serialized) if row is not None else None


# --- offers, tokens, nonces ---------------------------------------------------


def offer_by_code(db: DbSession, code: str) -> CredentialOffer | None:
    return db.scalar(
        sa.select(CredentialOffer)
        .where(CredentialOffer.code_hash == hash_credential(code))
        .with_for_update()
    )


def offer_by_access_token(db: DbSession, token: str) -> CredentialOffer | None:
    return db.scalar(
        sa.select(CredentialOffer)
        .where(CredentialOffer.access_token_hash == hash_credential(token))
        .with_for_update()
    )


def offer_of_session(db: DbSession, session_id: str) -> CredentialOffer | None:
    return db.scalar(sa.select(CredentialOffer).where(CredentialOffer.session_id == session_id))


def add_nonce(db: DbSession, nonce: str, *, expires_at: datetime) -> None:
    db.add(WalletNonce(nonce_hash=hash_credential(nonce), expires_at=expires_at))


def consume_nonce(db: DbSession, nonce: str, *, now: datetime) -> bool:
    """True once for a nonce the service gave out that has not expired."""
    taken = db.execute(
        sa.delete(WalletNonce).where(
            WalletNonce.nonce_hash == hash_credential(nonce), WalletNonce.expires_at > now
        )
    )
    return taken.rowcount == 1


def purge_expired(db: DbSession, *, now: datetime) -> None:
    db.execute(sa.delete(WalletNonce).where(WalletNonce.expires_at <= now))


# --- issued wallet credentials ---------------------------------------------------


def live_wallet_credentials(
    db: DbSession, *, person_id: str | None = None, serial_hash: str | None = None
) -> list[WalletCredential]:
    query = sa.select(WalletCredential).where(WalletCredential.revoked_at.is_(None))
    if person_id is not None:
        query = query.where(WalletCredential.person_id == person_id)
    if serial_hash is not None:
        query = query.where(WalletCredential.certificate_serial_hash == serial_hash)
    return list(db.scalars(query))


def credential_at(db: DbSession, list_id: str, index: int) -> WalletCredential | None:
    """The wallet credential whose status is at ``index`` of list ``list_id``."""
    return db.scalar(
        sa.select(WalletCredential).where(
            WalletCredential.status_list_id == list_id, WalletCredential.status_index == index
        )
    )


def set_statuses(
    db: DbSession,
    issued: list[WalletCredential],
    status: TokenStatus,
    *,
    now: datetime,
) -> list[WalletCredential]:
    """Set each credential's status in its list; returns those that changed."""
    changed: list[WalletCredential] = []
    for list_id in sorted({credential.status_list_id for credential in issued}):
        row, status_list = load_token_list_for_update(db, list_id, now=now)
        for credential in issued:
            if credential.status_list_id == list_id and status_list.set_status(
                credential.status_index, status
            ):
                changed.append(credential)
        save_token_list(row, status_list, now=now)
    return changed


def presentation_request(db: DbSession, request_id: str) -> PresentationRequest | None:
    return db.get(PresentationRequest, request_id)


def presentation_request_by_state(db: DbSession, state: str) -> PresentationRequest | None:
    return db.scalar(
        sa.select(PresentationRequest).where(PresentationRequest.state == state).with_for_update()
    )
