"""The OpenID Provider's endpoints and the person's authorization page.

    GET  /.well-known/openid-configuration   discovery
    GET  /oidc/jwks                          the ID token keys (current and recent)
    POST /oidc/par                           pushed authorization requests (RFC 9126)
    GET  /oidc/authorize                     validate, create the Common-ID session,
                                             send the browser to its sign-in page
    GET  /oidc/sign-in/{id}                  the page: what is asked, the user code
    GET  /oidc/sign-in/{id}/status           its progress; when the card step ends,
                                             where to send the browser (code or error)
    POST /oidc/token                         code → ID token and access token
    GET  /oidc/userinfo                      claims for the access token

Sessions are created and read through :mod:`commonid.flows`, as the REST API
does; OAuth errors follow RFC 6749 §4.1.2.1 and §5.2 and OIDC Core §3.1.2.6.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, parse_qsl, urlsplit

import segno
from authlib.oauth2 import OAuth2Error
from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse
from pydantic import BaseModel
from starlette.responses import Response

from commonid import auditing, flows
from commonid.api.paths import AuthorizationId
from commonid.oidc import claims as oidc_claims
from commonid.oidc import dpop
from commonid.oidc.keys import ALGORITHM, SigningKeysFile
from commonid.oidc.server import (
    AUTH_METHODS,
    Authorized,
    Client,
    Served,
    Server,
    StarletteOAuth2Request,
    error_redirect,
    serving,
)
from commonid.problems import Problem
from commonid.runtime import Runtime
from commonid.store import oidc as store
from commonid.store.ids import hash_credential
from commonid.store.models import OidcAuthorization

STATIC = Path(__file__).parent / "static"
_NO_STORE = {"Cache-Control": "no-store"}
# Whose jtis the seen-jti table keeps for DPoP proofs (client assertions: the client id).
DPOP_JTI_OWNER = "dpop"
REQUEST_URI_PREFIX = "urn:ietf:params:oauth:request_uri:"
PAR_LIFETIME = dt.timedelta(seconds=90)
BROWSER_COOKIE = "cid_oidc"
_MAX_PARAM = 2000
# Authorization parameters kept with the request (validated; none is a secret).
_KEPT = (
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "nonce",
    "code_challenge",
    "code_challenge_method",
    "acr_values",
    "claims",
    "max_age",
    "prompt",
    "ui_locales",
)
_REFUSED_ENDING = {
    "declined": "the person declined at the kiosk",
    "expired": "the sign-in was not completed in time",
    "rejected": "the card could not be verified",
    "reverification_required": "the claims cannot be reused: a fresh verification is needed",
}


class OidcDoor:
    """The OpenID Provider for one runtime: Authlib's server and the signing keys."""

    def __init__(self, runtime: Runtime) -> None:
        settings = runtime.settings
        self.runtime = runtime
        self.issuer = settings.public_url.rstrip("/")
        self.keys = SigningKeysFile(
            settings.oidc_signing_key_file or settings.data_dir / "oidc-signing-keys.json"
        )
        self.server = Server(self.issuer, self.keys)

    # --- helpers ---------------------------------------------------------------------

    def served(self, db: Any) -> Served:
        return Served(db=db, now=self.runtime.clock(), result_of=lambda a: self.result(db, a))

    def result(self, db: Any, authorization: OidcAuthorization) -> dict[str, Any]:
        client = store.client_by_id(db, authorization.client_id)
        assert client is not None and authorization.session_id is not None
        return flows.provider_session_result(
            self.runtime, db, client.provider_id, authorization.session_id
        )

    def discovery(self) -> dict[str, Any]:
        issuer = self.issuer
        return {
            "issuer": issuer,
            "authorization_endpoint": f"{issuer}/oidc/authorize",
            "pushed_authorization_request_endpoint": f"{issuer}/oidc/par",
            "token_endpoint": f"{issuer}/oidc/token",
            "userinfo_endpoint": f"{issuer}/oidc/userinfo",
            "jwks_uri": f"{issuer}/oidc/jwks",
            "scopes_supported": list(oidc_claims.SCOPES_SUPPORTED),
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": ["authorization_code"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": [ALGORITHM],
            "token_endpoint_auth_methods_supported": list(AUTH_METHODS),
            "token_endpoint_auth_signing_alg_values_supported": ["ES256", "PS256", "RS256"],
            "code_challenge_methods_supported": ["S256"],
            "dpop_signing_alg_values_supported": list(dpop.SIGNING_ALGORITHMS),
            "acr_values_supported": list(oidc_claims.ACR_VALUES_SUPPORTED),
            "claims_parameter_supported": True,
            "claims_supported": ["sub", *oidc_claims.ATTRIBUTE_SCOPES, "verified_claims"],
            "authorization_response_iss_parameter_supported": True,
            "require_pushed_authorization_requests": False,
            "request_parameter_supported": False,
            "request_uri_parameter_supported": False,
            "prompt_values_supported": ["login", "consent"],
            "ui_locales_supported": ["ja", "en"],
            # OpenID Connect for Identity Assurance 1.0
            "verified_claims_supported": True,
            "trust_frameworks_supported": ["jp_aml"],
            "evidence_supported": ["electronic_signature"],
            "claims_in_verified_claims_supported": list(oidc_claims.ATTRIBUTE_SCOPES),
        }

    # --- authorization request --------------------------------------------------------

    def validate(
        self, client: Client, params: dict[str, str], url: str
    ) -> tuple[dict[str, Any], oidc_claims.Wanted]:
        """Check an authorization request as Authlib and this profile require; returns the
        parameters to keep and what the request asks for. Raises OAuth2Error."""
        if not params.get("state"):
            raise _oauth_error("invalid_request", "state is required")
        prompts = params.get("prompt", "").split()
        if "none" in prompts:
            # Every sign-in needs the card in a reader: nothing can happen silently.
            raise _oauth_error("login_required", "prompt=none cannot be met: the card is needed")
        max_age = params.get("max_age")
        if max_age is not None and (not max_age.isdigit() or len(max_age) > 9):
            raise _oauth_error("invalid_request", "max_age must be a number of seconds")
        try:
            wanted = oidc_claims.wanted(
                params.get("scope", ""),
                params.get("acr_values"),
                params.get("claims"),
                client.allowed_claims,
            )
        except oidc_claims.RequestRefused as refused:
            raise _oauth_error(refused.error, refused.description) from None
        request = StarletteOAuth2Request("GET", url, {}, params)
        self.server.get_consent_grant(request)  # client, redirect_uri, response_type, PKCE, nonce
        kept: dict[str, Any] = {k: params[k] for k in _KEPT if k in params}
        kept["verified_claims_in_id_token"] = wanted.verified_claims_in_id_token
        kept["verified_claims_in_userinfo"] = wanted.verified_claims_in_userinfo
        kept["acr_requested"] = wanted.acr
        return kept, wanted

    def begin(
        self,
        db: Any,
        client: Client,
        authorization: OidcAuthorization,
        wanted: oidc_claims.Wanted,
    ) -> str:
        """Create the Common-ID session for a validated request; returns the browser's secret."""
        params = authorization.params
        provider = flows.active_provider(db, client.row.provider_id)
        purpose = f"{provider.name} へのログイン・本人確認 (OpenID Connect)"
        session = flows.create_session(self.runtime, db, provider, wanted.session_request(purpose))
        browser = secrets.token_urlsafe(32)
        authorization.session_id = session.id
        authorization.browser_hash = hash_credential(browser)
        authorization.params = params | {
            "user_code": session.user_code,
            "provider_name": provider.name,
            "purpose": session.purpose,
            "claims_asked": list(session.claims),
            "mode": session.mode,
            "reuse": session.reuse,
            "expires_at": session.expires_at.isoformat(),
        }
        db.flush()
        return browser

    def authorize(self, query: list[tuple[str, str]], url: str) -> Response:
        params = _single_values(query)
        if params is None:
            return _error_page("invalid_request", "a parameter is repeated or too long")
        now = self.runtime.clock()
        with self.runtime.write_transaction() as db, serving(self.served(db)):
            client = self.server.query_client(params.get("client_id", ""))
            if client is None:
                return _error_page("invalid_client", "unknown client_id")
            authorization: OidcAuthorization | None = None
            if "request_uri" in params:
                pushed_id = params["request_uri"].removeprefix(REQUEST_URI_PREFIX)
                authorization = store.take_pushed_request(db, pushed_id, client.client_id, now)
                if authorization is None:
                    return _error_page(
                        "invalid_request_uri", "request_uri is unknown, expired or already used"
                    )
                params = {k: v for k, v in authorization.params.items() if isinstance(v, str)}
            redirect_uri = params.get("redirect_uri")
            if not redirect_uri or not client.check_redirect_uri(redirect_uri):
                # Never redirect to an address the client did not register.
                return _error_page("invalid_request", "redirect_uri is missing or not registered")
            state = params.get("state")
            if authorization is None and client.row.require_par:
                return _redirect(
                    error_redirect(redirect_uri, "invalid_request", "use PAR", state, self.issuer)
                )
            try:
                kept, wanted = self.validate(client, params, url)
            except OAuth2Error as error:
                return _redirect(
                    error_redirect(
                        redirect_uri, error.error, error.description or "", state, self.issuer
                    )
                )
            if authorization is None:
                authorization = store.new_authorization(
                    db,
                    client_id=client.client_id,
                    params=kept,
                    pushed=False,
                    now=now,
                    expires_at=now + self.runtime.session_ttl,
                )
            else:
                authorization.params = kept
            try:
                browser = self.begin(db, client, authorization, wanted)
                auditing.record(
                    self.runtime,
                    db,
                    [
                        (
                            "oidc.authorization_started",
                            {
                                "authorization_id": authorization.id,
                                "client_id": client.client_id,
                                "session_id": authorization.session_id,
                                "pushed": authorization.pushed,
                                "acr_requested": kept["acr_requested"],
                            },
                        )
                    ],
                )
            except Problem as problem:
                return _redirect(
                    error_redirect(
                        redirect_uri, "invalid_request", problem.code, state, self.issuer
                    )
                )
            page = RedirectResponse(f"/oidc/sign-in/{authorization.id}", status_code=303)
            page.set_cookie(
                BROWSER_COOKIE,
                browser,
                max_age=int(self.runtime.session_ttl.total_seconds()),
                path="/oidc/sign-in",
                httponly=True,
                samesite="lax",
                secure=self.issuer.startswith("https://"),
            )
            return page

    def push(self, form: list[tuple[str, str]], url: str, headers: Mapping[str, str]) -> Response:
        params = _single_values(form)
        if params is None:
            return _oauth_json("invalid_request", "a parameter is repeated or too long")
        now = self.runtime.clock()
        with self.runtime.write_transaction() as db, serving(self.served(db)):
            request = StarletteOAuth2Request("POST", url, headers, params)
            try:
                client = self.server.authenticate_client(request, list(AUTH_METHODS))
            except OAuth2Error as error:
                return _oauth_json(error.error, error.description or "", status=401)
            if "request_uri" in params or "request" in params:
                return _oauth_json("invalid_request", "request and request_uri are not accepted")
            authorize_params = {k: v for k, v in params.items() if not k.startswith("client_")}
            authorize_params["client_id"] = client.client_id
            try:
                kept, _wanted = self.validate(client, authorize_params, url)
            except OAuth2Error as error:
                return _oauth_json(error.error, error.description or "")
            pushed = store.new_authorization(
                db,
                client_id=client.client_id,
                params=kept,
                pushed=True,
                now=now,
                expires_at=now + PAR_LIFETIME,
            )
            return JSONResponse(
                {
                    "request_uri": REQUEST_URI_PREFIX + pushed.id,
                    "expires_in": int(PAR_LIFETIME.total_seconds()),
                },
                status_code=201,
                headers={"Cache-Control": "no-store"},
            )

    # --- the sign-in page's progress ---------------------------------------------------

    def _browsers(self, db: Any, authorization_id: str, browser: str | None) -> OidcAuthorization:
        """The authorization this browser started (its cookie), else authorization_not_found."""
        authorization = store.authorization_by_id(db, authorization_id)
        if (
            authorization is None
            or browser is None
            or authorization.browser_hash != hash_credential(browser)
            or authorization.session_id is None
        ):
            raise Problem("authorization_not_found")
        return authorization

    def user_code(self, authorization_id: str, browser: str | None) -> str:
        with self.runtime.read_only() as db:
            return str(self._browsers(db, authorization_id, browser).params["user_code"])

    def status(self, authorization_id: str, browser: str | None) -> dict[str, Any]:
        with self.runtime.write_transaction() as db, serving(self.served(db)):
            authorization = self._browsers(db, authorization_id, browser)
            params = authorization.params
            view = {
                "provider": params["provider_name"],
                "purpose": params["purpose"],
                "claims": params["claims_asked"],
                "mode": params["mode"],
                "reuse": params["reuse"],
                "user_code": params["user_code"],
                "expires_at": params["expires_at"],
                "local_kiosk_url": self.runtime.settings.oidc_local_kiosk_url,
            }
            if params.get("finished"):
                # The browser was sent back already; a code is handed out once.
                return view | {"status": "finished"}
            result = self.result(db, authorization)
            if not result["final"]:
                return view | {"status": "waiting"}
            redirect = self.finish(authorization, result)
            authorization.params = authorization.params | {"finished": True}
            issued = "code" in parse_qs(urlsplit(redirect).query)
            auditing.record(
                self.runtime,
                db,
                [
                    (
                        "oidc.authorization_finished",
                        {
                            "authorization_id": authorization.id,
                            "client_id": authorization.client_id,
                            "session_id": authorization.session_id,
                            "outcome": "code_issued" if issued else "access_denied",
                            "acr": oidc_claims.acr_achieved(result["status"]),
                        },
                    )
                ],
            )
            return view | {"status": result["status"], "redirect": redirect}

    def finish(self, authorization: OidcAuthorization, result: dict[str, Any]) -> str:
        """The redirect back to the client: a code when the card step succeeded."""
        params = authorization.params
        redirect_uri, state = params["redirect_uri"], params.get("state")
        status = result["status"]
        if status not in ("verified", "reuse_granted"):
            description = _REFUSED_ENDING.get(status, status)
            if result.get("reason_code"):
                description = f"{description} ({result['reason_code']})"
            return error_redirect(redirect_uri, "access_denied", description, state, self.issuer)
        completed = result.get("completed_at") or self.runtime.clock()
        authorization.auth_time = completed
        authorization.params = params | {"acr_achieved": oidc_claims.acr_achieved(status)}
        request = StarletteOAuth2Request(
            "GET",
            f"{self.issuer}/oidc/authorize",
            {},
            {k: v for k, v in params.items() if k in _KEPT},
        )
        grant = self.server.get_consent_grant(request)
        response = self.server.create_authorization_response(
            request, grant_user=Authorized(authorization, result), grant=grant
        )
        return str(response.headers["location"])

    # --- token and userinfo ---------------------------------------------------------

    def token(self, form: list[tuple[str, str]], url: str, headers: Mapping[str, str]) -> Response:
        params = _single_values(form)
        if params is None:
            return _oauth_json("invalid_request", "a parameter is repeated or too long")
        with self.runtime.write_transaction() as db:
            served = self.served(db)
            proof = headers.get("dpop")
            if proof is not None:
                try:
                    served.dpop_jkt = _verify_proof(db, proof, "POST", url, served.now)
                except dpop.InvalidProof as invalid:
                    return _oauth_json("invalid_dpop_proof", str(invalid))
            with serving(served):
                response = self.server.create_token_response(
                    StarletteOAuth2Request("POST", url, headers, params)
                )
            auditing.record(self.runtime, db, served.events)
            return response

    def userinfo(self, method: str, headers: Mapping[str, str]) -> Response:
        scheme, _, token = headers.get("authorization", "").partition(" ")
        scheme, token = scheme.lower(), token.strip()
        if scheme not in ("bearer", "dpop") or not token:
            return _bearer_error("invalid_request", "an access token is required")
        with self.runtime.write_transaction() as db:
            now = self.runtime.clock()
            stored = store.token_by_value(db, token, now)
            if stored is None:
                return _bearer_error("invalid_token", "the access token is unknown or expired")
            if (stored.jkt is not None) != (scheme == "dpop"):
                # A bound token must come with DPoP, and DPoP with a bound token.
                return _bearer_error("invalid_token", "the token type and the scheme differ")
            if stored.jkt is not None:
                try:
                    userinfo_url = f"{self.issuer}/oidc/userinfo"
                    shown = _verify_proof(
                        db, headers.get("dpop", ""), method, userinfo_url, now, access_token=token
                    )
                except dpop.InvalidProof as invalid:
                    return _bearer_error("invalid_dpop_proof", str(invalid), scheme="DPoP")
                if shown != stored.jkt:
                    return _bearer_error(
                        "invalid_dpop_proof", "the proof is from another key", scheme="DPoP"
                    )
            authorization = store.authorization_by_id(db, stored.authorization_id)
            assert authorization is not None
            result = self.result(db, authorization)
            scopes = tuple(stored.scope.split())
            info: dict[str, Any] = {"sub": result["sub"]}
            info.update(oidc_claims.standard_claims(result, scopes))
            if authorization.params.get("verified_claims_in_userinfo"):
                verified = oidc_claims.verified_claims(result, scopes)
                if verified is not None:
                    info["verified_claims"] = verified
            released = [name for name in info if name in oidc_claims.ATTRIBUTE_SCOPES]
            released += [
                name
                for name in info.get("verified_claims", {}).get("claims", {})
                if name not in released
            ]
            auditing.record(
                self.runtime,
                db,
                [
                    (
                        "oidc.claims_released",
                        {
                            "authorization_id": authorization.id,
                            "client_id": stored.client_id,
                            "claims": sorted(released),
                        },
                    )
                ],
            )
        return JSONResponse(info, headers={"Cache-Control": "no-store"})

    def record_refusal(self, endpoint: str, response: Response) -> Response:
        """Bad input is recorded: every OAuth error this door sends gets an audit entry."""
        error = refusal_of(response)
        if error is not None:
            with self.runtime.write_transaction() as db:
                auditing.record(
                    self.runtime,
                    db,
                    [("oidc.request_refused", {"endpoint": endpoint, "error": error})],
                )
        return response


