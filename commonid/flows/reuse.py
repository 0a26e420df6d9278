"""Reuse: whether a provider may receive claims another verification proved earlier."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session as DbSession

from commonid.runtime import Runtime
from commonid.store import persons
from commonid.store.models import Certificate, Person
from commonid.store.persons import PersonRow
from commonid.store.rows import ProviderRow
from commonid.store.sessions import SessionStatus
from commonid.trust import StoredCertificateStatus, stored_certificate_status


@dataclass(frozen=True)
class ReuseDecision:
    """Granted (with the stored attributes and when they were verified) or refused (why)."""

    status: SessionStatus
    reason: str | None = None
    attributes: dict[str, Any] | None = None
    info: dict[str, Any] | None = None


def decide_reuse(
    runtime: Runtime,
    db: DbSession,
    person: Person | PersonRow,
    provider: ProviderRow,
    *,
    now: datetime,
) -> ReuseDecision:
    """A card answered a reuse session: release earlier claims, or ask for a fresh check."""
    reason = reuse_refusal(runtime, db, person, provider, now=now)
    if reason is not None:
        return ReuseDecision(SessionStatus.REVERIFICATION_REQUIRED, reason)
    assert person.identity_verified_at is not None
    return ReuseDecision(
        SessionStatus.REUSE_GRANTED,
        attributes=persons.load_attributes(db, person.id, runtime.cipher),
        info={
            "first_verified_at": person.identity_verified_at.isoformat(),
            "method": person.identity_method,
        },
    )


def reuse_refusal(
    runtime: Runtime,
    db: DbSession,
    person: Person | PersonRow,
    provider: ProviderRow,
    *,
    now: datetime,
) -> str | None:
    """Why earlier verified claims cannot be reused now, or None when they can."""
    if person.identity_verified_at is None or person.sign_certificate_id is None:
        return "no_verified_identity"
    if now - person.identity_verified_at > timedelta(seconds=provider.reuse_max_age_seconds):
        return "verification_stale"
    source = db.get(Certificate, person.sign_certificate_id)
    if source is None:
        return "no_verified_identity"
    if source.revoked_at is not None and source.revoked_at <= now:
        return "sign_certificate_revoked"
    status = stored_certificate_status(
        runtime.trust_policy, issuer=source.issuer, serial_hex=source.serial, at=now
    )
    if status is StoredCertificateStatus.REVOKED:
        return "sign_certificate_revoked"
    if status is StoredCertificateStatus.UNKNOWN:
        return "revocation_unavailable"
    return None
