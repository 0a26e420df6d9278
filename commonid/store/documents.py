"""The documents sessions ask the person to sign: issued once, signed once."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session as DbSession

from commonid.documents.storage import SealedDocument
from commonid.store.models import SignedDocument


def document_of_session(db: DbSession, session_id: str) -> SignedDocument | None:
    return db.scalar(sa.select(SignedDocument).where(SignedDocument.session_id == session_id))


def issue(db: DbSession, row: SignedDocument) -> SignedDocument:
    """Store a newly issued document; a concurrent request that issued first wins."""
    try:
        with db.begin_nested():
            db.add(row)
        return row
    except IntegrityError:
        existing = document_of_session(db, row.session_id)
        if existing is None:
            raise
        return existing


def record_signed(db: DbSession, sealed: SealedDocument, *, now: datetime) -> bool:
    """Store the signed document, once: False when it was already signed."""
    result = db.execute(
        sa.update(SignedDocument)
        .where(
            SignedDocument.id == sealed.document_id,
            SignedDocument.signed_at.is_(None),
            SignedDocument.declined_at.is_(None),
        )
        .values(
            sha256=sealed.sha256,
            size=sealed.size,
            key_id=sealed.key_id,
            ciphertext=sealed.ciphertext,
            signed_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1


def record_declined(db: DbSession, document_id: str, *, now: datetime) -> bool:
    """The person declined to sign, once: False when it was already signed or declined."""
    result = db.execute(
        sa.update(SignedDocument)
        .where(
            SignedDocument.id == document_id,
            SignedDocument.signed_at.is_(None),
            SignedDocument.declined_at.is_(None),
        )
        .values(declined_at=now)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1


def sealed(row: SignedDocument) -> SealedDocument:
    """The stored signed document as commonid.documents.storage opens it."""
    assert row.sha256 and row.size is not None and row.key_id and row.ciphertext is not None
    return SealedDocument(
        document_id=row.id,
        session_id=row.session_id,
        sha256=row.sha256,
        size=row.size,
        key_id=row.key_id,
        ciphertext=row.ciphertext,
    )


def delete_for_sessions(db: DbSession, session_ids: sa.Select) -> int:
    """Delete the documents of the sessions ``session_ids`` selects (retention, withdrawal)."""
    result = db.execute(
        sa.delete(SignedDocument)
        .where(SignedDocument.session_id.in_(session_ids))
        .execution_options(synchronize_session=False)
    )
    return result.rowcount
