"""The log in the database: gapless indexes, canonical entries, proofs, checkpoints."""

from __future__ import annotations

import json

import pytest
import rfc8785
import sqlalchemy as sa
from sqlalchemy.orm import sessionmaker

from commonid.audit.checkpoint import open_checkpoint
from commonid.audit.events import AuditFieldError
from commonid.audit.log import AuditLog
from commonid.audit.merkle import verify_consistency, verify_inclusion
from commonid.audit.models import AuditEntry
from tests.audit import rfc9162
from tests.audit.conftest import SteppingClock, session_event


def _entries(log: AuditLog) -> list[bytes]:
    return [logged.entry.encode() for logged in log.entries()]


def test_entries_are_canonical_json_hashed_as_rfc9162_leaves(
    audit_log: AuditLog, clock: SteppingClock
) -> None:
    for number in range(7):
        event_type, fields = session_event(number)
        assert audit_log.append(event_type, **fields) == number
        clock.advance(1.5)
    logged = audit_log.entry(3)
    assert logged is not None
    document = json.loads(logged.entry)
    assert document == {
        "index": 3,
        "time": "2026-11-25T09:00:04.500000Z",
        "type": "session.created",
        "data": {
            "session_id": "ses_000003",
            "provider_id": "prv_a",
            "mode": "identity",
            "claims": ["birthdate", "name"],
        },
    }
    assert rfc8785.dumps(document) == logged.entry.encode()
    assert audit_log.tree().root() == rfc9162.mth(_entries(audit_log))


def test_proofs_from_the_log_verify_against_its_checkpoints(audit_log: AuditLog, signer) -> None:
    audit_log.append_many([session_event(n) for n in range(5)])
    first = audit_log.checkpoint()
    audit_log.append_many([session_event(n) for n in range(5, 19)])
    second = audit_log.checkpoint()
    entries = _entries(audit_log)
    signed_first = open_checkpoint(first.note, [signer.verifier()])
    signed_second = open_checkpoint(second.note, [signer.verifier()])
    assert signed_second.root_hash == rfc9162.mth(entries)
    for index in (0, 4, 11, 18):
        proof = audit_log.inclusion_proof(index, 19)
        assert proof == rfc9162.path(index, entries)
        leaf = audit_log.tree().leaf_hash_at(index)
        assert verify_inclusion(index, 19, leaf, proof, signed_second.root_hash)
    consistency = audit_log.consistency_proof(5, 19)
    assert consistency == rfc9162.proof(5, entries)
    assert verify_consistency(5, 19, signed_first.root_hash, signed_second.root_hash, consistency)


def test_a_rolled_back_append_leaves_no_gap(audit_log: AuditLog, audit_engine) -> None:
    audit_log.append("admin.action", action="provider_added")
    sessions = sessionmaker(audit_engine)
    with pytest.raises(RuntimeError), sessions.begin() as db:
        assert audit_log.append_in(db, "admin.action", action="provider_disabled") == 1
        raise RuntimeError("the change being logged failed")
    assert audit_log.append("admin.action", action="provider_enabled") == 1
    with sessions() as db:
        indexes = db.scalars(sa.select(AuditEntry.index).order_by(AuditEntry.index)).all()
    assert indexes == [0, 1]
    assert audit_log.size() == 2


def test_refused_event_is_not_logged(audit_log: AuditLog) -> None:
    with pytest.raises(AuditFieldError):
        audit_log.append("card_response.received", session_id="ses_a", pin="1234")
    assert audit_log.size() == 0


