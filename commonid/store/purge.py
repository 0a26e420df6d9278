"""Data retention: delete what the retention settings no longer allow us to keep."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session as DbSession

from commonid.store import documents
from commonid.store.models import (
    IdempotencyKey,
    OidcAssertionJti,
    OidcAuthorization,
    OidcToken,
    RejectedResponse,
    Session,
    WebhookDelivery,
)


@dataclass(frozen=True)
class RetentionPolicy:
    sessions: timedelta
    webhook_deliveries: timedelta
    idempotency_keys: timedelta


@dataclass(frozen=True)
class PurgeReport:
    sessions: int
    rejected_responses: int
    webhook_deliveries: int
    idempotency_keys: int
    signed_documents: int = 0
    oidc_authorizations: int = 0


def purge(db: DbSession, policy: RetentionPolicy, *, now: datetime) -> PurgeReport:
    """Delete sessions (with their encrypted results and signed documents), deliveries and
    keys past retention.

    Persons, consents and credentials stay: they are the Common-ID record
    itself and leave only by consent withdrawal or an explicit deletion.
    """
    session_cutoff = now - policy.sessions
    rejected = db.execute(
        sa.delete(RejectedResponse).where(RejectedResponse.at < session_cutoff)
    ).rowcount
    # A session's documents go with it (the signed one names the person).
    signed_documents = documents.delete_for_sessions(
        db, sa.select(Session.id).where(Session.expires_at < session_cutoff)
    )
    sessions = db.execute(sa.delete(Session).where(Session.expires_at < session_cutoff)).rowcount
    deliveries = db.execute(
        sa.delete(WebhookDelivery).where(
            WebhookDelivery.created_at < now - policy.webhook_deliveries
        )
    ).rowcount
    keys = db.execute(
        sa.delete(IdempotencyKey).where(IdempotencyKey.created_at < now - policy.idempotency_keys)
    ).rowcount
    # The OpenID door's records go with the sessions they were for; seen jtis once
    # they could no longer be replayed anyway.
    old_authorizations = sa.select(OidcAuthorization.id).where(
        OidcAuthorization.expires_at < session_cutoff
    )
    db.execute(sa.delete(OidcToken).where(OidcToken.authorization_id.in_(old_authorizations)))
    authorizations = db.execute(
        sa.delete(OidcAuthorization).where(OidcAuthorization.expires_at < session_cutoff)
    ).rowcount
    db.execute(sa.delete(OidcAssertionJti).where(OidcAssertionJti.expires_at < now))
    return PurgeReport(sessions, rejected, deliveries, keys, signed_documents, authorizations)
