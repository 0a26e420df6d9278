"""Credential verification never answers 500 to what a provider sends."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.fixtures.service import ServiceAccounts

from .flow_helpers import bearer


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize(
    "credential",
    [
        {},
        {"issuer": 5, "type": "x"},
        {
            "issuer": "did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK",
            "issuanceDate": "2026-01-01T00:00:00Z",
            "expirationDate": "2099-01-01T00:00:00Z",
            "type": ["VerifiableCredential", "JPKIIdentityCredential"],
            "credentialSubject": {"id": "did:example:1"},
        },
        "a.b.c",
        "eyJhbGciOiJFZERTQSJ9.eyJ2YyI6e319.c2ln",
        "{not json",
    ],
)
def test_garbage_credentials_are_reported_invalid(
    service_client: TestClient, service_accounts: ServiceAccounts, credential: Any
) -> None:
    response = service_client.post(
        "/v1/credentials/verify",
        json={"credential": credential},
        headers=bearer(service_accounts.provider_a_key),
    )
    assert response.status_code < 500, response.text
    if response.status_code == 200:
        assert response.json()["valid"] is False


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_genuine_server_fault_is_a_generic_500_problem(
    service_client: TestClient, service_accounts: ServiceAccounts
) -> None:
    import sqlalchemy as sa

    runtime = service_client.app.state.runtime
    with runtime.engine.begin() as connection:  # the database loses a table under the service
        connection.execute(sa.text("DROP TABLE idempotency_keys"))
    response = service_client.post(
        "/v1/sessions",
        json={"mode": "auth", "purpose": "x"},
        headers=bearer(service_accounts.provider_a_key) | {"Idempotency-Key": "k"},
    )
    assert response.status_code == 500
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["code"] == "internal_error"
    assert "idempotency_keys" not in response.text and "Traceback" not in response.text


def _shaped_like_ours(issuer: str, **changes: Any) -> dict[str, Any]:
    """A credential naming the service as its issuer (so the checks go past the issuer and
    the dates to the proof and status), with one member of the wrong shape."""
    credential: dict[str, Any] = {
        "@context": ["https://www.w3.org/2018/credentials/v1"],
        "issuer": issuer,
        "issuanceDate": "2026-01-01T00:00:00Z",
        "expirationDate": "2099-01-01T00:00:00Z",
        "type": ["VerifiableCredential", "JPKIIdentityCredential"],
        "credentialSubject": {"id": "did:example:1"},
        "proof": {"type": "Ed25519Signature2018", "jws": "x..y"},
        "credentialStatus": {"id": "x", "type": "StatusList2021Entry"},
    }
    credential.update(changes)
    return credential


def _unsigned_jwt(claims: dict[str, Any]) -> str:
    import base64
    import json

    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'EdDSA'})}.{part(claims)}.c2ln"


@pytest.mark.parametrize(
    "shape",
    ["proof-as-a-string", "type-as-a-string", "status-as-a-list", "jwt-exp-1e20"],
)
def test_credentials_of_the_wrong_shape_are_answered_malformed_on_both_databases(
    service_client: TestClient, service_accounts: ServiceAccounts, shape: str
) -> None:
    issuer = service_client.app.state.runtime.keyring.current.did
    credential: Any = {
        "proof-as-a-string": _shaped_like_ours(issuer, proof="x"),
        "type-as-a-string": _shaped_like_ours(issuer, type="JPKIIdentityCredential"),
        "status-as-a-list": _shaped_like_ours(issuer, credentialStatus=[]),
        "jwt-exp-1e20": _unsigned_jwt(
            {"iss": issuer, "exp": 1e20, "vc": _shaped_like_ours(issuer)}
        ),
    }[shape]
    response = service_client.post(
        "/v1/credentials/verify",
        json={"credential": credential},
        headers=bearer(service_accounts.provider_a_key),
    )
    assert response.status_code == 200, response.text
    assert response.json()["valid"] is False
    assert response.json()["reason"] == "credential_malformed"
