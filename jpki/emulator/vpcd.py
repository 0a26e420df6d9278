"""Bridge between a virtual card and the vpcd PC/SC driver (vsmartcard).

vpcd is the server: pcscd loads it as a reader driver and it listens on TCP
(127.0.0.1:35963 for reader "Virtual PCD 00 00", 35964 for "... 00 01").
The card side connects to it. While the connection is up, every PC/SC client
sees a card in that reader; closing the connection is a real card removal.

Wire format, both directions: a 2-byte big-endian length, then the payload.
A 1-byte payload from vpcd is a control code; anything longer is a command
APDU, answered with a response APDU (data + SW1 SW2).
"""

from __future__ import annotations

import contextlib
import logging
import socket
import struct
import threading
import time
from typing import Protocol

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 35963

_POWER_OFF = 0
_POWER_ON = 1
_RESET = 2
_GET_ATR = 4

log = logging.getLogger(__name__)


class VirtualCard(Protocol):
    """What a card must offer to sit in a virtual reader."""

    @property
    def atr(self) -> bytes: ...

    def power_on(self) -> None: ...

    def power_off(self) -> None: ...

    def reset(self) -> None: ...

    def process_apdu(self, command: bytes) -> bytes: ...


class VpcdLinkClosed(Exception):
    """vpcd closed the connection (pcscd stopped, or the card was removed)."""


def _quick_ack(sock: socket.socket) -> None:
    # vpcd writes the length prefix and the APDU in two small segments; with
    # Nagle on its side and delayed ACKs on ours every APDU would wait ~40 ms
    # for the second segment. Acknowledging at once keeps a round trip ~1 ms.
    # Linux resets TCP_QUICKACK after use, hence before every read.
    if hasattr(socket, "TCP_QUICKACK"):
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)


def _read_exact(sock: socket.socket, length: int) -> bytes:
    chunks = bytearray()
    while len(chunks) < length:
        _quick_ack(sock)
        chunk = sock.recv(length - len(chunks))
        if not chunk:
            raise VpcdLinkClosed("vpcd closed the connection")
        chunks += chunk
    return bytes(chunks)


def serve_connection(sock: socket.socket, card: VirtualCard) -> None:
    """Answer vpcd on an established connection until it closes."""
    while True:
        (length,) = struct.unpack(">H", _read_exact(sock, 2))
        payload = _read_exact(sock, length) if length else b""
        if len(payload) == 1:
            code = payload[0]
            if code == _POWER_OFF:
                card.power_off()
            elif code == _POWER_ON:
                card.power_on()
            elif code == _RESET:
                card.reset()
            elif code == _GET_ATR:
                sock.sendall(struct.pack(">H", len(card.atr)) + card.atr)
            else:
                log.warning("vpcd sent unknown control code %d", code)
            continue
        response = card.process_apdu(payload)
        sock.sendall(struct.pack(">H", len(response)) + response)


class VpcdBridge:
    """Puts a virtual card into a vpcd reader, in a background thread.

    ``insert()`` connects to vpcd (the card appears in the reader) and
    ``remove()`` closes the connection (the card is pulled out). Both are
    idempotent, so tests and the emulator process can use them freely.
    """

    def __init__(
        self, card: VirtualCard, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT
    ) -> None:
        self.card = card
        self.host = host
        self.port = port
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    @property
    def inserted(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def insert(self, timeout: float = 10.0) -> None:
        """Connect to vpcd, retrying until ``timeout`` (pcscd may be starting)."""
        with self._lock:
            if self.inserted:
                return
            deadline = time.monotonic() + timeout
            while True:
                try:
                    sock = socket.create_connection((self.host, self.port), timeout=2)
                    break
                except OSError:
                    if time.monotonic() >= deadline:
                        raise
                    time.sleep(0.1)
            sock.settimeout(None)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._sock = sock
            self._thread = threading.Thread(
                target=self._run, args=(sock,), name=f"vpcd-{self.port}", daemon=True
            )
            self._thread.start()

    def _run(self, sock: socket.socket) -> None:
        try:
            serve_connection(sock, self.card)
        except (VpcdLinkClosed, OSError):
            pass
        finally:
            # The card lost power with the link: its security state is gone.
            self.card.power_off()
            with contextlib.suppress(OSError):
                sock.close()

    def remove(self) -> None:
        """Pull the card out of the reader."""
        with self._lock:
            sock, thread = self._sock, self._thread
            self._sock = self._thread = None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                sock.close()
        # The card itself may pull the plug mid-command (from the serving thread):
        # that thread ends on its own once the socket is closed.
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5)

    def __enter__(self) -> VpcdBridge:
        self.insert()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.remove()
