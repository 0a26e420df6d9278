"""Live reader and card status: a background thread blocked in SCardGetStatusChange.

pcsc-lite wakes the thread when a card is inserted or removed, and (through
its Plug-and-Play pseudo reader) when a reader is plugged in or out. Each
change becomes a :class:`ReaderSnapshot` handed to the listeners, which the
agent turns into server-sent events for the page.

A card just put in a reader is asked what it is by selecting the JPKI
application (:func:`jpki.recognition.identify_card`), not judged by its ATR:
the reader shows ``checking`` for that moment, then ``my_number_card`` or
``other``. The thread does this itself, so a snapshot never says a card is
a My Number Card after it has gone.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from commonid_kiosk.reader_choice import AUTOMATIC, ReaderChoice
from jpki.recognition import CardKind, identify_card

log = logging.getLogger(__name__)

PNP_NOTIFICATION = "\\\\?PnP?\\Notification"
_WAKE_MS = 500  # also how quickly stop() is noticed
CHECKING = "checking"  # a card is there and is being asked what it is
NOTHING_CHOSEN = ReaderChoice(None, AUTOMATIC)


@dataclass(frozen=True)
class ReaderState:
    name: str
    card_present: bool
    # none, checking, my_number_card, other, unreadable (see jpki.recognition.CardKind)
    card: str = CardKind.NONE.value


@dataclass(frozen=True)
class ReaderSnapshot:
    """Readers as PC/SC sees them, and the one this kiosk uses."""

    service_available: bool
    readers: tuple[ReaderState, ...]
    choice: ReaderChoice = NOTHING_CHOSEN

    @property
    def selected(self) -> ReaderState | None:
        """The chosen reader (None while it is unplugged), else the first holding a My
        Number Card, else the first holding any card, else the first."""
        if self.choice.reader is not None:
            return next((r for r in self.readers if r.name == self.choice.reader), None)
        for wanted in (
            lambda r: r.card == CardKind.MY_NUMBER_CARD,
            lambda r: r.card_present,
            lambda r: True,
        ):
            found = next((r for r in self.readers if wanted(r)), None)
            if found is not None:
                return found
        return None

    @property
    def reader_for_card(self) -> str | None:
        """The reader a card session opens: the chosen one even if unplugged (opening it
        then fails plainly, rather than using some other reader), else the selected one
        if it holds a card, else None (the first reader holding one)."""
        if self.choice.reader is not None:
            return self.choice.reader
        selected = self.selected
        return selected.name if selected is not None and selected.card_present else None

    @property
    def card_present(self) -> bool:
        selected = self.selected
        return selected is not None and selected.card_present

    def to_json(self) -> dict[str, Any]:
        selected = self.selected
        return {
            "service_available": self.service_available,
            "readers": [
                {"name": r.name, "card_present": r.card_present, "card": r.card}
                for r in self.readers
            ],
            "reader": None if selected is None else selected.name,
            "chosen_reader": self.choice.reader,
            "chosen_by": self.choice.by,
            "card_present": self.card_present,
            "card": CardKind.NONE.value if selected is None else selected.card,
        }


Listener = Callable[[ReaderSnapshot], None]


class ReaderMonitor:
    """Watches PC/SC in a daemon thread; ``snapshot`` is always the latest state."""

    def __init__(
        self,
        choice: ReaderChoice | None = None,
        *,
        identify: Callable[[str], CardKind] = identify_card,
    ) -> None:
        self._choice = choice or NOTHING_CHOSEN
        self._identify = identify
        self._snapshot = ReaderSnapshot(False, (), self._choice)
        # What the card in each reader is, keyed by the reader's event count, so a
        # card swapped between two wake-ups is asked again.
        self._kinds: dict[str, tuple[int, str]] = {}
        self._listeners: list[Listener] = []
        self._lock = threading.Lock()
        self._publishing = threading.Lock()
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

    def choose(self, choice: ReaderChoice) -> ReaderSnapshot:
        """Use ``choice`` from now on (staff chose on the page); listeners hear of it."""
        with self._publishing:
            self._choice = choice
            snapshot = dataclasses.replace(self._snapshot, choice=choice)
        self._publish(snapshot)
        return snapshot

    def _unavailable(self) -> ReaderSnapshot:
        return ReaderSnapshot(False, (), self._choice)

    def _publish(self, snapshot: ReaderSnapshot) -> None:
        with self._publishing:
            # A choice made while the watch thread built this snapshot still holds.
            snapshot = dataclasses.replace(snapshot, choice=self._choice)
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
                self._publish(self._unavailable())
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
                self._publish(self._unavailable())
                return
            watched = [(name, sc.SCARD_STATE_UNAWARE) for name in readers]
            watched.append((PNP_NOTIFICATION, sc.SCARD_STATE_UNAWARE))
            hresult, states = sc.SCardGetStatusChange(context, 0, watched)
            if hresult not in (sc.SCARD_S_SUCCESS, sc.SCARD_E_TIMEOUT):
                self._publish(self._unavailable())
                return
            while not self._stop.is_set():
                self._publish_with_cards_identified(sc, states)
                watched = [(name, state & ~sc.SCARD_STATE_CHANGED) for name, state, _ in states]
                hresult, new_states = sc.SCardGetStatusChange(context, _WAKE_MS, watched)
                if hresult == sc.SCARD_E_TIMEOUT:
                    continue
                if hresult != sc.SCARD_S_SUCCESS:
                    if hresult in (sc.SCARD_E_NO_SERVICE, sc.SCARD_E_SERVICE_STOPPED):
                        self._publish(self._unavailable())
                        return
                    break  # a reader went away mid-wait: list the readers again
                states = new_states
                pnp = [s for s in states if s[0] == PNP_NOTIFICATION]
                if pnp and pnp[0][1] & sc.SCARD_STATE_CHANGED:
                    break  # readers plugged in or out: list them again

    def _publish_with_cards_identified(self, sc: Any, states: list[Any]) -> None:
        """Publish the readers; cards new since the last look show ``checking`` until asked."""
        readers: list[ReaderState] = []
        to_identify: list[tuple[str, int]] = []
        for name, state, _atr in states:
            if name == PNP_NOTIFICATION or state & sc.SCARD_STATE_UNAVAILABLE:
                continue
            present = bool(state & sc.SCARD_STATE_PRESENT)
            if not present:
                self._kinds.pop(name, None)
                readers.append(ReaderState(name, False, CardKind.NONE.value))
            elif state & sc.SCARD_STATE_MUTE:
                readers.append(ReaderState(name, False, CardKind.UNREADABLE.value))
            else:
                # pcsc-lite counts insertions and removals in the upper 16 bits.
                events = (state >> 16) & 0xFFFF
                known = self._kinds.get(name)
                if known is not None and known[0] == events:
                    readers.append(ReaderState(name, True, known[1]))
                else:
                    readers.append(ReaderState(name, True, CHECKING))
                    to_identify.append((name, events))
        self._publish(ReaderSnapshot(True, tuple(readers), self._choice))
        if not to_identify:
            return
        for name, events in to_identify:
            self._kinds[name] = (events, self._identify(name).value)
        identified = tuple(
            dataclasses.replace(r, card=self._kinds[r.name][1]) if r.card == CHECKING else r
            for r in readers
        )
        self._publish(ReaderSnapshot(True, identified, self._choice))
