"""Driving the service as a provider and a kiosk would, in process.

The card's signatures come from the test person's own card keys (the same
keys the emulator holds), computed over the challenge bytes the service sent.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from fastapi.testclient import TestClient

from jpki.testca import IssuedPerson


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def der(certificate: Any) -> bytes:
    return certificate.public_bytes(serialization.Encoding.DER)


@dataclass(frozen=True)
class CardKeys:
    """A person's card: its two certificates and the keys inside it."""

    person: IssuedPerson

    def sign_auth(self, data: bytes) -> bytes:
        return self.person.auth_private_key.sign(data, padding.PKCS1v15(), hashes.SHA256())

    def sign_sign(self, data: bytes) -> bytes:
        return self.person.sign_private_key.sign(data, padding.PKCS1v15(), hashes.SHA256())

    def response(self, to_be_signed: bytes, *, identity: bool) -> dict[str, str]:
        body = {
            "auth_certificate": b64(der(self.person.auth_certificate)),
            "auth_signature": b64(self.sign_auth(to_be_signed)),
        }
        if identity:
            body["sign_certificate"] = b64(der(self.person.sign_certificate))
            body["sign_signature"] = b64(self.sign_sign(to_be_signed))
        return body


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def create_session(client: TestClient, provider_key: str, **body: Any) -> dict[str, Any]:
    body.setdefault("purpose", "口座開設のための本人確認")
    response = client.post("/v1/sessions", json=body, headers=bearer(provider_key))
    assert response.status_code == 201, response.text
    return response.json()


def consent(client: TestClient, kiosk_credential: str, session: dict[str, Any]) -> None:
    shown = client.get(
        f"/v1/kiosk/sessions/{session['user_code']}", headers=bearer(kiosk_credential)
    )
    assert shown.status_code == 200, shown.text
    response = client.post(
        f"/v1/kiosk/sessions/{session['id']}/consent", json={}, headers=bearer(kiosk_credential)
    )
    assert response.status_code == 200, response.text


def challenge_bytes(session: dict[str, Any]) -> bytes:
    return unb64url(session["challenge"]["to_be_signed"])


def respond(
    client: TestClient, kiosk_credential: str, session_id: str, body: dict[str, Any]
) -> Any:
    return client.post(
        f"/v1/kiosk/sessions/{session_id}/card-response",
        json=body,
        headers=bearer(kiosk_credential),
    )


def result(client: TestClient, provider_key: str, session_id: str) -> dict[str, Any]:
    response = client.get(f"/v1/sessions/{session_id}", headers=bearer(provider_key))
    assert response.status_code == 200, response.text
    return response.json()


def full_flow(
    client: TestClient, provider_key: str, kiosk_credential: str, card: CardKeys, **body: Any
) -> dict[str, Any]:
    """Create, consent, answer with the card; returns the provider's result."""
    session = create_session(client, provider_key, **body)
    consent(client, kiosk_credential, session)
    answered = respond(
        client,
        kiosk_credential,
        session["id"],
        card.response(challenge_bytes(session), identity=body.get("mode") == "identity"),
    )
    assert answered.status_code == 200, answered.text
    return result(client, provider_key, session["id"])
