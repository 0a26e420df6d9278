"""Verification sessions and their single-use state machine.

pending --consent--> awaiting_card --one card response--> verified |
reuse_granted | reverification_required | rejected; or, when the consent comes
with the card response, pending --both at once--> one of those.
(The card response takes the session and writes its outcome in one
conditional UPDATE, complete_card_response. ``processing`` is no longer
written; rows of earlier versions may still carry it, and read as
awaiting_card until they expire.)
Every transition is a conditional UPDATE on the current status, so concurrent
requests (two kiosks, two workers) cannot both move a session forward.
"""

from __future__ import annotations

import base64
import functools
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session as DbSession

from commonid.store import documents
from commonid.store.ids import new_id, new_user_code
from commonid.store.models import RejectedResponse, Session
from commonid.store.rows import (
    KIOSKS,
    PROVIDERS,
    SESSIONS,
    KioskRow,
    ProviderRow,
    SessionRow,
    one_row,
    select_all,
)

NONCE_BYTES = 32


class SessionStatus(StrEnum):
    PENDING = "pending"
    AWAITING_CARD = "awaiting_card"
    PROCESSING = "processing"
    VERIFIED = "verified"
    REUSE_GRANTED = "reuse_granted"
    REVERIFICATION_REQUIRED = "reverification_required"
    REJECTED = "rejected"
    EXPIRED = "expired"


OPEN_STATUSES = (SessionStatus.PENDING, SessionStatus.AWAITING_CARD)
FINAL_STATUSES = (
    SessionStatus.VERIFIED,
    SessionStatus.REUSE_GRANTED,
    SessionStatus.REVERIFICATION_REQUIRED,
    SessionStatus.REJECTED,
)


def _b64url_nonce() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(NONCE_BYTES)).rstrip(b"=").decode()


def create_session(
    db: DbSession,
    *,
    provider_id: str,
    mode: str,
    claims: list[str],
    purpose: str,
    reuse: bool,
    now: datetime,
    ttl: timedelta,
    document: str | None = None,
    provider_reference: str | None = None,
) -> SessionRow:
    # Whole seconds: the expiry is part of the signed challenge and must
    # round-trip through every database exactly.
    now = now.replace(microsecond=0)
    insert = _INSERT_UNLESS_CODE_TAKEN[db.get_bind().dialect.name]
    for _attempt in range(5):
        values: dict[str, object] = dict.fromkeys(_SESSION_COLUMNS)
        values.update(
            id=new_id("ses"),
            provider_id=provider_id,
            mode=mode,
            claims=claims,
            purpose=purpose,
            reuse=reuse,
            document=document,
            provider_reference=provider_reference,
            user_code=new_user_code(),
            nonce=_b64url_nonce(),
            created_at=now,
            expires_at=now + ttl,
            status=SessionStatus.PENDING.value,
        )
        # One statement instead of SAVEPOINT, INSERT, RELEASE; a user code collision
        # inserts nothing and the loop draws again.
        if db.connection().execute(insert, values).first() is not None:
            return SessionRow(**values)  # type: ignore[arg-type]
    raise RuntimeError("could not draw a free user code")


_SESSION_COLUMNS = tuple(column.key for column in SESSIONS.columns)
# RETURNING tells whether the row went in (rowcount is not reliable for this on psycopg).
_INSERT_UNLESS_CODE_TAKEN = {
    name: dialect.insert(SESSIONS)
    .on_conflict_do_nothing(index_elements=["user_code"])
    .returning(SESSIONS.c.id)
    for name, dialect in (("postgresql", postgresql), ("sqlite", sqlite))
}
_SESSION_BY_ID = select_all(SESSIONS).where(SESSIONS.c.id == sa.bindparam("id"))
_SESSION_BY_USER_CODE = select_all(SESSIONS).where(SESSIONS.c.user_code == sa.bindparam("code"))


def get_session(db: DbSession, session_id: str) -> SessionRow | None:
    return one_row(db, _SESSION_BY_ID, {"id": session_id}, SessionRow)


_SESSIONS_WITH_PROVIDERS = SESSIONS.join(PROVIDERS, PROVIDERS.c.id == SESSIONS.c.provider_id)
_SESSION_AND_PROVIDER = (
    sa.select(*SESSIONS.columns, *PROVIDERS.columns)
    .select_from(_SESSIONS_WITH_PROVIDERS)
    .where(SESSIONS.c.id == sa.bindparam("id"))
)


def _session_with_provider(values: Sequence[Any]) -> tuple[SessionRow, ProviderRow]:
    """A session's columns followed by its provider's, as rows."""
    split = len(SESSIONS.columns)
    return SessionRow(*values[:split]), ProviderRow(*values[split:])


