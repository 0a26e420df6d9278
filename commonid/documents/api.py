"""HTTP endpoints for signed documents (mounted by commonid.api.app).

`POST /v1/documents/verify`: a provider posts a signed PDF (the raw bytes,
``Content-Type: application/pdf``) and gets the verification report. The
signer's attributes are included only when asked for (``?signer=true``) and
only those the provider is allowed to receive (its ``allowed_claims``): the
service does not decode a certificate's personal data for anyone else.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool

from commonid.api.deps import CurrentProvider, RuntimeDep
from commonid.documents.service import SIGNER_CLAIMS, verification_report
from commonid.problems import Problem
from jpki.documents.verification import verify_pdf

router = APIRouter(tags=["documents"])

PDF_MEDIA_TYPE = "application/pdf"


@router.post("/v1/documents/verify")
async def verify_document(
    request: Request,
    provider: CurrentProvider,
    runtime: RuntimeDep,
    signer: Annotated[bool, Query(description="Include the signer's attributes")] = False,
) -> dict[str, Any]:
    """Verify a signed PDF under the service's JPKI trust policy."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != PDF_MEDIA_TYPE:
        raise Problem("invalid_request", f"send the PDF itself as {PDF_MEDIA_TYPE}")
    content = await request.body()
    allowed = SIGNER_CLAIMS & set(provider.allowed_claims)
    authorized = signer and bool(allowed)
    # pyHanko and the path validation are CPU work: keep them off the event loop.
    verification = await run_in_threadpool(
        lambda: verify_pdf(
            content,
            policy=runtime.trust_policy,
            at=runtime.clock(),
            include_signer_attributes=authorized,
        )
    )
    return verification_report(verification, authorized=authorized, claims=allowed)
