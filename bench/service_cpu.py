"""The service's CPU per flow and per step, in process: no HTTP server, no client library.

    .venv/bin/python bench/service_cpu.py [--flows 400] [--postgres URL] [--new-cards]
        [--separate-consent]

The same auth-mode flow as bench/service.py (create, card response with the
consent, result; with ``--separate-consent`` the consent is a request of its
own, its CPU shown as "consent"), driven sequentially through the ASGI app
with hand-made ASGI messages, so what is timed is the service alone: the app, its database work
and its checks (the card's signature, made by the client, is not counted).
Prints CPU milliseconds per step and per flow, wall time per flow, and SQL
statements and commits per flow. Steadier than the live benchmark, whose
figures also move with how connections fall on the workers; use it to compare
builds (run each a few times, interleaved: this VM's speed drifts).

``--new-cards`` gives every flow a card never seen before (issued up front:
about 0.1 s each), so the card response takes the first-sight path: full
certificate path validation and a new person, certificate and DID binding.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import dataclasses
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding

sys.path.insert(0, str(Path(__file__).parent))

from in_process import in_process_service
from service import PERSON

from jpki.testca import Hierarchy, IssuedPerson

WARM_UP = 30
STEPS = ("create", "consent", "card response", "result")


async def call(
    app: Any, method: str, path: str, headers: list[tuple[bytes, bytes]], body: bytes = b""
) -> tuple[int, Any]:
    """One request through the ASGI interface; returns the status and the JSON body."""
    if body:
        headers = [
            *headers,
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ]
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"service"), *headers],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 80),
        "state": {},
    }
    delivered = False

    async def receive() -> dict[str, Any]:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.Event().wait()  # no disconnect while the app works
        raise AssertionError

    status = 0
    chunks: list[bytes] = []

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope, receive, send)
    payload = b"".join(chunks)
    return status, json.loads(payload) if payload else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flows", type=int, default=400)
    parser.add_argument("--postgres", default=None, help="PostgreSQL URL instead of SQLite")
    parser.add_argument("--new-cards", action="store_true", help="a new card for every flow")
    parser.add_argument(
        "--separate-consent",
        action="store_true",
        help="post the consent on its own first (else it comes with the card response)",
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="service-cpu-") as tmp:
        workdir = Path(tmp)
        hierarchy = Hierarchy.init(workdir / "hierarchy")
        count = args.flows + WARM_UP
        cards: list[IssuedPerson]
        if args.new_cards:
            print(f"issuing {count} cards ...", file=sys.stderr)
            cards = [
                hierarchy.issue_person(dataclasses.replace(PERSON, name=f"山田\u3000{index}"))
                for index in range(count)
            ]
        else:
            cards = [hierarchy.issue_person(PERSON)] * count
        with in_process_service(workdir, workdir / "hierarchy", args.postgres) as service:
            app, counts = service.app, service.counts
            provider = [(b"authorization", f"Bearer {service.provider_key}".encode())]
            kiosk = [(b"authorization", f"Bearer {service.kiosk_credential}".encode())]
            create_body = json.dumps({"mode": "auth", "claims": ["did"], "purpose": "bench"})
            cpu = dict.fromkeys(STEPS, 0.0)

            async def flows() -> float:
                started = 0.0
                for index, card in enumerate(cards):
                    if index == WARM_UP:
                        counts.update(statements=0, commits=0)
                        started = time.perf_counter()
                    measured = index >= WARM_UP
                    t0 = time.process_time()
                    status, session = await call(
                        app, "POST", "/v1/sessions", provider, create_body.encode()
                    )
                    t1 = time.process_time()
                    assert status == 201, session
                    path = f"/v1/kiosk/sessions/{session['id']}"
                    if args.separate_consent:
                        status, body = await call(app, "POST", f"{path}/consent", kiosk, b"{}")
                        assert status == 200, body
                    t2 = time.process_time()
                    encoded = session["challenge"]["to_be_signed"]
                    signed = card.auth_private_key.sign(
                        base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)),
                        padding.PKCS1v15(),
                        hashes.SHA256(),
                    )
                    answer: dict[str, Any] = {
                        "auth_certificate": base64.b64encode(
                            card.auth_certificate.public_bytes(serialization.Encoding.DER)
                        ).decode(),
                        "auth_signature": base64.b64encode(signed).decode(),
                    }
                    if not args.separate_consent:
                        answer["consent"] = {}
                    t3 = time.process_time()
                    status, body = await call(
                        app, "POST", f"{path}/card-response", kiosk, json.dumps(answer).encode()
                    )
                    t4 = time.process_time()
                    assert status == 200, body
                    status, body = await call(app, "GET", f"/v1/sessions/{session['id']}", provider)
                    t5 = time.process_time()
                    assert status == 200 and body["status"] == "verified", body
                    if measured:
                        spent_by_step = (t1 - t0, t2 - t1, t4 - t3, t5 - t4)
                        for step, spent in zip(STEPS, spent_by_step, strict=True):
                            cpu[step] += spent
                return time.perf_counter() - started

            wall = asyncio.run(flows())

    flows_measured = args.flows
    shown = [step for step in STEPS if step != "consent" or args.separate_consent]
    per_step = ", ".join(f"{step} {cpu[step] / flows_measured * 1000:.2f}" for step in shown)
    total = sum(cpu.values()) / flows_measured * 1000
    print(
        f"{'PostgreSQL' if args.postgres else 'SQLite'}, {flows_measured} flows"
        f"{' (a new card each)' if args.new_cards else ' (one returning card)'}: "
        f"service CPU per flow {total:.2f} ms ({per_step}); "
        f"wall {wall / flows_measured * 1000:.2f} ms per flow, client signing included; "
        f"{counts['statements'] / flows_measured:.1f} SQL statements and "
        f"{counts['commits'] / flows_measured:.1f} commits per flow"
    )


if __name__ == "__main__":
    main()
