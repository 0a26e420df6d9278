"""Rate-limit buckets that several hosts share: in Redis or in the service's PostgreSQL.

The file of commonid.api.limits is shared by the workers of one host only, so
hosts behind a load balancer would each allow a caller the full rate. With a
shared store every take is one atomic operation in that store, so however many
hosts and workers there are, a caller spends from one bucket:

- Redis: a Lua script (EVALSHA) reads, refills, takes and writes the bucket; Redis
  runs a script without interleaving anything else.
- PostgreSQL: one INSERT ... ON CONFLICT DO UPDATE ... RETURNING; the row lock it
  takes orders concurrent takes of one bucket.

Both count time by the store's own clock (Redis TIME, PostgreSQL clock_timestamp()),
so the hosts' clocks need not agree. The bucket is the one of commonid.api.limits
(_refill, wait_for_token): new buckets are full, tokens come back at ``rate`` a
second up to ``burst``, a request takes a whole token or waits.

A store that does not answer within ``timeout`` seconds raises
RateLimitStoreUnavailable: the request is refused with 503, never let through
unlimited (an identity service should not lose its limits because Redis is down).
"""

from __future__ import annotations

import logging
import math
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from commonid.api.limits import (
    CallerLimiter,
    RateLimitStoreUnavailable,
    caller_limiter,
    wait_for_token,
)
from commonid.settings import Settings
from commonid.store.database import IDLE_PING_SECONDS, normalize_url, ping_idle_connections

if TYPE_CHECKING:
    import redis

log = logging.getLogger(__name__)

# KEYS[1]: the bucket; ARGV: rate per second, burst. Returns {allowed (0/1), tokens}:
# tokens as a string, since Redis turns a Lua number into an integer.
_REDIS_TAKE = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local stored = redis.call('HMGET', KEYS[1], 'tokens', 'updated')
local tokens = tonumber(stored[1])
local updated = tonumber(stored[2])
if tokens == nil or updated == nil then
    tokens = burst
    updated = now
end
tokens = math.min(burst, tokens + math.max(0, now - updated) * rate)
local allowed = 0
if tokens >= 1 then
    tokens = tokens - 1
    allowed = 1
end
redis.call('HSET', KEYS[1], 'tokens', string.format('%.17g', tokens),
    'updated', string.format('%.6f', now))
-- Gone when it would be full again anyway: an idle caller's key does not linger.
if rate > 0 then
    redis.call('PEXPIRE', KEYS[1], math.ceil((burst - tokens) / rate * 1000) + 1000)
