"""PostgreSQL connections are pinged at checkout only after sitting idle, a dead one is
replaced (commonid.store.database.ping_idle_connections), and a request that meets a
connection lost under it is answered 503, on the real server."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from commonid.runtime import Runtime
from commonid.store.database import normalize_url, ping_idle_connections
from tests.fixtures.service import ServiceAccounts

pytestmark = pytest.mark.postgres

IDLE = 0.3


@pytest.fixture
def engine(postgres_url: str) -> Iterator[sa.Engine]:
    engine = sa.create_engine(normalize_url(postgres_url), pool_size=1, max_overflow=0)
    ping_idle_connections(engine, IDLE)
    yield engine
    engine.dispose()


@pytest.fixture
def pings(engine: sa.Engine, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    done: list[int] = []
    ping = engine.dialect.do_ping

    def counted(dbapi_connection) -> bool:  # type: ignore[no-untyped-def]
        done.append(1)
        return ping(dbapi_connection)

    monkeypatch.setattr(engine.dialect, "do_ping", counted)
    return done


def backend_pid(engine: sa.Engine) -> int:
    with engine.connect() as connection:
        return connection.execute(sa.text("SELECT pg_backend_pid()")).scalar_one()


def terminate(postgres_url: str, pid: int) -> None:
    other = sa.create_engine(normalize_url(postgres_url))
    try:
        with other.connect() as connection:
            connection.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    finally:
        other.dispose()


def test_a_connection_in_steady_use_is_not_pinged(engine: sa.Engine, pings: list[int]) -> None:
    first = backend_pid(engine)
    for _ in range(5):
        assert backend_pid(engine) == first
    assert pings == []


def test_an_idle_connection_is_pinged_and_kept_when_alive(
    engine: sa.Engine, pings: list[int]
) -> None:
    first = backend_pid(engine)
    time.sleep(IDLE + 0.1)
    assert backend_pid(engine) == first
    assert pings == [1]


def test_a_dead_idle_connection_is_replaced_without_failing_the_caller(
    engine: sa.Engine, pings: list[int], postgres_url: str
) -> None:
    first = backend_pid(engine)
    terminate(postgres_url, first)  # a database restart or an idle timeout, say
    time.sleep(IDLE + 0.1)

    second = backend_pid(engine)

    assert second != first
    assert pings == [1]


def test_a_connection_killed_while_in_steady_use_fails_one_request_only(
    engine: sa.Engine, pings: list[int], postgres_url: str
) -> None:
    # The trade-off of not pinging busy connections: the request that meets the dead
    # connection fails (the service answers 503), and the pool is renewed for the next.
    first = backend_pid(engine)
    terminate(postgres_url, first)
    with pytest.raises(sa.exc.OperationalError):
        backend_pid(engine)
    assert backend_pid(engine) != first
    assert pings == []


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_the_api_answers_503_for_a_lost_connection_and_recovers(
    service_runtime: Runtime,
    service_client: TestClient,
    service_accounts: ServiceAccounts,
    postgres_url: str,
) -> None:
    headers = {"Authorization": f"Bearer {service_accounts.provider_a_key}"}
    assert service_client.get("/v1/sessions/ses_unknown", headers=headers).status_code == 404
    for pid in pooled_backend_pids(service_runtime.engine):
        terminate(postgres_url, pid)

    lost = service_client.get("/v1/sessions/ses_unknown", headers=headers)

    assert lost.status_code == 503
    assert lost.json()["code"] == "service_unavailable"
    assert lost.headers["retry-after"] == "1"
    assert service_client.get("/v1/sessions/ses_unknown", headers=headers).status_code == 404


def pooled_backend_pids(engine: sa.Engine) -> list[int]:
    """The server processes behind every connection now idle in the pool."""
    held = []
    try:
        while engine.pool.checkedin():
            connection = engine.connect()
            held.append(connection)
        return [c.execute(sa.text("SELECT pg_backend_pid()")).scalar_one() for c in held]
    finally:
        for connection in held:
            connection.close()
