"""Provider API: OpenID4VP presentation requests (Common-ID as the verifier service)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from commonid.api.deps import CurrentProvider, Db, RuntimeDep
from commonid.api.paths import ID_MAX_LENGTH, id_pattern
from commonid.api.schemas import (
    PresentationRequestCreate,
    PresentationRequestView,
    PresentationResult,
)
from commonid.flows import presentations

router = APIRouter(prefix="/v1/presentation-requests", tags=["presentations"])
RequestId = Annotated[
    str,
    Path(pattern=id_pattern("vpr"), max_length=ID_MAX_LENGTH, description="Request id (vpr_...)"),
]


@router.post("", response_model=PresentationRequestView, status_code=201)
def create_presentation_request(
    body: PresentationRequestCreate, provider: CurrentProvider, runtime: RuntimeDep, db: Db
) -> PresentationRequestView:
    """Ask a person's wallet for claims of their identity credential (a DCQL query):
    show ``qr_svg`` or open ``authorization_request``; then read the result."""
    request = presentations.create_request(
        runtime, db, provider, body.dcql_query.model_dump(exclude_none=True)
    )
    return PresentationRequestView(**presentations.request_view(runtime, request))


@router.get("/{request_id}", response_model=PresentationResult)
def presentation_result(
    request_id: RequestId, provider: CurrentProvider, runtime: RuntimeDep, db: Db
) -> PresentationResult:
    """The outcome: only the claims the query named, the issuer, the holder binding
    check and the status; or the refusal code."""
    return PresentationResult(
        **presentations.result_for_provider(runtime, db, provider, request_id)
    )
