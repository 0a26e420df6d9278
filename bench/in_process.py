"""The service in this process, for the in-process benchmarks (profile_service, service_cpu).

A fresh database (SQLite under the work directory, or a new schema on the
PostgreSQL at ``postgres``, dropped afterwards), one provider and one kiosk,
rate limits and background loops out of the way, and the SQL statements and
commits counted.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa
from fastapi import FastAPI
from service import drop_schema, postgres_schema_url, register_accounts

from commonid.api.app import create_app
from commonid.runtime import Runtime, build_runtime
from commonid.settings import Settings


@dataclass
class InProcessService:
    app: FastAPI
    runtime: Runtime
    provider_key: str
    kiosk_credential: str
    counts: dict[str, int] = field(default_factory=lambda: {"statements": 0, "commits": 0})


@contextmanager
def in_process_service(
    workdir: Path, hierarchy_dir: Path, postgres: str | None = None
) -> Iterator[InProcessService]:
    schema = None
    if postgres:
        url, schema = postgres_schema_url(postgres)
    else:
        url = f"sqlite:///{workdir / 'commonid.sqlite3'}"
    try:
        provider_key, kiosk_credential = register_accounts(url, workdir / "data")
        runtime = build_runtime(
            Settings(
                data_dir=workdir / "data",
                database_url=url,
                trust_mode="test",
                test_hierarchy_dir=hierarchy_dir,
                provider_rate_per_second=1e6,
                provider_rate_burst=1_000_000,
                kiosk_rate_per_second=1e6,
                kiosk_rate_burst=1_000_000,
                crl_refresh_interval_seconds=0,
                webhook_dispatch_interval_seconds=0,
            )
        )
        service = InProcessService(
            create_app(runtime=runtime), runtime, provider_key, kiosk_credential
        )

        @sa.event.listens_for(runtime.engine, "before_cursor_execute")
        def _statement(*_args: object) -> None:
            service.counts["statements"] += 1

        @sa.event.listens_for(runtime.engine, "commit")
        def _commit(*_args: object) -> None:
            service.counts["commits"] += 1

        try:
            yield service
        finally:
            runtime.close()
    finally:
        if schema and postgres:
            drop_schema(postgres, schema)
