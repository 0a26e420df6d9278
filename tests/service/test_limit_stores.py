"""Rate-limit buckets in a store that several hosts share: Redis and PostgreSQL
(commonid.api.limit_stores), held to the same token bucket as the host's file."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from commonid.api.app import create_app
from commonid.api.limit_stores import (
    PostgresRateLimiter,
    RedisRateLimiter,
    postgres_limiter_engine,
    redis_client,
)
from commonid.api.limits import CallerLimiter, RateLimitStoreUnavailable, SharedRateLimiter
from commonid.runtime import Runtime
from commonid.settings import Settings
from commonid.store.database import upgrade
from tests.fixtures.service import ServiceAccounts, _free_port

from .flow_helpers import bearer

REDIS_URL = "redis://127.0.0.1:6379/0"

# name, rate per second, burst -> a limiter on the store under test
MakeLimiter = Callable[[str, float, int], CallerLimiter]


def _redis_or_skip() -> str:
    try:
        socket.create_connection(("127.0.0.1", 6379), timeout=1).close()
    except OSError:
        pytest.skip("no Redis server at 127.0.0.1:6379")
    return REDIS_URL


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    """A key prefix of this test's own; its keys are deleted afterwards."""
    url = _redis_or_skip()
    prefix = f"commonid-test:{uuid.uuid4().hex}:"
    yield prefix
    client = redis_client(url, 2.0)
    keys = list(client.scan_iter(match=prefix + "*"))
    if keys:
        client.delete(*keys)
    client.close()


@pytest.fixture
def limiter_postgres_url(postgres_schema_url: str) -> str:
    """The test's PostgreSQL schema, migrated (it holds rate_limit_buckets)."""
    upgrade(postgres_schema_url)
    return postgres_schema_url


@pytest.fixture
def postgres_engine(limiter_postgres_url: str) -> Iterator[sa.Engine]:
    engine = postgres_limiter_engine(limiter_postgres_url, 2.0)
    yield engine
    engine.dispose()


@pytest.fixture(params=["file", "redis", pytest.param("postgres", marks=pytest.mark.postgres)])
def make_limiter(request: pytest.FixtureRequest, tmp_path: Path) -> MakeLimiter:
    """Limiters on one store (each call a new one, as another worker or host would make)."""
    if request.param == "file":
        return lambda name, rate, burst: SharedRateLimiter(
            tmp_path / f"{name}.buckets", rate, burst
        )
    if request.param == "redis":
        prefix = request.getfixturevalue("redis_prefix")
        return lambda name, rate, burst: RedisRateLimiter(
            redis_client(REDIS_URL, 2.0), name, rate, burst, key_prefix=prefix
        )
    engine = request.getfixturevalue("postgres_engine")
    return lambda name, rate, burst: PostgresRateLimiter(engine, name, rate, burst)


def _allowed(limiter: CallerLimiter, caller: str, tries: int) -> int:
    return sum(limiter.take(caller) is None for _ in range(tries))


def test_two_limiters_on_one_store_spend_from_one_bucket(make_limiter: MakeLimiter) -> None:
    first = make_limiter("providers", 0.5, 5)
    second = make_limiter("providers", 0.5, 5)
    assert _allowed(first, "prv_a", 3) == 3
    assert _allowed(second, "prv_a", 3) == 2  # 5 in all, not 5 per limiter
    wait = first.take("prv_a")
    assert wait is not None and 0 < wait <= 2.0  # a token every 2 s
    # Another caller, and the same id of another kind, have buckets of their own.
    assert _allowed(second, "prv_b", 6) == 5
    assert _allowed(make_limiter("kiosks", 0.5, 5), "prv_a", 6) == 5


def test_tokens_come_back_at_the_rate_up_to_the_burst(make_limiter: MakeLimiter) -> None:
    # A token every 0.5 s: margin enough for a busy machine between two takes.
    limiter = make_limiter("providers", 2.0, 2)
    assert _allowed(limiter, "prv_a", 3) == 2
    wait = limiter.take("prv_a")
    assert wait is not None and 0 < wait <= 0.5
    time.sleep(wait + 0.1)
    assert limiter.take("prv_a") is None
    # Idle for 5 tokens' time: the bucket holds no more than the burst.
    time.sleep(2.5)
    assert _allowed(limiter, "prv_a", 4) == 2


def test_concurrent_takes_never_spend_a_token_twice(make_limiter: MakeLimiter) -> None:
    limiters = [make_limiter("providers", 0.001, 20) for _ in range(4)]
    allowed: list[int] = []

    def spend(limiter: CallerLimiter) -> None:
        allowed.append(_allowed(limiter, "prv_a", 15))

    threads = [threading.Thread(target=spend, args=(limiter,)) for limiter in limiters * 2]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sum(allowed) == 20  # 120 tries on a bucket of 20


_TAKE_IN_A_PROCESS = """
import sys, time
from commonid.api import limit_stores
store, where, start = sys.argv[1], sys.argv[2], float(sys.argv[3])
if store == "redis":
    client = limit_stores.redis_client("redis://127.0.0.1:6379/0", 2.0)
    limiter = limit_stores.RedisRateLimiter(client, "providers", 0.001, 10, key_prefix=where)
else:
    engine = limit_stores.postgres_limiter_engine(where, 2.0)
    limiter = limit_stores.PostgresRateLimiter(engine, "providers", 0.001, 10)
time.sleep(max(0.0, start - time.time()))  # both processes start taking together
print(sum(limiter.take("prv_a") is None for _ in range(8)))
"""


