"""Audit logs on a migrated database (SQLite and PostgreSQL) with a fresh signing key."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from commonid.audit.checkpoint import NoteSigner
from commonid.audit.log import AuditLog
from commonid.store.database import create_engine, session_factory, upgrade

ORIGIN = "commonid.test/audit"


class SteppingClock:
    """UTC time that moves only when a test says so."""

    def __init__(self) -> None:
        self.now = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> SteppingClock:
    return SteppingClock()


@pytest.fixture
def signer() -> NoteSigner:
    return NoteSigner.from_private_key(ORIGIN, Ed25519PrivateKey.generate())


@pytest.fixture
def audit_engine(database_url: str) -> Iterator[sa.Engine]:
    upgrade(database_url)
    engine = create_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def audit_log(audit_engine: sa.Engine, signer: NoteSigner, clock: SteppingClock) -> AuditLog:
    return AuditLog(session_factory(audit_engine), signer, clock=clock, checkpoint_interval=None)


def session_event(number: int) -> tuple[str, dict]:
    """A plausible event; varied so every leaf differs."""
    kinds = ["session.created", "session.consent_given", "session.completed"]
    event_type = kinds[number % 3]
    fields: dict = {"session_id": f"ses_{number:06d}"}
    if event_type == "session.created":
        fields.update(provider_id="prv_a", mode="identity", claims=["name", "birthdate"])
    elif event_type == "session.consent_given":
        fields.update(kiosk_id="ksk_1", claims=["name"])
    else:
        fields.update(status="verified", latency_ms=12.5 + number)
    return event_type, fields
