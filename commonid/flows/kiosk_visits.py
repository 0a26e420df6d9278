"""A kiosk's account of one visit, for the PoC report: how long, how much card time,
how many wrong entries, removals and blocked cards. Counts and times only."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session as DbSession

from commonid import auditing
from commonid.problems import Problem
from commonid.runtime import Runtime
from commonid.store import sessions
from commonid.store.rows import KioskRow

VISIT_EVENT = "kiosk.visit_ended"


def record_kiosk_visit(
    runtime: Runtime, db: DbSession, session_id: str, kiosk: KioskRow, tally: dict[str, Any]
) -> None:
    """Log the visit. Any session the kiosk can name counts, expired ones included:
    a person who gave up at the kiosk is what a reviewer wants to see."""
    if sessions.get_session(db, session_id) is None:
        raise Problem("session_not_found")
    auditing.record(
        runtime, db, [(VISIT_EVENT, {"session_id": session_id, "kiosk_id": kiosk.id, **tally})]
    )
