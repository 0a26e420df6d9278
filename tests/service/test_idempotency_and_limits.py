"""Idempotency-Key on session creation, and per-caller rate limits (429 + Retry-After)."""

from __future__ import annotations

from fastapi.testclient import TestClient

from commonid.api.app import create_app
from commonid.runtime import Runtime
from tests.fixtures.service import ServiceAccounts

from .flow_helpers import bearer


def test_same_idempotency_key_returns_the_first_session(
    service_client: TestClient, service_accounts: ServiceAccounts
) -> None:
    headers = bearer(service_accounts.provider_a_key) | {"Idempotency-Key": "order-42"}
    body = {"mode": "auth", "purpose": "x"}
    first = service_client.post("/v1/sessions", json=body, headers=headers)
    retry = service_client.post("/v1/sessions", json=body, headers=headers)
    assert first.status_code == retry.status_code == 201
    assert retry.json() == first.json()
    changed = service_client.post("/v1/sessions", json=body | {"purpose": "y"}, headers=headers)
    assert changed.status_code == 422
    assert changed.json()["code"] == "idempotency_key_reused"
    # Keys are per provider: B's "order-42" is its own.
    other = service_client.post(
        "/v1/sessions",
        json=body,
        headers=bearer(service_accounts.provider_b_key) | {"Idempotency-Key": "order-42"},
    )
    assert other.status_code == 201 and other.json()["id"] != first.json()["id"]
    without = service_client.post(
        "/v1/sessions", json=body, headers=bearer(service_accounts.provider_a_key)
    )
    assert without.json()["id"] != first.json()["id"]


def test_provider_over_its_rate_gets_429_with_retry_after(
    service_runtime: Runtime, service_accounts: ServiceAccounts
) -> None:
    service_runtime.settings = service_runtime.settings.model_copy(
        update={"provider_rate_burst": 3, "provider_rate_per_second": 0.01}
    )
    with TestClient(create_app(runtime=service_runtime)) as client:
        body = {"mode": "auth", "purpose": "x"}
        a = bearer(service_accounts.provider_a_key)
        statuses = [client.post("/v1/sessions", json=body, headers=a).status_code for _ in range(4)]
        assert statuses == [201, 201, 201, 429]
        limited = client.post("/v1/sessions", json=body, headers=a)
        assert limited.json()["code"] == "rate_limited"
        assert int(limited.headers["retry-after"]) >= 1
        # Another provider has its own bucket.
        b = bearer(service_accounts.provider_b_key)
        assert client.post("/v1/sessions", json=body, headers=b).status_code == 201
