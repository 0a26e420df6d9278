"""The service on a real TCP port: what a client is told has happened, has happened."""

from __future__ import annotations

import httpx
import sqlalchemy as sa

from commonid.store.models import Session
from tests.fixtures.service import LiveService, ServiceAccounts


def test_created_session_is_committed_before_the_response(
    live_service: LiveService, service_accounts: ServiceAccounts
) -> None:
    headers = {"Authorization": f"Bearer {service_accounts.provider_a_key}"}
    with httpx.Client(base_url=live_service.base_url) as client:
        for _ in range(20):
            created = client.post(
                "/v1/sessions", json={"mode": "auth", "purpose": "x"}, headers=headers
            )
            assert created.status_code == 201
            # Another connection, straight away: the row must already be there.
            with live_service.runtime.engine.connect() as connection:
                found = connection.execute(
                    sa.select(Session.id).where(Session.id == created.json()["id"])
                ).scalar()
            assert found == created.json()["id"]


def test_health_and_metrics_and_openapi(live_service: LiveService) -> None:
    with httpx.Client(base_url=live_service.base_url) as client:
        assert client.get("/healthz").json()["status"] == "ok"
        metrics = client.get("/metrics")
        assert metrics.status_code == 200
        assert "commonid_revocation_data_age_seconds" in metrics.text
        openapi = client.get("/openapi.json").json()
        assert "/v1/sessions" in openapi["paths"]
        did = client.get("/.well-known/did.json").json()
        assert did["id"].startswith("did:web:127.0.0.1")
