"""Common-ID as an OpenID Provider, driven by a relying party that is not ours.

The provider's back end is Authlib's OAuth 2 client (requests); the person's
browser follows redirects and the sign-in page's progress with cookies; the
card step is the kiosk's, over the kiosk API with the virtual card (the kiosk
page and PC/SC have their own tests). The ID token is checked with joserfc
against the discovery document and the JWKS, with explicit claim rules.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from authlib.common.security import generate_token
from authlib.integrations.base_client.errors import OAuthError
from authlib.integrations.requests_client import OAuth2Session
from hypothesis import given, settings
from hypothesis import strategies as st
from joserfc import jwt
from joserfc.jwk import ECKey, KeySet

from commonid.card_answer import answer_challenge
from commonid.client import KioskClient
from commonid.store import oidc as oidc_store
from jpki.card import JPKICard
from jpki.emulator.card import VirtualMyNumberCard
from jpki.transport import InProcessTransport
from tests.fixtures.card import AUTH_PIN, SIGN_PASSWORD
from tests.fixtures.oidc import (
    CARD,
    REDIRECT_A,
    REDIRECT_B,
    REUSE,
    Browser,
    OpenIdProvider,
    id_token_claims,
    rp_a,
    rp_b,
)


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
    id_token = id_token_claims(op, token["id_token"], rp.client_id, nonce, token["access_token"])
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
        rp_a(op),
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
        rp_b(op),
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
    rp = rp_b(op)
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
    assert id_token_claims(op, token["id_token"], op.b_client_id, nonce).claims["acr"] == CARD
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

    code, verifier = _signed_in_code(op, virtual_card)
    exchange = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_B}
    b_auth = (op.b_client_id, op.b_secret)
    wrong = httpx.post(token_endpoint, data=exchange | {"code_verifier": "x" * 43}, auth=b_auth)
    assert wrong.status_code == 400 and wrong.json()["error"] == "invalid_grant"
    # The wrong verifier burnt the code: even the right one cannot use it now.
    burnt = httpx.post(token_endpoint, data=exchange | {"code_verifier": verifier}, auth=b_auth)
    assert burnt.json()["error"] == "invalid_grant"

    code, verifier = _signed_in_code(op, virtual_card)
    missing = httpx.post(token_endpoint, data=exchange | {"code": code}, auth=b_auth)
    assert missing.status_code == 400 and missing.json()["error"] == "invalid_request"

    code, verifier = _signed_in_code(op, virtual_card)
    exchange = exchange | {"code": code, "code_verifier": verifier}
    # Client A presents B's code: refused, and the code is spent.
    with pytest.raises(OAuthError) as stolen:
        rp_a(op).fetch_token(token_endpoint, code=code, code_verifier=verifier)
    assert stolen.value.error == "invalid_grant"
    assert httpx.post(token_endpoint, data=exchange, auth=b_auth).json()["error"] == "invalid_grant"

    code, verifier = _signed_in_code(op, virtual_card)
    exchange = exchange | {"code": code, "code_verifier": verifier}
    first = httpx.post(token_endpoint, data=exchange, auth=b_auth)
    assert first.status_code == 200, first.text
    second = httpx.post(token_endpoint, data=exchange, auth=b_auth)
    assert second.status_code == 400 and second.json()["error"] == "invalid_grant"
    assert (
        httpx.post(token_endpoint, data=exchange, auth=(op.b_client_id, "wrong")).status_code == 401
    )


def _assertion(op: OpenIdProvider, key: ECKey, *, kid: str | None = None, **claims: Any) -> str:
    now = int(time.time())
    body = {
        "iss": op.a_client_id,
        "sub": op.a_client_id,
        "aud": op.discovery["token_endpoint"],
        "jti": generate_token(16),
        "iat": now,
        "exp": now + 60,
    } | claims
    header = {"alg": "ES256"} | ({"kid": kid} if kid else {})
    return jwt.encode(header, body, key)


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
    rp = rp_b(op)
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


def _proof(key: ECKey, method: str, url: str, **claims: Any) -> str:
    """A DPoP proof as RFC 9449 §4.2 has a client make it (no client library here has DPoP)."""
    body = {"jti": generate_token(16), "htm": method, "htu": url, "iat": int(time.time())}
    header = {"typ": "dpop+jwt", "alg": "ES256", "jwk": key.as_dict(private=False)}
    return jwt.encode(header, body | claims, key)


def test_dpop_binds_the_access_token_to_the_clients_key(
    op: OpenIdProvider, virtual_card: VirtualMyNumberCard
) -> None:
    import hashlib

    discovery = op.discovery
    assert "ES256" in discovery["dpop_signing_alg_values_supported"]
    token_endpoint, userinfo = discovery["token_endpoint"], discovery["userinfo_endpoint"]
    rp = rp_b(op)
    verifier = generate_token(48)
    url, _ = rp.create_authorization_url(
        discovery["authorization_endpoint"],
        scope="openid name",
        nonce=generate_token(20),
        code_verifier=verifier,
    )
    browser = Browser(op)
    page, status = browser.sign_in(url)
    _card_step(op, status["user_code"], virtual_card, password=True)
    code = parse_qs(urlsplit(browser.wait_for_redirect(page)).query)["code"][0]
    holder = ECKey.generate_key("P-256", private=True)
    exchange = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT_B,
        "code_verifier": verifier,
    }
    b_auth = (op.b_client_id, op.b_secret)
    wrong_url = httpx.post(
        token_endpoint,
        data=exchange,
        auth=b_auth,
        headers={"DPoP": _proof(holder, "POST", userinfo)},
    )
    assert wrong_url.status_code == 400 and wrong_url.json()["error"] == "invalid_dpop_proof"
    issued = httpx.post(
        token_endpoint,
        data=exchange,
        auth=b_auth,
        headers={"DPoP": _proof(holder, "POST", token_endpoint)},
    )
    assert issued.status_code == 200, issued.text
    assert issued.json()["token_type"] == "DPoP"
    access_token = issued.json()["access_token"]
    ath = (
        __import__("base64")
        .urlsafe_b64encode(hashlib.sha256(access_token.encode()).digest())
        .rstrip(b"=")
        .decode()
    )

    def ask(scheme: str, proof: str | None) -> httpx.Response:
        headers = {"Authorization": f"{scheme} {access_token}"}
        if proof is not None:
            headers["DPoP"] = proof
        return httpx.get(userinfo, headers=headers)

    good = _proof(holder, "GET", userinfo, ath=ath)
    answered = ask("DPoP", good)
    assert answered.status_code == 200, answered.text
    assert answered.json()["name"]
    # A stolen bound token is useless without the key: every other way is refused.
    assert ask("Bearer", None).status_code == 401
    assert ask("DPoP", None).status_code == 401
    assert ask("DPoP", good).status_code == 401  # the same proof again (jti)
    thief = ECKey.generate_key("P-256", private=True)
    assert ask("DPoP", _proof(thief, "GET", userinfo, ath=ath)).status_code == 401
    assert ask("DPoP", _proof(holder, "GET", userinfo)).status_code == 401  # no ath
    assert ask("DPoP", _proof(holder, "POST", userinfo, ath=ath)).status_code == 401
    stale = _proof(holder, "GET", userinfo, ath=ath, iat=int(time.time()) - 600)
    refused = ask("DPoP", stale)
    assert refused.status_code == 401
    assert refused.headers["www-authenticate"].startswith('DPoP error="invalid_dpop_proof"')
    assert ask("DPoP", _proof(holder, "GET", userinfo, ath=ath)).status_code == 200


@pytest.mark.parametrize(
    "proof",
    ["", "x", "a.b.c", "!!!.!!!.!!!", "eyJ0eXAiOiJkcG9wK2p3dCJ9.e30.", "é.é.é", "a." * 5000],
)
def test_a_malformed_dpop_proof_is_a_400_never_a_500(op: OpenIdProvider, proof: str) -> None:
    response = httpx.post(
        op.discovery["token_endpoint"],
        data={"grant_type": "authorization_code", "code": "c"},
        auth=(op.b_client_id, op.b_secret),
        headers={"DPoP": proof.encode("utf-8")},
    )
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "invalid_dpop_proof"


def test_a_rotated_signing_key_keeps_earlier_id_tokens_verifiable(
    op: OpenIdProvider, virtual_card: VirtualMyNumberCard, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from commonid.cli import app

    def id_token_of_a_sign_in() -> str:
        rp = rp_b(op)
        nonce, verifier = generate_token(20), generate_token(48)
        url, _ = rp.create_authorization_url(
            op.discovery["authorization_endpoint"],
            scope="openid",
            nonce=nonce,
            code_verifier=verifier,
        )
        browser = Browser(op)
        page, status = browser.sign_in(url)
        _card_step(op, status["user_code"], virtual_card, password=False)
        redirect = browser.wait_for_redirect(page)
        token = rp.fetch_token(
            op.discovery["token_endpoint"], authorization_response=redirect, code_verifier=verifier
        )
        id_token_claims(op, token["id_token"], op.b_client_id, nonce)
        return str(token["id_token"])

    before = id_token_of_a_sign_in()
    monkeypatch.setenv("COMMONID_DATA_DIR", str(op.runtime.settings.data_dir))
    rotated = CliRunner().invoke(app, ["oidc", "rotate-key"])
    assert rotated.exit_code == 0, rotated.output
    after = id_token_of_a_sign_in()  # the running service signs with the new key
    jwks = KeySet.import_key_set(httpx.get(op.discovery["jwks_uri"]).json())
    kids = [jwt.decode(token, jwks).header["kid"] for token in (before, after)]
    assert kids[0] != kids[1]
    assert len(jwks.keys) == 2  # the earlier token still verifies against the JWKS
    listed = CliRunner().invoke(app, ["oidc", "keys"]).output
    assert f"{kids[1]}\t" in listed and "signing" in listed and "published" in listed
    assert '"d"' not in listed


def _audited(op: OpenIdProvider, event_type: str) -> list[dict[str, Any]]:
    assert op.runtime.audit is not None
    return [
        json.loads(entry.entry)["data"] for entry in op.runtime.audit.entries(event_type=event_type)
    ]


def test_the_audit_log_follows_every_sign_in_and_every_refusal(
    op: OpenIdProvider, virtual_card: VirtualMyNumberCard
) -> None:
    _code_flow(op, rp_b(op), virtual_card, scope="openid name", password=True)
    started = _audited(op, "oidc.authorization_started")
    assert [e["client_id"] for e in started] == [op.b_client_id]
    session_id = started[0]["session_id"]
    finished = _audited(op, "oidc.authorization_finished")
    assert finished[0]["outcome"] == "code_issued" and finished[0]["session_id"] == session_id
    assert _audited(op, "oidc.token_issued")[0]["dpop_bound"] is False
    assert _audited(op, "oidc.claims_released")[0]["claims"] == ["name"]
    # The session itself is audited as every REST session is.
    completed = _audited(op, "session.completed")
    assert [e["session_id"] for e in completed] == [session_id]

    _authorize_error(op, scope="openid email")
    httpx.post(op.discovery["token_endpoint"], data={"grant_type": "password"})
    refused = [(e["endpoint"], e["error"]) for e in _audited(op, "oidc.request_refused")]
    assert ("authorize", "invalid_scope") in refused
    assert ("token", "invalid_client") in refused or ("token", "unsupported_grant_type") in refused
    # Nothing personal in any of it.
    assert not any("山田" in json.dumps(e) for e in _audited(op, "oidc.claims_released"))


def _signed_in_code(op: OpenIdProvider, card: VirtualMyNumberCard, **extra: str) -> tuple[str, str]:
    rp = rp_b(op)
    verifier = generate_token(48)
    url, _ = rp.create_authorization_url(
        op.discovery["authorization_endpoint"],
        scope="openid",
        nonce=generate_token(20),
        code_verifier=verifier,
        **extra,
    )
    browser = Browser(op)
    page, status = browser.sign_in(url)
    _card_step(op, status["user_code"], card, password=False)
    return parse_qs(urlsplit(browser.wait_for_redirect(page)).query)["code"][0], verifier


def test_a_code_expires_within_a_minute(
    op: OpenIdProvider, virtual_card: VirtualMyNumberCard
) -> None:
    code, verifier = _signed_in_code(op, virtual_card)
    op.clock.advance(dt.timedelta(seconds=61))
    late = httpx.post(
        op.discovery["token_endpoint"],
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT_B,
            "code_verifier": verifier,
        },
        auth=(op.b_client_id, op.b_secret),
    )
    assert late.status_code == 400 and late.json()["error"] == "invalid_grant"


def test_max_age_gets_the_card_authentication_time(
    op: OpenIdProvider, virtual_card: VirtualMyNumberCard
) -> None:
    before = int(time.time())
    _token, id_token, _userinfo = _code_flow(
        op, rp_b(op), virtual_card, scope="openid", password=False, max_age="0"
    )
    # Every sign-in authenticates with the card, so any max_age is met: auth_time says when.
    assert before - 1 <= id_token.claims["auth_time"] <= int(time.time()) + 1
    assert id_token.claims["amr"] == ["sc", "hwk", "pin"]
    assert _authorize_error(op, max_age="-1")["error"] == ["invalid_request"]


def test_a_client_that_must_push_its_requests(op: OpenIdProvider) -> None:
    with op.runtime.sessions.begin() as db:
        client = oidc_store.client_by_id(db, op.b_client_id)
        assert client is not None
        client.require_par = True
    assert _authorize_error(op)["error"] == ["invalid_request"]
    assert op.discovery["pushed_authorization_request_endpoint"].endswith("/oidc/par")


class _JwksServer:
    """The client's own web server publishing its JWKS (what it registered as jwks_uri)."""

    def __init__(self) -> None:
        import http.server

        self.document: dict[str, Any] = {"keys": []}
        served = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = json.dumps(served.document).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_args: object) -> None: ...

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/jwks.json"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()


