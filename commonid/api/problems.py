"""RFC 9457 problem details with a stable ``code``: the only error shape the API speaks."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from http import HTTPStatus
from typing import Any

import sqlalchemy as sa
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from commonid.problems import PROBLEM_TYPE_BASE, Problem

PROBLEM_MEDIA_TYPE = "application/problem+json"
log = logging.getLogger(__name__)


def is_json_media_type(content_type: str | None) -> bool:
    """Whether FastAPI parses a body of this Content-Type as JSON."""
    if not content_type:
        return False
    media_type = content_type.split(";", 1)[0].strip().lower()
    kind, _, subtype = media_type.partition("/")
    return kind == "application" and (subtype == "json" or subtype.endswith("+json"))


def problem_response(problem: Problem) -> JSONResponse:
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE_BASE + problem.code,
        "title": problem.title,
        "status": problem.status,
        "detail": problem.detail,
        "code": problem.code,
        **problem.extra,
    }
    return JSONResponse(
        body, status_code=problem.status, headers=problem.headers, media_type=PROBLEM_MEDIA_TYPE
    )


async def _on_problem(_request: Request, problem: Exception) -> JSONResponse:
    assert isinstance(problem, Problem)
    return problem_response(problem)


async def _on_validation_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    errors = error.errors()
    if any(item.get("type") == "json_invalid" for item in errors):
        return problem_response(Problem("malformed_json"))
    if _unparsed_body(request, errors):
        return problem_response(
            Problem("unsupported_media_type", "send the request body as application/json")
        )
    # Echo where and what, never the submitted values (they may be personal data).
    summary = [
        {"loc": list(item.get("loc", ())), "type": item.get("type"), "msg": item.get("msg")}
        for item in errors
    ]
    messages = "; ".join(
        f"{'.'.join(str(part) for part in item['loc'])}: {item['msg']}" for item in summary
    )
    return problem_response(Problem("invalid_request", messages, extra={"errors": summary}))


def _unparsed_body(request: Request, errors: Sequence[Any]) -> bool:
    """A body FastAPI did not parse, because its Content-Type is not JSON (or absent):
    it reaches the schema as bytes and fails as a whole."""
    if is_json_media_type(request.headers.get("content-type")):
        return False
    return any(
        tuple(item.get("loc", ())) == ("body",) and item.get("type") != "missing" for item in errors
    )


async def _on_http_exception(_request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, StarletteHTTPException)
    code = {
        404: "not_found",
        405: "method_not_allowed",
        413: "body_too_large",
        415: "unsupported_media_type",
    }.get(error.status_code, "invalid_request")
    status = error.status_code if error.status_code < 500 else 500
    title = HTTPStatus(status).phrase
    return problem_response(
        Problem(
            code,
            str(error.detail or title),
            status=status,
            title=title,
            headers=dict(error.headers or {}),
        )
    )


class FaultBarrier:
    """ASGI middleware, outermost: a fault becomes ``internal_error`` and ends there.

    An exception handler for ``Exception`` runs in Starlette's ServerErrorMiddleware,
    which answers and then raises again; uvicorn then closes the connection, so
    a keep-alive client's next request failed as well. Here the fault is logged
    and answered, and the connection serves the next request. A fault after the
    response started is raised on: only closing the connection ends that one.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watched(message: Any) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watched)
        except Exception as error:
            if started:
                raise
            response = await _on_unexpected(Request(scope), error)
            await response(scope, receive, send)


async def _on_unexpected(request: Request, error: Exception) -> JSONResponse:
    # A genuine server fault: record it (no request body: it may hold personal
    # data) and answer a generic problem without internals.
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return problem_response(Problem("internal_error", "The service could not complete the request"))


async def _on_database_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, sa.exc.DBAPIError)
    if not error.connection_invalidated:
        return await _on_unexpected(request, error)
    # The connection broke under the request (a database restart, say): nothing was
    # committed, and the pool has been renewed, so the caller may simply retry.
    log.warning("database connection lost on %s %s", request.method, request.url.path)
    return problem_response(
        Problem(
            "service_unavailable",
            "the database connection was lost; retry the request",
            headers={"Retry-After": "1"},
        )
    )


def install_problem_handlers(app: FastAPI) -> None:
    app.add_exception_handler(Problem, _on_problem)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_exception)
    app.add_exception_handler(sa.exc.DBAPIError, _on_database_error)
    app.add_exception_handler(Exception, _on_unexpected)
