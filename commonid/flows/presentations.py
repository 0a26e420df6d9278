"""OpenID4VP with Common-ID as the verifier service for providers (SD-JWT VC, DCQL).

A provider creates a request with a DCQL query; the person's wallet fetches the
request object at its ``request_uri``, answers with ``direct_post`` to the
response endpoint, and the provider reads the result: only the claims its query
named, the issuer, the holder binding check (nonce, audience, ``sd_hash``) and
the status. The same verification serves ``POST /v1/credentials/verify`` for an
SD-JWT VC a provider already holds.
"""

from __future__ import annotations

import io
import json
import secrets
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import segno
from sqlalchemy.orm import Session as DbSession

from commonid import auditing
from commonid.audit.events import CLAIM_NAMES
from commonid.flows.wallet_issuance import credential_issuer_id, issuer_key_for
from commonid.problems import Problem
from commonid.runtime import Runtime
from commonid.store import wallet
from commonid.store.encryption import Sealed, binding
from commonid.store.ids import new_id
from commonid.store.models import PresentationRequest
from commonid.store.rows import ProviderRow
from did.identity_sd_jwt import JPKI_IDENTITY_VCT
from did.sd_jwt import KeyBindingCheck, SdJwtReason, SdJwtVerification, signing_input, verify
from did.token_status import TokenStatus, TokenStatusError

REQUEST_OBJECT_TYP = "oauth-authz-req+jwt"
NONCE_STALE = "nonce_stale"


def client_id(runtime: Runtime) -> str:
    """The verifier's client identifier: the redirect_uri prefix with the response URI
    (OpenID4VP 1.0 section 5.9.3: such requests are not signed)."""
    return f"redirect_uri:{response_uri(runtime)}"


def response_uri(runtime: Runtime) -> str:
    return f"{credential_issuer_id(runtime)}/oid4vp/response"


def request_uri(runtime: Runtime, request_id: str) -> str:
    return f"{credential_issuer_id(runtime)}/oid4vp/requests/{request_id}"


# --- verifying one SD-JWT VC ---------------------------------------------------------


def _status(runtime: Runtime, db: DbSession, reference: Any) -> SdJwtReason:
    """Our credentials' status read from the store (the list the token at ``uri`` shows)."""
    prefix = wallet.token_list_uri(runtime.settings.public_url, "")
    try:
        entry = reference["status_list"]
        uri, index = str(entry["uri"]), int(entry["idx"])
    except (KeyError, TypeError, ValueError):
        return SdJwtReason.STATUS_INVALID
    if not uri.startswith(prefix):
        return SdJwtReason.STATUS_INVALID
    list_id = uri.removeprefix(prefix)
    status_list = wallet.token_list(db, list_id)
    if status_list is None:
        return SdJwtReason.STATUS_INVALID
    try:
        status = status_list.status(index)
    except TokenStatusError:
        return SdJwtReason.STATUS_INVALID
    if status is TokenStatus.SUSPENDED:
        return SdJwtReason.SUSPENDED
    if status is TokenStatus.INVALID:
        credential = wallet.credential_at(db, list_id, index)
        if credential is not None and credential.superseded_at is not None:
            return SdJwtReason.SUPERSEDED
        return SdJwtReason.REVOKED
    return SdJwtReason.VALID


def verify_sd_jwt_vc(
    runtime: Runtime,
    db: DbSession,
    presentation: str,
    *,
    key_binding: KeyBindingCheck | None,
    vct: str = JPKI_IDENTITY_VCT,
) -> SdJwtVerification:
    """Our verifier over one of our credentials, its status included."""
    outcome = verify(
        presentation,
        issuer_key=issuer_key_for(runtime),
        at=runtime.clock(),
        vct=vct,
        key_binding=key_binding,
    )
    if not outcome.valid:
        return outcome
    status = _status(runtime, db, outcome.claims.get("status"))
    if status is not SdJwtReason.VALID:
        return SdJwtVerification(status, header=outcome.header, holder_key=outcome.holder_key)
    return outcome


# --- the provider's request ------------------------------------------------------------


