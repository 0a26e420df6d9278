"""Common-ID as an OpenID Provider, driven by a relying party that is not ours.

The provider's back end is Authlib's OAuth 2 client (requests); the person's
browser follows redirects and the sign-in page's progress with cookies; the
card step is the kiosk's, over the kiosk API with the virtual card (the kiosk
page and PC/SC have their own tests). The ID token is checked with joserfc
against the discovery document and the JWKS, with explicit claim rules.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from authlib.common.security import generate_token
from authlib.integrations.base_client.errors import OAuthError
from authlib.integrations.requests_client import OAuth2Session
from authlib.oauth2.rfc7523 import PrivateKeyJWT
from joserfc import jwt
from joserfc.jwk import ECKey, KeySet

from commonid.api.app import create_app
from commonid.card_answer import answer_challenge
from commonid.client import KioskClient
from commonid.runtime import Runtime, build_runtime
from commonid.settings import Settings
from commonid.store import accounts
from commonid.store import oidc as oidc_store
from jpki.card import JPKICard
from jpki.emulator.card import VirtualMyNumberCard
from jpki.transport import InProcessTransport
from tests.fixtures.card import AUTH_PIN, SIGN_PASSWORD

REDIRECT_A = "https://pay-a.example/callback"
REDIRECT_B = "https://pay-b.example/cb"
CARD = "urn:commonid:acr:jpki:card"
REUSE = "urn:commonid:acr:jpki:reuse"


@dataclass
class OpenIdProvider:
    url: str
    runtime: Runtime
    kiosk_credential: str
    a_client_id: str
    a_key: ECKey
    b_client_id: str
    b_secret: str

    @property
    def discovery(self) -> dict[str, Any]:
        return httpx.get(f"{self.url}/.well-known/openid-configuration").json()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def op(database_url: str, test_hierarchy_dir: Path, tmp_path: Path) -> Iterator[OpenIdProvider]:
    """The service on a real port whose public URL is that port: the issuer clients see."""
    import uvicorn

    port = _free_port()
    settings = Settings(
        data_dir=tmp_path / "service-data",
        database_url=database_url,
        public_url=f"http://127.0.0.1:{port}",
        trust_mode="test",
        test_hierarchy_dir=test_hierarchy_dir,
        session_ttl_seconds=300,
        webhook_dispatch_interval_seconds=0,
        crl_refresh_interval_seconds=0,
    )
    runtime = build_runtime(settings)
    a_key = ECKey.generate_key("P-256", private=True)
    now = runtime.clock()
    every_claim = ["name", "birthdate", "gender", "address", "did", "credential"]
    with runtime.sessions.begin() as db:
        a = accounts.add_provider(
            db,
            name="Pay A",
            allowed_claims=every_claim,
            reuse_max_age_seconds=86400,
            now=now,
            cipher=runtime.cipher,
        )
        b = accounts.add_provider(
            db,
            name="Pay B",
            allowed_claims=["name", "birthdate", "address"],
            reuse_max_age_seconds=86400,
            now=now,
            cipher=runtime.cipher,
        )
        kiosk = accounts.add_kiosk(db, name="Kiosk", now=now)
        client_a, _ = oidc_store.add_client(
            db,
            provider_id=a.account.id,
            redirect_uris=[REDIRECT_A],
            auth_method="private_key_jwt",
            jwks={"keys": [a_key.as_dict(private=False)]},
            jwks_uri=None,
            require_par=False,
            now=now,
        )
        client_b, b_secret = oidc_store.add_client(
            db,
            provider_id=b.account.id,
            redirect_uris=[REDIRECT_B],
            auth_method="client_secret_basic",
            jwks=None,
            jwks_uri=None,
            require_par=False,
            now=now,
        )
        ids = client_a.client_id, client_b.client_id
    assert b_secret is not None
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(runtime=runtime), host="127.0.0.1", port=port, log_level="warning"
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield OpenIdProvider(
            settings.public_url, runtime, kiosk.credential, ids[0], a_key, ids[1], b_secret
        )
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        runtime.close()


def _rp_a(op: OpenIdProvider) -> OAuth2Session:
    """Provider A's back end: private_key_jwt with its ES256 key, PKCE S256."""
    token_endpoint = op.discovery["token_endpoint"]
    session = OAuth2Session(
        op.a_client_id,
        op.a_key,
        token_endpoint_auth_method="private_key_jwt",
        redirect_uri=REDIRECT_A,
        code_challenge_method="S256",
    )
    session.register_client_auth_method(PrivateKeyJWT(token_endpoint, alg="ES256"))
    return session


