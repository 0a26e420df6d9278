"""Wallet test helpers: the service on a real port whose public URL is that port (the
credential issuer identifier), a kiosk verification, its offer, a provider's request."""

from __future__ import annotations

import json

import httpx
from jwcrypto.jwk import JWK
from sd_jwt.verifier import SDJWTVerifier

from commonid.runtime import Runtime
from tests.fixtures.service import ServiceAccounts
from tests.service.flow_helpers import CardKeys, bearer, challenge_bytes, consent, create_session

OVER_20 = {
    "credentials": [
        {
            "id": "identity",
            "format": "dc+sd-jwt",
            "meta": {"vct_values": ["urn:jp:commonid:vct:jpki-identity:1"]},
            "claims": [{"path": ["age_equal_or_over", "20"], "values": [True]}],
        }
    ]
}


class WalletService:
    def __init__(self, base_url: str, runtime: Runtime) -> None:
        self.base_url = base_url
        self.runtime = runtime
        self.http = httpx.Client(base_url=base_url, timeout=30)


def verified_at_kiosk(service: WalletService, accounts: ServiceAccounts, card: CardKeys) -> str:
    session = create_session(
        service.http,
        accounts.provider_a_key,
        mode="identity",
        claims=["name", "birthdate"],
    )
    consent(service.http, accounts.kiosk_credential, session)
    answer = card.response(challenge_bytes(session), identity=True)
    response = service.http.post(
        f"/v1/kiosk/sessions/{session['id']}/card-response",
        json=answer,
        headers=bearer(accounts.kiosk_credential),
    )
    assert response.status_code == 200 and response.json()["status"] == "verified"
    return session["id"]


def offer_for(service: WalletService, accounts: ServiceAccounts, session_id: str) -> dict:
    response = service.http.post(
        f"/v1/kiosk/sessions/{session_id}/credential-offer",
        headers=bearer(accounts.kiosk_credential),
    )
    assert response.status_code == 201, response.text
    return response.json()


def ask_over_20(service: WalletService, provider_key: str, query: dict = OVER_20) -> dict:
    response = service.http.post(
        "/v1/presentation-requests", json={"dcql_query": query}, headers=bearer(provider_key)
    )
    assert response.status_code == 201, response.text
    return response.json()


def result_of(service: WalletService, provider_key: str, request_id: str) -> dict:
    response = service.http.get(
        f"/v1/presentation-requests/{request_id}", headers=bearer(provider_key)
    )
    assert response.status_code == 200, response.text
    return response.json()


def reference_verifies(service: WalletService, credential: str) -> dict:
    """The OpenWallet Foundation's reference library, with the keys from jwt-vc-issuer."""
    metadata = service.http.get("/.well-known/jwt-vc-issuer").json()
    assert metadata["issuer"] == service.base_url

    def issuer_key(iss: str, header: dict) -> JWK:
        assert iss == metadata["issuer"]
        (jwk,) = [k for k in metadata["jwks"]["keys"] if k["kid"] == header["kid"]]
        return JWK.from_json(json.dumps(jwk))

    return SDJWTVerifier(credential, issuer_key).get_verified_payload()
