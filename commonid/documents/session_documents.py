"""A session's document in the service: issue it to the kiosk, accept it signed, list, serve.

A provider asks for a document at session creation (``"document": "consent"``,
identity mode). After the consent, the kiosk that took it fetches the
document (generated once and kept: the signed file must extend exactly these
bytes); after the identity verification succeeded, it posts the signed PDF.
The signature must be valid, over this document, and made with the signature
certificate the identity was just verified with, within ``session_ttl`` of
the verification. The signed PDF is stored encrypted and the audit entry is
appended in the same transaction.
"""

from __future__ import annotations

import base64
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session as DbSession

from commonid import auditing
from commonid.documents.attestation import document_attestation
from commonid.documents.consent_pdf import (
    ConsentDocument,
    DocumentTooLongError,
    releases_signed_document,
)
from commonid.documents.service import (
    DOCUMENT_SIGNED_EVENT,
    DocumentDownload,
    DocumentRejectedError,
    PreparedDocument,
    accept_signed_document,
    document_download,
    new_document_id,
    prepare_consent_document,
)
from commonid.problems import Problem
from commonid.runtime import Runtime
from commonid.store import accounts, documents, sessions, webhooks
from commonid.store.models import Certificate, Person, SignedDocument
from commonid.store.rows import KioskRow, SessionRow
from commonid.store.sessions import SessionStatus

log = logging.getLogger(__name__)

DOCUMENT_REJECTED_EVENT = "document.rejected"
# The webhook a provider with a webhook URL gets when the document is in.
DOCUMENT_SIGNED_WEBHOOK = "session.document_signed"
DOCUMENT_DECLINED_EVENT = "document.declined"
DOCUMENT_DECLINED_WEBHOOK = "session.document_declined"


class _Refused(Exception):
    """A refusal to record (metric, rejected_responses row, audit entry) before answering."""

    def __init__(
        self, code: str, detail: str = "", *, certificate_reason: str | None = None
    ) -> None:
        super().__init__(code)
        self.code = code
        self.detail = detail
        self.certificate_reason = certificate_reason


def check_document_fits(*, provider_name: str, purpose: str, claims: list[str]) -> None:
    """At session creation: refuse a purpose the one-page document could not hold."""
    try:
        prepare_consent_document(
            session_id="ses_check",
            provider_name=provider_name,
            purpose=purpose,
            claims=claims,
            created_at=datetime(2000, 1, 1, tzinfo=UTC),
        )
    except DocumentTooLongError:
        raise Problem(
            "document_too_long", "the purpose does not fit on the one-page document"
        ) from None


# --- the kiosk: fetch the document ------------------------------------------------


@dataclass(frozen=True)
class IssuedDocument:
    row: SignedDocument
    provider_name: str
    claims: list[str]
    purpose: str


def _kiosk_session(db: DbSession, session_id: str, kiosk: KioskRow) -> SessionRow:
    session = sessions.get_session(db, session_id)
    # Only the kiosk that took the consent works on the session.
    if session is None or session.kiosk_id != kiosk.id:
        raise _Refused("session_not_found")
    if session.document is None:
        raise _Refused("document_not_requested")
    return session


def sign_by(runtime: Runtime, session: SessionRow) -> datetime | None:
    """Until when the person can sign: session_ttl after the identity verification."""
    if session.status != SessionStatus.VERIFIED.value or session.completed_at is None:
        return None
    return session.completed_at + runtime.session_ttl


def _check_signable(runtime: Runtime, session: SessionRow, now: datetime, *, issuing: bool) -> None:
    status = sessions.effective_status(session, now)
    if status is SessionStatus.EXPIRED:
        raise _Refused("session_expired")
    if issuing and status is SessionStatus.AWAITING_CARD:
        return  # the kiosk may show the document before the card steps
    if status is not SessionStatus.VERIFIED:
        raise _Refused("identity_not_verified", f"the session is {status.value}")
    deadline = sign_by(runtime, session)
    if deadline is not None and now >= deadline:
        raise _Refused("document_signing_closed")


def _content(db: DbSession, session: SessionRow) -> tuple[str, list[str]]:
    provider = accounts.provider_by_id(db, session.provider_id)
    assert provider is not None
    return provider.name, list(session.consent_claims or [])


def issue_document(
    runtime: Runtime, db: DbSession, session_id: str, kiosk: KioskRow
) -> IssuedDocument:
    """The session's document for the kiosk, generated on the first request and kept."""
    now = runtime.clock()
    try:
        session = _kiosk_session(db, session_id, kiosk)
        _check_signable(runtime, session, now, issuing=True)
    except _Refused as refused:
        raise Problem(refused.code, refused.detail) from None
    provider_name, claims = _content(db, session)
    row = documents.document_of_session(db, session.id)
    if row is None:
        prepared = prepare_consent_document(
            session_id=session.id,
            provider_name=provider_name,
            purpose=session.purpose,
            claims=claims,
            created_at=now,
            document_id=new_document_id(),
        )
        row = documents.issue(
            db,
            SignedDocument(
                id=prepared.document.document_id,
                session_id=session.id,
                provider_id=session.provider_id,
                kind=session.document,
                unsigned_pdf=prepared.pdf,
                unsigned_sha256=prepared.sha256,
                created_at=now,
            ),
        )
    elif row.signed_at is not None:
        raise Problem("document_already_signed")
    elif row.declined_at is not None:
        raise Problem("document_declined")
    return IssuedDocument(row, provider_name, claims, session.purpose)


def kiosk_view(runtime: Runtime, issued: IssuedDocument) -> dict[str, Any]:
    row = issued.row
    return {
        "document_id": row.id,
        "session_id": row.session_id,
        "kind": row.kind,
        "media_type": "application/pdf",
        "sha256": row.unsigned_sha256,
        "size": len(row.unsigned_pdf),
        "pdf": base64.b64encode(row.unsigned_pdf).decode("ascii"),
        "content": {
            "provider_name": issued.provider_name,
            "purpose": issued.purpose,
            "claims": issued.claims,
            "created_at": row.created_at,
        },
        "timestamp_url": runtime.settings.timestamp_url,
    }


# --- the kiosk: the signed document -------------------------------------------------


def accept_document(
    runtime: Runtime, session_id: str, kiosk: KioskRow, signed_pdf: bytes
) -> SignedDocument:
    """Verify and store the signed document; every refusal is recorded, then raised."""
    with runtime.sessions.begin() as db:
        if sessions.get_session(db, session_id) is None:
            raise Problem("session_not_found")  # nothing to record it against
    try:
        return _accept(runtime, session_id, kiosk, signed_pdf)
    except _Refused as refused:
        _record_rejection(runtime, session_id, kiosk.id, refused)
        extra = (
            {"certificate_reason": refused.certificate_reason}
            if refused.certificate_reason
            else None
        )
        raise Problem(refused.code, refused.detail, extra=extra) from None


def _accept(
    runtime: Runtime, session_id: str, kiosk: KioskRow, signed_pdf: bytes
) -> SignedDocument:
    now = runtime.clock()
    with runtime.sessions.begin() as db:
        session = _kiosk_session(db, session_id, kiosk)
        _check_signable(runtime, session, now, issuing=False)
        row = documents.document_of_session(db, session.id)
        if row is None:
            raise _Refused("document_not_issued")
        if row.signed_at is not None:
            raise _Refused("document_already_signed")
        if row.declined_at is not None:
            raise _Refused("document_declined")
        provider_name, claims = _content(db, session)
        expected_signer = _verified_sign_certificate(db, session)
        prepared = PreparedDocument(
            ConsentDocument(
                document_id=row.id,
                session_id=session.id,
                provider_name=provider_name,
                purpose=session.purpose,
                claims=tuple(claims),
                created_at=row.created_at,
            ),
            row.unsigned_pdf,
        )
    # pyHanko and the path validation: CPU work, outside any transaction.
    try:
        accepted = accept_signed_document(
            prepared,
            signed_pdf,
            policy=runtime.trust_policy,
            at=now,
            cipher=runtime.cipher,
            timestamp_roots=runtime.timestamp_roots,
            require_timestamp=bool(runtime.settings.timestamp_url),
        )
    except DocumentRejectedError as rejected:
        certificate_reason = None
        if rejected.verification is not None and rejected.verification.signatures:
            reason = rejected.verification.signatures[0].certificate.reason.value
            certificate_reason = reason if reason != "valid" else None
        raise _Refused(
            rejected.code, rejected.detail, certificate_reason=certificate_reason
        ) from None
    signer = accepted.verification.signatures[0].certificate.certificate_sha256
    if signer != expected_signer:
        raise _Refused("document_signer_mismatch")
    with runtime.sessions.begin() as db:
        if not documents.record_signed(db, accepted.sealed, now=now):
            stored = False
        else:
            stored = True
            _announce(
                runtime,
                db,
                session,
                row.id,
                DOCUMENT_SIGNED_WEBHOOK,
                (DOCUMENT_SIGNED_EVENT, accepted.audit_event),
                now=now,
            )
    if not stored:  # a concurrent post (or a decline) of the same session won
        with runtime.sessions.begin() as db:
            latest = documents.document_of_session(db, session.id)
        declined = latest is not None and latest.declined_at is not None
        raise _Refused("document_declined" if declined else "document_already_signed")
    runtime.metrics.documents_signed.inc()
    with runtime.sessions.begin() as db:
        signed = documents.document_of_session(db, session.id)
    assert signed is not None
    return signed


def decline_document(runtime: Runtime, session_id: str, kiosk: KioskRow) -> SignedDocument:
    """The person chose not to sign: the provider learns it now, not when the window closes.

    Only at the kiosk that took the consent, for a document it was shown, while it
    could still be signed; a declined document can never be signed afterwards.
    """
    now = runtime.clock()
    with runtime.sessions.begin() as db:
        try:
            session = _kiosk_session(db, session_id, kiosk)
            _check_signable(runtime, session, now, issuing=False)
        except _Refused as refused:
            raise Problem(refused.code, refused.detail) from None
        row = documents.document_of_session(db, session.id)
        if row is None:
            raise Problem("document_not_issued")
        if not documents.record_declined(db, row.id, now=now):
            # Already signed, or already declined: say which.
            db.refresh(row)
            raise Problem(
                "document_already_signed" if row.signed_at is not None else "document_declined"
            )
        _announce(
            runtime,
            db,
            session,
            row.id,
            DOCUMENT_DECLINED_WEBHOOK,
            (
                DOCUMENT_DECLINED_EVENT,
                {"session_id": session.id, "document_id": row.id, "kiosk_id": kiosk.id},
            ),
            now=now,
        )
        db.refresh(row)
        return row


def _announce(
    runtime: Runtime,
    db: DbSession,
    session: SessionRow,
    document_id: str,
    webhook_event: str,
    audit_event: tuple[str, dict[str, Any]],
    *,
    now: datetime,
) -> None:
    """The document was signed or declined: the provider's webhook, then the audit entry
    (last: the append locks the log until this transaction commits)."""
    webhooks.notify(
        db,
        accounts.provider_by_id(db, session.provider_id),
        event_type=webhook_event,
        payload={"session_id": session.id, "document_id": document_id},
        now=now,
    )
    auditing.record(runtime, db, [audit_event])


def _signer_certificate(db: DbSession, session: SessionRow) -> Certificate | None:
    """The sign certificate this session's identity was verified with (the signer's)."""
    person = db.get(Person, session.person_id) if session.person_id else None
    if person is None or person.sign_certificate_id is None:
        return None
    return db.get(Certificate, person.sign_certificate_id)


def _verified_sign_certificate(db: DbSession, session: SessionRow) -> str | None:
    """SHA-256 of the sign certificate this session's identity was verified with."""
    certificate = _signer_certificate(db, session)
    return certificate.fingerprint_sha256 if certificate is not None else None


def _record_rejection(runtime: Runtime, session_id: str, kiosk_id: str, refused: _Refused) -> None:
    """A refused document, in its own transaction. The caller answers the refusal whatever
    happens here: a fault while recording it is logged, never a 500 for a rightly refused
    request (as for card responses, commonid.flows)."""
    runtime.metrics.documents_rejected.labels(refused.code).inc()
    try:
        _record_rejection_in(runtime, session_id, kiosk_id, refused)
    except Exception:
        log.exception("could not record a refused document (%s)", refused.code)


def _record_rejection_in(
    runtime: Runtime, session_id: str, kiosk_id: str, refused: _Refused
) -> None:
    now = runtime.clock()
    with runtime.sessions.begin() as db:
        sessions.record_rejected_response(
            db, session_id, kiosk_id=kiosk_id, code=refused.code, now=now
        )
        auditing.record(
            runtime,
            db,
            [
                (
                    DOCUMENT_REJECTED_EVENT,
                    {
                        "session_id": session_id,
                        "kiosk_id": kiosk_id,
                        "reason_code": refused.code,
                        "certificate_reason_code": refused.certificate_reason,
                    },
                )
            ],
        )


# --- the provider ---------------------------------------------------------------------


def result_fields(runtime: Runtime, db: DbSession, session: SessionRow) -> dict[str, Any]:
    """The session result's ``document`` (what was asked, where it stands) and ``documents``."""
    if session.document is None:
        return {"document": None, "documents": []}
    row = documents.document_of_session(db, session.id)
    now = runtime.clock()
    deadline = sign_by(runtime, session)
    if row is not None and row.signed_at is not None:
        status = "signed"
    elif row is not None and row.declined_at is not None:
        status = "declined"
    elif sessions.effective_status(session, now) in sessions.OPEN_STATUSES:
        status = "pending"
    elif deadline is not None and now < deadline:
        status = "awaiting_signature"
    else:
        status = "not_signed"
    listed = []
    if row is not None and row.signed_at is not None:
        released = releases_signed_document(session.consent_claims or ())
        listed.append(
            {
                "id": row.id,
                "kind": row.kind,
                "media_type": "application/pdf",
                "sha256": row.sha256,
                "size": row.size,
                "signed_at": row.signed_at,
                # The PDF embeds the signature certificate (all four attributes): only a
                # provider consented all four gets it; the others get the service's word.
                "released": released,
                "verification": None
                if released
                else document_attestation(
                    runtime.keyring,
                    row,
                    _signer_certificate(db, session),
                    issued_at=runtime.clock(),
                ),
            }
        )
    return {
        "document": {
            "kind": session.document,
            "status": status,
            "sign_by": deadline if status == "awaiting_signature" else None,
        },
        "documents": listed,
    }


def document_settled(fields: dict[str, Any]) -> bool:
    """Whether a long poll may stop waiting for the document."""
    document = fields.get("document")
    return document is None or document["status"] in ("signed", "declined", "not_signed")


def download(
    runtime: Runtime, db: DbSession, provider_id: str, session_id: str, document_id: str
) -> DocumentDownload:
    """A signed document of the provider's own session (anything else: not found)."""
    session = sessions.get_session(db, session_id)
    if session is None or session.provider_id != provider_id:
        raise Problem("session_not_found")
    row = db.get(SignedDocument, document_id)
    if row is None or row.session_id != session.id or row.signed_at is None:
        raise Problem("document_not_found")
    if not releases_signed_document(session.consent_claims or ()):
        raise Problem(
            "document_withheld",
            "the signed PDF carries the signer's certificate, which discloses more than the "
            "person consented to; the session result's documents[].verification is the "
            "service's signed statement on it",
        )
    return document_download(runtime.cipher, documents.sealed(row))
