"""Credential verification and the public status lists."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from commonid import credentials
from commonid.api.deps import CurrentProvider, Db, RuntimeDep
from commonid.api.paths import StatusListId
from commonid.api.schemas import CredentialVerifyRequest, CredentialVerifyResult
from commonid.problems import Problem

router = APIRouter(tags=["credentials"])


@router.post("/v1/credentials/verify", response_model=CredentialVerifyResult)
def verify_credential(
    body: CredentialVerifyRequest, provider: CurrentProvider, runtime: RuntimeDep
) -> CredentialVerifyResult:
    """Check issuer, validity, proof and status of a credential this service issued."""
    verification = credentials.verify(runtime, body.credential)
    return CredentialVerifyResult(
        valid=verification.valid,
        reason=verification.reason.value,
        subject_did=verification.subject_did if verification.valid else None,
        verified_claims=verification.verified_claims if verification.valid else None,
    )


@router.get("/v1/status-lists/{list_id}")
def status_list(list_id: StatusListId, runtime: RuntimeDep, db: Db) -> dict[str, Any]:
    """The signed StatusList2021Credential that credentials' status entries point to."""
    found = credentials.status_list_credential(runtime, db, list_id)
    if found is None:
        raise Problem("status_list_not_found")
    return found
