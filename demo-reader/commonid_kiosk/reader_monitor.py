"""Live reader and card status: a background thread blocked in SCardGetStatusChange.

pcsc-lite wakes the thread when a card is inserted or removed, and (through
its Plug-and-Play pseudo reader) when a reader is plugged in or out. Each
change becomes a :class:`ReaderSnapshot` handed to the listeners, which the
agent turns into server-sent events for the page.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

PNP_NOTIFICATION = "\\\\?PnP?\\Notification"
_WAKE_MS = 500  # also how quickly stop() is noticed


@dataclass(frozen=True)
class ReaderState:
    name: str
    card_present: bool


@dataclass(frozen=True)
class ReaderSnapshot:
    """Readers as PC/SC sees them, and the one this kiosk uses."""

    service_available: bool
    readers: tuple[ReaderState, ...]
    configured_reader: str | None

    @property
    def selected(self) -> ReaderState | None:
        """The configured reader, or else the first one holding a card, or else the first."""
        if self.configured_reader is not None:
            return next((r for r in self.readers if r.name == self.configured_reader), None)
        with_card = [r for r in self.readers if r.card_present]
        return with_card[0] if with_card else (self.readers[0] if self.readers else None)

    @property
    def card_present(self) -> bool:
        selected = self.selected
        return selected is not None and selected.card_present

    def to_json(self) -> dict[str, Any]:
        selected = self.selected
        return {
            "service_available": self.service_available,
            "readers": [{"name": r.name, "card_present": r.card_present} for r in self.readers],
            "reader": None if selected is None else selected.name,
            "card_present": self.card_present,
        }


Listener = Callable[[ReaderSnapshot], None]


class ReaderMonitor:
    """Watches PC/SC in a daemon thread; ``snapshot`` is always the latest state."""

    def __init__(self, configured_reader: str | None = None) -> None:
        self._configured_reader = configured_reader
        self._snapshot = ReaderSnapshot(False, (), configured_reader)
        self._listeners: list[Listener] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._first_scan = threading.Event()

    @property
    def snapshot(self) -> ReaderSnapshot:
        return self._snapshot

    def add_listener(self, listener: Listener) -> None:
        with self._lock:
            self._listeners.append(listener)

    def remove_listener(self, listener: Listener) -> None:
        with self._lock:
            if listener in self._listeners:
                self._listeners.remove(listener)

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="reader-monitor", daemon=True)
        self._thread.start()
        self._first_scan.wait(timeout=5)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def _publish(self, snapshot: ReaderSnapshot) -> None:
        changed = snapshot != self._snapshot
        self._snapshot = snapshot
        self._first_scan.set()
        if not changed:
            return
        with self._lock:
            listeners = list(self._listeners)
        for listener in listeners:
            try:
                listener(snapshot)
            except Exception:  # a listener's fault must not stop the watch
                log.exception("reader listener failed")

    def _run(self) -> None:
        from smartcard import scard as sc

        while not self._stop.is_set():
            hresult, context = sc.SCardEstablishContext(sc.SCARD_SCOPE_USER)
            if hresult != sc.SCARD_S_SUCCESS:
                self._publish(ReaderSnapshot(False, (), self._configured_reader))
                self._stop.wait(1.0)
                continue
            try:
                self._watch(sc, context)
            finally:
                sc.SCardReleaseContext(context)

    def _watch(self, sc: Any, context: Any) -> None:
        """Follow one PC/SC context until it fails (pcscd restarted) or stop() is called."""
        while not self._stop.is_set():
            hresult, readers = sc.SCardListReaders(context, [])
            if hresult == sc.SCARD_E_NO_READERS_AVAILABLE:
                readers = []
            elif hresult != sc.SCARD_S_SUCCESS:
                self._publish(ReaderSnapshot(False, (), self._configured_reader))
                return
            watched = [(name, sc.SCARD_STATE_UNAWARE) for name in readers]
            watched.append((PNP_NOTIFICATION, sc.SCARD_STATE_UNAWARE))
            hresult, states = sc.SCardGetStatusChange(context, 0, watched)
            if hresult not in (sc.SCARD_S_SUCCESS, sc.SCARD_E_TIMEOUT):
                self._publish(ReaderSnapshot(False, (), self._configured_reader))
                return
            while not self._stop.is_set():
                self._publish(self._snapshot_of(sc, states))
                watched = [(name, state & ~sc.SCARD_STATE_CHANGED) for name, state, _ in states]
                hresult, new_states = sc.SCardGetStatusChange(context, _WAKE_MS, watched)
                if hresult == sc.SCARD_E_TIMEOUT:
                    continue
                if hresult != sc.SCARD_S_SUCCESS:
                    if hresult in (sc.SCARD_E_NO_SERVICE, sc.SCARD_E_SERVICE_STOPPED):
                        self._publish(ReaderSnapshot(False, (), self._configured_reader))
                        return
                    break  # a reader went away mid-wait: list the readers again
                states = new_states
                pnp = [s for s in states if s[0] == PNP_NOTIFICATION]
                if pnp and pnp[0][1] & sc.SCARD_STATE_CHANGED:
                    break  # readers plugged in or out: list them again

    def _snapshot_of(self, sc: Any, states: list[Any]) -> ReaderSnapshot:
        readers = tuple(
            ReaderState(
                name=name,
                card_present=bool(state & sc.SCARD_STATE_PRESENT)
                and not state & sc.SCARD_STATE_MUTE,
            )
            for name, state, _atr in states
            if name != PNP_NOTIFICATION and not state & sc.SCARD_STATE_UNAVAILABLE
        )
        return ReaderSnapshot(True, readers, self._configured_reader)
