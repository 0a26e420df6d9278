"""Authlib's authorization server, fitted to Common-ID and to FastAPI.

Authlib does the OAuth 2.0 and OpenID Connect work: request validation,
client authentication (``client_secret_basic``; ``private_key_jwt`` through
its RFC 7523 client assertion), the authorization code grant, PKCE, the ID
token, the RFC 9207 ``iss`` parameter. What this module adds is what Authlib
leaves to the application or gets wrong for this profile:

- requests and responses in Starlette's terms (Authlib ships Flask and Django);
- PKCE required for every client, S256 only (Authlib lets confidential
  clients skip it and accepts ``plain``);
- a client assertion's ``jti`` accepted once, its audience the issuer or the
  token endpoint;
- codes and tokens stored by hash, codes single use and short-lived, no
  refresh tokens;
- the ID token signed with the service's ES256 key, its claims from the
  Common-ID session's result.

The database session and the clock of the request being served reach Authlib's
callbacks through a context variable: Authlib calls ``query_client`` with the
client id alone.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
import hmac
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar

from authlib.common.urls import add_params_to_uri
from authlib.oauth2 import OAuth2Request
from authlib.oauth2.rfc6749 import (
    AuthorizationServer,
    ClientMixin,
    InvalidClientError,
    InvalidRequestError,
    JsonRequest,
)
from authlib.oauth2.rfc6749.grants import AuthorizationCodeGrant
from authlib.oauth2.rfc6749.requests import BasicOAuth2Payload
from authlib.oauth2.rfc6750 import BearerTokenGenerator
from authlib.oauth2.rfc7523 import JWTBearerClientAssertion
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oauth2.rfc9207 import IssuerParameter
from authlib.oidc.core import AuthorizationCodeMixin
from authlib.oidc.core.grants import OpenIDCode
from joserfc.jwk import KeySet
from sqlalchemy.orm import Session as DbSession
from starlette.responses import JSONResponse, RedirectResponse, Response

from commonid.oidc import claims as oidc_claims
from commonid.oidc.client_keys import JwksCache
from commonid.oidc.keys import ALGORITHM, SigningKeysFile
from commonid.problems import Problem
from commonid.store import oidc as store
from commonid.store.ids import hash_credential, new_secret
from commonid.store.models import OidcAuthorization, OidcClient

CODE_LIFETIME = dt.timedelta(seconds=60)
ACCESS_TOKEN_LIFETIME = dt.timedelta(minutes=10)
ID_TOKEN_LIFETIME = dt.timedelta(minutes=10)
PRIVATE_KEY_JWT = "private_key_jwt"
CLIENT_SECRET_BASIC = "client_secret_basic"  # noqa: S105 - a method name
AUTH_METHODS = (PRIVATE_KEY_JWT, CLIENT_SECRET_BASIC)


@dataclass
class Served:
    """What the request being served brings: its transaction, its time, the result
    reader (the door reads results through commonid.flows only)."""

    db: DbSession
    now: dt.datetime
    result_of: Callable[[OidcAuthorization], dict[str, Any]]
    # The key a DPoP proof at the token endpoint showed: the token is bound to it.
    dpop_jkt: str | None = None
    # Audit entries the request makes, written with its transaction.
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)


_served: contextvars.ContextVar[Served] = contextvars.ContextVar("oidc_served")
_assertion_kid: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "oidc_assertion_kid", default=None
)


@contextlib.contextmanager
def serving(served: Served) -> Iterator[None]:
    token = _served.set(served)
    try:
        yield
    finally:
        _served.reset(token)


def _now() -> dt.datetime:
    return _served.get().now


def _db() -> DbSession:
    return _served.get().db


class Client(ClientMixin):
    """A registered client, as Authlib asks about it."""

    def __init__(
        self, row: OidcClient, allowed_claims: list[str], jwks_cache: JwksCache | None = None
    ) -> None:
        self.row = row
        self.allowed_claims = allowed_claims
        self._jwks_cache = jwks_cache

    @property
    def client_id(self) -> str:
        return self.row.client_id

    def get_client_id(self) -> str:
        return self.row.client_id

    def get_default_redirect_uri(self) -> str | None:
        return None  # redirect_uri is always required: exact matching, no defaults

    def get_allowed_scope(self, scope: str) -> str:
        return scope  # claims.wanted() has refused what the client may not ask

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri in self.row.redirect_uris  # exact string match

    def check_client_secret(self, client_secret: str) -> bool:
        stored = self.row.secret_hash
        return stored is not None and hmac.compare_digest(stored, hash_credential(client_secret))

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return endpoint == "token" and method == self.row.auth_method

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code"

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type == "authorization_code"

    def public_keys(self, kid: str | None = None) -> KeySet:
        if self.row.jwks is not None:
            return KeySet.import_key_set(self.row.jwks)
        if self.row.jwks_uri is not None and self._jwks_cache is not None:
            return self._jwks_cache.keys(self.row.jwks_uri, kid=kid)
        raise InvalidClientError(description="the client has no registered keys")


@dataclass
class Authorized:
    """The resource owner Authlib hands around: the authorization the card step answered."""

    authorization: OidcAuthorization
    result: dict[str, Any]

    def get_user_id(self) -> str:
        return str(self.result["sub"])


class IssuedCode(AuthorizationCodeMixin):
    def __init__(self, authorization: OidcAuthorization) -> None:
        self.authorization = authorization
        self.params = authorization.params

    def get_redirect_uri(self) -> str:
        return str(self.params["redirect_uri"])

    def get_scope(self) -> str:
        return str(self.params["scope"])

    def get_nonce(self) -> str | None:
        return self.params.get("nonce")

    def get_auth_time(self) -> int | None:
        auth_time = self.authorization.auth_time
        return int(auth_time.timestamp()) if auth_time else None

    def get_acr(self) -> str | None:
        return self.params.get("acr_achieved")

    def get_amr(self) -> list[str]:
        return oidc_claims.AMR


class RequiredS256(CodeChallenge):
    """PKCE for every client, S256 only (RFC 9700 §2.1.1; the Digital Authentication App)."""

    DEFAULT_CODE_CHALLENGE_METHOD = "S256"
    SUPPORTED_CODE_CHALLENGE_METHOD: ClassVar[list[str]] = ["S256"]

    def validate_code_challenge(self, grant: Any, redirect_uri: str) -> None:
        data = grant.request.payload.data
        if not data.get("code_challenge"):
            raise InvalidRequestError("code_challenge is required (PKCE, S256)")
        if data.get("code_challenge_method") != "S256":
            raise InvalidRequestError("code_challenge_method must be S256")
        super().validate_code_challenge(grant, redirect_uri)

    def validate_code_verifier(self, grant: Any, result: Any) -> None:
        if not grant.request.form.get("code_verifier"):
            raise InvalidRequestError("code_verifier is required (PKCE)")
        super().validate_code_verifier(grant, result)

    def get_authorization_code_challenge(self, authorization_code: IssuedCode) -> str:
        return str(authorization_code.params["code_challenge"])

    def get_authorization_code_challenge_method(self, authorization_code: IssuedCode) -> str:
        return "S256"


class CodeGrant(AuthorizationCodeGrant):
    TOKEN_ENDPOINT_AUTH_METHODS: ClassVar[list[str]] = list(AUTH_METHODS)

    def save_authorization_code(self, code: str, request: OAuth2Request) -> None:
        authorization = request.user.authorization
        authorization.code_hash = hash_credential(code)
        authorization.code_expires_at = _now() + CODE_LIFETIME
        _db().flush()

    def query_authorization_code(self, code: str, client: Client) -> IssuedCode | None:
        # Taken once, whoever presents it: a code shown to another client is burnt.
        authorization = store.take_code(_db(), code, _now())
        if authorization is None or authorization.client_id != client.client_id:
            return None
        return IssuedCode(authorization)

    def delete_authorization_code(self, authorization_code: IssuedCode) -> None:
        """Nothing to do: taking the code marked it used."""

    def authenticate_user(self, authorization_code: IssuedCode) -> Authorized:
        authorization = authorization_code.authorization
        return Authorized(authorization, _served.get().result_of(authorization))


class CommonIdOpenIDCode(OpenIDCode):
    """The ID token: ES256, the pairwise ``sub``, ``acr`` as achieved, and
    ``verified_claims`` when the ``claims`` parameter asked for them there."""

    def __init__(self, issuer: str, keys: SigningKeysFile) -> None:
        super().__init__(require_nonce=True)
        self.issuer = issuer
        self.keys = keys

    def exists_nonce(self, nonce: str, request: OAuth2Request) -> bool:
        return False  # a nonce is the client's to check; codes are single use here

    def resolve_client_private_key(self, client: Client) -> Any:
        return self.keys.keys().current

    def get_client_algorithm(self, client: Client) -> str:
        return ALGORITHM

    def get_encode_header(self, client: Client) -> dict[str, str]:
        return {"alg": ALGORITHM, "kid": self.keys.keys().current_kid, "typ": "JWT"}

    def get_client_claims(self, client: Client) -> dict[str, Any]:
        now = _now()
        return {
            "iss": self.issuer,
            "aud": [client.client_id],
            "iat": int(now.timestamp()),
            "exp": int((now + ID_TOKEN_LIFETIME).timestamp()),
        }

    def generate_user_info(self, user: Authorized, scope: str) -> dict[str, Any]:
        info: dict[str, Any] = {"sub": user.get_user_id()}
        params = user.authorization.params
        if params.get("verified_claims_in_id_token"):
            scopes = tuple(scope.split())
            verified = oidc_claims.verified_claims(user.result, scopes)
            if verified is not None:
                info["verified_claims"] = verified
        return info


class PrivateKeyJwt(JWTBearerClientAssertion):
    """``private_key_jwt`` (RFC 7523 §2.2): the assertion signed with a registered key,
    addressed to this issuer or its token endpoint, its ``jti`` accepted once."""

    CLIENT_AUTH_METHOD = PRIVATE_KEY_JWT

    def __init__(self, issuer: str, token_endpoint: str) -> None:
        super().__init__(validate_jti=True, leeway=30)
        self.audiences = [issuer, token_endpoint]

    def get_audiences(self) -> list[str]:
        return self.audiences

    def resolve_client_public_key(self, client: Client) -> KeySet:
        return client.public_keys(_assertion_kid.get())

    def __call__(self, query_client: Any, request: OAuth2Request) -> Any:
        # The assertion's key id picks a key, and tells a JWKS URL's cache when to refetch.
        assertion = request.form.get("client_assertion") or ""
        try:
            kid = self.extract_assertion(assertion)[0].get("kid") if assertion else None
        except InvalidClientError:
            kid = None
        # Per request (this object serves every thread): a context variable, not an attribute.
        token = _assertion_kid.set(kid if isinstance(kid, str) else None)
        try:
            return super().__call__(query_client, request)
        finally:
            _assertion_kid.reset(token)

    def validate_jti(self, claims: dict[str, Any], jti: str) -> bool:
        expires = dt.datetime.fromtimestamp(int(claims["exp"]), dt.UTC)
        return store.first_use_of_jti(_db(), str(claims["sub"]), str(jti)[:200], expires)


class Issuer(IssuerParameter):
    def __init__(self, issuer: str) -> None:
        self.issuer = issuer

    def get_issuer(self) -> str:
        return self.issuer


class StarletteOAuth2Request(OAuth2Request):
    """A request as Authlib reads it: the URL, headers and form or query parameters."""

    def __init__(self, method: str, uri: str, headers: Any, data: dict[str, str]):
        super().__init__(method=method, uri=uri, headers=headers)
        self._data = data
        self.payload = BasicOAuth2Payload(data)

    @property
    def args(self) -> dict[str, str]:
        return self._data if self.method == "GET" else {}

    @property
    def form(self) -> dict[str, str]:
        return self._data if self.method == "POST" else {}


class Server(AuthorizationServer):
    def __init__(self, issuer: str, keys: SigningKeysFile) -> None:
        super().__init__(scopes_supported=list(oidc_claims.SCOPES_SUPPORTED))
        self.issuer = issuer
        self.token_endpoint = f"{issuer}/oidc/token"
        self.register_token_generator(
            "default",
            BearerTokenGenerator(
                access_token_generator=_random_token,
                refresh_token_generator=None,  # refresh tokens are off
                expires_generator=lambda client, grant_type: int(
                    ACCESS_TOKEN_LIFETIME.total_seconds()
                ),
            ),
        )
        self.register_grant(CodeGrant, [RequiredS256(), CommonIdOpenIDCode(issuer, keys)])
        self.register_client_auth_method(
            PRIVATE_KEY_JWT, PrivateKeyJwt(issuer, self.token_endpoint)
        )
        self.jwks_cache = JwksCache()
        self.register_extension(Issuer(issuer))

    def query_client(self, client_id: str) -> Client | None:
        from commonid import flows

        row = store.client_by_id(_db(), client_id) if isinstance(client_id, str) else None
        if row is None:
            return None
        try:
            provider = flows.active_provider(_db(), row.provider_id)
        except Problem:  # a disabled provider's client does not exist for OAuth
            return None
        return Client(row, provider.allowed_claims, self.jwks_cache)

    def save_token(self, token: dict[str, Any], request: OAuth2Request) -> None:
        authorization = request.user.authorization
        now = _now()
        jkt = _served.get().dpop_jkt
        if jkt is not None:
            token["token_type"] = "DPoP"  # noqa: S105 - RFC 9449 §5: a bound token says so
        store.save_token(
            _db(),
            token=token["access_token"],
            authorization_id=authorization.id,
            client_id=request.client.client_id,
            scope=token["scope"],
            jkt=jkt,
            now=now,
            expires_at=now + dt.timedelta(seconds=int(token["expires_in"])),
        )
        _served.get().events.append(
            (
                "oidc.token_issued",
                {
                    "authorization_id": authorization.id,
                    "client_id": request.client.client_id,
                    "dpop_bound": jkt is not None,
                },
            )
        )

    def create_oauth2_request(self, request: Any) -> OAuth2Request:
        return request  # built by the router (StarletteOAuth2Request)

    def create_json_request(self, request: Any) -> JsonRequest:
        raise NotImplementedError  # no JSON endpoints

    def handle_response(self, status: int, body: Any, headers: Any) -> Response:
        headers = dict(headers)
        if status == 302:
            return AuthorizationRedirect(headers.pop("Location"))
        headers.setdefault("Cache-Control", "no-store")
        headers.pop("Content-Type", None)
        return JSONResponse(body, status_code=status, headers=headers)

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        """Authlib's signals: nothing listens (the audit log records the session)."""


class AuthorizationRedirect(RedirectResponse):
    """A redirect whose ``location`` Authlib's extensions can read and amend (RFC 9207)."""

    def __init__(self, url: str) -> None:
        super().__init__(url, status_code=302, headers={"Cache-Control": "no-store"})

    @property
    def location(self) -> str:
        return self.headers["location"]

    @location.setter
    def location(self, url: str) -> None:
        self.headers["location"] = url


def _random_token(**_kwargs: Any) -> str:
    return new_secret("cid_at")


def error_redirect(
    redirect_uri: str, error: str, description: str, state: str | None, issuer: str
) -> str:
    """An OAuth error sent back to a redirect URI already known to be the client's."""
    params = [("error", error), ("error_description", description), ("iss", issuer)]
    if state is not None:
        params.append(("state", state))
    return add_params_to_uri(redirect_uri, params)
