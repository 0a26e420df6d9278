"""The OpenID4VCI and OpenID4VP endpoints, the issuer metadata and the token status lists.

Errors here are the protocols' own: OAuth error objects (``error``,
``error_description``) with 400 or 401, never a 5xx for anything a wallet sends.
"""

from __future__ import annotations

import json
from typing import Annotated, Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Path, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response

from commonid.api.deps import RuntimeDep
from commonid.flows import presentations, wallet_issuance
from commonid.flows.wallet_issuance import OAuthRefusal
from commonid.oidc.router import OAUTH_ERRORS
from commonid.problems import Problem

router = APIRouter(tags=["wallet"])

TokenStatusListId = Annotated[str, Path(pattern=r"^tsl-[0-9]{1,9}$", max_length=13)]
PresentationRequestId = Annotated[str, Path(pattern=r"^vpr_[A-Za-z0-9_-]{1,36}$", max_length=40)]
_NO_STORE = {"Cache-Control": "no-store"}


def _oauth_error(refusal: OAuthRefusal) -> JSONResponse:
    headers = dict(_NO_STORE)
    if refusal.status == 401:
        headers["WWW-Authenticate"] = f'Bearer error="{refusal.error}"'
    return JSONResponse(
        {"error": refusal.error, "error_description": refusal.description},
        status_code=refusal.status,
        headers=headers,
    )


async def _form(request: Request) -> dict[str, str] | None:
    if not request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        return None
    try:
        pairs = parse_qsl((await request.body()).decode("utf-8"), keep_blank_values=True)
    except (UnicodeDecodeError, ValueError):
        return None
    form: dict[str, str] = {}
    for name, value in pairs:
        if name in form:  # RFC 6749 §3.2: parameters must not be repeated
            return None
        form[name] = value
    return form


@router.get("/.well-known/openid-credential-issuer")
def credential_issuer_metadata(runtime: RuntimeDep) -> dict[str, Any]:
    """OpenID4VCI credential issuer metadata."""
    return wallet_issuance.credential_issuer_metadata(runtime)


@router.get("/.well-known/oauth-authorization-server")
def authorization_server_metadata(runtime: RuntimeDep) -> dict[str, Any]:
    """The token endpoint of the pre-authorized code flow (RFC 8414)."""
    return wallet_issuance.authorization_server_metadata(runtime)


@router.get("/.well-known/jwt-vc-issuer")
def jwt_vc_issuer_metadata(runtime: RuntimeDep) -> dict[str, Any]:
    """SD-JWT VC issuer metadata: the keys (current and retired) that sign credentials."""
    return wallet_issuance.jwt_vc_issuer_metadata(runtime)


@router.post("/oid4vci/token", responses=OAUTH_ERRORS)
async def token(request: Request, runtime: RuntimeDep) -> Response:
    """The pre-authorized code grant, with the transaction code."""
    form = await _form(request)
    if form is None:
        return _oauth_error(OAuthRefusal("invalid_request", "the body must be a form"))
    if form.get("grant_type") != wallet_issuance.PRE_AUTHORIZED_GRANT:
        return _oauth_error(
            OAuthRefusal("unsupported_grant_type", "only the pre-authorized code grant")
        )
    code = form.get("pre-authorized_code")
    if not code or len(code) > 200:
        return _oauth_error(OAuthRefusal("invalid_request", "pre-authorized_code is missing"))
    tx_code = form.get("tx_code")
    try:
        answer = await run_in_threadpool(
            wallet_issuance.exchange_pre_authorized_code, runtime, code, tx_code
        )
    except OAuthRefusal as refusal:
        return _oauth_error(refusal)
    return JSONResponse(answer, headers=_NO_STORE)


@router.post("/oid4vci/nonce")
def nonce(runtime: RuntimeDep) -> JSONResponse:
    """A fresh c_nonce for proofs of possession (used once)."""
    with runtime.write_transaction() as db:
        value = wallet_issuance.new_nonce(runtime, db)
    return JSONResponse({"c_nonce": value}, headers=_NO_STORE)


@router.post("/oid4vci/credential", responses=OAUTH_ERRORS)
async def credential(request: Request, runtime: RuntimeDep) -> Response:
    """One SD-JWT VC per proof (batch issuance): ``{"credentials": [{"credential": ...}]}``."""
    scheme, _, access_token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not access_token.strip():
        return _oauth_error(OAuthRefusal("invalid_token", "send the access token", 401))
    try:
        body = json.loads(await request.body())
    except (ValueError, UnicodeDecodeError):
        body = None
    if not isinstance(body, dict):
        return _oauth_error(OAuthRefusal("invalid_credential_request", "the body must be JSON"))
    try:
        issued = await run_in_threadpool(
            wallet_issuance.issue_credentials, runtime, access_token.strip(), body
        )
    except OAuthRefusal as refusal:
        return _oauth_error(refusal)
    return JSONResponse({"credentials": issued}, headers=_NO_STORE)


@router.get(
    "/v1/token-status-lists/{list_id}",
    response_class=Response,
    responses={200: {"content": {"application/statuslist+jwt": {"schema": {"type": "string"}}}}},
)
def token_status_list(list_id: TokenStatusListId, runtime: RuntimeDep) -> Response:
    """The signed status list token (``application/statuslist+jwt``) of wallet credentials."""
    with runtime.read_only() as db:
        token_text = wallet_issuance.status_list_token(runtime, db, list_id)
    if token_text is None:
        raise Problem("status_list_not_found")
    return Response(token_text, media_type="application/statuslist+jwt")


@router.get(
    "/oid4vp/requests/{request_id}",
    response_class=Response,
    responses={
        200: {"content": {"application/oauth-authz-req+jwt": {"schema": {"type": "string"}}}}
    },
)
def request_object(request_id: PresentationRequestId, runtime: RuntimeDep) -> Response:
    """The request object of a provider's presentation request (fetched by the wallet)."""
    with runtime.read_only() as db:
        text = presentations.request_object(runtime, db, request_id)
    return Response(text, media_type="application/oauth-authz-req+jwt", headers=_NO_STORE)


@router.post("/oid4vp/response", responses=OAUTH_ERRORS)
async def direct_post(request: Request, runtime: RuntimeDep) -> Response:
    """The wallet's answer (``response_mode=direct_post``): ``vp_token`` and ``state``."""
    form = await _form(request)
    if form is None or not form.get("state") or not form.get("vp_token"):
        return _oauth_error(OAuthRefusal("invalid_request", "send vp_token and state as a form"))
    try:
        result = await run_in_threadpool(
            presentations.answer, runtime, form["state"][:200], form["vp_token"]
        )
    except presentations.ResponseRefused as refusal:
        return _oauth_error(OAuthRefusal("invalid_request", refusal.code))
    if result.outcome != "verified":
        return _oauth_error(OAuthRefusal("invalid_request", result.reason_code or "refused"))
    return JSONResponse({}, headers=_NO_STORE)
