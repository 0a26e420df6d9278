"""Status lists (did.status.StatusList) persisted in the store, allocated under a row lock."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session as DbSession

from commonid.store.models import IssuedCredential, StatusList
from did.status import StatusList as Bitstring
from did.status import StatusPurpose

REVOCATION_LIST_ID = "revocation-1"
SUSPENSION_LIST_ID = "suspension-1"


def list_url(base_url: str, list_id: str) -> str:
    return f"{base_url.rstrip('/')}/v1/status-lists/{list_id}"


def load_for_update(
    db: DbSession, list_id: str, purpose: StatusPurpose, *, base_url: str, now: datetime
) -> tuple[StatusList, Bitstring]:
    """The list's row (locked until commit) and its bitstring; created on first use."""
    row = db.scalar(sa.select(StatusList).where(StatusList.id == list_id).with_for_update())
    if row is None:
        bitstring = Bitstring.new(list_url(base_url, list_id), purpose)
        row = StatusList(
            id=list_id,
            purpose=purpose.value,
            url=bitstring.url,
            serialized=bitstring.to_bytes(),
            updated_at=now,
        )
        db.add(row)
        db.flush()
        return row, bitstring
    return row, Bitstring.from_bytes(row.serialized)


def save(row: StatusList, bitstring: Bitstring, *, now: datetime) -> None:
    row.serialized = bitstring.to_bytes()
    row.updated_at = now


def get(db: DbSession, list_id: str) -> Bitstring | None:
    row = db.get(StatusList, list_id)
    return Bitstring.from_bytes(row.serialized) if row is not None else None


def credentials_of_certificate(db: DbSession, serial_hash: str) -> list[IssuedCredential]:
    return list(
        db.scalars(
            sa.select(IssuedCredential).where(
                IssuedCredential.certificate_serial_hash == serial_hash,
                IssuedCredential.revoked_at.is_(None),
            )
        )
    )