def _verify_proof(
    db: Any,
    proof: str,
    method: str,
    url: str,
    now: dt.datetime,
    *,
    access_token: str | None = None,
) -> str:
    """A DPoP proof for this request, its jti recorded once; the key's thumbprint."""
    return dpop.verify_proof(
        proof,
        method=method,
        url=url,
        now=now,
        first_use=lambda seen, until: store.first_use_of_jti(db, DPOP_JTI_OWNER, seen, until),
        access_token=access_token,
    )


def refusal_of(response: Response) -> str | None:
    """The OAuth error code a response carries (JSON body, error page or redirect), if any."""
    if response.status_code in (302, 303):
        query = parse_qs(urlsplit(response.headers.get("location", "")).query)
        return _error_code(query.get("error", [None])[0])
    if response.status_code < 400:
        return None
    marked = getattr(response, "oauth_error", None)
    if marked is not None:
        return _error_code(marked)
    try:
        return _error_code(json.loads(bytes(response.body)).get("error"))
    except (ValueError, AttributeError):
        return "unknown_error"


def _error_code(error: object) -> str | None:
    if not isinstance(error, str):
        return None
    # Codes are the door's own or Authlib's: lowercase words; anything else is not echoed.
    return error if error.replace("_", "").isalpha() and error.islower() else "unknown_error"