def _rp_b(op: OpenIdProvider) -> OAuth2Session:
    return OAuth2Session(
        op.b_client_id,
        op.b_secret,
        token_endpoint_auth_method="client_secret_basic",
        redirect_uri=REDIRECT_B,
        code_challenge_method="S256",
    )


class Browser:
    """The person's browser: follows the authorization redirect, then the sign-in page."""

    def __init__(self, op: OpenIdProvider) -> None:
        self.op = op
        self.http = httpx.Client(base_url=op.url, follow_redirects=False, timeout=30)

    def open(self, authorization_url: str) -> httpx.Response:
        return self.http.get(authorization_url)

    def sign_in(self, authorization_url: str) -> tuple[str, dict[str, Any]]:
        """Open the provider's link; returns the sign-in page path and its first status."""
        response = self.open(authorization_url)
        assert response.status_code == 303, response.text
        page = response.headers["location"]
        assert self.http.get(page).status_code == 200
        return page, self.status(page)

    def status(self, page: str) -> dict[str, Any]:
        response = self.http.get(f"{page}/status")
        assert response.status_code == 200, response.text
        return response.json()

    def wait_for_redirect(self, page: str) -> str:
        deadline = time.monotonic() + 30
        while True:
            status = self.status(page)
            if "redirect" in status:
                return str(status["redirect"])
            assert time.monotonic() < deadline, status
            time.sleep(0.2)


def _card_step(
    op: OpenIdProvider, user_code: str, card: VirtualMyNumberCard, *, password: bool
) -> None:
    """The person at the kiosk: the code, consent, the card (PIN, and password if asked)."""
    with KioskClient(op.url, op.kiosk_credential) as kiosk:
        session = kiosk.session(user_code)
        kiosk.consent(session.id)
        answer = answer_challenge(
            JPKICard(InProcessTransport(card)),
            session.challenge.to_be_signed,
            auth_pin=AUTH_PIN,
            sign_password=SIGN_PASSWORD if password else None,
        )
        kiosk.submit_card_answer(session.id, answer)


def _id_token_claims(op: OpenIdProvider, id_token: str, client_id: str, nonce: str) -> Any:
    """The ID token as a careful relying party checks it: the JWKS named by discovery,
    the algorithm it announces, and the claims iss, aud, exp, iat and nonce."""
    discovery = op.discovery
    keys = KeySet.import_key_set(httpx.get(discovery["jwks_uri"]).json())
    token = jwt.decode(
        id_token, keys, algorithms=discovery["id_token_signing_alg_values_supported"]
    )
    jwt.JWTClaimsRegistry(
        iss={"essential": True, "value": discovery["issuer"]},
        aud={"essential": True, "value": client_id},
        exp={"essential": True},
        iat={"essential": True},
        sub={"essential": True},
        nonce={"essential": True, "value": nonce},
    ).validate(token.claims)
    return token


def _code_flow(
    op: OpenIdProvider,
    rp: OAuth2Session,
    card: VirtualMyNumberCard,
    *,
    scope: str,
    password: bool,
    **extra: str,
) -> tuple[dict[str, Any], Any, dict[str, Any]]:
    """One sign-in from the provider's link to userinfo; returns token, ID token, userinfo."""
    discovery = op.discovery
    nonce, verifier = generate_token(20), generate_token(48)
    url, state = rp.create_authorization_url(
        discovery["authorization_endpoint"],
        scope=scope,
        nonce=nonce,
        code_verifier=verifier,
        **extra,
    )
    browser = Browser(op)
    page, status = browser.sign_in(url)
    assert status["status"] == "waiting"
    _card_step(op, status["user_code"], card, password=password)
    redirect = browser.wait_for_redirect(page)
    returned = parse_qs(urlsplit(redirect).query)
    assert returned["state"] == [state]
    assert returned["iss"] == [discovery["issuer"]]  # RFC 9207
    token = rp.fetch_token(
        discovery["token_endpoint"], authorization_response=redirect, code_verifier=verifier
    )
    assert "refresh_token" not in token
    id_token = _id_token_claims(op, token["id_token"], rp.client_id, nonce)
    userinfo = rp.get(discovery["userinfo_endpoint"]).json()
    return token, id_token, userinfo


