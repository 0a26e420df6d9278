"""Provider API: what a provider may still see of an identity; consent withdrawal."""

from __future__ import annotations

from fastapi import APIRouter, Response

from commonid import flows
from commonid.api.deps import CurrentProvider, Db, RuntimeDep
from commonid.api.paths import SubjectId
from commonid.api.schemas import IdentityView

router = APIRouter(prefix="/v1/identities", tags=["identities"])


@router.get("/{sub}", response_model=IdentityView)
def get_identity(
    sub: SubjectId, provider: CurrentProvider, runtime: RuntimeDep, db: Db
) -> IdentityView:
    return IdentityView.model_validate(flows.identity_view(runtime, db, provider, sub))


@router.delete("/{sub}", status_code=204)
def withdraw(sub: SubjectId, provider: CurrentProvider, runtime: RuntimeDep, db: Db) -> Response:
    """Remove this provider's link to the identity and its stored results."""
    flows.withdraw_identity(runtime, db, provider, sub)
    return Response(status_code=204)
