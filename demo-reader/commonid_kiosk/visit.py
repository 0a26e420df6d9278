"""The kiosk's account of one visit, sent to the service when the screen is cleared.

From the session's look-up to its result (or cancellation): how long it took,
how much of that the card and the service took, and what went wrong at the
card (wrong entries, last-try confirmations, blocked cards, removals). Counts
and times only: the PoC report reads them (commonid.audit.figures); nothing
in it says who the person was or which card it was.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from commonid_kiosk.service_client import KioskService, ServiceProblem
from jpki.card import PinKind

log = logging.getLogger(__name__)


@dataclass
class VisitTally:
    session_id: str
    started: float
    clock: Callable[[], float]
    card_seconds: float = 0.0
    service_seconds: float = 0.0
    counts: dict[str, int] = field(
        default_factory=lambda: dict.fromkeys(
            ("pin_wrong", "password_wrong", "last_try_confirmed", "card_blocked", "card_removed"),
            0,
        )
    )

    @contextlib.contextmanager
    def at_the_card(self) -> Iterator[None]:
        started = self.clock()
        try:
            yield
        finally:
            self.card_seconds += self.clock() - started

    @contextlib.contextmanager
    def at_the_service(self) -> Iterator[None]:
        started = self.clock()
        try:
            yield
        finally:
            self.service_seconds += self.clock() - started

    def wrong_entry(self, kind: PinKind) -> None:
        self.counts["password_wrong" if kind is PinKind.SIGN else "pin_wrong"] += 1

    def count(self, what: str) -> None:
        self.counts[what] += 1

    def report(self, outcome: str) -> dict[str, float | int | str]:
        return {
            "outcome": outcome,
            "duration_ms": round(max(0.0, self.clock() - self.started) * 1000, 3),
            "card_ms": round(self.card_seconds * 1000, 3),
            "service_ms": round(self.service_seconds * 1000, 3),
            **self.counts,
        }


def send_visit(client: KioskService, tally: VisitTally, outcome: str) -> None:
    """Best effort: a report that cannot be sent is logged here and never stops the kiosk."""
    try:
        client.report_visit(tally.session_id, tally.report(outcome))
    except ServiceProblem as problem:
        log.warning("visit report for %s not recorded: %s", tally.session_id, problem.code)
