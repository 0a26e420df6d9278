"""Session-completion webhooks: Standard Webhooks signature, retries with backoff."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import timedelta

import anyio
import httpx
import pytest
from fastapi.testclient import TestClient
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from commonid.runtime import Runtime
from commonid.store import accounts
from commonid.store import webhooks as outbox
from commonid.webhooks import WebhookDispatcher, new_webhook_secret
from jpki.testca import IssuedPerson
from tests.fixtures.service import ServiceAccounts, ServiceClock

from .flow_helpers import CardKeys, full_flow


class Receiver:
    """A provider's webhook endpoint: fails the first ``failures`` calls, records all."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.received: list[tuple[dict[str, str], bytes]] = []

    async def endpoint(self, request: Request) -> Response:
        self.received.append((dict(request.headers), await request.body()))
        if len(self.received) <= self.failures:
            return Response(status_code=503)
        return Response(status_code=204)

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/hooks", self.endpoint, methods=["POST"])])


def standard_webhooks_valid(secret: str, headers: dict[str, str], body: bytes) -> bool:
    """Verification as the Standard Webhooks spec describes it, written out independently."""
    key = base64.b64decode(secret.split("_", 1)[1])
    content = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    expected = base64.b64encode(hmac.new(key, content, hashlib.sha256).digest()).decode()
    return any(sig.split(",", 1)[1] == expected for sig in headers["webhook-signature"].split(" "))


def test_completion_is_notified_signed_and_retried(
    service_client: TestClient,
    service_accounts: ServiceAccounts,
    service_runtime: Runtime,
    service_clock: ServiceClock,
    demo_person: IssuedPerson,
) -> None:
    secret = new_webhook_secret()
    with service_runtime.sessions.begin() as db:
        provider = db.get(type(service_accounts.provider_a), service_accounts.provider_a.id)
        accounts.set_webhook(
            provider, "http://provider-a.test/hooks", secret, service_runtime.cipher
        )
    outcome = full_flow(
        service_client,
        service_accounts.provider_a_key,
        service_accounts.kiosk_credential,
        CardKeys(demo_person),
        mode="auth",
        claims=[],
    )
    receiver = Receiver(failures=1)

    async def deliver() -> int:
        transport = httpx.ASGITransport(app=receiver.app())
        async with httpx.AsyncClient(transport=transport) as client:
            return await WebhookDispatcher(service_runtime, client).deliver_due()

    assert anyio.run(deliver) == 0  # the receiver answered 503
    assert anyio.run(deliver) == 0  # backoff: not due yet
    service_clock.advance(timedelta(seconds=2))
    assert anyio.run(deliver) == 1
    assert anyio.run(deliver) == 0  # delivered once, never again

    assert len(receiver.received) == 2
    (first_headers, _), (headers, body) = receiver.received
    assert first_headers["webhook-id"] == headers["webhook-id"]  # same message, retried
    assert standard_webhooks_valid(secret, headers, body)
    assert not standard_webhooks_valid(new_webhook_secret(), headers, body)
    event = json.loads(body)
    assert event["type"] == "session.completed"
    assert event["data"] == {"session_id": outcome["id"], "status": "verified"}
    with service_runtime.sessions() as db:
        (delivery,) = outbox.deliveries_for(db, service_accounts.provider_a.id)
        assert delivery.attempts == 2 and delivery.delivered_at is not None
        assert delivery.last_status == 204
    assert service_runtime.audit is not None
    delivered = [e for e in service_runtime.audit.entries(event_type="webhook.delivered")]
    assert len(delivered) == 1 and delivery.id in delivered[0].entry


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_no_webhook_for_provider_without_url(
    service_client: TestClient,
    service_accounts: ServiceAccounts,
    service_runtime: Runtime,
    demo_person: IssuedPerson,
) -> None:
    full_flow(
        service_client,
        service_accounts.provider_b_key,
        service_accounts.kiosk_credential,
        CardKeys(demo_person),
        mode="auth",
        claims=[],
    )
    with service_runtime.sessions() as db:
        assert outbox.deliveries_for(db, service_accounts.provider_b.id) == []