def _single_values(pairs: list[tuple[str, str]]) -> dict[str, str] | None:
    """OAuth parameters must not repeat (RFC 6749 §3.1); none is long."""
    values: dict[str, str] = {}
    for name, value in pairs:
        if name in values or len(value) > _MAX_PARAM:
            return None
        values[name] = value
    return values


def _oauth_error(error: str, description: str) -> OAuth2Error:
    failure = OAuth2Error(description=description)
    failure.error = error
    return failure


def _redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=302)


def _oauth_json(error: str, description: str, *, status: int = 400) -> JSONResponse:
    return JSONResponse(
        {"error": error, "error_description": description},
        status_code=status,
        headers={"Cache-Control": "no-store"},
    )


def _bearer_error(error: str, description: str, *, scheme: str = "Bearer") -> JSONResponse:
    return JSONResponse(
        {"error": error, "error_description": description},
        status_code=400 if error == "invalid_request" else 401,
        headers={
            "WWW-Authenticate": f'{scheme} error="{error}", error_description="{description}"',
            "Cache-Control": "no-store",
        },
    )


def _error_page(error: str, description: str) -> HTMLResponse:
    """An error the browser must not be redirected with: shown here, in both languages."""
    body = (
        "<!doctype html><html lang='ja'><meta charset='utf-8'>"
        "<title>Common-ID: リクエストを処理できません</title>"
        "<body style='font-family:sans-serif;max-width:40em;margin:3em auto'>"
        "<h1>リクエストを処理できません</h1>"
        "<p>連携元のサービスからのリクエストに誤りがあります。連携元のサービスにお問い合わせください。</p>"
        "<p lang='en'>The request from the service you came from cannot be processed. "
        "Please contact that service.</p>"
        f"<p><code>{error}</code>: {_html(description)}</p></body></html>"
    )
    page = HTMLResponse(body, status_code=400, headers={"Cache-Control": "no-store"})
    page.oauth_error = error  # type: ignore[attr-defined]
    return page


