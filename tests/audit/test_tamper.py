"""Tampering with the stored log or an export is detected and located by verification."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa

from commonid.audit.checkpoint import Checkpoint
from commonid.audit.export import (
    database_records,
    export_checkpoint_notes,
    export_jsonl,
    export_records,
)
from commonid.audit.log import AuditForkError, AuditLog, entry_bytes
from commonid.audit.merkle import leaf_hash
from commonid.audit.models import AuditCheckpoint
from commonid.audit.verify import VerificationReport, verify_log
from tests.audit.conftest import ORIGIN, session_event

SIZE = 40
CHECKPOINT_SIZES = (10, 25, 40)


@pytest.fixture
def filled_log(audit_log: AuditLog, clock) -> AuditLog:
    written = 0
    for size in CHECKPOINT_SIZES:
        audit_log.append_many([session_event(n) for n in range(written, size)])
        written = size
        clock.advance(60)
        audit_log.checkpoint()
    return audit_log


def _verify(log: AuditLog, signer, **options) -> VerificationReport:
    notes = [stored.note for stored in log.checkpoints()]
    return verify_log(database_records(log), notes, [signer.verifier()], origin=ORIGIN, **options)


def _execute(log: AuditLog, statement: str, **parameters) -> None:
    with log._sessions.begin() as db:
        db.execute(sa.text(statement), parameters)


def _row(log: AuditLog, index: int) -> tuple[str, bytes]:
    logged = log.entry(index)
    assert logged is not None
    return logged.entry, logged.leaf_hash


def _rewrite(log: AuditLog, index: int, entry: str, *, with_leaf_hash: bool) -> None:
    if with_leaf_hash:
        _execute(
            log,
            "UPDATE audit_entries SET entry = :entry, leaf_hash = :leaf WHERE idx = :idx",
            entry=entry,
            leaf=leaf_hash(entry.encode()),
            idx=index,
        )
    else:
        _execute(
            log, "UPDATE audit_entries SET entry = :entry WHERE idx = :idx", entry=entry, idx=index
        )


def _edited(entry: str) -> str:
    document = json.loads(entry)
    document["data"]["session_id"] = "ses_forged"
    return entry_bytes(
        document["index"],
        _parse_time(document["time"]),
        document["type"],
        document["data"],
    ).decode()


def _parse_time(text: str):
    from datetime import UTC, datetime

    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def test_an_untouched_log_verifies_with_every_checkpoint_reproduced(filled_log, signer) -> None:
    report = _verify(filled_log, signer)
    assert report.ok, report.lines()
    assert report.entries_checked == SIZE
    assert [r.status for r in report.checkpoints] == ["reproduced"] * 3
    assert "result: OK" in report.lines()[-1]


def test_edited_entry_is_located(filled_log, signer) -> None:
    entry, _ = _row(filled_log, 17)
    _rewrite(filled_log, 17, _edited(entry), with_leaf_hash=False)
    report = _verify(filled_log, signer)
    assert not report.ok
    assert report.located_indexes("entry_edited") == {17}
    assert [r.status for r in report.checkpoints] == [
        "reproduced",
        "not_reproduced",
        "not_reproduced",
    ]


def test_edit_with_rewritten_leaf_hash_is_narrowed_to_a_checkpoint_range_and_pinpointed_by_a_copy(
    filled_log, signer, tmp_path: Path
) -> None:
    copy = tmp_path / "earlier.jsonl"
    with copy.open("w") as handle:
        export_jsonl(filled_log, handle)
    entry, _ = _row(filled_log, 17)
    _rewrite(filled_log, 17, _edited(entry), with_leaf_hash=True)
    report = _verify(filled_log, signer)
    assert not report.ok
    ranges = report.located_indexes("checkpoint_not_reproduced")
    assert 17 in ranges and ranges == set(range(10, 40))
    reference = [leaf_hash(r.entry.encode()) for r in export_records(copy)]
    pinpointed = _verify(filled_log, signer, reference_leaf_hashes=reference)
    assert pinpointed.located_indexes("differs_from_reference") == {17}


def test_deleted_entry_is_located(filled_log, signer) -> None:
    _execute(filled_log, "DELETE FROM audit_entries WHERE idx = 5")
    report = _verify(filled_log, signer)
    assert report.located_indexes("entry_missing") == {5}
    assert report.located_indexes("entry_out_of_order") == set()
    assert "log_truncated" not in report.finding_counts  # the end of the log is still there
    assert all(r.status != "reproduced" for r in report.checkpoints)


def test_reordered_rows_are_located(filled_log, signer) -> None:
    entry_a, hash_a = _row(filled_log, 3)
    entry_b, hash_b = _row(filled_log, 8)
    statement = "UPDATE audit_entries SET entry = :entry, leaf_hash = :leaf WHERE idx = :idx"
    _execute(filled_log, statement, entry=entry_b, leaf=hash_b, idx=3)
    _execute(filled_log, statement, entry=entry_a, leaf=hash_a, idx=8)
    report = _verify(filled_log, signer)
    assert report.located_indexes("entry_moved") == {3, 8}
    assert report.located_indexes("entry_edited") == set()


def test_reordered_export_lines_are_located(filled_log, signer, tmp_path: Path) -> None:
    export = tmp_path / "log.jsonl"
    with export.open("w") as handle:
        export_jsonl(filled_log, handle)
    lines = export.read_text().splitlines(keepends=True)
    lines[3], lines[8] = lines[8], lines[3]
    export.write_text("".join(lines))
    report = verify_log(
        export_records(export), export_checkpoint_notes(export), [signer.verifier()], origin=ORIGIN
    )
    assert report.located_indexes("entry_out_of_order") == {3, 8}
    assert report.located_indexes("entry_missing") == set()


def test_edited_export_line_is_located(filled_log, signer, tmp_path: Path) -> None:
    export = tmp_path / "log.jsonl"
    with export.open("w") as handle:
        export_jsonl(filled_log, handle)
    lines = export.read_text().splitlines(keepends=True)
    line = json.loads(lines[32])
    line["entry"] = line["entry"].replace('"verified"', '"rejected"')
    lines[32] = json.dumps(line) + "\n"
    export.write_text("".join(lines))
    report = verify_log(
        export_records(export), export_checkpoint_notes(export), [signer.verifier()], origin=ORIGIN
    )
    assert report.located_indexes("entry_edited") == {32}


def test_truncation_is_detected(filled_log, signer) -> None:
    _execute(filled_log, "DELETE FROM audit_entries WHERE idx >= 31")
    report = _verify(filled_log, signer)
    truncated = [f for f in report.findings if f.kind == "log_truncated"]
    assert len(truncated) == 1 and truncated[0].index == 31 and truncated[0].last_index == 39
    assert [r.status for r in report.checkpoints] == ["reproduced", "reproduced", "beyond_log"]


def test_a_rewritten_history_signed_again_is_reported_as_a_fork(filled_log, signer, clock) -> None:
    entry, _ = _row(filled_log, 2)
    _rewrite(filled_log, 2, _edited(entry), with_leaf_hash=True)
    # The service itself refuses to re-sign the rewritten log (test_fork.py)...
    fresh = AuditLog(filled_log._sessions, signer, clock=clock, checkpoint_interval=None)
    clock.advance(60)
    with pytest.raises(AuditForkError):
        fresh.checkpoint()
    # ...but whoever holds the key can sign a second history and store it.
    tree = fresh.tree()
    note = signer.sign_checkpoint(Checkpoint(ORIGIN, tree.size, tree.root(), clock()))
    with filled_log._sessions.begin() as db:
        db.add(
            AuditCheckpoint(
                tree_size=tree.size, root_hash=tree.root(), created_at=clock(), note=note
            )
        )
    report = _verify(filled_log, signer)
    statuses = [r.status for r in report.checkpoints]
    assert statuses == ["not_reproduced", "not_reproduced", "not_reproduced", "reproduced"]
    forks = [f for f in report.findings if f.kind == "checkpoints_fork"]
    # Same size 40, two roots; and the earlier checkpoints contradict the new one.
    assert any("size 40 have different roots" in f.detail for f in forks)
    assert any("checkpoint of size 10 is not a prefix" in f.detail for f in forks)
    assert report.located_indexes("checkpoint_not_reproduced") >= {2}


def test_checkpoint_kept_by_a_reviewer_catches_a_log_rewritten_with_its_checkpoints(
    filled_log, signer
) -> None:
    kept = filled_log.latest_checkpoint()
    assert kept is not None
    entry, _ = _row(filled_log, 36)
    _rewrite(filled_log, 36, _edited(entry), with_leaf_hash=True)
    _execute(filled_log, "DELETE FROM audit_checkpoints")
    # Nothing signed is left in the database to contradict it: that alone is a failure...
    without = _verify(filled_log, signer)
    assert not without.ok and without.finding_counts == {"no_checkpoint": 1}
    assert "result: FAILED" in without.lines()[-2]
    # ...passing only when the reviewer accepts an unanchored log explicitly...
    accepted = _verify(filled_log, signer, allow_no_checkpoint=True)
    assert accepted.ok and "OK WITHOUT CHECKPOINT" in accepted.lines()[-1]
    report = verify_log(
        database_records(filled_log), [kept.note], [signer.verifier()], origin=ORIGIN
    )
    assert not report.ok  # ...but the reviewer's copy of the checkpoint does
    assert 36 in report.located_indexes("checkpoint_not_reproduced")


def test_forged_checkpoint_and_foreign_fields_are_reported(filled_log, signer) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from commonid.audit.checkpoint import NoteSigner

    forger = NoteSigner.from_private_key(ORIGIN, Ed25519PrivateKey.generate())
    stored = filled_log.latest_checkpoint()
    assert stored is not None
    from commonid.audit.checkpoint import read_checkpoint_unverified

    forged = forger.sign_checkpoint(read_checkpoint_unverified(stored.note))
    entry, _ = _row(filled_log, 0)
    document = json.loads(entry)
    document["data"]["name"] = "山田太郎"
    _rewrite(
        filled_log,
        0,
        entry_bytes(0, _parse_time(document["time"]), document["type"], document["data"]).decode(),
        with_leaf_hash=True,
    )
    report = verify_log(database_records(filled_log), [forged], [signer.verifier()], origin=ORIGIN)
    assert report.finding_counts.get("checkpoint_bad_signature") == 1
    assert report.located_indexes("fields_not_allowed") == {0}