def test_private_key_jwt_with_keys_from_the_clients_jwks_url(op: OpenIdProvider) -> None:
    published = _JwksServer()
    try:
        with op.runtime.sessions.begin() as db:
            client = oidc_store.client_by_id(db, op.a_client_id)
            assert client is not None
            client.jwks, client.jwks_uri = None, published.url
        first = ECKey.generate_key("P-256", private=True, parameters={"kid": "k1"})
        published.document = {"keys": [first.as_dict(private=False)]}
        token_endpoint = op.discovery["token_endpoint"]

        def assertion_with(key: ECKey) -> httpx.Response:
            # The key id tells the service which published key to use.
            return httpx.post(token_endpoint, data=_token_form(_assertion(op, key, kid=key.kid)))

        # Authenticated (the code is made up, so the grant is what fails).
        assert assertion_with(first).json()["error"] == "invalid_grant"
        # The client rotates: a new key id makes the service fetch the JWKS again.
        second = ECKey.generate_key("P-256", private=True, parameters={"kid": "k2"})
        published.document = {"keys": [second.as_dict(private=False)]}
        time.sleep(1.1)  # unknown key ids refetch at most once a second
        assert assertion_with(second).json()["error"] == "invalid_grant"
        stranger = ECKey.generate_key("P-256", private=True, parameters={"kid": "k2"})
        assert assertion_with(stranger).json()["error"] == "invalid_client"
        published.document = {"keys": [second.as_dict(private=True)]}  # a private key: refused
        third = ECKey.generate_key("P-256", private=True, parameters={"kid": "k3"})
        time.sleep(1.1)
        assert assertion_with(third).json()["error"] == "invalid_client"
    finally:
        published.close()


