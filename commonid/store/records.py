"""Verification records: stored once at completion, read by their provider, ended and
purged by the retention the provider declares. Content is sealed by the caller."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session as DbSession

from commonid.store.models import VerificationRecord


def add(db: DbSession, record: VerificationRecord) -> None:
    db.add(record)


def for_provider(
    db: DbSession, provider_id: str, start: datetime, end: datetime
) -> Sequence[VerificationRecord]:
    """The provider's records verified in [start, end), oldest first."""
    return db.scalars(
        sa.select(VerificationRecord)
        .where(
            VerificationRecord.provider_id == provider_id,
            VerificationRecord.verified_at >= start,
            VerificationRecord.verified_at < end,
        )
        .order_by(VerificationRecord.verified_at, VerificationRecord.id)
    ).all()


def one_for_provider(db: DbSession, provider_id: str, record_id: str) -> VerificationRecord | None:
    record = db.get(VerificationRecord, record_id)
    return record if record is not None and record.provider_id == provider_id else None


def latest_identity_record(db: DbSession, person_id: str) -> VerificationRecord | None:
    """The person's most recent identity verification, at whichever provider."""
    return db.scalar(
        sa.select(VerificationRecord)
        .where(
            VerificationRecord.person_id == person_id,
            VerificationRecord.kind == "identity_verification",
        )
        .order_by(VerificationRecord.verified_at.desc())
        .limit(1)
    )


def end_relationship(
    db: DbSession, provider_id: str, subject_id: str, *, ended_on: date, retain_until: datetime
) -> Sequence[VerificationRecord]:
    """Mark the end of the provider's relationship with a customer on all their records."""
    records = db.scalars(
        sa.select(VerificationRecord).where(
            VerificationRecord.provider_id == provider_id,
            VerificationRecord.subject_id == subject_id,
        )
    ).all()
    for record in records:
        record.relationship_ended_on = ended_on
        record.retain_until = retain_until
    return records


def expired(db: DbSession, now: datetime) -> Sequence[VerificationRecord]:
    return db.scalars(
        sa.select(VerificationRecord).where(VerificationRecord.retain_until < now)
    ).all()


def delete(db: DbSession, record_ids: Sequence[str]) -> int:
    if not record_ids:
        return 0
    return db.execute(
        sa.delete(VerificationRecord).where(VerificationRecord.id.in_(record_ids))
    ).rowcount


def of_subject(db: DbSession, provider_id: str, subject_id: str) -> Sequence[VerificationRecord]:
    """The provider's records of one customer, newest first."""
    return db.scalars(
        sa.select(VerificationRecord)
        .where(
            VerificationRecord.provider_id == provider_id,
            VerificationRecord.subject_id == subject_id,
        )
        .order_by(VerificationRecord.verified_at.desc(), VerificationRecord.id)
    ).all()
