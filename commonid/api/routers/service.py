"""Service endpoints: DID document, health, metrics."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST

from commonid.api.deps import RuntimeDep
from commonid.metrics import exposition
from commonid.problems import Problem
from commonid.trust import revocation_data_ages

router = APIRouter(tags=["service"])


@router.get("/.well-known/did.json")
def did_document(request: Request, runtime: RuntimeDep) -> dict[str, Any]:
    """The service's did:web document (host from the request), listing every issuer key."""
    host = request.headers.get("host", "localhost")
    return runtime.keyring.did_web_document(host)


@router.get("/healthz")
def health(runtime: RuntimeDep) -> dict[str, Any]:
    try:
        with runtime.engine.connect() as connection:
            connection.execute(sa.text("SELECT 1"))
    except sa.exc.SQLAlchemyError as error:
        raise Problem("service_unavailable", "database not reachable") from error
    fork = runtime.audit.fork if runtime.audit is not None else None
    if fork is not None:
        # Still serving, but no checkpoint is signed until an operator looks.
        return {
            "status": "degraded",
            "service_did": runtime.service_did,
            "audit": {"status": "fork", "detail": fork.detail},
        }
    return {"status": "ok", "service_did": runtime.service_did}


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {"schema": {"type": "string"}}}}},
)
def metrics(runtime: RuntimeDep) -> Response:
    for ca, age in revocation_data_ages(runtime.trust_policy, at=runtime.clock()).items():
        runtime.metrics.revocation_data_age.labels(ca).set(age)
    return Response(exposition(runtime.metrics), media_type=CONTENT_TYPE_LATEST)
