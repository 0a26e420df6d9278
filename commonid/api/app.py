"""The FastAPI application factory."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio.to_thread
import httpx
from fastapi import FastAPI

from commonid import __version__
from commonid.api.edge import TextGuard
from commonid.api.limit_stores import caller_limiters
from commonid.api.limits import BodySizeLimit
from commonid.api.openapi import install_openapi
from commonid.api.problems import FaultBarrier, install_problem_handlers
from commonid.api.routers import (
    admin,
    credentials,
    identities,
    kiosk,
    presentations,
    records,
    service,
    sessions,
)
from commonid.api.schemas import problem_responses
from commonid.audit.service import (
    checkpoint_cadence,
    checkpoint_forever,
    install_audit_for_runtime,
)
from commonid.documents import api as documents_api
from commonid.oidc.router import OidcDoor
from commonid.oidc.router import build_router as build_oidc_router
from commonid.openid4vc.router import router as openid4vc_router
from commonid.revocations import refresh_and_apply
from commonid.runtime import Runtime, build_runtime
from commonid.settings import Settings
from commonid.webhooks import WebhookDispatcher

log = logging.getLogger(__name__)


async def _refresh_revocation_forever(runtime: Runtime) -> None:
    while True:
        await asyncio.sleep(runtime.settings.crl_refresh_interval_seconds)
        try:
            report = await asyncio.to_thread(refresh_and_apply, runtime)
            for problem in report.problems:
                log.warning("CRL refresh: %s", problem)
        except Exception:  # the next round tries again; validation reports stale data meanwhile
            log.exception("CRL refresh failed")


def create_app(settings: Settings | None = None, *, runtime: Runtime | None = None) -> FastAPI:
    """The service as an ASGI app. Pass ``runtime`` to share one (tests, benchmarks)."""
    runtime = runtime or build_runtime(settings or Settings())

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        tasks = []
        settings = runtime.settings
        # The event loop's default thread pool (sync handlers and dependencies, run_in_threadpool).
        anyio.to_thread.current_default_thread_limiter().total_tokens = settings.worker_threads
        client = httpx.AsyncClient(timeout=10.0)
        if settings.webhook_dispatch_interval_seconds > 0:
            dispatcher = WebhookDispatcher(runtime, client)
            tasks.append(
                asyncio.create_task(
                    dispatcher.run_forever(settings.webhook_dispatch_interval_seconds)
                )
            )
        if settings.crl_refresh_interval_seconds > 0:
            tasks.append(asyncio.create_task(_refresh_revocation_forever(runtime)))
        # A signed checkpoint on schedule even when nothing is appended: a quiet log's
        # latest entries still get under a signature reviewers can hold the operator to.
        cadence = checkpoint_cadence(audit_log)
        if cadence is not None:
            tasks.append(asyncio.create_task(checkpoint_forever(audit_log, cadence)))
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await client.aclose()

    app = FastAPI(
        title="Common-ID",
        version=__version__,
        description="Reusable identity verification with the My Number Card (JPKI).",
        lifespan=lifespan,
        responses=problem_responses(),
    )
    app.state.runtime = runtime
    # A file shared by this host's workers, or a store shared by every host.
    limiters = caller_limiters(runtime.settings)
    app.state.provider_limiter = limiters["providers"]
    app.state.kiosk_limiter = limiters["kiosks"]
    install_problem_handlers(app)
    for router in (
        sessions.router,
        kiosk.router,
        identities.router,
        credentials.router,
        admin.router,
        service.router,
        documents_api.router,
        records.router,
        presentations.router,
        openid4vc_router,
    ):
        app.include_router(router)
    # The OpenID Provider door (commonid.oidc), onto the same flows.
    app.state.oidc = OidcDoor(runtime)
    app.include_router(build_oidc_router(lambda request: request.app.state.oidc))
    audit_log = install_audit_for_runtime(app, runtime)
    install_openapi(app, runtime.settings)
    # The last added runs first: the fault barrier, the size limit, then the text checks.
    app.add_middleware(TextGuard)
    app.add_middleware(
        BodySizeLimit,
        max_bytes=runtime.settings.max_body_bytes,
        max_document_bytes=runtime.settings.max_document_bytes,
    )
    app.add_middleware(FaultBarrier)
    return app
