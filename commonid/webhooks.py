"""Signed webhook notifications (Standard Webhooks) and their at-least-once delivery.

Headers ``webhook-id``, ``webhook-timestamp`` and ``webhook-signature``
(``v1,`` + base64 HMAC-SHA256 over ``id.timestamp.body`` with the provider's
``whsec_`` secret). Deliveries live in the store's outbox; a failed attempt is
retried with exponential backoff up to the configured number of attempts, and
receivers dedupe by ``webhook-id``.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import secrets
from datetime import datetime, timedelta

import httpx

from commonid import auditing
from commonid.runtime import Runtime
from commonid.store import accounts
from commonid.store import webhooks as outbox
from commonid.store.models import Provider, WebhookDelivery

SECRET_PREFIX = "whsec_"  # noqa: S105 - a format prefix, not a secret
LEASE = timedelta(seconds=60)  # a worker that took a delivery gets this long before others retry

log = logging.getLogger(__name__)


def new_webhook_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def sign(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    signed = f"{message_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def envelope(delivery: WebhookDelivery) -> bytes:
    """The Standard Webhooks payload: type, timestamp, data."""
    return json.dumps(
        {
            "type": delivery.event_type,
            "timestamp": delivery.created_at.isoformat().replace("+00:00", "Z"),
            "data": delivery.payload,
        },
        separators=(",", ":"),
        ensure_ascii=False,
    ).encode()


def backoff(settings_initial: float, attempt: int) -> timedelta:
    return timedelta(seconds=settings_initial * (2 ** (attempt - 1)))


class WebhookDispatcher:
    """Works through due deliveries; several workers may run one each safely (leases)."""

    def __init__(self, runtime: Runtime, client: httpx.AsyncClient) -> None:
        self.runtime = runtime
        self.client = client

    async def deliver_due(self) -> int:
        """One pass over due deliveries; returns how many were delivered."""
        due = await asyncio.to_thread(self._take_due)
        delivered = 0
        for delivery, provider, secret in due:
            if await self._attempt(delivery, provider, secret):
                delivered += 1
        return delivered

    def _take_due(self) -> list[tuple[WebhookDelivery, Provider, str]]:
        now = self.runtime.clock()
        taken = []
        with self.runtime.sessions.begin() as db:
            for delivery in outbox.due(db, now=now):
                provider = db.get(Provider, delivery.provider_id)
                secret = (
                    accounts.webhook_secret(provider, self.runtime.cipher) if provider else None
                )
                if provider is None or not provider.webhook_url or secret is None:
                    outbox.record_attempt(
                        db,
                        delivery.id,
                        status=None,
                        error="no webhook configured",
                        delivered_at=None,
                        next_attempt_at=None,
                    )
                    continue
                if outbox.lease(
                    db, delivery.id, expected_attempts=delivery.attempts, until=now + LEASE
                ):
                    delivery.attempts += 1
                    taken.append((delivery, provider, secret))
        return taken

    async def _attempt(self, delivery: WebhookDelivery, provider: Provider, secret: str) -> bool:
        body = envelope(delivery)
        timestamp = int(self.runtime.clock().timestamp())
        headers = {
            "content-type": "application/json",
            "webhook-id": delivery.id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": sign(secret, delivery.id, timestamp, body),
        }
        status: int | None = None
        error: str | None = None
        try:
            response = await self.client.post(
                provider.webhook_url or "", content=body, headers=headers
            )
            status = response.status_code
            if not 200 <= status < 300:
                error = f"receiver answered HTTP {status}"
        except httpx.HTTPError as failure:
            error = f"{type(failure).__name__}: {failure}"
        now = self.runtime.clock()
        ok = error is None
        settings = self.runtime.settings
        next_attempt: datetime | None = None
        if not ok and delivery.attempts < settings.webhook_max_attempts:
            next_attempt = now + backoff(
                settings.webhook_initial_backoff_seconds, delivery.attempts
            )
        self.runtime.metrics.webhook_attempts.labels("delivered" if ok else "failed").inc()
        await asyncio.to_thread(
            self._record, delivery, status, error, now if ok else None, next_attempt
        )
        return ok

    def _record(
        self,
        delivery: WebhookDelivery,
        status: int | None,
        error: str | None,
        delivered_at: datetime | None,
        next_attempt_at: datetime | None,
    ) -> None:
        with self.runtime.sessions.begin() as db:
            outbox.record_attempt(
                db,
                delivery.id,
                status=status,
                error=error,
                delivered_at=delivered_at,
                next_attempt_at=next_attempt_at,
            )
            fields = {
                "delivery_id": delivery.id,
                "provider_id": delivery.provider_id,
                "event_type": delivery.event_type,
                "attempts": delivery.attempts,
                "status_code": status,
            }
            if delivered_at is not None:
                auditing.record(self.runtime, db, [("webhook.delivered", fields)])
            elif next_attempt_at is None:  # out of attempts: a reviewer should see it
                fields["reason_code"] = "attempts_exhausted"
                auditing.record(self.runtime, db, [("webhook.failed", fields)])

    async def run_forever(self, interval: float = 1.0) -> None:
        while True:
            try:
                await self.deliver_due()
            except Exception:  # keep delivering after a transient fault (database restart)
                log.exception("webhook delivery pass failed")
            await asyncio.sleep(interval)