def session_and_provider(db: DbSession, session_id: str) -> tuple[SessionRow, ProviderRow] | None:
    """The session and the provider that asked for it, in one query."""
    row = db.connection().execute(_SESSION_AND_PROVIDER, {"id": session_id}).first()
    return _session_with_provider(row) if row is not None else None


_PROVIDER_AND_SESSION = (
    sa.select(*PROVIDERS.columns, *SESSIONS.columns)
    .select_from(
        PROVIDERS.outerjoin(
            SESSIONS,
            sa.and_(
                SESSIONS.c.id == sa.bindparam("session_id"),
                SESSIONS.c.provider_id == PROVIDERS.c.id,
            ),
        )
    )
    .where(PROVIDERS.c.api_key_hash == sa.bindparam("key_hash"))
)


def provider_and_session(
    db: DbSession, key_hash: str, session_id: str
) -> tuple[ProviderRow, SessionRow | None] | None:
    """The provider holding an API key and, in the same query, its session ``session_id``
    (None when missing or another provider's); None when no provider holds the key."""
    row = (
        db.connection()
        .execute(_PROVIDER_AND_SESSION, {"key_hash": key_hash, "session_id": session_id})
        .first()
    )
    if row is None:
        return None
    split = len(PROVIDERS.columns)
    session = SessionRow(*row[split:]) if row[split] is not None else None
    return ProviderRow(*row[:split]), session


_KIOSK_AND_SESSION = (
    sa.select(*KIOSKS.columns, *SESSIONS.columns, *PROVIDERS.columns)
    .select_from(
        KIOSKS.outerjoin(_SESSIONS_WITH_PROVIDERS, SESSIONS.c.id == sa.bindparam("session_id"))
    )
    .where(KIOSKS.c.credential_hash == sa.bindparam("credential_hash"))
)


def kiosk_and_session(
    db: DbSession, credential_hash: str, session_id: str
) -> tuple[KioskRow, tuple[SessionRow, ProviderRow] | None] | None:
    """The kiosk holding a credential and, in the same query, the session ``session_id``
    with its provider (None when there is no such session); None for an unknown kiosk."""
    parameters = {"credential_hash": credential_hash, "session_id": session_id}
    row = db.connection().execute(_KIOSK_AND_SESSION, parameters).first()
    if row is None:
        return None
    split = len(KIOSKS.columns)
    kiosk = KioskRow(*row[:split])
    return kiosk, _session_with_provider(row[split:]) if row[split] is not None else None


def session_by_user_code(db: DbSession, user_code: str) -> SessionRow | None:
    return one_row(db, _SESSION_BY_USER_CODE, {"code": user_code.upper()}, SessionRow)


def effective_status(session: SessionRow, now: datetime) -> SessionStatus:
    """The status as callers see it: an open session past its expiry is expired."""
    status = SessionStatus(session.status)
    # A session stuck in processing (a worker died mid-check) expires like an open one.
    if status not in FINAL_STATUSES and now >= session.expires_at:
        return SessionStatus.EXPIRED
    if status is SessionStatus.PROCESSING:
        return SessionStatus.AWAITING_CARD
    return status


@functools.cache
def _transition_statement(columns: tuple[str, ...], *, consent_to_all: bool = False) -> sa.Update:
    """The conditional UPDATE of a transition, built once per set of columns (Core:
    building and caching a statement per call cost more than running it).
    ``consent_to_all`` copies the requested claims into ``consent_claims``."""
    values: dict[str, Any] = {
        name: sa.bindparam(f"v_{name}", type_=SESSIONS.c[name].type) for name in columns
    }
    if consent_to_all:
        values["consent_claims"] = SESSIONS.c.claims
    return (
        sa.update(SESSIONS)
        .where(
            SESSIONS.c.id == sa.bindparam("w_id"),
            SESSIONS.c.status == sa.bindparam("w_status"),
            SESSIONS.c.expires_at > sa.bindparam("w_now", type_=SESSIONS.c.expires_at.type),
        )
        .values(values)
    )


@functools.cache
def _transition_returning(columns: tuple[str, ...], *, consent_to_all: bool) -> sa.Update:
    return _transition_statement(columns, consent_to_all=consent_to_all).returning(
        *SESSIONS.columns
    )


def _parameters(
    session_id: str, from_status: SessionStatus, now: datetime, values: dict[str, object]
) -> dict[str, object]:
    parameters = {f"v_{name}": value for name, value in values.items()}
    parameters.update(w_id=session_id, w_status=from_status.value, w_now=now)
    return parameters


def _transition(
    db: DbSession, session_id: str, *, from_status: SessionStatus, now: datetime, **values: object
) -> bool:
    statement = _transition_statement(tuple(sorted(values)))
    parameters = _parameters(session_id, from_status, now, values)
    return db.connection().execute(statement, parameters).rowcount == 1


