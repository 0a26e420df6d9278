"""Tables of the audit log, on the store's Base so one metadata covers the schema."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from commonid.store.models import Base

HEAD_ROW_ID = 1


class AuditEntry(Base):
    """One log entry. ``entry`` is the leaf: canonical JSON (RFC 8785) of the whole event.

    ``logged_at`` and ``event_type`` repeat what the entry says so reviewers
    can search; verification checks that they still agree with it.
    """

    __tablename__ = "audit_entries"

    index: Mapped[int] = mapped_column("idx", sa.BigInteger, primary_key=True, autoincrement=False)
    logged_at: Mapped[datetime] = mapped_column(index=True)
    event_type: Mapped[str] = mapped_column(sa.String(60), index=True)
    entry: Mapped[str] = mapped_column(sa.Text)
    leaf_hash: Mapped[bytes] = mapped_column(sa.LargeBinary)


class AuditHead(Base):
    """A single row holding the log size: the UPDATE on it is the append lock.

    ``UPDATE ... SET size = size + n`` row-locks it on PostgreSQL and takes the
    write lock on SQLite, so appenders in any process or instance queue there
    and each gets the next indexes, gapless, in commit order.
    """

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    size: Mapped[int] = mapped_column(sa.BigInteger)


class AuditCheckpoint(Base):
    """A signed checkpoint (C2SP signed note) as it was issued."""

    __tablename__ = "audit_checkpoints"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    tree_size: Mapped[int] = mapped_column(sa.BigInteger, index=True)
    root_hash: Mapped[bytes] = mapped_column(sa.LargeBinary)
    created_at: Mapped[datetime]
    note: Mapped[str] = mapped_column(sa.Text)