end
return {allowed, string.format('%.17g', tokens)}
"""


def _redis_module() -> Any:
    try:
        import redis
    except ImportError as error:  # an optional dependency: say which, and how to get it
        raise RuntimeError(
            "rate_limit_store is a Redis URL, but the redis package is not installed "
            "(install commonid with the 'redis' extra: pip install 'commonid[redis]')"
        ) from error
    return redis


class RedisRateLimiter:
    """Token buckets per caller id in Redis, shared by every host that uses the server."""

    def __init__(
        self,
        client: redis.Redis,
        name: str,
        rate_per_second: float,
        burst: int,
        *,
        key_prefix: str = "commonid:ratelimit:",
    ) -> None:
        _check_bucket(rate_per_second, burst)
        self.rate = rate_per_second
        self.burst = burst
        self._key = f"{key_prefix}{name}:"
        self._take = client.register_script(_REDIS_TAKE)
        self._errors = _redis_module().RedisError

    def take(self, caller: str) -> float | None:
        """Spend one token; None if allowed, else seconds until a token is available."""
        try:
            allowed, tokens = self._take(keys=[self._key + caller], args=[self.rate, self.burst])
        except self._errors as error:
            raise _unavailable("Redis", error) from error
        if allowed:
            return None
        return wait_for_token(float(tokens), self.rate)


def redis_client(url: str, timeout_seconds: float) -> redis.Redis:
    """A client of the Redis server at ``url`` that gives up after ``timeout_seconds``."""
    return _redis_module().Redis.from_url(
        url, socket_timeout=timeout_seconds, socket_connect_timeout=timeout_seconds
    )


# The token bucket in one statement. A new bucket is inserted full less the token this
# request takes (burst >= 1, see _check_bucket); an existing one is refilled and taken
# from under the row lock that ON CONFLICT holds, by the database's clock.
_POSTGRES_TAKE = sa.text(
    """
    WITH clock AS (SELECT clock_timestamp() AS now)
    INSERT INTO rate_limit_buckets AS b (bucket, tokens, updated, allowed)
    SELECT :bucket, CAST(:burst AS float8) - 1, clock.now, true FROM clock
    ON CONFLICT (bucket) DO UPDATE SET (tokens, updated, allowed) = (
        SELECT CASE WHEN refill.tokens >= 1 THEN refill.tokens - 1 ELSE refill.tokens END,
               refill.now,
               refill.tokens >= 1
        FROM (
            SELECT LEAST(
                       CAST(:burst AS float8),
                       b.tokens + GREATEST(0, EXTRACT(EPOCH FROM clock.now - b.updated))
                                  * CAST(:rate AS float8)
                   ) AS tokens,
                   clock.now
            FROM clock
        ) AS refill
    )
    RETURNING b.allowed, b.tokens
    """
)


class PostgresRateLimiter:
    """Token buckets per caller id in a PostgreSQL table (rate_limit_buckets), shared
    by every host that uses the database."""

    def __init__(self, engine: sa.Engine, name: str, rate_per_second: float, burst: int) -> None:
        _check_bucket(rate_per_second, burst)
        self.rate = rate_per_second
        self.burst = burst
        self._engine = engine
        self._prefix = f"{name}:"

    def take(self, caller: str) -> float | None:
        """Spend one token; None if allowed, else seconds until a token is available."""
        try:
            with self._engine.connect() as connection:
                allowed, tokens = connection.execute(
                    _POSTGRES_TAKE,
                    {"bucket": self._prefix + caller, "burst": self.burst, "rate": self.rate},
                ).one()
        except sa.exc.SQLAlchemyError as error:
            raise _unavailable("PostgreSQL", error) from error
        if allowed:
            return None
        return wait_for_token(tokens, self.rate)


def postgres_limiter_engine(url: str, timeout_seconds: float) -> sa.Engine:
    """An engine of its own for the limiters: autocommit, so a take is never part of (or
    waits for) the request's transaction, and a small pool with short timeouts."""
    url = normalize_url(url)
    if sa.make_url(url).get_backend_name() != "postgresql":
        raise ValueError("rate_limit_store = 'database' needs PostgreSQL as database_url")
    timeout_ms = max(1, round(timeout_seconds * 1000))
    engine = sa.create_engine(
        url,
        isolation_level="AUTOCOMMIT",
        pool_size=2,
        max_overflow=4,
        pool_timeout=timeout_seconds,
        # libpq counts whole seconds, at least 2.
        connect_args={"connect_timeout": max(2, math.ceil(timeout_seconds))},
        hide_parameters=True,
    )

    @sa.event.listens_for(engine, "connect")
    def _statement_timeout(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
        with dbapi_connection.cursor() as cursor:
            cursor.execute(f"SET statement_timeout = {timeout_ms}")

    ping_idle_connections(engine, IDLE_PING_SECONDS)
    return engine


def caller_limiters(settings: Settings) -> dict[str, CallerLimiter]:
    """The provider and kiosk limiters ("providers", "kiosks") of ``settings``'s store."""
    rates = {
        "providers": (settings.provider_rate_per_second, settings.provider_rate_burst),
        "kiosks": (settings.kiosk_rate_per_second, settings.kiosk_rate_burst),
    }
    store = settings.rate_limit_store
    timeout = settings.rate_limit_store_timeout_seconds
    if store == "file":
        return {
            kind: caller_limiter(settings.rate_limit_dir, kind, rate, burst)
            for kind, (rate, burst) in rates.items()
        }
    if store == "database":
        engine = postgres_limiter_engine(settings.effective_database_url, timeout)
        return {
            kind: PostgresRateLimiter(engine, kind, rate, burst)
            for kind, (rate, burst) in rates.items()
        }
    client = redis_client(store, timeout)
    return {
        kind: RedisRateLimiter(client, kind, rate, burst, key_prefix=settings.rate_limit_key_prefix)
        for kind, (rate, burst) in rates.items()
    }


def _check_bucket(rate_per_second: float, burst: int) -> None:
    if burst < 1 or rate_per_second < 0:
        raise ValueError("a rate limit needs burst >= 1 and a rate >= 0")


def _unavailable(store: str, error: Exception) -> RateLimitStoreUnavailable:
    # The error's class only: a message may carry the store's address or credentials.
    log.warning("rate-limit store %s unavailable: %s", store, type(error).__name__)
    return RateLimitStoreUnavailable(f"{store} did not answer")
