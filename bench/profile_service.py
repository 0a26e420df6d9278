"""Profile complete auth-mode flows in process: where one flow's CPU time goes.

    .venv/bin/python bench/profile_service.py [--flows 300] [--postgres URL] [--top 40]

The same flow as bench/service.py (create, consent, card response, fetch),
driven sequentially through the ASGI app (no sockets, no uvicorn), under
cProfile. Prints ms per flow, SQL statements and commits per flow, and the
functions with the most cumulative and own time.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import cProfile
import pstats
import sys
import tempfile
import time
from pathlib import Path

import httpx
import sqlalchemy as sa
from cryptography.hazmat.primitives import serialization

sys.path.insert(0, str(Path(__file__).parent))

from service import (
    PERSON,
    Fixture,
    drop_schema,
    one_flow,
    postgres_schema_url,
    register_accounts,
)

from commonid.api.app import create_app
from commonid.runtime import build_runtime
from commonid.settings import Settings
from jpki.testca import Hierarchy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flows", type=int, default=300)
    parser.add_argument("--postgres", default=None, help="profile on PostgreSQL instead of SQLite")
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--sort", default="tottime")
    parser.add_argument("--echo", action="store_true", help="print the SQL of one flow")
    parser.add_argument(
        "--no-cprofile",
        action="store_true",
        help="time only (cProfile sees only the event loop's thread; use py-spy for threads)",
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="profile-") as tmp:
        workdir = Path(tmp)
        hierarchy = Hierarchy.init(workdir / "hierarchy")
        person = hierarchy.issue_person(PERSON)
        schema = None
        if args.postgres:
            url, schema = postgres_schema_url(args.postgres)
        else:
            url = f"sqlite:///{workdir / 'commonid.sqlite3'}"
        try:
            provider_key, kiosk_credential = register_accounts(url, workdir / "data")
            settings = Settings(
                data_dir=workdir / "data",
                database_url=url,
                trust_mode="test",
                test_hierarchy_dir=workdir / "hierarchy",
                provider_rate_per_second=1e6,
                provider_rate_burst=1_000_000,
                kiosk_rate_per_second=1e6,
                kiosk_rate_burst=1_000_000,
                crl_refresh_interval_seconds=0,
                webhook_dispatch_interval_seconds=0,
            )
            runtime = build_runtime(settings)
            app = create_app(runtime=runtime)
            counts: dict[str, float] = {"statements": 0, "commits": 0, "cpu": 0.0}

            @sa.event.listens_for(runtime.engine, "before_cursor_execute")
            def _count(*_args: object) -> None:
                counts["statements"] += 1

            @sa.event.listens_for(runtime.engine, "commit")
            def _commit(*_args: object) -> None:
                counts["commits"] += 1

            fixture = Fixture(
                base_url="http://service",
                provider_key=provider_key,
                kiosk_credential=kiosk_credential,
                auth_key=person.auth_private_key,
                auth_certificate_b64=base64.b64encode(
                    person.auth_certificate.public_bytes(serialization.Encoding.DER)
                ).decode(),
            )

            async def run() -> float:
                transport = httpx.ASGITransport(app=app)
                async with httpx.AsyncClient(transport=transport, base_url="http://service") as c:
                    for _ in range(20):
                        await one_flow(c, fixture)
                    if args.echo:
                        runtime.engine.echo = True
                        await one_flow(c, fixture)
                        runtime.engine.echo = False
                    counts.update(statements=0, commits=0)
                    profiler = cProfile.Profile()
                    started = time.perf_counter()
                    cpu_started = time.process_time()
                    if not args.no_cprofile:
                        profiler.enable()
                    for _ in range(args.flows):
                        await one_flow(c, fixture)
                    profiler.disable()
                    elapsed = time.perf_counter() - started
                    counts["cpu"] = time.process_time() - cpu_started
                if not args.no_cprofile:
                    pstats.Stats(profiler).sort_stats(args.sort).print_stats(args.top)
                return elapsed

            elapsed = asyncio.run(run())
            print(
                f"{args.flows} flows: {elapsed / args.flows * 1000:.2f} ms per flow, "
                f"{counts['cpu'] / args.flows * 1000:.2f} ms CPU per flow (client included), "
                f"{counts['statements'] / args.flows:.1f} SQL statements and "
                f"{counts['commits'] / args.flows:.1f} commits per flow"
            )
            runtime.close()
        finally:
            if schema:
                drop_schema(args.postgres, schema)


if __name__ == "__main__":
    main()
