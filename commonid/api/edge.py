"""What a request must be before any handler, database or audit work: text, not bytes.

``TextGuard`` (ASGI middleware, inside the body size limit) refuses:

* a NUL character in the path or the query string (``invalid_request``): no
  identifier or search text holds one, and PostgreSQL's text types cannot store
  one (SQLite could, so the two databases answered differently);
* a JSON body (``application/json`` or ``+json``) that is not UTF-8 (RFC 8259),
  or nests objects and arrays deeper than ``MAX_JSON_DEPTH`` (``malformed_json``:
  no request of the API nests more than a few levels, and a deep document only
  costs recursion further in);
* a JSON string, value or member name, holding NUL or a lone surrogate
  (``invalid_request``, with where it was): neither can be stored or encoded
  as UTF-8.

The common case costs three scans of the body in C: a UTF-8 decode, a count
of brackets and a search for the escapes that can produce those characters.
Only a body that nests deep enough or holds such an escape is parsed here
(FastAPI parses it again for the handler).
"""

from __future__ import annotations

import json
import re
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from commonid.api.problems import is_json_media_type, problem_response
from commonid.problems import Problem

MAX_JSON_DEPTH = 32
# The escapes that decode to NUL or to half of a surrogate pair.
_SUSPECT_ESCAPE = re.compile(rb"\\u(?:0000|[dD][89a-fA-F])")


def target_problem(scope: Scope) -> Problem | None:
    """A NUL character in the path or the query string, if there is one."""
    if "\x00" in scope["path"]:
        return _text_problem(("path",), "the path holds a NUL character")
    query: bytes = scope.get("query_string", b"")
    if b"%00" in query or b"\x00" in query:
        return _text_problem(("query",), "the query string holds a NUL character")
    return None


def json_body_problem(body: bytes) -> Problem | None:
    """Why a JSON request body is refused before it is parsed for the handler, if it is."""
    if not body:
        return None
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return Problem("malformed_json", "the body is not UTF-8")
    if b"\x00" in body:  # control characters are not JSON; UTF-16 and UTF-32 show them
        return Problem("malformed_json", "the body holds a NUL byte (JSON is UTF-8 text)")
    deep = body.count(b"{") + body.count(b"[") > MAX_JSON_DEPTH
    if not deep and _SUSPECT_ESCAPE.search(body) is None:
        return None
    try:
        value = json.loads(body)
    except RecursionError:
        return _too_deep()
    except ValueError:
        return None  # not JSON at all: FastAPI answers malformed_json with the position
    return _value_problem(value)


def _value_problem(value: Any) -> Problem | None:
    # Iterative: the document may be nested as deep as the parser allowed.
    pending: list[tuple[Any, int, tuple[str | int, ...]]] = [(value, 0, ())]
    while pending:
        item, depth, loc = pending.pop()
        if isinstance(item, dict):
            if depth >= MAX_JSON_DEPTH:
                return _too_deep()
            for key, member in item.items():
                if (reason := _string_reason(key)) is not None:
                    return _text_problem(("body", *loc), f"a member name {reason}")
                pending.append((member, depth + 1, (*loc, key)))
        elif isinstance(item, list):
            if depth >= MAX_JSON_DEPTH:
                return _too_deep()
            pending.extend((member, depth + 1, (*loc, i)) for i, member in enumerate(item))
        elif isinstance(item, str) and (reason := _string_reason(item)) is not None:
            return _text_problem(("body", *loc), f"the string {reason}")
    return None


def _string_reason(text: str) -> str | None:
    if "\x00" in text:
        return "holds a NUL character"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "holds a lone surrogate (not Unicode text)"
    return None


def _too_deep() -> Problem:
    return Problem("malformed_json", f"JSON nested deeper than {MAX_JSON_DEPTH} levels")


def _text_problem(loc: tuple[str | int, ...], message: str) -> Problem:
    # The shape of a schema error (commonid.api.problems), never the value itself.
    where = ".".join(str(part) for part in loc)
    return Problem(
        "invalid_request",
        f"{where}: {message}",
        extra={"errors": [{"loc": list(loc), "type": "text_invalid", "msg": message}]},
    )


class TextGuard:
    """ASGI middleware: refuse what ``target_problem`` and ``json_body_problem`` find."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        problem = target_problem(scope)
        if problem is not None:
            await problem_response(problem)(scope, receive, send)
            return
        content_type = next(
            (v.decode("latin-1") for k, v in scope["headers"] if k == b"content-type"),
            None,
        )
        if not is_json_media_type(content_type):
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        body = b"".join(chunks)
        problem = json_body_problem(body)
        if problem is not None:
            await problem_response(problem)(scope, receive, send)
            return
        delivered = False

        async def replay() -> Message:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)
