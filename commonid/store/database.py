"""Engines and schema migrations for SQLite (default) and PostgreSQL."""

from __future__ import annotations

import fcntl
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def normalize_url(url: str) -> str:
    """Use psycopg 3 for plain ``postgresql://`` URLs (psycopg2 is not installed)."""
    parsed = sa.make_url(url)
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def create_engine(url: str, *, pool_size: int = 10) -> sa.Engine:
    """An engine tuned for the service: WAL + busy timeout on SQLite.

    ``hide_parameters``: a database error logged as an unexpected fault (or SQL
    echoed) shows the statement but not its values, which may be credential
    hashes, ids or ciphertexts.
    """
    url = normalize_url(url)
    if url.startswith("sqlite"):
        path = sa.make_url(url).database
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(
            url, connect_args={"timeout": 30, "check_same_thread": False}, hide_parameters=True
        )

        @sa.event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
            cursor = dbapi_connection.cursor()
            # WAL lets readers run while a writer commits; foreign keys are off by default.
            cursor.execute("PRAGMA journal_mode=WAL")
            # In WAL mode NORMAL still survives a crash of the service; only a power
            # loss can drop the last commits. Each commit is not an fsync then.
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        return engine
    engine = sa.create_engine(
        url, pool_size=pool_size, max_overflow=pool_size, hide_parameters=True
    )
    ping_idle_connections(engine, IDLE_PING_SECONDS)
    return engine


# A pooled connection unused for this long is pinged before it is handed out.
IDLE_PING_SECONDS = 2.0
_IDLE_SINCE = "commonid.idle_since"


def ping_idle_connections(engine: sa.Engine, idle_seconds: float) -> None:
    """Ping a pooled connection at checkout only when it has sat idle; replace it if dead.

    SQLAlchemy's ``pool_pre_ping`` pings at every checkout: one extra round
    trip per request (three per flow), though under load the connection was
    in use a moment ago. A database restart or an idle timeout kills
    connections that sit in the pool, so those are the ones pinged; raising
    DisconnectionError makes the pool discard a dead one and connect anew. A
    connection dropped within ``idle_seconds`` of its last use fails the one
    request that meets it, and SQLAlchemy then invalidates the whole pool.
    """

    @sa.event.listens_for(engine, "checkin")
    def _idle_from_now(_dbapi_connection, record) -> None:  # type: ignore[no-untyped-def]
        record.info[_IDLE_SINCE] = time.monotonic()

    @sa.event.listens_for(engine, "checkout")
    def _ping_if_idle(dbapi_connection, record, _proxy) -> None:  # type: ignore[no-untyped-def]
        idle_since = record.info.get(_IDLE_SINCE)
        if idle_since is None or time.monotonic() - idle_since < idle_seconds:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except engine.dialect.loaded_dbapi.Error as error:
            raise sa.exc.DisconnectionError("a pooled connection was dead") from error


class WriterGate:
    """Where write transactions queue before they start (SQLite only).

    SQLite lets one writer at a time in; the others are turned away and retry
    from its busy handler, which sleeps 1, 2, 5 ... up to 100 ms between tries.
    Under load that sleeping, not the work, set the latency. Writers that pass
    this gate first wait in line instead: a lock between the threads of a
    process and an exclusive flock() on ``<database>.writer-lock`` between
    processes, both woken the moment the holder is done. SQLite's own locking
    still decides correctness; writers that skip the gate are merely slower.
    Re-entrant within a thread.
    """

    def __init__(self, lock_path: Path | None) -> None:
        self._lock_path = lock_path
        self._threads = threading.Lock()
        self._depth = threading.local()
        self._file: int | None = None

    @contextmanager
    def __call__(self) -> Iterator[None]:
        self.acquire()
        try:
            yield
        finally:
            self.release()

    def acquire(self) -> None:
        depth = getattr(self._depth, "value", 0)
        if depth:
            self._depth.value = depth + 1
            return
        self._threads.acquire()
        try:
            descriptor = self._descriptor()
            if descriptor is not None:
                fcntl.flock(descriptor, fcntl.LOCK_EX)
        except BaseException:
            self._threads.release()
            raise
        self._depth.value = 1

    def release(self) -> None:
        self._depth.value -= 1
        if self._depth.value:
            return
        if self._file is not None:
            fcntl.flock(self._file, fcntl.LOCK_UN)
        self._threads.release()

    def _descriptor(self) -> int | None:
        if self._lock_path is None:
            return None
        if self._file is None:  # opened in the process that uses it (workers are spawned)
            self._file = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        return self._file