@pytest.mark.parametrize("store", ["redis", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_two_processes_share_a_bucket_in_the_store(
    store: str, request: pytest.FixtureRequest
) -> None:
    where = request.getfixturevalue("redis_prefix" if store == "redis" else "limiter_postgres_url")
    start = time.time() + 2.0
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", _TAKE_IN_A_PROCESS, store, where, str(start)],
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    counts = [int(process.communicate(timeout=60)[0]) for process in processes]
    assert sum(counts) == 10  # 16 tries, burst 10, in either order


def _closed_port() -> int:
    return _free_port()  # nothing listens there once the probe is closed


def test_an_unreachable_redis_raises_within_the_timeout() -> None:
    limiter = RedisRateLimiter(
        redis_client(f"redis://127.0.0.1:{_closed_port()}/0", 0.5), "providers", 1.0, 5
    )
    started = time.monotonic()
    with pytest.raises(RateLimitStoreUnavailable):
        limiter.take("prv_a")
    assert time.monotonic() - started < 5


@pytest.mark.postgres
def test_an_unreachable_postgres_raises_within_the_timeout() -> None:
    engine = postgres_limiter_engine(f"postgresql://postgres@127.0.0.1:{_closed_port()}/test", 0.5)
    limiter = PostgresRateLimiter(engine, "providers", 1.0, 5)
    started = time.monotonic()
    with pytest.raises(RateLimitStoreUnavailable):
        limiter.take("prv_a")
    assert time.monotonic() - started < 5
    engine.dispose()


def test_without_its_store_the_service_refuses_with_503_not_unlimited(
    service_runtime: Runtime, service_accounts: ServiceAccounts
) -> None:
    service_runtime.settings = service_runtime.settings.model_copy(
        update={
            "rate_limit_store": f"redis://127.0.0.1:{_closed_port()}/0",
            "rate_limit_store_timeout_seconds": 0.5,
        }
    )
    with TestClient(create_app(runtime=service_runtime), raise_server_exceptions=False) as client:
        response = client.post(
            "/v1/sessions",
            json={"mode": "auth", "purpose": "x"},
            headers=bearer(service_accounts.provider_a_key),
        )
        assert response.status_code == 503
        assert response.json()["code"] == "service_unavailable"
        assert int(response.headers["retry-after"]) >= 1
        # Authentication still comes first: an unknown key is told so, store or not.
        unknown = client.post(
            "/v1/sessions", json={"mode": "auth", "purpose": "x"}, headers=bearer("nope")
        )
        assert unknown.status_code == 401


def test_two_apps_on_one_redis_allow_a_provider_its_burst_once(
    service_runtime: Runtime, service_accounts: ServiceAccounts, redis_prefix: str
) -> None:
    service_runtime.settings = service_runtime.settings.model_copy(
        update={
            "rate_limit_store": REDIS_URL,
            "rate_limit_key_prefix": redis_prefix,
            "provider_rate_burst": 3,
            "provider_rate_per_second": 0.001,
        }
    )
    headers = bearer(service_accounts.provider_a_key)
    with (
        TestClient(create_app(runtime=service_runtime)) as one,
        TestClient(create_app(runtime=service_runtime)) as other,
    ):
        statuses = [
            client.get("/v1/sessions/ses_missing", headers=headers).status_code
            for client in [one, other] * 4
        ]
    assert statuses.count(404) == 3  # each request spent a token, then found no session
    assert statuses.count(429) == 5


@pytest.mark.parametrize(
    "database_url", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
def test_the_database_store_keeps_the_buckets_in_postgres(
    service_runtime: Runtime, service_accounts: ServiceAccounts
) -> None:
    runtime = _with(
        service_runtime,
        rate_limit_store="database",
        provider_rate_burst=2,
        provider_rate_per_second=0.001,
    )
    headers = bearer(service_accounts.provider_a_key)
    with (
        TestClient(create_app(runtime=runtime)) as one,
        TestClient(create_app(runtime=runtime)) as other,
    ):
        statuses = [
            client.get("/v1/sessions/ses_missing", headers=headers).status_code
            for client in [one, other] * 2
        ]
        limited = other.get("/v1/sessions/ses_missing", headers=headers)
    assert statuses == [404, 404, 429, 429]
    assert int(limited.headers["retry-after"]) >= 1
    with runtime.engine.connect() as connection:
        buckets = connection.execute(sa.text("SELECT bucket FROM rate_limit_buckets")).scalars()
        assert list(buckets) == [f"providers:{service_accounts.provider_a.id}"]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_database_store_needs_postgres(service_runtime: Runtime) -> None:
    with pytest.raises(ValueError, match="needs PostgreSQL"):
        create_app(runtime=_with(service_runtime, rate_limit_store="database"))


def _with(runtime: Runtime, **settings: object) -> Runtime:
    runtime.settings = runtime.settings.model_copy(update=settings)
    return runtime


def test_the_store_setting_accepts_file_database_and_redis_urls_only() -> None:
    assert Settings(rate_limit_store="redis://cache:6379/1").rate_limit_store.startswith("redis")
    assert Settings().rate_limit_store == "file"
    with pytest.raises(ValueError, match="rate_limit_store"):
        Settings(rate_limit_store="memcached://cache")


def test_a_redis_store_without_the_redis_package_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "redis", None)  # import redis now raises ImportError
    with pytest.raises(RuntimeError, match=r"commonid\[redis\]"):
        redis_client(REDIS_URL, 1.0)