def _transition_to_row(
    db: DbSession,
    session_id: str,
    *,
    from_status: SessionStatus,
    now: datetime,
    consent_to_all: bool = False,
    **values: object,
) -> SessionRow | None:
    """A transition that returns the session as it now is (UPDATE ... RETURNING: one
    statement, where reading it first would be two), or None when it did not apply."""
    statement = _transition_returning(tuple(sorted(values)), consent_to_all=consent_to_all)
    parameters = _parameters(session_id, from_status, now, values)
    row = db.connection().execute(statement, parameters).first()
    return SessionRow(*row) if row is not None else None


def record_consent(
    db: DbSession, session_id: str, *, kiosk_id: str, claims: list[str] | None, now: datetime
) -> SessionRow | None:
    """pending -> awaiting_card, consenting to ``claims`` (None: all the session asks
    for). The session as updated, or None when it is missing, expired or not pending."""
    values: dict[str, object] = {
        "status": SessionStatus.AWAITING_CARD.value,
        "kiosk_id": kiosk_id,
        "consented_at": now,
    }
    if claims is not None:
        values["consent_claims"] = claims
    return _transition_to_row(
        db,
        session_id,
        from_status=SessionStatus.PENDING,
        now=now,
        consent_to_all=claims is None,
        **values,
    )


def decline_consent(
    db: DbSession, session_id: str, *, kiosk_id: str, now: datetime
) -> SessionRow | None:
    """pending -> rejected (consent_declined); as record_consent."""
    return _transition_to_row(
        db,
        session_id,
        from_status=SessionStatus.PENDING,
        now=now,
        status=SessionStatus.REJECTED.value,
        kiosk_id=kiosk_id,
        reason_code="consent_declined",
        completed_at=now,
    )


@dataclass(frozen=True)
class ConsentWithCard:
    """A consent that comes with the card response itself (one kiosk request, not two):
    written by the response's own UPDATE, from pending."""

    kiosk_id: str
    claims: list[str]
    at: datetime

    def apply(self, session: SessionRow) -> None:
        """Show it on the loaded session (its status stays pending until the UPDATE)."""
        session.kiosk_id = self.kiosk_id
        session.consent_claims = self.claims
        session.consented_at = self.at


def complete_card_response(
    db: DbSession,
    session: SessionRow,
    *,
    status: SessionStatus,
    now: datetime,
    person_id: str | None = None,
    reason_code: str | None = None,
    result_key_id: str | None = None,
    result_encrypted: bytes | None = None,
    consent: ConsentWithCard | None = None,
) -> bool:
    """Take the session's one card response and store its outcome, in one conditional
    UPDATE: False (nothing written) when another response took it first or it expired.
    With ``consent``, the session goes from pending and the consent is written too.
    On PostgreSQL the row stays locked until commit."""
    values: dict[str, object] = {
        "status": status.value,
        "consumed_at": now,
        "completed_at": now,
        "person_id": person_id,
        "reason_code": reason_code,
        "result_key_id": result_key_id,
        "result_encrypted": result_encrypted,
    }
    from_status = SessionStatus.AWAITING_CARD
    if consent is not None:
        from_status = SessionStatus.PENDING
        values.update(
            kiosk_id=consent.kiosk_id, consent_claims=consent.claims, consented_at=consent.at
        )
    if not _transition(db, session.id, from_status=from_status, now=now, **values):
        return False
    for name, value in values.items():  # what was written, without reading it back
        setattr(session, name, value)
    return True


def record_rejected_response(
    db: DbSession, session_id: str, *, kiosk_id: str | None, code: str, now: datetime
) -> None:
    db.add(RejectedResponse(session_id=session_id, kiosk_id=kiosk_id, code=code, at=now))
    db.flush()


def rejected_response_codes(db: DbSession, session_id: str) -> list[str]:
    return list(
        db.scalars(
            sa.select(RejectedResponse.code)
            .where(RejectedResponse.session_id == session_id)
            .order_by(RejectedResponse.id)
        )
    )


def forget_results(db: DbSession, *, provider_id: str, person_ids: set[str]) -> int:
    """Drop a provider's stored results about these persons (consent withdrawal), with the
    documents they signed for it."""
    documents.delete_for_sessions(
        db,
        sa.select(Session.id).where(
            Session.provider_id == provider_id, Session.person_id.in_(person_ids)
        ),
    )
    result = db.execute(
        sa.update(Session)
        .where(Session.provider_id == provider_id, Session.person_id.in_(person_ids))
        .values(result_encrypted=None, result_key_id=None, person_id=None)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount
