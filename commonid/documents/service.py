"""Consent documents in the service: generate from a session, accept the signed one, serve it.

The kiosk fetches the document made from the session, has the person sign it
with the card (jpki.documents), and sends the signed PDF back. The service
accepts it only if it is *this* document (the signed file starts with the
exact bytes generated, since a PAdES signature is an incremental update),
signed once, over the whole file, by a valid JPKI signature certificate. It
then stores it encrypted and returns the audit entry to append, which holds
the document's hash and no personal data.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography import x509

from commonid.documents.consent_pdf import ConsentDocument, render_consent_pdf
from commonid.documents.storage import SealedDocument, open_document, seal_document
from commonid.store.encryption import AttributeCipher
from did.credentials import certificate_serial_sha256
from jpki.documents.verification import DocumentVerification, SignatureVerification, verify_pdf
from jpki.validation import TrustPolicy

__all__ = [
    "DOCUMENT_SIGNED_EVENT",
    "SIGNER_CLAIMS",
    "AcceptedDocument",
    "DocumentDownload",
    "DocumentRejectedError",
    "PreparedDocument",
    "accept_signed_document",
    "document_download",
    "new_document_id",
    "prepare_consent_document",
    "verification_report",
]

DOCUMENT_SIGNED_EVENT = "document.signed"
# The claims a signature certificate can answer (OpenID Connect names, as the service uses).
SIGNER_CLAIMS = frozenset({"name", "birthdate", "gender", "address"})


def new_document_id() -> str:
    return "doc_" + secrets.token_urlsafe(16)


@dataclass(frozen=True)
class PreparedDocument:
    """The unsigned document as generated: the kiosk shows and signs exactly these bytes."""

    document: ConsentDocument
    pdf: bytes

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.pdf).hexdigest()


def prepare_consent_document(
    *,
    session_id: str,
    provider_name: str,
    purpose: str,
    claims: tuple[str, ...] | list[str],
    created_at: datetime,
    document_id: str | None = None,
) -> PreparedDocument:
    """The consent document for a session (the SERVICE passes session.purpose, the consented
    claims and the provider's display name)."""
    document = ConsentDocument(
        document_id=document_id or new_document_id(),
        session_id=session_id,
        provider_name=provider_name,
        purpose=purpose,
        claims=tuple(claims),
        created_at=created_at,
    )
    return PreparedDocument(document, render_consent_pdf(document))


class DocumentRejectedError(Exception):
    """The signed document was not accepted; ``code`` is stable (problem+json ``code``)."""

    def __init__(
        self, code: str, detail: str, verification: DocumentVerification | None = None
    ) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.verification = verification


@dataclass(frozen=True)
class AcceptedDocument:
    sealed: SealedDocument
    verification: DocumentVerification
    audit_event: dict[str, Any]  # fields of a DOCUMENT_SIGNED_EVENT audit entry


def accept_signed_document(
    prepared: PreparedDocument,
    signed_pdf: bytes,
    *,
    policy: TrustPolicy,
    at: datetime,
    cipher: AttributeCipher,
    timestamp_roots: Iterable[x509.Certificate] = (),
    require_timestamp: bool = False,
) -> AcceptedDocument:
    """Verify that ``signed_pdf`` is ``prepared`` signed by a valid card, then seal it.

    Raises DocumentRejectedError with code ``document_mismatch`` (not this
    document), ``document_signature_count`` (not exactly one signature),
    ``document_<reason>`` from the verification (``document_certificate_invalid``
    with the certificate's reason code in the detail), or, with
    ``require_timestamp``, ``document_timestamp_required`` when the signature
    has no timestamp that validates under ``timestamp_roots`` (PAdES B-T).
    """
    if not signed_pdf.startswith(prepared.pdf) or len(signed_pdf) == len(prepared.pdf):
        raise DocumentRejectedError(
            "document_mismatch", "the signed file is not an update of the document issued"
        )
    verification = verify_pdf(signed_pdf, policy=policy, at=at, timestamp_roots=timestamp_roots)
    if len(verification.signatures) != 1:
        raise DocumentRejectedError(
            "document_signature_count",
            f"expected one signature, found {len(verification.signatures)}",
            verification,
        )
    signature = verification.signatures[0]
    if not verification.valid or not signature.covers_whole_document:
        detail = f"{verification.reason}"
        if signature.certificate.reason.value != "valid":
            detail += f" (certificate: {signature.certificate.reason})"
        raise DocumentRejectedError(f"document_{verification.reason}", detail, verification)
    if require_timestamp and not (signature.timestamp_time and signature.timestamp_trusted):
        raise DocumentRejectedError(
            "document_timestamp_required",
            "no signature timestamp from a trusted timestamp authority",
            verification,
        )
    sealed = seal_document(
        cipher,
        document_id=prepared.document.document_id,
        session_id=prepared.document.session_id,
        content=signed_pdf,
    )
    return AcceptedDocument(sealed, verification, _audit_event(prepared, sealed, signature, at))


def _audit_event(
    prepared: PreparedDocument,
    sealed: SealedDocument,
    signature: SignatureVerification,
    at: datetime,
) -> dict[str, Any]:
    certificate = signature.certificate
    event: dict[str, Any] = {
        "session_id": prepared.document.session_id,
        "document_id": prepared.document.document_id,
        "document_sha256": sealed.sha256,
        "unsigned_document_sha256": prepared.sha256,
        "reason_code": certificate.reason.value,
        "trust_anchor": certificate.trust_anchor,
        "trust_anchor_fingerprint": certificate.trust_anchor_sha256,
        "path_fingerprints": list(certificate.path),
        "validated_at": at,
    }
    if certificate.serial is not None:
        event["certificate_serial_hash"] = certificate_serial_sha256(certificate.serial)
    if certificate.revocation is not None:
        event["revocation_source"] = certificate.revocation.source
        event["revocation_evidence_hash"] = certificate.revocation.sha256
    if signature.timestamp_time is not None:
        event["timestamped_at"] = signature.timestamp_time
    return event


@dataclass(frozen=True)
class DocumentDownload:
    """What ``GET /v1/sessions/{id}/documents/{document_id}`` answers with."""

    content: bytes
    media_type: str
    filename: str
    sha256: str

    def headers(self) -> dict[str, str]:
        return {
            "Content-Disposition": f'attachment; filename="{self.filename}"',
            # RFC 9530 Repr-Digest lets the provider check the bytes it got.
            "Repr-Digest": f"sha-256=:{_b64(bytes.fromhex(self.sha256))}:",
            "Cache-Control": "no-store",
        }


def _b64(raw: bytes) -> str:
    import base64

    return base64.b64encode(raw).decode("ascii")


def document_download(cipher: AttributeCipher, stored: SealedDocument) -> DocumentDownload:
    """Decrypt a stored signed document for delivery to the provider (raises
    DocumentIntegrityError if the stored bytes were tampered with)."""
    content = open_document(cipher, stored)
    return DocumentDownload(
        content=content,
        media_type="application/pdf",
        filename=f"{stored.document_id}.pdf",
        sha256=stored.sha256,
    )


def verification_report(
    verification: DocumentVerification,
    *,
    authorized: bool,
    claims: Iterable[str] = SIGNER_CLAIMS,
) -> dict[str, Any]:
    """JSON-ready verification result. Signer attributes appear only when ``authorized``
    (and only if `verify_pdf` was asked to extract them), limited to ``claims``."""
    return {
        "valid": verification.valid,
        "reason": verification.reason.value,
        "document_sha256": verification.document_sha256,
        "verified_at": verification.verified_at.isoformat(),
        "signatures": [
            _signature_report(s, authorized=authorized, claims=frozenset(claims))
            for s in verification.signatures
        ],
    }


def _signature_report(
    signature: SignatureVerification, *, authorized: bool, claims: frozenset[str]
) -> dict[str, Any]:
    certificate = signature.certificate
    report: dict[str, Any] = {
        "field": signature.field_name,
        "valid": signature.valid,
        "reason": signature.reason.value,
        "integrity": "intact" if signature.intact else "modified",
        "signature_valid": signature.signature_valid,
        "coverage": signature.coverage,
        "covers_whole_document": signature.covers_whole_document,
        "changed_after_signing": signature.changed_after_signing,
        "modification_level": signature.modification_level,
        "signing_time": _iso(signature.signing_time),
        "timestamp_time": _iso(signature.timestamp_time),
        "timestamp_trusted": signature.timestamp_trusted,
        "certificate": {
            "valid": certificate.valid,
            "reason": certificate.reason.value,
            "detail": certificate.detail,
            "sha256": certificate.certificate_sha256,
            "trust_anchor": certificate.trust_anchor,
            "hierarchy": certificate.hierarchy,
            "revocation_source": certificate.revocation.source if certificate.revocation else None,
            "revoked_at": _iso(certificate.revoked_at),
        },
    }
    if authorized and signature.signer is not None:
        attributes = signature.signer
        signer = {
            "name": attributes.name,
            "birthdate": attributes.birth_date.isoformat() if attributes.birth_date else None,
            "gender": attributes.gender.name.lower() if attributes.gender else None,
            "address": attributes.address,
        }
        report["signer"] = {claim: value for claim, value in signer.items() if claim in claims}
        # The substitute-character flags travel with the value they qualify.
        if "name" in claims:
            report["signer"]["name_flags"] = attributes.name_flags
        if "address" in claims:
            report["signer"]["address_flags"] = attributes.address_flags
    return report


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None
