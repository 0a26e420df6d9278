"""The append-only audit log in the database, its Merkle tree and signed checkpoints.

Service flows call :meth:`AuditLog.append` (own transaction) or
:meth:`AuditLog.append_in` (inside the caller's transaction, so the event
commits or rolls back with the change it records). Appends from any number of
workers, processes and service instances are serialized by one row update on
``audit_head`` (see commonid.audit.models.AuditHead), so indexes are gapless
and follow commit order.
"""

from __future__ import annotations

import base64
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import rfc8785
import sqlalchemy as sa
import structlog
from sqlalchemy.orm import Session as DbSession
from sqlalchemy.orm import sessionmaker

from commonid.audit import pg_append
from commonid.audit.checkpoint import (
    Checkpoint,
    CheckpointError,
    NoteSigner,
    read_checkpoint_unverified,
)
from commonid.audit.events import audit_fields, format_time
from commonid.audit.merkle import MerkleTree, leaf_hash, verify_consistency
from commonid.audit.models import HEAD_ROW_ID, AuditCheckpoint, AuditEntry, AuditHead

Clock = Callable[[], datetime]
log = logging.getLogger(__name__)
events = structlog.get_logger("commonid.audit")
_ENTRIES = AuditEntry.__table__
_HEAD = AuditHead.__table__
# Built once: constructing statements per append cost more than executing them.
_TAKE_INDEXES = (
    sa.update(_HEAD)
    .where(_HEAD.c.id == HEAD_ROW_ID)
    .values(size=_HEAD.c.size + sa.bindparam("count", type_=sa.BigInteger))
    .returning(_HEAD.c.size)
)
_INSERT_ENTRIES = sa.insert(_ENTRIES)
_HEAD_SIZE = sa.select(_HEAD.c.size).where(_HEAD.c.id == HEAD_ROW_ID)


MAX_GROUP = 1_000


class AuditWriteError(RuntimeError):
    """The transaction that was to log an event failed (its cause is chained)."""


class AuditIntegrityError(RuntimeError):
    """The stored log is not a gapless sequence (someone edited the tables)."""


class AuditForkError(AuditIntegrityError):
    """The log is not an extension of a checkpoint this service already signed.

    Signing now would publish a second, contradicting history (a fork), as
    after a database rollback; the service refuses until an operator resolves it.
    """

    def __init__(self, detail: str, *, anchor: str, signed: Checkpoint, log_size: int) -> None:
        super().__init__(detail)
        self.detail = detail
        self.anchor = anchor  # where the contradicted checkpoint was found
        self.signed = signed
        self.log_size = log_size


def system_clock() -> datetime:
    return datetime.now(UTC)


def entry_bytes(index: int, logged_at: datetime, event_type: str, data: Mapping[str, Any]) -> bytes:
    """The Merkle leaf of an event: RFC 8785 canonical JSON of all it says."""
    return rfc8785.dumps(
        {"index": index, "time": format_time(logged_at), "type": event_type, "data": dict(data)}
    )


@dataclass(frozen=True)
class LoggedEntry:
    index: int
    logged_at: datetime
    event_type: str
    entry: str  # canonical JSON text: the leaf's bytes are entry.encode()
    leaf_hash: bytes


@dataclass(frozen=True)
class StoredCheckpoint:
    id: int
    tree_size: int
    root_hash: bytes
    created_at: datetime
    note: str


