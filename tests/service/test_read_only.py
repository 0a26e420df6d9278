"""Requests that only read (a session's result) run without a transaction on PostgreSQL."""

from __future__ import annotations

import time

import pytest
import sqlalchemy as sa

from commonid.runtime import Runtime

# Within a PostgreSQL transaction now() stays the time the transaction began; in
# autocommit every statement is its own transaction, so two of them tell apart.
_NOW = sa.text("SELECT now()")


def _two_nows(db: sa.orm.Session) -> tuple[object, object]:
    connection = db.connection()
    first = connection.execute(_NOW).scalar_one()
    time.sleep(0.01)
    return first, connection.execute(_NOW).scalar_one()


@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_reads_run_in_autocommit_and_writes_in_one_transaction(service_runtime: Runtime) -> None:
    with service_runtime.read_only() as db:
        first, second = _two_nows(db)
    assert first != second
    # The pooled connection went back to transactions: the read mode did not stick to it.
    with service_runtime.write_transaction() as db:
        first, second = _two_nows(db)
    assert first == second
