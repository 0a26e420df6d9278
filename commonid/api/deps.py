"""Request dependencies: the runtime, a database session, and who is calling."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Iterator
from typing import Annotated, TypeVar

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from sqlalchemy.orm import Session as DbSession

from commonid.api.limits import CallerLimiter, RateLimitStoreUnavailable, retry_after_header
from commonid.problems import Problem
from commonid.runtime import Runtime
from commonid.store import accounts
from commonid.store.ids import hash_credential
from commonid.store.rows import KioskRow, ProviderRow


async def get_runtime(request: Request) -> Runtime:
    # async: FastAPI would run a plain function in the thread pool, for one attribute read.
    return request.app.state.runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]

T = TypeVar("T")


async def run_handler_work(runtime: Runtime, work: Callable[[], T]) -> T:
    """A hot handler's blocking part (one transaction: authenticate, act, audit): on the
    event loop when ``inline_handler_work`` is set, else in the worker's thread pool."""
    if runtime.settings.inline_handler_work:
        return work()
    return await run_in_threadpool(work)


def get_db(runtime: RuntimeDep) -> Iterator[DbSession]:
    """One transaction per request: committed when the handler returns, else rolled back."""
    with runtime.sessions.begin() as db:
        yield db


# scope="function": commit before the response goes out. With the default
# ("request") a client could act on a 201 before its session was committed.
Db = Annotated[DbSession, Depends(get_db, scope="function")]


def _bearer(request: Request) -> str:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Problem(
            "unauthenticated",
            "send the credential as 'Authorization: Bearer <key>'",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return token.strip()


def _limit(limiter: CallerLimiter, caller: str) -> None:
    try:
        wait = limiter.take(caller)
    except RateLimitStoreUnavailable as error:
        # Fail closed: without its limits the service would let a caller run unbounded.
        raise Problem(
            "service_unavailable",
            "the rate-limit store is not reachable; retry the request",
            headers=retry_after_header(1),
        ) from error
    if wait is not None:
        raise Problem("rate_limited", headers=retry_after_header(wait))


def current_provider(request: Request, runtime: RuntimeDep, db: Db) -> ProviderRow:
    return authenticate_provider(request, db)


def authenticate_provider(request: Request, db: DbSession) -> ProviderRow:
    """The calling provider (rate-limited), for handlers that do all their database
    work in one thread-pool call and one transaction."""
    return admit_provider(request, accounts.provider_by_api_key(db, _bearer(request)))


def bearer_hash(request: Request) -> str:
    """The hash of the request's bearer credential, as the accounts table stores it
    (for a handler that looks the caller up in a query of its own)."""
    return hash_credential(_bearer(request))


def admit_provider(request: Request, provider: ProviderRow | None) -> ProviderRow:
    """The provider found for the request's API key, if enabled and within its rate."""
    if provider is None:
        raise Problem("unauthenticated", "unknown API key", headers={"WWW-Authenticate": "Bearer"})
    if provider.disabled:
        raise Problem("account_disabled")
    _limit(request.app.state.provider_limiter, provider.id)
    return provider


def current_kiosk(request: Request, runtime: RuntimeDep, db: Db) -> KioskRow:
    return authenticate_kiosk(request, db)


def authenticate_kiosk(request: Request, db: DbSession) -> KioskRow:
    """The calling kiosk (rate-limited); see authenticate_provider."""
    return admit_kiosk(request, accounts.kiosk_by_credential(db, _bearer(request)))


def admit_kiosk(request: Request, kiosk: KioskRow | None) -> KioskRow:
    """The kiosk found for the request's credential, if enabled and within its rate."""
    if kiosk is None:
        raise Problem(
            "unauthenticated", "unknown kiosk credential", headers={"WWW-Authenticate": "Bearer"}
        )
    if kiosk.disabled:
        raise Problem("account_disabled")
    _limit(request.app.state.kiosk_limiter, kiosk.id)
    return kiosk


def require_admin(request: Request, runtime: RuntimeDep) -> None:
    configured = runtime.settings.admin_token
    if configured is None:
        raise Problem("admin_disabled")
    presented = hashlib.sha256(_bearer(request).encode()).digest()
    expected = hashlib.sha256(configured.get_secret_value().encode()).digest()
    if not hmac.compare_digest(presented, expected):
        raise Problem("unauthenticated", "wrong admin credential")


CurrentProvider = Annotated[ProviderRow, Depends(current_provider)]
CurrentKiosk = Annotated[KioskRow, Depends(current_kiosk)]