def _claim_paths(dcql_query: Mapping[str, Any]) -> list[str]:
    names = set()
    for credential in dcql_query["credentials"]:
        for claim in credential["claims"]:
            names.add(str(claim["path"][0]))
    return sorted(names)


def create_request(
    runtime: Runtime, db: DbSession, provider: ProviderRow, dcql_query: dict[str, Any]
) -> PresentationRequest:
    for credential in dcql_query["credentials"]:
        if JPKI_IDENTITY_VCT not in credential["meta"]["vct_values"]:
            raise Problem("dcql_unsupported", f"vct_values must include {JPKI_IDENTITY_VCT}")
    now = runtime.clock()
    request = PresentationRequest(
        id=new_id("vpr"),
        provider_id=provider.id,
        nonce=secrets.token_urlsafe(24),
        state=secrets.token_urlsafe(24),
        dcql_query=dcql_query,
        created_at=now,
        expires_at=now + timedelta(seconds=runtime.settings.presentation_request_ttl_seconds),
        status="pending",
    )
    db.add(request)
    asked = _claim_paths(dcql_query)
    event = {
        "request_id": request.id,
        "provider_id": provider.id,
        "claims": [name for name in asked if name in CLAIM_NAMES],
        "age_equal_or_over": "age_equal_or_over" in asked,
    }
    auditing.record(runtime, db, [("presentation.requested", event)])
    return request


def authorization_request_uri(runtime: Runtime, request: PresentationRequest) -> str:
    query = urllib.parse.urlencode(
        {"client_id": client_id(runtime), "request_uri": request_uri(runtime, request.id)}
    )
    return f"openid4vp://?{query}"


def qr_svg(text: str) -> str:
    """A standalone SVG (with its namespace: usable as an image or inline)."""
    out = io.BytesIO()
    segno.make(text, error="m").save(out, kind="svg", xmldecl=False, svgns=True, scale=4)
    return out.getvalue().decode("ascii")


def request_object(runtime: Runtime, db: DbSession, request_id: str) -> str:
    """The request object a wallet fetches at the request URI: a JWT with ``alg: none``
    (the redirect_uri client identifier prefix forbids signing)."""
    request = wallet.presentation_request(db, request_id)
    if request is None:
        raise Problem("presentation_request_not_found")
    if request.status != "pending" or request.expires_at <= runtime.clock():
        raise Problem("presentation_request_expired")
    claims = {
        "response_type": "vp_token",
        "response_mode": "direct_post",
        "client_id": client_id(runtime),
        "response_uri": response_uri(runtime),
        "nonce": request.nonce,
        "state": request.state,
        "dcql_query": request.dcql_query,
        "client_metadata": {
            "vp_formats_supported": {
                "dc+sd-jwt": {
                    "sd-jwt_alg_values": ["ES256"],
                    "kb-jwt_alg_values": ["ES256", "RS256"],
                }
            }
        },
        "iat": int(runtime.clock().timestamp()),
        "exp": int(request.expires_at.timestamp()),
    }
    header = {"alg": "none", "typ": REQUEST_OBJECT_TYP}
    return signing_input(header, claims) + "."


# --- the wallet's answer ----------------------------------------------------------------


@dataclass
class Answer:
    outcome: str  # verified | refused
    reason_code: str | None = None
    credentials: dict[str, Any] = field(default_factory=dict)


