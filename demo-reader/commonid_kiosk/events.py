"""Server-sent events for the kiosk page: reader changes and flow changes, as they happen.

Producers are threads (the reader monitor, the idle watch); each connected
page is an asyncio queue on the server's event loop.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator
from typing import Any

KEEPALIVE_SECONDS = 15.0
_QUEUE_LIMIT = 100  # a page that stops reading loses old events, never blocks the agent


class EventBroadcaster:
    def __init__(self) -> None:
        self._subscribers: set[asyncio.Queue[tuple[str, str]]] = set()
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def publish(self, event: str, data: dict[str, Any]) -> None:
        """Send ``event`` to every page; callable from any thread."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        message = (event, json.dumps(data, ensure_ascii=False))
        with self._lock:
            queues = list(self._subscribers)
        for queue in queues:
            loop.call_soon_threadsafe(_offer, queue, message)

    async def stream(self, first: list[tuple[str, dict[str, Any]]]) -> AsyncIterator[str]:
        """The SSE byte stream of one page, starting with ``first`` (the current state)."""
        queue: asyncio.Queue[tuple[str, str]] = asyncio.Queue(maxsize=_QUEUE_LIMIT)
        with self._lock:
            self._subscribers.add(queue)
        try:
            for event, data in first:
                yield _frame(event, json.dumps(data, ensure_ascii=False))
            while True:
                try:
                    event, payload = await asyncio.wait_for(queue.get(), KEEPALIVE_SECONDS)
                except TimeoutError:
                    yield ": keepalive\n\n"
                    continue
                yield _frame(event, payload)
        finally:
            with self._lock:
                self._subscribers.discard(queue)


def _offer(queue: asyncio.Queue[tuple[str, str]], message: tuple[str, str]) -> None:
    if queue.full():
        queue.get_nowait()
    queue.put_nowait(message)


def _frame(event: str, payload: str) -> str:
    return f"event: {event}\ndata: {payload}\n\n"