def test_checkpoints_come_at_the_interval_while_the_log_grows(
    audit_engine, signer, clock: SteppingClock
) -> None:
    from datetime import timedelta

    from sqlalchemy.orm import sessionmaker as make_sessions

    log = AuditLog(
        make_sessions(audit_engine), signer, clock=clock, checkpoint_interval=timedelta(minutes=5)
    )
    log.append("admin.action", action="first")
    assert [c.tree_size for c in log.checkpoints()] == [1]  # the first one at once
    clock.advance(60)
    log._next_due_check = 0  # the per-process throttle is wall-clock; the interval is not
    log.append("admin.action", action="second")
    assert [c.tree_size for c in log.checkpoints()] == [1]
    clock.advance(300)
    assert log.checkpoint_if_due() is not None
    assert [c.tree_size for c in log.checkpoints()] == [1, 2]
    clock.advance(600)
    assert log.checkpoint_if_due() is None  # nothing new to sign


def test_threads_appending_together_share_commits_and_keep_order(
    audit_log: AuditLog, audit_engine
) -> None:
    import threading

    commits = []
    sa.event.listen(audit_engine, "commit", lambda _connection: commits.append(1))
    given: dict[int, list[int]] = {}

    def worker(number: int) -> None:
        given[number] = [
            audit_log.append("admin.action", action="one", actor=f"t{number}", target_id=f"n{n}")
            for n in range(40)
        ]

    threads = [threading.Thread(target=worker, args=(number,)) for number in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    indexes = sorted(index for batch in given.values() for index in batch)
    assert indexes == list(range(320))
    for number, batch in given.items():
        assert batch == sorted(batch)
        logged = [json.loads(audit_log.entry(i).entry)["data"] for i in batch]
        assert [d["target_id"] for d in logged] == [f"n{n}" for n in range(40)]
        assert {d["actor"] for d in logged} == {f"t{number}"}
    assert len(commits) < 320  # grouped: fewer transactions than events


def test_a_failed_write_is_reported_to_the_caller(audit_log: AuditLog) -> None:
    from commonid.audit.log import AuditWriteError

    with audit_log._sessions.begin() as db:
        db.execute(sa.text("DELETE FROM audit_head"))
    with pytest.raises(AuditWriteError):
        audit_log.append("admin.action", action="lost")


def test_background_checkpoints_while_the_service_runs(
    audit_engine, signer, clock: SteppingClock
) -> None:
    import asyncio
    from datetime import timedelta

    from commonid.audit.service import checkpoint_forever

    log = AuditLog(
        sessionmaker(audit_engine), signer, clock=clock, checkpoint_interval=timedelta(seconds=60)
    )
    log._next_due_check = float("inf")  # no checkpoint from appends: only the task signs
    log.append("admin.action", action="first")

    async def run_a_while() -> None:
        task = asyncio.create_task(checkpoint_forever(log, 0.05))
        await asyncio.sleep(0.3)
        task.cancel()

    asyncio.run(run_a_while())
    assert [c.tree_size for c in log.checkpoints()] == [1]


def test_a_failing_checkpoint_does_not_fail_the_append(
    audit_engine, signer, clock: SteppingClock
) -> None:
    from datetime import timedelta

    def broken_signature(_message: bytes) -> bytes:
        raise RuntimeError("signing key unavailable")

    from commonid.audit.checkpoint import NoteSigner

    broken = NoteSigner(signer.name, signer.public_key, broken_signature)
    log = AuditLog(
        sessionmaker(audit_engine), broken, clock=clock, checkpoint_interval=timedelta(seconds=1)
    )
    assert log.append("admin.action", action="kept") == 0
    assert log.size() == 1 and log.checkpoints() == []


def test_events_appended_inside_a_transaction_commit_with_it(
    audit_log: AuditLog, audit_engine
) -> None:
    sessions = sessionmaker(audit_engine)
    with sessions.begin() as db:
        indexes = audit_log.append_many_in(
            db, [session_event(0), ("admin.action", {"action": "provider_added"})]
        )
        assert audit_log.append_in(db, "admin.action", action="kiosk_added") == 2
    assert indexes == [0, 1]
    assert [e.event_type for e in audit_log.entries()] == [
        "session.created",
        "admin.action",
        "admin.action",
    ]