class ResponseRefused(Exception):
    """The response endpoint's OAuth error (``invalid_request``) with a code."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


def _requested(claims: Mapping[str, Any], query: Mapping[str, Any]) -> tuple[dict[str, Any], str]:
    """Only the claims the query names (an empty code: all there, with allowed values)."""
    shown: dict[str, Any] = {}
    for claim in query["claims"]:
        value: Any = claims
        for step in claim["path"]:
            if not isinstance(value, dict) or step not in value:
                return {}, SdJwtReason.CLAIM_NOT_DISCLOSED.value
            value = value[step]
        if claim.get("values") is not None and value not in claim["values"]:
            return {}, "claim_value_not_accepted"
        target = shown
        for step in claim["path"][:-1]:
            target = target.setdefault(step, {})
        target[claim["path"][-1]] = value
    return shown, ""


def answer(runtime: Runtime, state: str, vp_token: str) -> Answer:
    """Check a wallet's ``direct_post`` answer and keep the result for the provider."""
    with runtime.write_transaction() as db:
        request = wallet.presentation_request_by_state(db, state)
        if request is None:
            raise ResponseRefused("unknown_state")
        now = runtime.clock()
        if request.status != "pending" or request.expires_at <= now:
            result = Answer("refused", NONCE_STALE)
        else:
            result = _check_answer(runtime, db, request, vp_token)
            request.status = result.outcome
            request.reason_code = result.reason_code
            request.answered_at = now
            sealed = runtime.cipher.seal(
                json.dumps(result.credentials, ensure_ascii=False).encode(),
                binding=binding("presentation", request.id, "result"),
            )
            request.result_key_id, request.result_encrypted = sealed.key_id, sealed.blob
        bindings = sorted({c.get("holder_binding", "") for c in result.credentials.values()})
        event: dict[str, Any] = {
            "request_id": request.id,
            "provider_id": request.provider_id,
            "outcome": result.outcome,
        }
        if result.reason_code:
            event["reason_code"] = result.reason_code
        if len(bindings) == 1 and bindings[0]:
            event["holder_binding"] = bindings[0]
        auditing.record(runtime, db, [("presentation.answered", event)])
    return result


def _check_answer(
    runtime: Runtime, db: DbSession, request: PresentationRequest, vp_token: str
) -> Answer:
    try:
        token = json.loads(vp_token)
    except ValueError:
        return Answer("refused", SdJwtReason.MALFORMED.value)
    if not isinstance(token, dict):
        return Answer("refused", SdJwtReason.MALFORMED.value)
    result = Answer("verified")
    check = KeyBindingCheck(client_id(runtime), request.nonce)
    for query in request.dcql_query["credentials"]:
        presentations = token.get(query["id"])
        if not isinstance(presentations, list) or len(presentations) != 1:
            return Answer("refused", "credential_not_presented")
        presentation = presentations[0]
        if not isinstance(presentation, str):
            return Answer("refused", SdJwtReason.MALFORMED.value)
        vct_values = query["meta"]["vct_values"]
        outcome = verify_sd_jwt_vc(runtime, db, presentation, key_binding=check)
        if not outcome.valid:
            return Answer("refused", outcome.reason.value)
        if outcome.claims.get("vct") not in vct_values:
            return Answer("refused", SdJwtReason.WRONG_VCT.value)
        shown, problem = _requested(outcome.claims, query)
        if problem:
            return Answer("refused", problem)
        result.credentials[query["id"]] = {
            "vct": outcome.claims.get("vct"),
            "issuer": outcome.claims.get("iss"),
            "claims": shown,
            "verification": outcome.claims.get("verification"),
            "holder_binding": outcome.holder_binding,
            "key_binding": {"nonce": True, "audience": True, "sd_hash": True},
            "status": "valid",
        }
    return result


def result_for_provider(
    runtime: Runtime, db: DbSession, provider: ProviderRow, request_id: str
) -> dict[str, Any]:
    request = wallet.presentation_request(db, request_id)
    if request is None or request.provider_id != provider.id:
        raise Problem("presentation_request_not_found")
    status = request.status
    if status == "pending" and request.expires_at <= runtime.clock():
        status = "expired"
    credentials: dict[str, Any] = {}
    if request.result_encrypted is not None and request.result_key_id is not None:
        credentials = json.loads(
            runtime.cipher.open(
                Sealed(request.result_key_id, request.result_encrypted),
                binding=binding("presentation", request.id, "result"),
            )
        )
    return {
        "id": request.id,
        "status": status,
        "reason_code": request.reason_code,
        "created_at": request.created_at,
        "expires_at": request.expires_at,
        "answered_at": request.answered_at,
        "credentials": credentials,
    }


def request_view(runtime: Runtime, request: PresentationRequest) -> dict[str, Any]:
    uri = authorization_request_uri(runtime, request)
    return {
        "id": request.id,
        "status": request.status,
        "request_uri": request_uri(runtime, request.id),
        "client_id": client_id(runtime),
        "authorization_request": uri,
        "qr_svg": qr_svg(uri),
        "expires_at": request.expires_at,
    }
