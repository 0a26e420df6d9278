"""The SQLite writer gate: writers wait in line instead of sleeping in SQLite's busy handler."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from commonid.store.database import WriterGate, writer_gate


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
    with writer_gate("postgresql://postgres@127.0.0.1/test")():
        pass
