"""Request body size limit and per-caller rate limits."""

from __future__ import annotations

import fcntl
import hashlib
import json
import math
import mmap
import os
import re
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from commonid.api.problems import PROBLEM_MEDIA_TYPE
from commonid.problems import PROBLEM_TYPE_BASE, PROBLEM_TYPES

# The endpoints whose body is a signed PDF (commonid.documents.api).
_PDF_UPLOADS = re.compile(r"/v1/documents/verify|/v1/kiosk/sessions/[^/]+/document")


class BodySizeLimit:
    """ASGI middleware: refuse bodies over ``max_bytes`` with 413 before any parsing.

    Checks Content-Length first, then counts streamed bytes, so a chunked upload
    without a length cannot get past the limit either.
    """

    def __init__(self, app: ASGIApp, max_bytes: int, max_document_bytes: int | None = None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.max_document_bytes = max_document_bytes or max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = (
            self.max_document_bytes
            if _PDF_UPLOADS.fullmatch(scope.get("path", ""))
            else self.max_bytes
        )
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = -1
                if declared > limit:
                    await _send_too_large(send, limit)
                    return
        # Buffer the body up to the limit (bodies are small JSON documents).
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await _send_too_large(send, limit)
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        delivered = False

        async def replay() -> Message:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


async def _send_too_large(send: Send, max_bytes: int) -> None:
    status, title = PROBLEM_TYPES["body_too_large"]
    body = json.dumps(
        {
            "type": PROBLEM_TYPE_BASE + "body_too_large",
            "title": title,
            "status": status,
            "detail": f"request bodies are limited to {max_bytes} bytes",
            "code": "body_too_large",
        }
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", PROBLEM_MEDIA_TYPE.encode()),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


@dataclass
class _Bucket:
    tokens: float
    updated: float


class CallerLimiter(Protocol):
    def take(self, caller: str) -> float | None:
        """Spend one of ``caller``'s tokens: None if allowed, else seconds until one is
        available. A shared store that cannot be reached raises RateLimitStoreUnavailable."""
        ...


class RateLimitStoreUnavailable(Exception):
    """The shared store of the buckets did not answer: the request is refused (503),
    never let through unlimited."""


class RateLimiter:
    """Token buckets per caller id, in this process (one worker process: see
    SharedRateLimiter for several)."""

    def __init__(
        self, rate_per_second: float, burst: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = rate_per_second
        self.burst = burst
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    def take(self, caller: str) -> float | None:
        """Spend one token; None if allowed, else seconds until a token is available."""
        now = self._clock()
        with self._lock:
            bucket = self._buckets.get(caller)
            if bucket is None:
                bucket = self._buckets[caller] = _Bucket(float(self.burst), now)
            bucket.tokens = _refill(bucket.tokens, bucket.updated, now, self.rate, self.burst)
            bucket.updated = now
            if bucket.tokens >= 1:
                bucket.tokens -= 1
                return None
            return wait_for_token(bucket.tokens, self.rate)


# The token bucket, as every store keeps it (these two here; the Redis script and the
# PostgreSQL statement of commonid.api.limit_stores spell the same in their languages):
# a new bucket is full; tokens come back at ``rate`` a second since the bucket was last
# counted, up to ``burst``; a request takes one token if there is a whole one, and
# otherwise waits until there is.
def _refill(tokens: float, updated: float, now: float, rate: float, burst: int) -> float:
    return min(float(burst), tokens + max(0.0, now - updated) * rate)


def wait_for_token(tokens: float, rate: float) -> float:
    """Seconds until a bucket holding ``tokens`` (< 1) has a whole token again."""
    return (1 - tokens) / rate if rate > 0 else math.inf


class SharedRateLimiter:
    """Token buckets per caller id that the worker processes of one host share.

    ``commonid serve --workers N`` runs N processes; with a bucket in each, a
    caller could make N times its allowance. Here the buckets live in one small
    file (mmap), updated under an exclusive flock(), so every worker spends from
    the same bucket. A bucket is 32 bytes: a 16-byte hash of the caller id, the
    tokens, and when they were counted (CLOCK_MONOTONIC, the same in every
    process of the host). A caller id hashes to a slot and probes a few after it;
    when all of those belong to others, the longest-idle one is reused (it
    starts full again, as a new caller's would).
    """

    SLOTS = 4096
    PROBES = 8
    _SLOT = struct.Struct("<16sdd")
    _EMPTY = bytes(16)

    def __init__(
        self,
        path: Path,
        rate_per_second: float,
        burst: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rate = rate_per_second
        self.burst = burst
        self._clock = clock
        size = self.SLOTS * self._SLOT.size
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        if os.fstat(self._fd).st_size < size:
            os.ftruncate(self._fd, size)  # zero-filled: every slot empty
        self._map = mmap.mmap(self._fd, size)
        self._lock = threading.Lock()  # flock() does not exclude threads of one process

    def take(self, caller: str) -> float | None:
        """Spend one token; None if allowed, else seconds until a token is available."""
        key = hashlib.blake2b(caller.encode(), digest_size=16).digest()
        now = self._clock()
        with self._lock:
            fcntl.flock(self._fd, fcntl.LOCK_EX)
            try:
                offset = self._slot_of(key)
                stored, tokens, updated = self._SLOT.unpack_from(self._map, offset)
                if stored != key:  # a new caller (or a reused slot): a full bucket
                    tokens, updated = float(self.burst), now
                tokens = _refill(tokens, updated, now, self.rate, self.burst)
                allowed = tokens >= 1
                if allowed:
                    tokens -= 1
                self._SLOT.pack_into(self._map, offset, key, tokens, now)
            finally:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        if allowed:
            return None
        return wait_for_token(tokens, self.rate)

    def _slot_of(self, key: bytes) -> int:
        first = int.from_bytes(key[:8], "little") % self.SLOTS
        empty: int | None = None
        idlest: tuple[float, int] | None = None
        for probe in range(self.PROBES):
            offset = ((first + probe) % self.SLOTS) * self._SLOT.size
            stored, _tokens, updated = self._SLOT.unpack_from(self._map, offset)
            if stored == key:
                return offset
            if stored == self._EMPTY:
                if empty is None:
                    empty = offset
            elif idlest is None or updated < idlest[0]:
                idlest = (updated, offset)
        if empty is not None:
            return empty
        assert idlest is not None
        return idlest[1]


def caller_limiter(
    directory: Path | None, name: str, rate_per_second: float, burst: int
) -> CallerLimiter:
    """A SharedRateLimiter in ``directory`` when one is set (several workers), else a
    RateLimiter of this process."""
    if directory is None:
        return RateLimiter(rate_per_second, burst)
    directory.mkdir(parents=True, exist_ok=True)
    return SharedRateLimiter(directory / f"{name}.buckets", rate_per_second, burst)


def retry_after_header(wait_seconds: float) -> dict[str, str]:
    return {"Retry-After": str(max(1, math.ceil(wait_seconds)))}
