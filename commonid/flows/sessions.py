"""Sessions: created by a provider, opened and consented at a kiosk, finished, read back.

What every door shares: the REST API, and the OpenID Provider and wallet doors
to come, create and read sessions through these functions only.
"""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session as DbSession

from commonid import auditing
from commonid.api.schemas import (
    ATTRIBUTE_CLAIMS,
    ClaimName,
    CreateSessionRequest,
    Mode,
)
from commonid.challenge import Challenge, challenge_for
from commonid.documents import session_documents
from commonid.problems import Problem
from commonid.runtime import Runtime
from commonid.store import accounts, sessions, webhooks
from commonid.store.encryption import Sealed, binding
from commonid.store.rows import KioskRow, ProviderRow, SessionRow
from commonid.store.sessions import SessionStatus

SESSION_COMPLETED_EVENT = "session.completed"


def session_challenge(runtime: Runtime, session: SessionRow) -> Challenge:
    return challenge_for(
        audience=runtime.service_did,
        session_id=session.id,
        provider_id=session.provider_id,
        mode=session.mode,
        nonce=session.nonce,
        expires_at=session.expires_at,
    )


def challenge_view(challenge: Challenge) -> dict[str, Any]:
    encoded = base64.urlsafe_b64encode(challenge.to_be_signed()).rstrip(b"=").decode()
    return {"to_be_signed": encoded, "payload": challenge.payload()}


def create_session(
    runtime: Runtime, db: DbSession, provider: ProviderRow, request: CreateSessionRequest
) -> SessionRow:
    requested = list(dict.fromkeys(request.claims))  # keep order, drop repeats
    refused = [claim.value for claim in requested if claim.value not in provider.allowed_claims]
    if refused:
        raise Problem("claim_not_allowed", f"not allowed for this provider: {', '.join(refused)}")
    if request.reuse and request.mode is not Mode.AUTH:
        raise Problem("invalid_request", "reuse applies to auth mode (the PIN-only flow)")
    if request.document is not None and request.mode is not Mode.IDENTITY:
        # Only identity mode verifies the signature password and the sign certificate.
        raise Problem("document_needs_identity_mode")
    wants_attributes = any(claim in ATTRIBUTE_CLAIMS for claim in requested)
    if wants_attributes and request.mode is Mode.AUTH and not request.reuse:
        raise Problem(
            "claims_need_identity_mode",
            "name, birthdate, gender and address need identity mode, or auth mode with reuse",
        )
    if request.document is not None:
        session_documents.check_document_fits(
            provider_name=provider.name,
            purpose=request.purpose,
            claims=[claim.value for claim in requested],
        )
    session = sessions.create_session(
        db,
        provider_id=provider.id,
        mode=request.mode.value,
        claims=[claim.value for claim in requested],
        purpose=request.purpose,
        reuse=request.reuse,
        document=request.document.value if request.document else None,
        provider_reference=request.reference,
        now=runtime.clock(),
        ttl=runtime.session_ttl,
    )
    auditing.record(
        runtime,
        db,
        [
            (
                "session.created",
                {
                    "session_id": session.id,
                    "provider_id": provider.id,
                    "mode": session.mode,
                    "claims": session.claims,
                    "reuse": session.reuse,
                    "document": session.document,
                },
            )
        ],
    )
    return session


