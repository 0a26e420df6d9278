"""Webhook deliveries: the outbox the dispatcher works through."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session as DbSession

from commonid.store.ids import new_id
from commonid.store.models import Provider, WebhookDelivery
from commonid.store.rows import ProviderRow


def enqueue(
    db: DbSession, *, provider_id: str, event_type: str, payload: dict[str, Any], now: datetime
) -> WebhookDelivery:
    delivery = WebhookDelivery(
        id=new_id("msg"),
        provider_id=provider_id,
        event_type=event_type,
        payload=payload,
        created_at=now,
        attempts=0,
        next_attempt_at=now,
    )
    db.add(delivery)
    db.flush()
    return delivery


def notify(
    db: DbSession,
    provider: Provider | ProviderRow | None,
    *,
    event_type: str,
    payload: dict[str, Any],
    now: datetime,
) -> WebhookDelivery | None:
    """Enqueue an event for a provider that has a webhook URL; the others poll the API."""
    if provider is None or not provider.webhook_url:
        return None
    return enqueue(db, provider_id=provider.id, event_type=event_type, payload=payload, now=now)


def due(db: DbSession, *, now: datetime, limit: int = 20) -> list[WebhookDelivery]:
    return list(
        db.scalars(
            sa.select(WebhookDelivery)
            .where(WebhookDelivery.next_attempt_at <= now, WebhookDelivery.delivered_at.is_(None))
            .order_by(WebhookDelivery.next_attempt_at)
            .limit(limit)
        )
    )


def lease(db: DbSession, delivery_id: str, *, expected_attempts: int, until: datetime) -> bool:
    """Take a delivery for one attempt; another worker that raced us gets False."""
    result = db.execute(
        sa.update(WebhookDelivery)
        .where(
            WebhookDelivery.id == delivery_id,
            WebhookDelivery.attempts == expected_attempts,
            WebhookDelivery.delivered_at.is_(None),
        )
        .values(attempts=expected_attempts + 1, next_attempt_at=until)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1


def record_attempt(
    db: DbSession,
    delivery_id: str,
    *,
    status: int | None,
    error: str | None,
    delivered_at: datetime | None,
    next_attempt_at: datetime | None,
) -> None:
    db.execute(
        sa.update(WebhookDelivery)
        .where(WebhookDelivery.id == delivery_id)
        .values(
            last_status=status,
            last_error=error[:500] if error else None,
            delivered_at=delivered_at,
            next_attempt_at=next_attempt_at,
        )
        .execution_options(synchronize_session=False)
    )


def deliveries_for(db: DbSession, provider_id: str) -> list[WebhookDelivery]:
    return list(
        db.scalars(
            sa.select(WebhookDelivery)
            .where(WebhookDelivery.provider_id == provider_id)
            .order_by(WebhookDelivery.created_at)
        )
    )