class AuditLog:
    """The service's audit log. One instance per process; thread-safe."""

    def __init__(
        self,
        sessions: sessionmaker,
        signer: NoteSigner | None = None,
        *,
        clock: Clock = system_clock,
        checkpoint_interval: timedelta | None = timedelta(minutes=5),
        signed_state: Path | None = None,
        on_fork: Callable[[AuditForkError], None] | None = None,
    ) -> None:
        self._sessions = sessions
        self.signer = signer
        self._clock = clock
        self.checkpoint_interval = checkpoint_interval
        # The last checkpoint this service signed, kept outside the database too
        # (a file in the data directory): a restored database backup rolls back
        # the checkpoints table along with the entries, this file does not.
        self._signed_state = signed_state
        self._last_signed: tuple[Checkpoint, str] | None = None
        self._on_fork = on_fork
        # The fork that made the last checkpoint attempt refuse; None once one succeeds.
        self.fork: AuditForkError | None = None
        self._tree = MerkleTree()
        self._tree_lock = threading.Lock()
        self._next_due_check = 0.0
        self._group = _GroupCommit(self._write_group)

    @property
    def origin(self) -> str | None:
        return self.signer.name if self.signer else None

    # --- appending --------------------------------------------------------------

    def append(self, event_type: str, /, **fields: Any) -> int:
        """Log one event and commit it; returns its index once it is durable.

        Events that threads of this process append at the same moment share
        one transaction (group commit): one lock round and one COMMIT for all.
        """
        index = self._group.submit((event_type, audit_fields(event_type, fields)))
        self._checkpoint_when_due()
        return index

    def _write_group(self, events: list[tuple[str, dict[str, Any]]]) -> list[int]:
        # A plain connection: an ORM session's bookkeeping doubled the cost of an append.
        engine = self._sessions.kw.get("bind")
        if isinstance(engine, sa.Engine):
            with engine.begin() as connection:
                return self._append_rows(connection, events)
        with self._sessions.begin() as db:
            return self._append_rows(db, events)

    def append_in(self, db: DbSession, event_type: str, /, **fields: Any) -> int:
        """Log one event inside ``db``'s transaction (it waits for the append lock).

        Call it last in the transaction: the lock is held until the caller commits.
        """
        return self._append_rows(db, [(event_type, audit_fields(event_type, fields))])[0]

    def append_many_in(
        self, db: DbSession, events: Sequence[tuple[str, Mapping[str, Any]]]
    ) -> list[int]:
        """Several events inside ``db``'s transaction, with one lock round (call it last)."""
        checked = [(event_type, audit_fields(event_type, fields)) for event_type, fields in events]
        return self._append_rows(db, checked)

    def append_many(self, events: Sequence[tuple[str, Mapping[str, Any]]]) -> list[int]:
        """Log several events in one transaction (imports, benchmarks)."""
        checked = [(event_type, audit_fields(event_type, fields)) for event_type, fields in events]
        indexes = self._write_group(checked)
        self._checkpoint_when_due()
        return indexes

    def _append_rows(
        self, db: DbSession | sa.Connection, events: Sequence[tuple[str, dict[str, Any]]]
    ) -> list[int]:
        if not events:
            return []
        # The session's connection, not Session.execute: these are Core statements, and
        # the ORM layer around them cost as much as running them.
        connection = db.connection() if isinstance(db, DbSession) else db
        if connection.dialect.name == "postgresql":
            # One round trip instead of two (commonid.audit.pg_append); the database's
            # clock under the lock, unless a test clock is set.
            now = None if self._clock is system_clock else self._clock()
            indexes = pg_append.append_rows(connection, events, now)
            if len(indexes) != len(events):  # no head row: nothing was written
                raise AuditIntegrityError("the audit log's head row is missing")
            return indexes
        # The first write of the transaction: it waits for every other appender.
        new_size = connection.execute(_TAKE_INDEXES, {"count": len(events)}).scalar_one()
        first = new_size - len(events)
        # Read the clock under the lock, so times follow index order on one host.
        now = self._clock()
        rows = []
        for offset, (event_type, data) in enumerate(events):
            entry = entry_bytes(first + offset, now, event_type, data)
            rows.append(
                {
                    "idx": first + offset,
                    "logged_at": now,
                    "event_type": event_type,
                    "entry": entry.decode(),
                    "leaf_hash": leaf_hash(entry),
                }
            )
        connection.execute(_INSERT_ENTRIES, rows)
        return list(range(first, new_size))

    # --- reading ----------------------------------------------------------------

    def size(self) -> int:
        with self._sessions() as db:
            return int(db.execute(_HEAD_SIZE).scalar_one())

    def tree(self) -> MerkleTree:
        """The Merkle tree over every committed entry, caught up incrementally."""
        with self._tree_lock:
            with self._sessions() as db:
                size = db.execute(_HEAD_SIZE).scalar_one()
                if self._tree.size and not self._cached_tail_matches(db, size):
                    # The database no longer holds the log this cache was built from
                    # (restored backup, rewritten rows): rebuild from what it holds.
                    log.warning("audit tree cache does not match the database; rebuilding")
                    self._tree = MerkleTree()
                if size > self._tree.size:
                    rows = db.execute(
                        sa.select(_ENTRIES.c.idx, _ENTRIES.c.leaf_hash)
                        .where(_ENTRIES.c.idx >= self._tree.size, _ENTRIES.c.idx < size)
                        .order_by(_ENTRIES.c.idx)
                        .execution_options(yield_per=20_000)
                    )
                    for index, hashed in rows:
                        if index != self._tree.size:
                            raise AuditIntegrityError(f"audit entry {self._tree.size} is missing")
                        self._tree.append_leaf_hash(bytes(hashed))
                    if self._tree.size != size:
                        raise AuditIntegrityError(f"audit entry {self._tree.size} is missing")
            return self._tree

    def _cached_tail_matches(self, db: DbSession, size: int) -> bool:
        last = self._tree.size - 1
        if size <= last:
            return False
        stored = db.execute(
            sa.select(_ENTRIES.c.leaf_hash).where(_ENTRIES.c.idx == last)
        ).scalar_one_or_none()
        return stored is not None and bytes(stored) == self._tree.leaf_hash_at(last)

    def entry(self, index: int) -> LoggedEntry | None:
        with self._sessions() as db:
            row = db.execute(sa.select(_ENTRIES).where(_ENTRIES.c.idx == index)).one_or_none()
        return _logged(row) if row is not None else None

    def entries(
        self,
        *,
        start: int = 0,
        stop: int | None = None,
        event_type: str | None = None,
        contains: str | None = None,
        newest_first: bool = False,
        limit: int | None = None,
    ) -> Iterator[LoggedEntry]:
        """Entries in index order (streamed), optionally filtered for reviewers."""
        query = sa.select(_ENTRIES).where(_ENTRIES.c.idx >= start)
        if stop is not None:
            query = query.where(_ENTRIES.c.idx < stop)
        if event_type:
            query = query.where(_ENTRIES.c.event_type == event_type)
        if contains:
            escaped = contains.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            query = query.where(_ENTRIES.c.entry.like(f"%{escaped}%", escape="\\"))
        order = _ENTRIES.c.idx.desc() if newest_first else _ENTRIES.c.idx
        query = query.order_by(order)
        if limit is not None:
            query = query.limit(limit)
        with self._sessions() as db:
            for row in db.execute(query.execution_options(yield_per=10_000)):
                yield _logged(row)

    # --- proofs -------------------------------------------------------------------

    def inclusion_proof(self, index: int, tree_size: int) -> list[bytes]:
        return self.tree().inclusion_proof(index, tree_size)

    def consistency_proof(self, first: int, second: int) -> list[bytes]:
        return self.tree().consistency_proof(first, second)

    # --- checkpoints ----------------------------------------------------------------

    def checkpoint(self) -> StoredCheckpoint:
        """Sign and store a checkpoint of the log as it is now.

        Refuses (AuditForkError, logged as ``audit_checkpoint_refused``) unless
        an RFC 9162 consistency proof shows the log extends every checkpoint this
        service signed before: its latest in the database, the last one this
        process signed, and the one kept in the ``signed_state`` file.
        """
        if self.signer is None:
            raise RuntimeError("this audit log has no checkpoint signer")
        # The earlier checkpoints first, then the tree: a checkpoint another
        # instance stored in between is then covered by the tree read below.
        anchors = self._signed_anchors()
        tree = self.tree()
        size = tree.size
        try:
            for anchor, signed in anchors:
                _check_extends(tree, anchor, signed)
        except AuditForkError as fork:
            self._refuse(fork)
            raise
        checkpoint = Checkpoint(self.signer.name, size, tree.root(size), self._clock())
        note = self.signer.sign_checkpoint(checkpoint)
        with self._sessions.begin() as db:
            row = AuditCheckpoint(
                tree_size=size,
                root_hash=checkpoint.root_hash,
                created_at=checkpoint.time,
                note=note,
            )
            db.add(row)
            db.flush()
            stored = _stored(row)
        self.fork = None
        self._remember_signed(checkpoint, note)
        return stored

    def _signed_anchors(self) -> list[tuple[str, Checkpoint]]:
        """The checkpoints this service signed that the next one must extend."""
        anchors: list[tuple[str, Checkpoint]] = []
        latest = self.latest_checkpoint()
        if latest is not None:
            anchors.append(("database", _read_note(latest.note, "database")))
        if self._last_signed is not None:
            anchors.append(("this process", self._last_signed[0]))
        kept = self._read_signed_state()
        if kept is not None:
            anchors.append(("signed-state file", kept))
        return anchors

    def _read_signed_state(self) -> Checkpoint | None:
        if self._signed_state is None:
            return None
        try:
            note = self._signed_state.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None  # nothing signed yet with this data directory
        except OSError as error:
            raise AuditIntegrityError(f"cannot read {self._signed_state}: {error}") from error
        return _read_note(note, str(self._signed_state))

    def _remember_signed(self, checkpoint: Checkpoint, note: str) -> None:
        if self._last_signed is None or checkpoint.tree_size >= self._last_signed[0].tree_size:
            self._last_signed = (checkpoint, note)
        if self._signed_state is None:
            return
        try:
            kept = self._read_signed_state()
            if kept is not None and kept.tree_size > checkpoint.tree_size:
                return  # another instance already signed a longer log
            temporary = self._signed_state.with_name(self._signed_state.name + ".tmp")
            self._signed_state.parent.mkdir(parents=True, exist_ok=True)
            with open(temporary, "w", encoding="utf-8") as handle:
                handle.write(note)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, self._signed_state)
        except (OSError, AuditIntegrityError):
            # The checkpoint is stored and published; the database still anchors the next.
            log.exception("could not keep the signed checkpoint in %s", self._signed_state)

    def _refuse(self, fork: AuditForkError) -> None:
        self.fork = fork
        events.error(
            "audit_checkpoint_refused",
            reason="fork",
            detail=fork.detail,
            anchor=fork.anchor,
            signed_tree_size=fork.signed.tree_size,
            signed_root_hash=base64.b64encode(fork.signed.root_hash).decode(),
            log_tree_size=fork.log_size,
        )
        if self._on_fork is not None:
            self._on_fork(fork)

    def checkpoint_if_due(self) -> StoredCheckpoint | None:
        """A new checkpoint when the interval has passed since the last one and the log grew."""
        if self.signer is None or self.checkpoint_interval is None:
            return None
        latest = self.latest_checkpoint()
        if latest is not None:
            if self._clock() - latest.created_at < self.checkpoint_interval:
                return None
            if latest.tree_size == self.size():
                return None
        return self.checkpoint()

    def _checkpoint_when_due(self) -> None:
        # Look at the checkpoints table at most every few seconds per process.
        if self.signer is None or self.checkpoint_interval is None:
            return
        now = time.monotonic()
        if now < self._next_due_check:
            return
        self._next_due_check = now + min(self.checkpoint_interval.total_seconds(), 10.0)
        try:
            self.checkpoint_if_due()
        except AuditForkError:
            pass  # logged as audit_checkpoint_refused and counted where it was refused
        except Exception:  # the event is committed; the caller must not see it fail
            log.exception("audit checkpoint failed; the next append or the timer retries")

    def latest_checkpoint(self) -> StoredCheckpoint | None:
        with self._sessions() as db:
            row = db.scalars(
                sa.select(AuditCheckpoint).order_by(AuditCheckpoint.id.desc()).limit(1)
            ).one_or_none()
            return _stored(row) if row is not None else None

    def checkpoints(self) -> list[StoredCheckpoint]:
        with self._sessions() as db:
            return [
                _stored(row)
                for row in db.scalars(sa.select(AuditCheckpoint).order_by(AuditCheckpoint.id))
            ]

    def checkpoint_at(self, tree_size: int) -> StoredCheckpoint | None:
        with self._sessions() as db:
            row = db.scalars(
                sa.select(AuditCheckpoint)
                .where(AuditCheckpoint.tree_size == tree_size)
                .order_by(AuditCheckpoint.id.desc())
                .limit(1)
            ).one_or_none()
            return _stored(row) if row is not None else None