PAY_C = "https://pay-c.example/cb"


def test_the_admin_cli_registers_a_client(
    op: OpenIdProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from commonid.cli import app

    monkeypatch.setenv("COMMONID_DATA_DIR", str(op.runtime.settings.data_dir))
    monkeypatch.setenv("COMMONID_DATABASE_URL", op.runtime.settings.effective_database_url)
    runner = CliRunner()
    added = runner.invoke(app, ["provider", "add", "Pay C", "--claims", "name"])
    assert added.exit_code == 0, added.output
    refused = runner.invoke(app, ["provider", "oidc", "Pay C", "--redirect-uri", "http://x/cb"])
    assert refused.exit_code == 2
    registered = runner.invoke(
        app,
        [
            "provider",
            "oidc",
            "Pay C",
            "--redirect-uri",
            "https://pay-c.example/cb",
            "--client-secret",
        ],
    )
    assert registered.exit_code == 0, registered.output
    client_id = registered.output.split("client_id: ")[1].split()[0]
    secret = registered.output.split("(shown once): ")[1].split()[0]
    again = runner.invoke(
        app,
        [
            "provider",
            "oidc",
            "Pay C",
            "--redirect-uri",
            "https://pay-c.example/cb",
            "--client-secret",
        ],
    )
    assert again.exit_code == 1 and "already" in again.output
    answer = httpx.post(
        op.discovery["token_endpoint"],
        data={
            "grant_type": "authorization_code",
            "code": "c",
            "redirect_uri": "https://pay-c.example/cb",
            "code_verifier": "v" * 43,
        },
        auth=(client_id, secret),
    )
    assert answer.json()["error"] == "invalid_grant"  # authenticated; the code is made up
    # Its scopes follow its allowed claims: only name.
    assert (
        _authorize_error_for(op, client_id, "https://pay-c.example/cb", "openid birthdate")
        == "invalid_scope"
    )


def _authorize_error_for(op: OpenIdProvider, client_id: str, redirect_uri: str, scope: str) -> str:
    params = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": redirect_uri,
        "scope": scope,
        "state": "s",
        "nonce": "n",
        "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
        "code_challenge_method": "S256",
    }
    response = Browser(op).open("/oidc/authorize?" + urlencode(params))
    return parse_qs(urlsplit(response.headers["location"]).query)["error"][0]


