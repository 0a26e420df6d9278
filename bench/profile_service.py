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
from cryptography.hazmat.primitives import serialization

sys.path.insert(0, str(Path(__file__).parent))

from in_process import in_process_service
from service import PERSON, Fixture, one_flow

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
        with in_process_service(workdir, workdir / "hierarchy", args.postgres) as service:
            runtime, app, counts = service.runtime, service.app, service.counts
            cpu = 0.0
            fixture = Fixture(
                base_url="http://service",
                provider_key=service.provider_key,
                kiosk_credential=service.kiosk_credential,
                auth_key=person.auth_private_key,
                auth_certificate_b64=base64.b64encode(
                    person.auth_certificate.public_bytes(serialization.Encoding.DER)
                ).decode(),
            )

            async def run() -> float:
                nonlocal cpu
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
                    cpu = time.process_time() - cpu_started
                if not args.no_cprofile:
                    pstats.Stats(profiler).sort_stats(args.sort).print_stats(args.top)
                return elapsed

            elapsed = asyncio.run(run())
            print(
                f"{args.flows} flows: {elapsed / args.flows * 1000:.2f} ms per flow, "
                f"{cpu / args.flows * 1000:.2f} ms CPU per flow (client included), "
                f"{counts['statements'] / args.flows:.1f} SQL statements and "
                f"{counts['commits'] / args.flows:.1f} commits per flow"
            )


if __name__ == "__main__":
    main()