def request_fingerprint(request: CreateSessionRequest) -> str:
    # exclude_none: requests without the newer optional fields keep their fingerprint.
    canonical = json.dumps(request.model_dump(mode="json", exclude_none=True), sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


def open_session_for_kiosk(runtime: Runtime, session: SessionRow | None) -> SessionRow:
    """The session a kiosk looked up, unless it is missing or expired."""
    if session is None:
        raise Problem("session_not_found")
    if sessions.effective_status(session, runtime.clock()) is SessionStatus.EXPIRED:
        raise Problem("session_expired")
    return session


def record_consent(
    runtime: Runtime,
    db: DbSession,
    session_id: str,
    kiosk: KioskRow,
    *,
    approved: bool,
    claims: list[ClaimName] | None,
) -> SessionRow:
    now = runtime.clock()
    requested = None if claims is None else [claim.value for claim in claims]
    if approved:
        session = sessions.record_consent(
            db, session_id, kiosk_id=kiosk.id, claims=requested, now=now
        )
    else:
        session = sessions.decline_consent(db, session_id, kiosk_id=kiosk.id, now=now)
    if session is None:  # nothing moved: say why
        open_session_for_kiosk(runtime, sessions.get_session(db, session_id))
        raise Problem("consent_already_recorded")
    # Checked after the UPDATE, which saved reading the session first; raising rolls it back.
    beyond = sorted(set(requested or ()) - set(session.claims))
    if beyond:
        raise Problem("consent_exceeds_request", f"not requested: {', '.join(beyond)}")
    consented = session.consent_claims or []
    if approved:
        event = (
            "session.consent_given",
            {"session_id": session.id, "kiosk_id": kiosk.id, "claims": consented},
        )
    else:
        event = ("session.consent_declined", {"session_id": session.id, "kiosk_id": kiosk.id})
    auditing.record(runtime, db, [event])
    if not approved:
        session_finished(runtime, db, session)
    return session


def result_binding(session_id: str) -> bytes:
    return binding("session", session_id, "result")


def session_finished(
    runtime: Runtime,
    db: DbSession,
    session: SessionRow,
    events: list[tuple[str, dict[str, Any]]] | None = None,
    *,
    provider: ProviderRow | None = None,
    verification_ms: float | None = None,
) -> None:
    """Metrics, the completion webhook, and the audit entries (last: they lock the log)."""
    runtime.metrics.sessions_completed.labels(session.status).inc()
    completed_at = session.completed_at or runtime.clock()
    completion = {
        "session_id": session.id,
        "provider_id": session.provider_id,
        "mode": session.mode,
        "status": session.status,
        "reason_code": session.reason_code,
        "person_id": session.person_id,
        "latency_ms": max(0.0, (completed_at - session.created_at).total_seconds() * 1000),
        "verification_ms": verification_ms,
    }
    if provider is None:
        provider = accounts.provider_by_id(db, session.provider_id)
    webhooks.notify(
        db,
        provider,
        event_type=SESSION_COMPLETED_EVENT,
        payload={"session_id": session.id, "status": session.status},
        now=runtime.clock(),
    )
    auditing.record(runtime, db, [*(events or []), ("session.completed", completion)])


def session_for_provider(
    provider_id: str, session_id: str, session: SessionRow | None
) -> SessionRow:
    """``session`` as loaded for ``session_id``, if it is ``provider_id``'s."""
    # Another provider's session is indistinguishable from a missing one.
    if session is None or session.provider_id != provider_id:
        raise Problem("session_not_found")
    return session


def session_result(runtime: Runtime, session: SessionRow) -> dict[str, Any]:
    now = runtime.clock()
    status = sessions.effective_status(session, now)
    body: dict[str, Any] = {
        "id": session.id,
        "status": status.value,
        "mode": session.mode,
        "claims": session.claims,
        "expires_at": session.expires_at,
        "completed_at": session.completed_at,
        "reason_code": session.reason_code,
    }
    if session.result_encrypted is not None and session.result_key_id is not None:
        result = json.loads(
            runtime.cipher.open(
                Sealed(session.result_key_id, session.result_encrypted),
                binding=result_binding(session.id),
            )
        )
        body.update(result)
    return body


def is_final(session: SessionRow, now: datetime) -> bool:
    return sessions.effective_status(session, now) not in (
        SessionStatus.PENDING,
        SessionStatus.AWAITING_CARD,
    )


def active_provider(db: DbSession, provider_id: str) -> ProviderRow:
    """A provider the standard doors act for (their clients are registered to one)."""
    provider = accounts.provider_by_id(db, provider_id)
    if provider is None or provider.disabled:
        raise Problem("unknown_provider")
    return provider


def provider_session_result(
    runtime: Runtime, db: DbSession, provider_id: str, session_id: str
) -> dict[str, Any]:
    """The result ``provider_id`` may read for its session ``session_id``, as the REST API
    gives it, with ``final`` saying whether anything can still change."""
    session = session_for_provider(provider_id, session_id, sessions.get_session(db, session_id))
    return session_result(runtime, session) | {"final": is_final(session, runtime.clock())}