def test_the_sign_in_page_offers_the_code_as_a_qr_code_and_this_computers_reader(
    op: OpenIdProvider, virtual_card: VirtualMyNumberCard
) -> None:
    rp = rp_b(op)
    url, _ = rp.create_authorization_url(
        op.discovery["authorization_endpoint"],
        scope="openid",
        nonce=generate_token(20),
        code_verifier=generate_token(48),
    )
    browser = Browser(op)
    page, status = browser.sign_in(url)
    assert status["local_kiosk_url"] == "http://127.0.0.1:8765"
    qr = browser.http.get(f"{page}/qr.svg")
    assert qr.status_code == 200 and qr.headers["content-type"] == "image/svg+xml"
    assert qr.text.lstrip().startswith("<?xml") and "<svg" in qr.text
    assert httpx.get(f"{op.url}{page}/qr.svg").status_code == 404  # not this browser's
    _card_step(op, status["user_code"], virtual_card, password=False)
    # Fetching the picture never uses up the way back: the page still gets its redirect.
    assert browser.http.get(f"{page}/qr.svg").status_code == 200
    assert "code=" in browser.wait_for_redirect(page)


def test_purge_takes_the_door_records_with_the_sessions(
    op: OpenIdProvider, virtual_card: VirtualMyNumberCard
) -> None:
    from commonid.store.models import OidcAssertionJti, OidcAuthorization, OidcToken
    from commonid.store.purge import RetentionPolicy, purge

    _code_flow(op, rp_a(op), virtual_card, scope="openid", password=False)
    policy = RetentionPolicy(
        sessions=dt.timedelta(days=30),
        webhook_deliveries=dt.timedelta(days=30),
        idempotency_keys=dt.timedelta(hours=24),
    )
    with op.runtime.sessions.begin() as db:
        kept = purge(db, policy, now=op.runtime.clock())
        assert kept.oidc_authorizations == 0
        assert db.query(OidcToken).count() == 1 and db.query(OidcAssertionJti).count() == 1
    with op.runtime.sessions.begin() as db:
        later = op.runtime.clock() + dt.timedelta(days=31)
        report = purge(db, policy, now=later)
        assert report.oidc_authorizations == 1 and report.sessions == 1
        assert db.query(OidcAuthorization).count() == 0
        assert db.query(OidcToken).count() == 0 and db.query(OidcAssertionJti).count() == 0