def test_identity_at_a_then_reuse_at_b_with_the_pin_only(
    op: OpenIdProvider, virtual_card: VirtualMyNumberCard
) -> None:
    discovery = op.discovery
    assert discovery["issuer"] == op.url
    assert discovery["code_challenge_methods_supported"] == ["S256"]
    assert discovery["authorization_response_iss_parameter_supported"] is True

    claims_request = json.dumps({"id_token": {"verified_claims": {"claims": {"name": None}}}})
    _token, id_token, userinfo = _code_flow(
        op,
        _rp_a(op),
        virtual_card,
        scope="openid name birthdate address",
        password=True,
        claims=claims_request,
    )
    assert id_token.header["alg"] == "ES256"
    assert id_token.claims["acr"] == CARD
    verified = id_token.claims["verified_claims"]
    assert verified["verification"]["trust_framework"] == "jp_aml"
    assert verified["verification"]["evidence"][0]["type"] == "electronic_signature"
    assert set(verified["claims"]) == {"name", "birthdate", "address"}
    # userinfo: the standard claims, as the Digital Authentication App returns them
    assert userinfo["sub"] == id_token.claims["sub"]
    assert set(userinfo) == {"sub", "name", "birthdate", "address"}
    sub_at_a = userinfo["sub"]

    _token, id_token, userinfo = _code_flow(
        op,
        _rp_b(op),
        virtual_card,
        scope="openid name birthdate address",
        password=False,  # the PIN only
        acr_values=REUSE,
    )
    assert id_token.claims["acr"] == REUSE
    assert userinfo["name"] and userinfo["birthdate"] and userinfo["address"]
    # Pairwise: B's subject id for the same person is not A's.
    assert userinfo["sub"] != sub_at_a


def test_a_pushed_authorization_request_is_used_once(
    op: OpenIdProvider, virtual_card: VirtualMyNumberCard
) -> None:
    discovery = op.discovery
    rp = _rp_b(op)
    nonce, verifier = generate_token(20), generate_token(48)
    url, state = rp.create_authorization_url(
        discovery["authorization_endpoint"], scope="openid", nonce=nonce, code_verifier=verifier
    )
    params = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    pushed = httpx.post(
        discovery["pushed_authorization_request_endpoint"],
        data=params,
        auth=(op.b_client_id, op.b_secret),
    )
    assert pushed.status_code == 201, pushed.text
    request_uri = pushed.json()["request_uri"]
    link = f"{discovery['authorization_endpoint']}?" + urlencode(
        {"client_id": op.b_client_id, "request_uri": request_uri}
    )
    browser = Browser(op)
    page, status = browser.sign_in(link)
    _card_step(op, status["user_code"], virtual_card, password=False)
    redirect = browser.wait_for_redirect(page)
    token = rp.fetch_token(
        discovery["token_endpoint"], authorization_response=redirect, code_verifier=verifier
    )
    assert _id_token_claims(op, token["id_token"], op.b_client_id, nonce).claims["acr"] == CARD
    assert parse_qs(urlsplit(redirect).query)["state"] == [state]
    again = Browser(op).open(link)
    assert again.status_code == 400 and "invalid_request_uri" in again.text