# Where a write transaction's GateAtFirstWrite travels: Session.info, then Connection.info.
PENDING_GATE_KEY = "commonid.pending_writer_gate"
_READ_ONLY_PREFIXES = ("SELECT", "PRAGMA")


class GateAtFirstWrite:
    """The writer gate of one write transaction, taken only at its first writing
    statement and given back after its COMMIT or ROLLBACK.

    pysqlite begins a SQLite transaction only before the first INSERT, UPDATE or
    DELETE; the SELECTs before it (authentication, loading the session) read
    committed data on their own, as they would without a gate. Taking the gate
    there, not at BEGIN, keeps those reads out of the time during which every
    other writer of every process waits (docs/service.md, Performance).
    """

    def __init__(self, gate: WriterGate) -> None:
        self._gate = gate
        self._held = False
        self._open = True

    def before_statement(self, statement: str) -> None:
        if not _reads_only(statement):
            self.take_now()

    def take_now(self) -> None:
        """Queue as the writer now (at the first write, or see take_writer_gate)."""
        if self._open and not self._held:
            self._gate.acquire()
            self._held = True

    def finish(self) -> None:
        """After the transaction ended: release the gate if taken; ignore later statements."""
        self._open = False
        if self._held:
            self._held = False
            self._gate.release()


def _reads_only(statement: str) -> bool:
    return statement.lstrip()[:6].upper().startswith(_READ_ONLY_PREFIXES)


def gate_writes_at_first_statement(engine: sa.Engine, sessions: sessionmaker) -> None:
    """Wire GateAtFirstWrite: a session whose ``info`` carries one hands it to the
    connection it begins on; the connection's statements go through it."""

    @sa.event.listens_for(sessions, "after_begin")
    def _hand_over(session, _transaction, connection) -> None:  # type: ignore[no-untyped-def]
        # Always set: a pooled connection must not keep an earlier transaction's gate.
        connection.info[PENDING_GATE_KEY] = session.info.get(PENDING_GATE_KEY)

    @sa.event.listens_for(engine, "before_cursor_execute")
    def _before(connection, _cursor, statement, *_rest) -> None:  # type: ignore[no-untyped-def]
        pending = connection.info.get(PENDING_GATE_KEY)
        if pending is not None:
            pending.before_statement(statement)


def take_writer_gate(db: Session) -> bool:
    """In a SQLite write transaction, take the writer gate now, before any write: what
    is read afterwards stays current until commit (no other writer can commit
    meanwhile). For reads that decide what to create. False when there is no gate
    (PostgreSQL: rely on unique constraints there)."""
    pending = db.info.get(PENDING_GATE_KEY)
    if pending is None:
        return False
    pending.take_now()
    return True


@contextmanager
def write_transaction(sessions: sessionmaker, gate: WriterGate | None) -> Iterator[Session]:
    """A transaction that is going to write. With a WriterGate (SQLite), the gate is
    taken at its first writing statement and given back once it committed or rolled
    back; ``gate_writes_at_first_statement`` must have wired the engine and sessions."""
    if gate is None:
        with sessions.begin() as db:
            yield db
        return
    pending = GateAtFirstWrite(gate)
    try:
        with sessions() as db:
            db.info[PENDING_GATE_KEY] = pending
            with db.begin():
                yield db
    finally:
        pending.finish()


def writer_gate(url: str) -> WriterGate | None:
    """The WriterGate for a SQLite file, or None: PostgreSQL queues writers on the rows
    they lock, without sleeping."""
    parsed = sa.make_url(normalize_url(url))
    if parsed.get_backend_name() != "sqlite":
        return None
    path = parsed.database
    if not path or path == ":memory:":
        return WriterGate(None)
    return WriterGate(Path(f"{path}.writer-lock"))


def session_factory(engine: sa.Engine) -> sessionmaker:
    return sessionmaker(engine, expire_on_commit=False)


def read_session_factory(engine: sa.Engine) -> sessionmaker:
    """Sessions for requests that only read. On PostgreSQL they run in autocommit: under
    its READ COMMITTED every statement takes its own snapshot anyway, so a transaction
    around them adds nothing but the BEGIN and COMMIT round trips. (pysqlite begins
    nothing before a SELECT: SQLite's sessions are the usual ones.)"""
    if engine.dialect.name == "postgresql":
        engine = engine.execution_options(isolation_level="AUTOCOMMIT")
    return session_factory(engine)


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    # ConfigParser interpolation: a literal % in a URL (escaped password) must be doubled.
    config.set_main_option("sqlalchemy.url", normalize_url(url).replace("%", "%%"))
    return config


def upgrade(url: str, revision: str = "head") -> None:
    """Bring the schema at ``url`` up to ``revision`` with the checked-in migrations."""
    command.upgrade(alembic_config(url), revision)
