"""The SQLite writer gate: writers wait in line instead of sleeping in SQLite's busy handler."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import sessionmaker

from commonid.store.database import (
    WriterGate,
    create_engine,
    gate_writes_at_first_statement,
    session_factory,
    write_transaction,
    writer_gate,
)


def _holds_until_released(gate: WriterGate) -> tuple[threading.Event, threading.Event]:
    entered, release = threading.Event(), threading.Event()

    def hold() -> None:
        with gate():
            entered.set()
            release.wait(5)

    threading.Thread(target=hold, daemon=True).start()
    assert entered.wait(5)
    return entered, release


def _enters_within(gate: WriterGate, seconds: float) -> bool:
    entered = threading.Event()

    def enter() -> None:
        with gate():
            entered.set()

    threading.Thread(target=enter, daemon=True).start()
    return entered.wait(seconds)


def test_writers_of_one_process_queue_and_enter_when_the_holder_leaves(tmp_path: Path) -> None:
    gate = WriterGate(tmp_path / "db.sqlite3.writer-lock")
    _, release = _holds_until_released(gate)
    assert not _enters_within(gate, 0.2)
    started = time.monotonic()
    release.set()
    assert _enters_within(gate, 5)
    assert time.monotonic() - started < 1


def test_another_process_gate_on_the_same_database_waits_too(tmp_path: Path) -> None:
    # A second gate object opens the lock file again, as another worker process does:
    # flock() excludes across open file descriptions.
    path = tmp_path / "db.sqlite3.writer-lock"
    first, second = WriterGate(path), WriterGate(path)
    _, release = _holds_until_released(first)
    assert not _enters_within(second, 0.2)
    release.set()
    assert _enters_within(second, 5)


def test_the_gate_is_reentrant_within_a_thread(tmp_path: Path) -> None:
    gate = WriterGate(tmp_path / "db.sqlite3.writer-lock")
    with gate(), gate():
        pass
    assert _enters_within(gate, 1)


def test_only_sqlite_has_a_gate(tmp_path: Path) -> None:
    assert isinstance(writer_gate(f"sqlite:///{tmp_path / 'a.sqlite3'}"), WriterGate)
    assert isinstance(writer_gate("sqlite://"), WriterGate)
    assert not isinstance(writer_gate("postgresql://postgres@127.0.0.1/test"), WriterGate)


@pytest.fixture
def gated_database(tmp_path: Path) -> Iterator[tuple[sessionmaker, WriterGate]]:
    url = f"sqlite:///{tmp_path / 'gated.sqlite3'}"
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(sa.text("CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT)"))
    sessions = session_factory(engine)
    gate = writer_gate(url)
    assert isinstance(gate, WriterGate)
    gate_writes_at_first_statement(engine, sessions)
    yield sessions, gate
    engine.dispose()


def test_a_write_transaction_takes_the_gate_at_its_first_write_and_keeps_it_until_commit(
    gated_database: tuple[sessionmaker, WriterGate],
) -> None:
    sessions, gate = gated_database
    with write_transaction(sessions, gate) as db:
        db.execute(sa.text("SELECT count(*) FROM notes")).scalar_one()
        # Reading only: other writers are not held up.
        assert _enters_within(gate, 1)
        db.execute(sa.text("INSERT INTO notes (text) VALUES ('a')"))
        assert not _enters_within(gate, 0.2)
        db.execute(sa.text("SELECT count(*) FROM notes")).scalar_one()
        assert not _enters_within(gate, 0.2)
    # Committed: the gate is free again, and the row is there for others.
    assert _enters_within(gate, 1)
    with sessions() as db:
        assert db.execute(sa.text("SELECT count(*) FROM notes")).scalar_one() == 1


def test_a_rolled_back_write_transaction_gives_the_gate_back(
    gated_database: tuple[sessionmaker, WriterGate],
) -> None:
    sessions, gate = gated_database
    with pytest.raises(RuntimeError), write_transaction(sessions, gate) as db:
        db.execute(sa.text("INSERT INTO notes (text) VALUES ('a')"))
        raise RuntimeError("refused")
    assert _enters_within(gate, 1)
    with sessions() as db:
        assert db.execute(sa.text("SELECT count(*) FROM notes")).scalar_one() == 0


def test_a_later_transaction_on_the_same_pooled_connection_is_not_gated_by_an_earlier_one(
    gated_database: tuple[sessionmaker, WriterGate],
) -> None:
    sessions, gate = gated_database
    with write_transaction(sessions, gate) as db:
        db.execute(sa.text("INSERT INTO notes (text) VALUES ('a')"))
    # A plain transaction (no gate asked for) on what is likely the same connection.
    with sessions.begin() as db:
        db.execute(sa.text("INSERT INTO notes (text) VALUES ('b')"))
        assert _enters_within(gate, 1)