def _read_note(note: str, anchor: str) -> Checkpoint:
    try:
        return read_checkpoint_unverified(note)
    except CheckpointError as error:
        raise AuditIntegrityError(f"the signed checkpoint in the {anchor} is unreadable") from error


def _check_extends(tree: MerkleTree, anchor: str, signed: Checkpoint) -> None:
    """AuditForkError unless ``tree`` extends ``signed`` (RFC 9162 consistency proof)."""
    size = tree.size
    if signed.tree_size > size:
        raise AuditForkError(
            f"the log holds {size} entries but a checkpoint of {signed.tree_size} was signed "
            f"({anchor}): entries were removed or the database was rolled back",
            anchor=anchor,
            signed=signed,
            log_size=size,
        )
    if signed.tree_size == 0:
        return  # the empty tree is a prefix of every tree
    proof = tree.consistency_proof(signed.tree_size, size)
    if not verify_consistency(signed.tree_size, size, signed.root_hash, tree.root(size), proof):
        raise AuditForkError(
            f"the log is not an extension of the checkpoint of size {signed.tree_size} "
            f"signed at {format_time(signed.time)} ({anchor}): its first "
            f"{signed.tree_size} entries changed since",
            anchor=anchor,
            signed=signed,
            log_size=size,
        )


class _Slot:
    __slots__ = ("done", "error", "event", "index")

    def __init__(self, event: tuple[str, dict[str, Any]]) -> None:
        self.event = event
        self.index = -1
        self.error: BaseException | None = None
        self.done = False


