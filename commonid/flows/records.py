"""Verification records: made with the completion they record, read and ended by their
provider, purged after the retention it declared (commonid.records; docs/compliance.md).

Only these functions touch ``commonid.store.records``: the REST API, the CLI and
the purge reach records through them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy.orm import Session as DbSession

from commonid import auditing
from commonid.card_check import CheckedCard
from commonid.problems import Problem
from commonid.records.content import (
    IDENTITY,
    REUSE,
    certificate_section,
    record_content,
    record_hash,
    retain_until,
    revocation_section,
    verification_section,
)
from commonid.runtime import Runtime
from commonid.store import records
from commonid.store.encryption import AttributeCipher, Sealed, binding
from commonid.store.ids import new_id
from commonid.store.models import VerificationRecord
from commonid.store.rows import ProviderRow, SessionRow

RECORD_CREATED = "record.created"


@dataclass(frozen=True)
class StoredRecord:
    """A record as its provider gets it: the content, its hash, its retention."""

    content: dict[str, Any]
    record_hash: str
    relationship_ended_on: date | None
    retain_until: datetime | None

    def to_json(self) -> dict[str, Any]:
        return {
            "record": self.content,
            "record_hash": self.record_hash,
            "relationship_ended_on": (
                self.relationship_ended_on.isoformat() if self.relationship_ended_on else None
            ),
            "retain_until": self.retain_until.isoformat() if self.retain_until else None,
        }


def _binding(record_id: str) -> bytes:
    return binding("verification_record", record_id)


def _open(cipher: AttributeCipher, row: VerificationRecord) -> dict[str, Any]:
    plaintext = cipher.open(Sealed(row.key_id, row.content_encrypted), binding=_binding(row.id))
    content: dict[str, Any] = json.loads(plaintext)
    return content


def _stored(cipher: AttributeCipher, row: VerificationRecord) -> StoredRecord:
    return StoredRecord(
        _open(cipher, row), row.record_hash, row.relationship_ended_on, row.retain_until
    )


def record_completion(
    runtime: Runtime,
    db: DbSession,
    *,
    session: SessionRow,
    provider: ProviderRow,
    kiosk_id: str | None,
    person_id: str,
    subject_id: str,
    checked: CheckedCard,
    attributes: dict[str, Any] | None,
    consented: set[str],
    reused: bool,
    now: datetime,
) -> tuple[str, dict[str, Any]] | None:
    """The record of a completed identity verification (the card's signature certificate
    checked now) or reuse (citing the identity verification it relies on), stored in
    the completion's transaction; returns its audit event. None for what is neither
    (an authentication alone). It holds only the attributes the person consented to
    give this provider."""
    record_id = new_id("vrc")
    source_id: str | None = None
    if not reused and checked.sign is not None and attributes is not None:
        kind = IDENTITY
        validation = checked.sign.validation
        certificate = checked.sign.certificate
        verification: dict[str, Any] | None = verification_section(
            verified_at=now,
            attributes={name: value for name, value in attributes.items() if name in consented},
            certificate=certificate_section(
                issuer=certificate.issuer.rfc4514_string(),
                serial_hex=format(certificate.serial_number, "x"),
                not_before=certificate.not_valid_before_utc,
                not_after=certificate.not_valid_after_utc,
                sha256=checked.sign.fingerprint_sha256,
            ),
            signed_data_sha256=hashlib.sha256(checked.signed_data).hexdigest(),
            revocation=revocation_section(validation.revocation, validation.validated_at),
        )
    elif reused:
        kind = REUSE
        source = records.latest_identity_record(db, person_id)
        # An identity verified before records were kept has none to cite.
        verification = _open(runtime.cipher, source)["verification"] if source is not None else None
        source_id = source.id if source is not None else None
        if verification is not None:
            # The first provider's record may hold more than this one was given.
            person = verification["person"]
            verification["person"] = {n: v for n, v in person.items() if n in consented}
    else:
        return None
    content = record_content(
        record_id=record_id,
        kind=kind,
        session_id=session.id,
        provider={
            "id": provider.id,
            "name": provider.name,
            "reference": session.provider_reference,
        },
        verifier={
            "service": runtime.service_did,
            "kiosk_id": kiosk_id,
            # The kiosk's staff are not identified to the service (docs/compliance.md).
            "staff": None,
            "authentication_certificate_sha256": checked.auth.fingerprint_sha256,
        },
        subject_id=subject_id,
        recorded_at=now,
        verification=verification,
        source_record_id=source_id,
    )
    digest = record_hash(content)
    sealed = runtime.cipher.seal(
        json.dumps(content, ensure_ascii=False).encode(), binding=_binding(record_id)
    )
    records.add(
        db,
        VerificationRecord(
            id=record_id,
            provider_id=provider.id,
            session_id=session.id,
            person_id=person_id,
            subject_id=subject_id,
            kind=kind,
            verified_at=now,
            key_id=sealed.key_id,
            content_encrypted=sealed.blob,
            record_hash=digest,
            created_at=now,
        ),
    )
    return (
        RECORD_CREATED,
        {
            "record_id": record_id,
            "provider_id": provider.id,
            "session_id": session.id,
            "kind": kind,
            "record_hash": digest,
        },
    )


def provider_records(
    cipher: AttributeCipher, db: DbSession, provider_id: str, start: datetime, end: datetime
) -> list[StoredRecord]:
    """The provider's records verified in [start, end) (the API and the CLI export)."""
    return [_stored(cipher, row) for row in records.for_provider(db, provider_id, start, end)]


