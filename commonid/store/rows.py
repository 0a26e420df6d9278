"""Plain rows of the tables every flow reads: providers, kiosks, sessions.

The hot path (create, consent, card response, result) reads these with Core
SELECTs into slotted dataclasses instead of ORM objects: loading an ORM object
cost about 250 µs of CPU, four times the query itself, and a flow loaded ten
(docs/service.md, Performance). They are detached values: nothing written to
one reaches the database. Every change goes through a statement of its
repository (commonid.store.sessions, commonid.store.accounts), which then
brings the row up to date where the caller keeps using it.

Each dataclass has exactly the columns of its table, in the same names
(tests/service/test_rows.py holds them to it).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.orm import Session as DbSession

from commonid.store.models import Kiosk, Provider, Session


@dataclass(frozen=True, slots=True)
class ProviderRow:
    id: str
    name: str
    api_key_hash: str
    allowed_claims: list[str]
    reuse_max_age_seconds: int
    webhook_url: str | None
    webhook_secret_encrypted: bytes | None
    webhook_secret_key_id: str | None
    disabled: bool
    created_at: datetime


@dataclass(frozen=True, slots=True)
class KioskRow:
    id: str
    name: str
    credential_hash: str
    disabled: bool
    created_at: datetime


@dataclass(slots=True)
class SessionRow:
    """Mutable only so that a transition can record what its UPDATE wrote."""

    id: str
    provider_id: str
    mode: str
    claims: list[str]
    purpose: str
    reuse: bool
    user_code: str
    nonce: str
    created_at: datetime
    expires_at: datetime
    status: str
    kiosk_id: str | None
    consent_claims: list[str] | None
    consented_at: datetime | None
    consumed_at: datetime | None
    completed_at: datetime | None
    person_id: str | None
    reason_code: str | None
    result_key_id: str | None
    result_encrypted: bytes | None
    document: str | None
    provider_reference: str | None = None


R = TypeVar("R")


def select_all(table: sa.Table) -> sa.Select[Any]:
    """SELECT every column of a table, in its declared order (a row's field order)."""
    return sa.select(*table.columns)


def one_row(
    db: DbSession, statement: sa.Select[Any], parameters: dict[str, Any], kind: type[R]
) -> R | None:
    """The statement's first row as ``kind``, or None. On the session's connection,
    so it takes part in the session's transaction (and the SQLite writer gate)."""
    row = db.connection().execute(statement, parameters).first()
    return kind(*row) if row is not None else None


PROVIDERS = Provider.__table__
KIOSKS = Kiosk.__table__
SESSIONS = Session.__table__