class _GroupCommit:
    """Leader/follower batching: whoever finds no write in progress writes
    everything queued so far; the others wait for their index."""

    def __init__(self, write: Callable[[list[tuple[str, dict[str, Any]]]], list[int]]) -> None:
        self._write = write
        self._condition = threading.Condition()
        self._pending: list[_Slot] = []
        self._writing = False

    def submit(self, event: tuple[str, dict[str, Any]]) -> int:
        slot = _Slot(event)
        with self._condition:
            self._pending.append(slot)
            while not slot.done:
                if self._writing:
                    self._condition.wait()
                    continue
                self._writing = True
                batch, self._pending = self._pending[:MAX_GROUP], self._pending[MAX_GROUP:]
                self._condition.release()
                error: BaseException | None = None
                indexes: list[int] = []
                try:
                    indexes = self._write([queued.event for queued in batch])
                except BaseException as failure:  # every event of the batch failed with it
                    error = failure
                finally:
                    self._condition.acquire()
                for position, queued in enumerate(batch):
                    queued.error = error
                    queued.index = indexes[position] if error is None else -1
                    queued.done = True
                self._writing = False
                self._condition.notify_all()
        if slot.error is not None:
            raise AuditWriteError("the audit log could not be written") from slot.error
        return slot.index


def _logged(row: Any) -> LoggedEntry:
    return LoggedEntry(
        index=row.idx,
        logged_at=row.logged_at,
        event_type=row.event_type,
        entry=row.entry,
        leaf_hash=bytes(row.leaf_hash),
    )


def _stored(row: AuditCheckpoint) -> StoredCheckpoint:
    return StoredCheckpoint(row.id, row.tree_size, bytes(row.root_hash), row.created_at, row.note)