def provider_record(
    cipher: AttributeCipher, db: DbSession, provider_id: str, record_id: str
) -> StoredRecord:
    row = records.one_for_provider(db, provider_id, record_id)
    if row is None:
        raise Problem("record_not_found")
    return _stored(cipher, row)


def attribute_history(
    cipher: AttributeCipher, db: DbSession, provider_id: str, subject_id: str
) -> list[dict[str, Any]]:
    """The attributes as each of the provider's records has them, newest first: a
    version lives exactly as long as the record that cites it."""
    history = []
    for row in records.of_subject(db, provider_id, subject_id):
        verification = _open(cipher, row).get("verification") or {}
        history.append(
            {
                "record_id": row.id,
                "kind": row.kind,
                "recorded_at": row.verified_at,
                "verified_at": verification.get("verified_at"),
                "attributes": verification.get("person", {}),
            }
        )
    return history


def end_relationship(
    runtime: Runtime, db: DbSession, provider: ProviderRow, subject_id: str, ended_on: date
) -> tuple[int, datetime]:
    """The provider's business relationship with this customer ended: its records are
    kept until seven years after, then purged."""
    if ended_on > runtime.clock().date():
        raise Problem("invalid_request", "the relationship's end cannot be in the future")
    keep_until = retain_until(ended_on)
    ended = records.end_relationship(
        db, provider.id, subject_id, ended_on=ended_on, retain_until=keep_until
    )
    if not ended:
        raise Problem("record_not_found", "no verification record for this subject")
    auditing.record(
        runtime,
        db,
        [
            (
                "record.relationship_ended",
                {"provider_id": provider.id, "records": len(ended), "retain_until": keep_until},
            )
        ],
    )
    return len(ended), keep_until


def purge_expired(
    db: DbSession,
    *,
    now: datetime,
    audit: Callable[[list[tuple[str, dict[str, Any]]]], None],
) -> int:
    """Delete records past their retention, each deletion in the audit log (``audit``
    appends in this transaction: the service's log, or the CLI's)."""
    expired = records.expired(db, now)
    events = [
        (
            "record.purged",
            {"record_id": row.id, "provider_id": row.provider_id, "record_hash": row.record_hash},
        )
        for row in expired
    ]
    deleted = records.delete(db, [row.id for row in expired])
    if events:
        audit(events)
    return deleted