_WORDS = st.sampled_from(
    [
        "",
        "code",
        "token",
        "openid",
        "openid name",
        "S256",
        "plain",
        "none",
        "login",
        "urn:commonid:acr:jpki:reuse",
        '{"userinfo": {"verified_claims": {"claims": {"name": null}}}}',
        '{"id_token": []}',
        "[]",
        "\u0000",
        "é" * 3,
        "x" * 2100,
        REDIRECT_B,
        "https://attacker.example/cb",
        "urn:ietf:params:oauth:request_uri:az_x",
        "-1",
        "99999999999",
    ]
)
_NAMES = st.sampled_from(
    [
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
        "request_uri",
        "request",
    ]
)


def test_no_authorization_request_reaches_a_server_error(op: OpenIdProvider) -> None:
    """Whatever mix of parameters a browser brings, the answer is a page or a redirect."""
    browser = Browser(op)

    @settings(max_examples=150, deadline=None, derandomize=True, database=None)
    @given(st.lists(st.tuples(_NAMES, _WORDS), max_size=12), st.booleans())
    def authorize(pairs: list[tuple[str, str]], real_client: bool) -> None:
        if real_client:
            pairs = [("client_id", op.b_client_id), *pairs]
        response = browser.open("/oidc/authorize?" + urlencode(pairs))
        # 422: the service's edge refuses text it never takes (a NUL) before any door.
        assert response.status_code in (302, 303, 400, 422), (pairs, response.text[:300])

    authorize()
    for cookie in ("", "x", "%C3%A9", "a" * 5000):
        browser.http.cookies.set("cid_oidc", cookie, path="/oidc/sign-in")
        answer = browser.http.get("/oidc/sign-in/az_AAAAAAAAAAAAAAAAAAAAAA/status")
        assert answer.status_code == 404
