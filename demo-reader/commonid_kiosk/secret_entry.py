"""A PIN or password as the person typed it, held only for one card operation.

The entry lives in a ``bytearray`` so it can be overwritten with zeros when
the operation ends, whatever the outcome. ``jpki`` takes the PIN as ``str``:
that copy (and the HTTP request body it came in) is immutable in CPython and
cannot be wiped, only dropped; keeping the reference time to one call is the
best Python allows. The entry never prints itself: ``repr`` and ``str`` say
nothing about the content, so it cannot leak through a log line or a traceback.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


class SecretEntry:
    """A PIN or password, wiped by :meth:`wipe` (and by leaving ``with``)."""

    __slots__ = ("_buffer",)

    def __init__(self, text: str) -> None:
        # ASCII only: both JPKI secrets are ASCII, and anything else is refused
        # by the card layer before a byte reaches the card.
        self._buffer = bytearray(text.encode("ascii", errors="replace"))

    def __enter__(self) -> SecretEntry:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.wipe()

    @contextmanager
    def revealed(self) -> Iterator[str]:
        """The entry as ``str`` for exactly one card call."""
        yield self._buffer.decode("ascii")

    @property
    def wiped(self) -> bool:
        return not any(self._buffer)

    def wipe(self) -> None:
        for index in range(len(self._buffer)):
            self._buffer[index] = 0

    def __repr__(self) -> str:
        return "SecretEntry(<hidden>)"

    __str__ = __repr__

    def __reduce__(self) -> None:  # type: ignore[override]
        raise TypeError("a PIN entry cannot be pickled")
