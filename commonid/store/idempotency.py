"""Idempotency-Key records: a retried POST gets the first answer back."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session as DbSession

from commonid.store.models import IdempotencyKey


@dataclass(frozen=True)
class StoredResponse:
    request_hash: str
    status_code: int
    response: dict[str, Any]


def find(db: DbSession, *, provider_id: str, key: str) -> StoredResponse | None:
    row = db.get(IdempotencyKey, (provider_id, key))
    if row is None:
        return None
    return StoredResponse(row.request_hash, row.status_code, row.response)


def remember(
    db: DbSession,
    *,
    provider_id: str,
    key: str,
    request_hash: str,
    status_code: int,
    response: dict[str, Any],
    now: datetime,
) -> bool:
    """Store the first response for this key; False when a concurrent request beat us."""
    try:
        with db.begin_nested():
            db.add(
                IdempotencyKey(
                    provider_id=provider_id,
                    key=key,
                    request_hash=request_hash,
                    status_code=status_code,
                    response=response,
                    created_at=now,
                )
            )
        return True
    except IntegrityError:
        return False
