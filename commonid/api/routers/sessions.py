"""Provider API: create sessions, fetch results (with long polling)."""

from __future__ import annotations

import asyncio
import time
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session as DbSession

from commonid import flows
from commonid.api.deps import (
    RuntimeDep,
    admit_provider,
    authenticate_provider,
    bearer_hash,
    run_handler_work,
)
from commonid.api.paths import SessionId
from commonid.api.schemas import CreateSessionRequest, SessionCreated, SessionResult
from commonid.documents import session_documents
from commonid.problems import Problem
from commonid.runtime import Runtime
from commonid.store import idempotency, sessions
from commonid.store.rows import ProviderRow

router = APIRouter(prefix="/v1/sessions", tags=["sessions"])
POLL_INTERVAL_SECONDS = 0.1
# No instance may hold a long poll longer (the setting max_long_poll_seconds is 1..60).
LONG_POLL_CEILING_SECONDS = 60


@router.post("", status_code=201, response_model=SessionCreated)
async def create_session(
    body: CreateSessionRequest,
    request: Request,
    runtime: RuntimeDep,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> JSONResponse:
    # One thread-pool call and one transaction: authentication, the session, its audit entry.
    def work() -> JSONResponse:
        with runtime.write_transaction() as db:
            provider = authenticate_provider(request, db)
            return _create_session(runtime, db, provider, body, idempotency_key)

    return await run_handler_work(runtime, work)


def _create_session(
    runtime: Runtime,
    db: DbSession,
    provider: ProviderRow,
    body: CreateSessionRequest,
    idempotency_key: str | None,
) -> JSONResponse:
    fingerprint = flows.request_fingerprint(body) if idempotency_key else ""
    if idempotency_key:
        stored = idempotency.find(db, provider_id=provider.id, key=idempotency_key)
        if stored is not None:
            if stored.request_hash != fingerprint:
                raise Problem("idempotency_key_reused")
            return JSONResponse(stored.response, status_code=stored.status_code)
    session = flows.create_session(runtime, db, provider, body)
    created = SessionCreated(
        id=session.id,
        user_code=session.user_code,
        status=session.status,
        mode=session.mode,
        claims=session.claims,
        purpose=session.purpose,
        reuse=session.reuse,
        document=session.document,
        expires_at=session.expires_at,
        challenge=flows.challenge_view(flows.session_challenge(runtime, session)),
    ).model_dump(mode="json")
    if idempotency_key and not idempotency.remember(
        db,
        provider_id=provider.id,
        key=idempotency_key,
        request_hash=fingerprint,
        status_code=201,
        response=created,
        now=runtime.clock(),
    ):
        # A concurrent retry with the same key won: answer what it answered.
        db.rollback()
        stored = idempotency.find(db, provider_id=provider.id, key=idempotency_key)
        assert stored is not None
        if stored.request_hash != fingerprint:
            raise Problem("idempotency_key_reused")
        return JSONResponse(stored.response, status_code=stored.status_code)
    return JSONResponse(created, status_code=201)


@router.get("/{session_id}", response_model=SessionResult)
async def get_session(
    session_id: SessionId,
    request: Request,
    runtime: RuntimeDep,
    wait: Annotated[
        float,
        Query(
            ge=0,
            le=LONG_POLL_CEILING_SECONDS,
            description="Long-poll up to this many seconds (at most the service's "
            "max_long_poll_seconds, which the OpenAPI document states)",
        ),
    ] = 0,
) -> Response:
    """The session's status and, once final, its result. ``wait`` holds the request
    open until the session is final or the time is up, so providers need not spin."""
    provider_id: str | None = None

    def read() -> tuple[SessionResult, bool]:
        nonlocal provider_id
        with runtime.read_only() as db:
            if provider_id is None:
                # Authenticate (and rate-limit) once per request, in the session's query.
                found = sessions.provider_and_session(db, bearer_hash(request), session_id)
                provider, loaded = found if found is not None else (None, None)
                provider_id = admit_provider(request, provider).id
            else:
                loaded = sessions.get_session(db, session_id)
            session = flows.session_for_provider(provider_id, session_id, loaded)
            body = flows.session_result(runtime, session)
            document_fields = session_documents.result_fields(runtime, db, session)
            body.update(document_fields)
            # A session that asks for a document is done once the document is settled too.
            final = flows.is_final(session, runtime.clock())
            return SessionResult.model_validate(body), final and session_documents.document_settled(
                document_fields
            )

    if wait > runtime.settings.max_long_poll_seconds:
        raise Problem(
            "invalid_request",
            f"wait is at most {runtime.settings.max_long_poll_seconds} seconds here",
        )
    deadline = time.monotonic() + wait
    result, final = await run_handler_work(runtime, read)
    while not final and time.monotonic() < deadline:
        await asyncio.sleep(POLL_INTERVAL_SECONDS)
        result, final = await run_handler_work(runtime, read)
    # Already validated: a Response skips FastAPI validating it again against response_model.
    return Response(result.model_dump_json(), media_type="application/json")