def _html(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class OAuthErrorBody(BaseModel):
    """RFC 6749 §5.2: what the OAuth endpoints answer instead of a problem document."""

    error: str
    error_description: str | None = None


# The OAuth endpoints' refusals in the OpenAPI document (they are not problem documents).
OAUTH_ERRORS: dict[int | str, dict[str, Any]] = {
    "4XX": {"model": OAuthErrorBody, "description": "An OAuth error (RFC 6749 §5.2, RFC 6750 §3)"}
}


def build_router(door_of: Any) -> APIRouter:
    """The endpoints; ``door_of(request)`` gives the app's :class:`OidcDoor`."""
    router = APIRouter(tags=["openid"])

    @router.get("/.well-known/openid-configuration")
    async def discovery(request: Request) -> JSONResponse:
        return JSONResponse(door_of(request).discovery())

    @router.get("/oidc/jwks")
    async def jwks(request: Request) -> JSONResponse:
        door = door_of(request)
        return JSONResponse(door.keys.keys().jwks(door.runtime.clock()))

    @router.get("/oidc/authorize", include_in_schema=False)
    async def authorize(request: Request) -> Response:
        door = door_of(request)
        query = list(request.query_params.multi_items())
        response = await run_in_threadpool(door.authorize, query, str(request.url))
        return await run_in_threadpool(door.record_refusal, "authorize", response)

    @router.post("/oidc/par", responses=OAUTH_ERRORS)
    async def par(request: Request) -> Response:
        door = door_of(request)
        form = await _form(request)
        if form is None:
            response: Response = _oauth_json("invalid_request", "the body must be a form")
        else:
            url = f"{door.issuer}/oidc/par"
            response = await run_in_threadpool(door.push, form, url, request.headers)
        return await run_in_threadpool(door.record_refusal, "par", response)

    @router.get("/oidc/static/{name}", include_in_schema=False)
    async def static(name: str) -> FileResponse:
        if name not in ("sign-in.js", "sign-in.css"):
            raise Problem("not_found")
        return FileResponse(STATIC / name)

    @router.get("/oidc/sign-in/{authorization_id}", include_in_schema=False)
    async def sign_in_page(authorization_id: AuthorizationId) -> FileResponse:
        return FileResponse(STATIC / "sign-in.html", headers={"Cache-Control": "no-store"})

    @router.get("/oidc/sign-in/{authorization_id}/qr.svg", include_in_schema=False)
    async def sign_in_qr(request: Request, authorization_id: AuthorizationId) -> Response:
        """The user code as a QR code: kiosk scanners type what they read."""
        door = door_of(request)
        browser = request.cookies.get(BROWSER_COOKIE)
        code = await run_in_threadpool(door.user_code, authorization_id, browser)
        svg = io.BytesIO()
        segno.make(code, error="m").save(svg, kind="svg", scale=6, border=2)
        return Response(svg.getvalue(), media_type="image/svg+xml", headers=_NO_STORE)

    @router.get("/oidc/sign-in/{authorization_id}/status")
    async def sign_in_status(request: Request, authorization_id: AuthorizationId) -> JSONResponse:
        door = door_of(request)
        browser = request.cookies.get(BROWSER_COOKIE)
        view = await run_in_threadpool(door.status, authorization_id, browser)
        return JSONResponse(view, headers={"Cache-Control": "no-store"})

    @router.post("/oidc/token", responses=OAUTH_ERRORS)
    async def token(request: Request) -> Response:
        door = door_of(request)
        form = await _form(request)
        if form is None:
            response: Response = _oauth_json("invalid_request", "the body must be a form")
        else:
            url = door.server.token_endpoint
            response = await run_in_threadpool(door.token, form, url, request.headers)
        return await run_in_threadpool(door.record_refusal, "token", response)

    async def userinfo(request: Request) -> Response:
        door = door_of(request)
        response = await run_in_threadpool(door.userinfo, request.method, request.headers)
        return await run_in_threadpool(door.record_refusal, "userinfo", response)

    # OpenID Connect Core §5.3.1: GET and POST; one operation each in the OpenAPI document.
    router.add_api_route(
        "/oidc/userinfo",
        userinfo,
        methods=["GET"],
        operation_id="oidc_userinfo_get",
        responses=OAUTH_ERRORS,
    )
    router.add_api_route(
        "/oidc/userinfo",
        userinfo,
        methods=["POST"],
        operation_id="oidc_userinfo_post",
        responses=OAUTH_ERRORS,
    )

    return router


async def _form(request: Request) -> list[tuple[str, str]] | None:
    if not request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        return None
    try:
        body = (await request.body()).decode("utf-8")
        return parse_qsl(body, keep_blank_values=True, strict_parsing=False)
    except (UnicodeDecodeError, ValueError):
        return None


__all__ = ["OidcDoor", "build_router"]
