"""The PostgreSQL append in one statement writes exactly what the portable append would."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from commonid.audit.events import audit_fields
from commonid.audit.export import database_records
from commonid.audit.log import AuditLog, entry_bytes
from commonid.audit.merkle import leaf_hash
from commonid.audit.pg_append import entry_prefix
from commonid.audit.verify import verify_log
from commonid.store.database import session_factory

from .conftest import SteppingClock, session_event

# The audit_engine fixture on PostgreSQL only: the one-statement append is its own.
on_postgres = pytest.mark.parametrize("database_url", ["postgres"], indirect=True)


def statements_while(engine: sa.Engine, work) -> list[str]:  # type: ignore[no-untyped-def]
    seen: list[str] = []

    def record(_conn, _cursor, statement, *_rest) -> None:  # type: ignore[no-untyped-def]
        seen.append(statement)

    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        work()
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)
    return seen


def stored(engine: sa.Engine) -> list[sa.Row]:
    with engine.connect() as connection:
        return list(
            connection.execute(
                sa.text(
                    "SELECT idx, logged_at, event_type, entry, leaf_hash FROM audit_entries"
                    " ORDER BY idx"
                )
            )
        )


@pytest.mark.postgres
@on_postgres
def test_entries_are_byte_for_byte_the_portable_ones(audit_engine: sa.Engine) -> None:
    log = AuditLog(session_factory(audit_engine), checkpoint_interval=None)
    events = [session_event(number) for number in range(7)]

    with session_factory(audit_engine).begin() as db:
        sent = statements_while(audit_engine, lambda: log.append_many_in(db, events))
    first_batch = log.append_many(events[:2])

    assert len(sent) == 1, "one round trip for the indexes and the entries"
    assert first_batch == [len(events), len(events) + 1]
    rows = stored(audit_engine)
    assert [row.idx for row in rows] == list(range(len(events) + 2))
    for row, (event_type, data) in zip(rows, events + events[:2], strict=True):
        expected = entry_bytes(row.idx, row.logged_at, event_type, audit_fields(event_type, data))
        assert row.entry.encode() == expected
        assert bytes(row.leaf_hash) == leaf_hash(expected)
        assert row.event_type == event_type
    # One append shares one time; the database clock is read under the lock, in order.
    assert rows[0].logged_at == rows[len(events) - 1].logged_at
    assert rows[len(events)].logged_at >= rows[0].logged_at
    assert abs(rows[0].logged_at - datetime.now(UTC)) < timedelta(minutes=1)
    assert verify_log(database_records(log), [], [], allow_no_checkpoint=True).ok


@pytest.mark.postgres
@on_postgres
def test_a_test_clock_is_used_when_set(audit_engine: sa.Engine) -> None:
    clock = SteppingClock()
    log = AuditLog(session_factory(audit_engine), clock=clock, checkpoint_interval=None)
    log.append_many([session_event(1)])
    clock.advance(2.5)
    log.append_many([session_event(2)])

    rows = stored(audit_engine)
    assert [row.logged_at for row in rows] == [clock.now - timedelta(seconds=2.5), clock.now]
    event_type, data = session_event(2)
    expected = entry_bytes(1, clock.now, event_type, audit_fields(event_type, data))
    assert rows[1].entry.encode() == expected


@pytest.mark.postgres
@on_postgres
def test_a_rolled_back_append_leaves_no_gap(audit_engine: sa.Engine) -> None:
    log = AuditLog(session_factory(audit_engine), checkpoint_interval=None)
    with pytest.raises(RuntimeError), session_factory(audit_engine).begin() as db:
        log.append_many_in(db, [session_event(1), session_event(2)])
        raise RuntimeError("the change it records failed")
    assert log.append_many([session_event(3)]) == [0]
    assert log.size() == 1


def test_entry_prefix_is_the_canonical_entry_up_to_the_index() -> None:
    event_type, data = session_event(4)
    data = audit_fields(event_type, data)
    entry = entry_bytes(12, datetime(2026, 11, 26, tzinfo=UTC), event_type, data).decode()
    assert entry.startswith(entry_prefix(data) + "12,")
