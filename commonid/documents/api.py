"""HTTP endpoints for signed documents (mounted by commonid.api.app).

A session's document: the kiosk fetches it (``GET
/v1/kiosk/sessions/{id}/document``, JSON with the PDF in base64 and its text)
and posts it signed (``POST``, the PDF itself); the provider downloads it
(``GET /v1/sessions/{id}/documents/{document_id}``).

`POST /v1/documents/verify`: a provider posts a signed PDF (the raw bytes,
``Content-Type: application/pdf``) and gets the verification report. The
signer's attributes are included only when asked for (``?signer=true``) and
only those the provider is allowed to receive (its ``allowed_claims``): the
service does not decode a certificate's personal data for anyone else.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.concurrency import run_in_threadpool

from commonid.api.deps import CurrentKiosk, CurrentProvider, Db, RuntimeDep
from commonid.api.paths import DocumentId, SessionId
from commonid.api.schemas import DocumentAccepted, DocumentDeclined, KioskDocument
from commonid.documents import session_documents
from commonid.documents.service import SIGNER_CLAIMS, verification_report
from commonid.problems import Problem
from jpki.documents.verification import verify_pdf

router = APIRouter(tags=["documents"])

PDF_MEDIA_TYPE = "application/pdf"
# The PDF itself is the body (not JSON): declared here, since the handler reads it raw.
PDF_BODY = {
    "requestBody": {
        "required": True,
        "content": {PDF_MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}}},
    }
}


@router.post("/v1/documents/verify", openapi_extra=PDF_BODY)
async def verify_document(
    request: Request,
    provider: CurrentProvider,
    runtime: RuntimeDep,
    signer: Annotated[bool, Query(description="Include the signer's attributes")] = False,
) -> dict[str, Any]:
    """Verify a signed PDF under the service's JPKI trust policy."""
    content = await _pdf_body(request)
    allowed = SIGNER_CLAIMS & set(provider.allowed_claims)
    authorized = signer and bool(allowed)
    # pyHanko and the path validation are CPU work: keep them off the event loop.
    verification = await run_in_threadpool(
        lambda: verify_pdf(
            content,
            policy=runtime.trust_policy,
            at=runtime.clock(),
            timestamp_roots=runtime.timestamp_roots,
            include_signer_attributes=authorized,
        )
    )
    return verification_report(verification, authorized=authorized, claims=allowed)


async def _pdf_body(request: Request) -> bytes:
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != PDF_MEDIA_TYPE:
        raise Problem("unsupported_media_type", f"send the PDF itself as {PDF_MEDIA_TYPE}")
    return await request.body()


@router.get("/v1/kiosk/sessions/{session_id}/document", response_model=KioskDocument)
def session_document(
    session_id: SessionId, kiosk: CurrentKiosk, runtime: RuntimeDep, db: Db
) -> dict[str, Any]:
    """The document the person is asked to sign (after the consent, at the consenting kiosk)."""
    issued = session_documents.issue_document(runtime, db, session_id, kiosk)
    return session_documents.kiosk_view(runtime, issued)


@router.post(
    "/v1/kiosk/sessions/{session_id}/document",
    response_model=DocumentAccepted,
    openapi_extra=PDF_BODY,
)
async def signed_session_document(
    session_id: SessionId, request: Request, kiosk: CurrentKiosk, runtime: RuntimeDep
) -> DocumentAccepted:
    """The document signed with the card (PAdES), after the identity was verified. Once."""
    content = await _pdf_body(request)
    row = await run_in_threadpool(
        session_documents.accept_document, runtime, session_id, kiosk, content
    )
    assert row.sha256 is not None and row.size is not None and row.signed_at is not None
    return DocumentAccepted(
        session_id=row.session_id,
        document_id=row.id,
        sha256=row.sha256,
        size=row.size,
        signed_at=row.signed_at,
    )


@router.post("/v1/kiosk/sessions/{session_id}/document/decline", response_model=DocumentDeclined)
def decline_session_document(
    session_id: SessionId, kiosk: CurrentKiosk, runtime: RuntimeDep
) -> DocumentDeclined:
    """The person declines to sign the document shown at this kiosk. Once; never signed after."""
    row = session_documents.decline_document(runtime, session_id, kiosk)
    assert row.declined_at is not None
    return DocumentDeclined(
        session_id=row.session_id, document_id=row.id, declined_at=row.declined_at
    )


@router.get(
    "/v1/sessions/{session_id}/documents/{document_id}",
    response_class=Response,
    responses={200: {"content": {PDF_MEDIA_TYPE: {}}}},
)
def download_session_document(
    session_id: SessionId,
    document_id: DocumentId,
    provider: CurrentProvider,
    runtime: RuntimeDep,
    db: Db,
) -> Response:
    """A signed document of one of the provider's own sessions (decrypted, with its digest)."""
    download = session_documents.download(runtime, db, provider.id, session_id, document_id)
    return Response(download.content, media_type=download.media_type, headers=download.headers())
