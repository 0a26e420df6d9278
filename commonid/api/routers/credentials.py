"""Credential verification and the public status lists."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from commonid import credentials
from commonid.api.deps import CurrentProvider, Db, RuntimeDep
from commonid.api.paths import StatusListId
from commonid.api.schemas import CredentialVerifyRequest, CredentialVerifyResult
from commonid.flows import presentations
from commonid.problems import Problem
from did.sd_jwt import KeyBindingCheck

router = APIRouter(tags=["credentials"])


@router.post("/v1/credentials/verify", response_model=CredentialVerifyResult)
def verify_credential(
    body: CredentialVerifyRequest, provider: CurrentProvider, runtime: RuntimeDep
) -> CredentialVerifyResult:
    """Check issuer, validity, proof and status of a credential this service issued: a
    W3C VC (JSON-LD or VC-JWT), or an SD-JWT VC (``~``-separated, with the disclosures
    the holder gave; with ``nonce`` and ``audience`` its key binding JWT is checked)."""
    if isinstance(body.credential, str) and "~" in body.credential:
        return _verify_sd_jwt(body, runtime)
    if body.nonce is not None or body.audience is not None:
        raise Problem("invalid_request", "nonce and audience go with an SD-JWT VC")
    verification = credentials.verify(runtime, body.credential)
    return CredentialVerifyResult(
        valid=verification.valid,
        reason=verification.reason.value,
        subject_did=verification.subject_did if verification.valid else None,
        verified_claims=verification.verified_claims if verification.valid else None,
        format="ldp_vc" if isinstance(body.credential, dict) else "jwt_vc",
    )


def _verify_sd_jwt(body: CredentialVerifyRequest, runtime: RuntimeDep) -> CredentialVerifyResult:
    assert isinstance(body.credential, str)
    if (body.nonce is None) != (body.audience is None):
        raise Problem("invalid_request", "give both nonce and audience, or neither")
    check = KeyBindingCheck(body.audience, body.nonce) if body.nonce and body.audience else None
    with runtime.read_only() as db:
        outcome = presentations.verify_sd_jwt_vc(runtime, db, body.credential, key_binding=check)
    claims = {k: v for k, v in outcome.claims.items() if k not in _SD_JWT_PLUMBING}
    return CredentialVerifyResult(
        valid=outcome.valid,
        reason=outcome.reason.value,
        format="dc+sd-jwt",
        disclosed_claims=claims if outcome.valid else None,
        holder_binding=outcome.holder_binding if outcome.valid else None,
        key_binding_checked=outcome.key_bound if outcome.valid else None,
    )


# Registered claims of the issuer-signed part, not the person's.
_SD_JWT_PLUMBING = frozenset({"iss", "iat", "nbf", "exp", "cnf", "status"})


@router.get("/v1/status-lists/{list_id}")
def status_list(list_id: StatusListId, runtime: RuntimeDep, db: Db) -> dict[str, Any]:
    """The signed StatusList2021Credential that credentials' status entries point to."""
    found = credentials.status_list_credential(runtime, db, list_id)
    if found is None:
        raise Problem("status_list_not_found")
    return found