def _authorize_error(op: OpenIdProvider, **changes: str | None) -> dict[str, list[str]]:
    """An authorization request for client B with ``changes``; the error redirect's query."""
    params: dict[str, str | None] = {
        "response_type": "code",
        "client_id": op.b_client_id,
        "redirect_uri": REDIRECT_B,
        "scope": "openid name",
        "state": "s-1",
        "nonce": "n-1",
        "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
        "code_challenge_method": "S256",
    } | changes
    response = Browser(op).open(
        "/oidc/authorize?" + urlencode({k: v for k, v in params.items() if v is not None})
    )
    assert response.status_code == 302, response.text
    location = response.headers["location"]
    assert location.startswith(REDIRECT_B)
    query = parse_qs(urlsplit(location).query)
    assert query["iss"] == [op.url] and query["state"] == ["s-1"]
    return query


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"code_challenge": None, "code_challenge_method": None}, "invalid_request"),
        ({"code_challenge_method": "plain"}, "invalid_request"),
        ({"nonce": None}, "invalid_request"),
        ({"scope": "openid name email"}, "invalid_scope"),
        ({"scope": "openid gender"}, "invalid_scope"),  # B may not ask for gender
        ({"scope": "name"}, "invalid_scope"),
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"prompt": "none"}, "login_required"),
        (
            {"claims": json.dumps({"userinfo": {"verified_claims": {"claims": {"gender": None}}}})},
            "invalid_request",
        ),
    ],
)
def test_bad_authorization_requests_come_back_as_oauth_errors(
    op: OpenIdProvider, changes: dict[str, str | None], error: str
) -> None:
    assert _authorize_error(op, **changes)["error"] == [error]


@pytest.mark.parametrize(
    "changes",
    [
        {"redirect_uri": "https://attacker.example/cb"},
        {"redirect_uri": REDIRECT_B + "/"},  # exact matching
        {"redirect_uri": None},
        {"client_id": "oc_unknown"},
    ],
)
def test_an_unregistered_redirect_is_shown_never_followed(
    op: OpenIdProvider, changes: dict[str, str | None]
) -> None:
    params = {
        "response_type": "code",
        "client_id": op.b_client_id,
        "redirect_uri": REDIRECT_B,
        "scope": "openid",
        "state": "s",
        "nonce": "n",
    } | changes
    response = Browser(op).open(
        "/oidc/authorize?" + urlencode({k: v for k, v in params.items() if v is not None})
    )
    assert response.status_code == 400
    assert "location" not in response.headers
    assert "リクエストを処理できません" in response.text


def test_codes_are_single_use_bound_to_their_client_and_verifier(
    op: OpenIdProvider, virtual_card: VirtualMyNumberCard
) -> None:
    discovery = op.discovery
    token_endpoint = discovery["token_endpoint"]

    def signed_in(rp: OAuth2Session) -> tuple[str, str]:
        verifier = generate_token(48)
        url, _ = rp.create_authorization_url(
            discovery["authorization_endpoint"],
            scope="openid",
            nonce=generate_token(20),
            code_verifier=verifier,
        )
        browser = Browser(op)
        page, status = browser.sign_in(url)
        _card_step(op, status["user_code"], virtual_card, password=False)
        redirect = browser.wait_for_redirect(page)
        return parse_qs(urlsplit(redirect).query)["code"][0], verifier

    code, verifier = signed_in(_rp_b(op))
    exchange = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_B}
    b_auth = (op.b_client_id, op.b_secret)
    wrong = httpx.post(token_endpoint, data=exchange | {"code_verifier": "x" * 43}, auth=b_auth)
    assert wrong.status_code == 400 and wrong.json()["error"] == "invalid_grant"
    # The wrong verifier burnt the code: even the right one cannot use it now.
    burnt = httpx.post(token_endpoint, data=exchange | {"code_verifier": verifier}, auth=b_auth)
    assert burnt.json()["error"] == "invalid_grant"

    code, verifier = signed_in(_rp_b(op))
    missing = httpx.post(token_endpoint, data=exchange | {"code": code}, auth=b_auth)
    assert missing.status_code == 400 and missing.json()["error"] == "invalid_request"

    code, verifier = signed_in(_rp_b(op))
    exchange = exchange | {"code": code, "code_verifier": verifier}
    # Client A presents B's code: refused, and the code is spent.
    with pytest.raises(OAuthError) as stolen:
        _rp_a(op).fetch_token(token_endpoint, code=code, code_verifier=verifier)
    assert stolen.value.error == "invalid_grant"
    assert httpx.post(token_endpoint, data=exchange, auth=b_auth).json()["error"] == "invalid_grant"

    code, verifier = signed_in(_rp_b(op))
    exchange = exchange | {"code": code, "code_verifier": verifier}
    first = httpx.post(token_endpoint, data=exchange, auth=b_auth)
    assert first.status_code == 200, first.text
    second = httpx.post(token_endpoint, data=exchange, auth=b_auth)
    assert second.status_code == 400 and second.json()["error"] == "invalid_grant"
    assert (
        httpx.post(token_endpoint, data=exchange, auth=(op.b_client_id, "wrong")).status_code == 401
    )


def _assertion(op: OpenIdProvider, key: ECKey, **claims: Any) -> str:
    now = int(time.time())
    body = {
        "iss": op.a_client_id,
        "sub": op.a_client_id,
        "aud": op.discovery["token_endpoint"],
        "jti": generate_token(16),
        "iat": now,
        "exp": now + 60,
    } | claims
    return jwt.encode({"alg": "ES256"}, body, key)


@pytest.mark.parametrize(
    "fault", ["wrong_key", "wrong_audience", "expired", "replayed_jti", "none_alg"]
)
def test_a_bad_client_assertion_is_refused(op: OpenIdProvider, fault: str) -> None:
    token_endpoint = op.discovery["token_endpoint"]
    key = op.a_key
    claims: dict[str, Any] = {}
    if fault == "wrong_key":
        key = ECKey.generate_key("P-256", private=True)
    elif fault == "wrong_audience":
        claims["aud"] = "https://elsewhere.example/token"
    elif fault == "expired":
        claims["exp"] = int(time.time()) - 600
    elif fault == "replayed_jti":
        claims["jti"] = "used-once"
        httpx.post(token_endpoint, data=_token_form(_assertion(op, key, **claims)))
    assertion = _assertion(op, key, **claims)
    if fault == "none_alg":
        _header, payload, _ = assertion.split(".")
        assertion = f"eyJhbGciOiJub25lIn0.{payload}."
    refused = httpx.post(token_endpoint, data=_token_form(assertion))
    # RFC 6749 §5.2: 401 is for HTTP authentication schemes; an assertion gets 400.
    assert refused.status_code == 400, refused.text
    assert refused.json()["error"] == "invalid_client"


def _token_form(assertion: str) -> dict[str, str]:
    return {
        "grant_type": "authorization_code",
        "code": "not-a-code",
        "redirect_uri": REDIRECT_A,
        "code_verifier": "v" * 43,
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": assertion,
    }


def test_declining_at_the_kiosk_returns_access_denied(
    op: OpenIdProvider,
) -> None:
    discovery = op.discovery
    rp = _rp_b(op)
    url, _ = rp.create_authorization_url(
        discovery["authorization_endpoint"],
        scope="openid",
        nonce=generate_token(20),
        code_verifier=generate_token(48),
    )
    browser = Browser(op)
    page, status = browser.sign_in(url)
    with KioskClient(op.url, op.kiosk_credential) as kiosk:
        session = kiosk.session(status["user_code"])
        kiosk.consent(session.id, approved=False)
    query = parse_qs(urlsplit(browser.wait_for_redirect(page)).query)
    assert query["error"] == ["access_denied"]
    assert browser.status(page)["status"] == "finished"  # the code or error is given once
    other = httpx.get(f"{op.url}{page}/status")  # another browser (no cookie)
    assert other.status_code == 404 and other.json()["code"] == "authorization_not_found"


def test_userinfo_needs_a_valid_token(op: OpenIdProvider) -> None:
    userinfo = op.discovery["userinfo_endpoint"]
    assert httpx.get(userinfo).status_code == 400
    refused = httpx.get(userinfo, headers={"Authorization": "Bearer cid_at_made_up"})
    assert refused.status_code == 401
    assert 'error="invalid_token"' in refused.headers["www-authenticate"]


def test_repeated_or_oversized_parameters_are_refused(op: OpenIdProvider) -> None:
    browser = Browser(op)
    repeated = browser.open(f"/oidc/authorize?client_id={op.b_client_id}&client_id=x")
    assert repeated.status_code == 400
    token = httpx.post(
        op.discovery["token_endpoint"],
        content="grant_type=authorization_code&code=a&code=b",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert token.status_code == 400 and token.json()["error"] == "invalid_request"
    not_a_form = httpx.post(op.discovery["token_endpoint"], json={"grant_type": "x"})
    assert not_a_form.status_code == 400
