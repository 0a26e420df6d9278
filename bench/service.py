"""Complete auth-mode flows against the running service, on SQLite and on PostgreSQL.

    .venv/bin/python bench/service.py [--seconds 20] [--concurrency 16] [--workers 2]
        [--postgres postgresql://postgres@127.0.0.1:5432/test] [--skip-postgres]
        [--skip-sqlite] [--separate-consent]

For each database it starts `commonid serve --workers N` (a fresh data
directory, a test hierarchy, one person, one provider, one kiosk), then runs
concurrent flows for a fixed time. A flow is what a provider and a kiosk do:
create the session, post the card response with the person's consent, fetch
the result (``--separate-consent``: post the consent on its own first, four
requests instead of three). The card response is signed with the person's
(emulator) auth key as soon as the challenge is known; signing time is the
client's and is not counted as service latency separately. Printed: flows/s,
p50/p99 flow latency, errors, the same machine's RSA-2048 verifications/s (the
crypto floor) and signatures/s (what the client's emulated card costs)
measured in this run, and the CPU the client, the service workers, PostgreSQL
and the whole machine used meanwhile
(the client shares the cores with the service).

The client is lean on purpose (LeanConnection: one keep-alive HTTP/1.1
connection per concurrent flow, requests assembled from pre-encoded pieces);
only the signature over each challenge is computed per flow.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import datetime as dt
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
import uvloop
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from commonid.store import accounts
from commonid.store.database import create_engine, session_factory, upgrade
from commonid.store.encryption import AttributeCipher
from jpki.profile import Gender
from jpki.testca import Hierarchy, IssuedPerson, PersonRecord

TARGET_FLOWS_PER_SECOND = 300.0
TARGET_P99_MS = 100.0
PERSON = PersonRecord(
    name="山田\u3000太郎",
    birth_date=dt.date(1990, 4, 1),
    gender=Gender.MALE,
    address="東京都千代田区千代田一丁目1番1号",
    prefecture="東京都",
    municipality="千代田区",
)


@dataclass(frozen=True)
class Fixture:
    base_url: str
    provider_key: str
    kiosk_credential: str
    auth_key: rsa.RSAPrivateKey
    auth_certificate_b64: str


@dataclass
class Figures:
    database: str
    flows: int
    errors: int
    seconds: float
    latencies_ms: list[float]
    error_kinds: dict[str, int] = field(default_factory=dict)
    connections_per_worker: list[int] = field(default_factory=list)

    def percentile(self, fraction: float) -> float:
        ordered = sorted(self.latencies_ms)
        if not ordered:
            return float("nan")
        return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def rsa_signatures_per_second(seconds: float = 1.0) -> float:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    count = 0
    started = time.perf_counter()
    while time.perf_counter() - started < seconds:
        key.sign(b"commonid/v1/card-challenge\n{}", padding.PKCS1v15(), hashes.SHA256())
        count += 1
    return count / (time.perf_counter() - started)


def rsa_verifications_per_second(seconds: float = 1.0) -> float:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    data = b"commonid/v1/card-challenge\n{}"
    signature = key.sign(data, padding.PKCS1v15(), hashes.SHA256())
    public = key.public_key()
    count = 0
    started = time.perf_counter()
    while time.perf_counter() - started < seconds:
        public.verify(signature, data, padding.PKCS1v15(), hashes.SHA256())
        count += 1
    return count / (time.perf_counter() - started)


def postgres_schema_url(base: str) -> tuple[str, str]:
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    url = sa.make_url(base).set(drivername="postgresql+psycopg")
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    engine.dispose()
    scoped = url.update_query_dict({"options": f"-csearch_path={schema}"})
    return scoped.render_as_string(hide_password=False), schema


def drop_schema(base: str, schema: str) -> None:
    engine = sa.create_engine(sa.make_url(base).set(drivername="postgresql+psycopg"))
    with engine.begin() as connection:
        connection.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
    engine.dispose()


def start_service(
    workdir: Path, database_url: str, hierarchy_dir: Path, workers: int
) -> tuple[subprocess.Popen[bytes], str, dict[str, str]]:
    port = free_port()
    env = dict(os.environ)
    env.update(
        {
            "COMMONID_DATA_DIR": str(workdir / "data"),
            "COMMONID_DATABASE_URL": database_url,
            "COMMONID_TRUST_MODE": "test",
            "COMMONID_TEST_HIERARCHY_DIR": str(hierarchy_dir),
            # The benchmark is one provider and one kiosk at full speed.
            "COMMONID_PROVIDER_RATE_PER_SECOND": "100000",
            "COMMONID_PROVIDER_RATE_BURST": "100000",
            "COMMONID_KIOSK_RATE_PER_SECOND": "100000",
            "COMMONID_KIOSK_RATE_BURST": "100000",
        }
    )
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "commonid.cli",
            "serve",
            "--port",
            str(port),
            "--workers",
            str(workers),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    base_url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    healthy_since: float | None = None
    while True:
        try:
            healthy = httpx.get(f"{base_url}/healthz", timeout=1).status_code == 200
            # Every worker listens on its own socket: wait for all of them, or the
            # first connections all go to the workers that were up first. (A server
            # whose workers share one socket never shows more: give it 10 s.)
            if healthy:
                healthy_since = healthy_since or time.monotonic()
                if _listening_sockets(port) >= workers or time.monotonic() - healthy_since > 10:
                    break
        except httpx.HTTPError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            stderr = process.stderr.read().decode() if process.stderr else ""
            raise RuntimeError(f"service did not start:\n{stderr[-2000:]}")
        time.sleep(0.2)
    return process, base_url, env


def _listening_sockets(port: int) -> int:
    return len(_sockets_on_port(port, "0A"))


def stop_service(process: subprocess.Popen[bytes]) -> None:
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def register_accounts(database_url: str, data_dir: Path) -> tuple[str, str]:
    from commonid.settings import Settings

    settings = Settings(data_dir=data_dir, database_url=database_url).with_generated_secrets()
    upgrade(settings.effective_database_url)
    engine = create_engine(settings.effective_database_url)
    cipher = AttributeCipher(settings.attribute_key_bytes(), settings.current_attribute_key_id)
    now = dt.datetime.now(dt.UTC)
    with session_factory(engine).begin() as db:
        provider = accounts.add_provider(
            db,
            name="Bench Pay",
            allowed_claims=["did"],
            reuse_max_age_seconds=86400,
            now=now,
            cipher=cipher,
        )
        kiosk = accounts.add_kiosk(db, name="Bench Kiosk", now=now)
    engine.dispose()
    return provider.credential, kiosk.credential


class LeanConnection:
    """A minimal HTTP/1.1 keep-alive client for the benchmark's own requests.

    The client shares the machine's two cores with the service, so it does as
    little as it can: requests are assembled from pre-encoded pieces, and only
    the status line, Content-Length and the JSON body of a response are read.
    """

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def request(
        self, method: bytes, path: str, headers: bytes, body: bytes | None = None
    ) -> tuple[int, Any]:
        if self._writer is None:
            self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        assert self._reader is not None
        head = b"%s %s HTTP/1.1\r\nhost: bench\r\n%s" % (method, path.encode(), headers)
        if body is not None:
            head += b"content-type: application/json\r\ncontent-length: %d\r\n" % len(body)
        self._writer.write(head + b"\r\n" + (body or b""))
        try:
            # The whole head at once, then the body: two reads per response.
            status_line, *header_lines = (await self._reader.readuntil(b"\r\n\r\n"))[:-4].split(
                b"\r\n"
            )
            length = 0
            close = False
            for line in header_lines:
                name, _, value = line.partition(b":")
                name = name.lower()
                if name == b"content-length":
                    length = int(value)
                elif name == b"connection" and value.strip().lower() == b"close":
                    close = True
            payload = await self._reader.readexactly(length)
        except (asyncio.IncompleteReadError, ConnectionError):
            self.close()
            raise
        if close:
            self.close()
        return int(status_line.split(b" ", 2)[1]), json.loads(payload) if payload else None

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self._reader = self._writer = None


class FlowFailed(Exception):
    def __init__(self, step: str, status: int, body: Any) -> None:
        code = body.get("code", "") if isinstance(body, dict) else ""
        super().__init__(f"HTTP {status} {code} on {step}")


@dataclass(frozen=True)
class LeanRequests:
    """What does not depend on the session: headers and bodies, encoded once."""

    provider_headers: bytes
    kiosk_headers: bytes
    create_body: bytes
    separate_consent: bool  # consent posted on its own first, not with the card response
    card_body_prefix: bytes  # the certificate; the signature is appended per challenge
    card_body_suffix: bytes  # after the signature: the consent, when it comes with it

    @classmethod
    def of(cls, fixture: Fixture, *, separate_consent: bool = False) -> LeanRequests:
        return cls(
            provider_headers=f"authorization: Bearer {fixture.provider_key}\r\n".encode(),
            kiosk_headers=f"authorization: Bearer {fixture.kiosk_credential}\r\n".encode(),
            create_body=json.dumps(
                {"mode": "auth", "claims": ["did"], "purpose": "bench"}
            ).encode(),
            separate_consent=separate_consent,
            card_body_prefix=(
                '{"auth_certificate": "' + fixture.auth_certificate_b64 + '", "auth_signature": "'
            ).encode(),
            card_body_suffix=b'"}' if separate_consent else b'", "consent": {}}',
        )


async def lean_flow(connection: LeanConnection, fixture: Fixture, lean: LeanRequests) -> None:
    """The same requests as one_flow, on one keep-alive connection."""
    status, session = await connection.request(
        b"POST", "/v1/sessions", lean.provider_headers, lean.create_body
    )
    if status != 201:
        raise FlowFailed("sessions", status, session)
    session_id = session["id"]
    if lean.separate_consent:
        status, body = await connection.request(
            b"POST", f"/v1/kiosk/sessions/{session_id}/consent", lean.kiosk_headers, b"{}"
        )
        if status != 200:
            raise FlowFailed("consent", status, body)
    encoded = session["challenge"]["to_be_signed"]
    to_be_signed = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
    signature = fixture.auth_key.sign(to_be_signed, padding.PKCS1v15(), hashes.SHA256())
    status, body = await connection.request(
        b"POST",
        f"/v1/kiosk/sessions/{session_id}/card-response",
        lean.kiosk_headers,
        lean.card_body_prefix + base64.b64encode(signature) + lean.card_body_suffix,
    )
    if status != 200:
        raise FlowFailed("card-response", status, body)
    status, body = await connection.request(
        b"GET", f"/v1/sessions/{session_id}", lean.provider_headers
    )
    if status != 200:
        raise FlowFailed(session_id, status, body)
    if body["status"] != "verified":
        raise RuntimeError(f"flow ended {body['status']}")


async def one_flow(
    client: httpx.AsyncClient, fixture: Fixture, *, separate_consent: bool = False
) -> None:
    """Create the session; the card response, with the person's consent (or the consent
    first, on its own, with ``separate_consent``); the result."""
    provider = {"Authorization": f"Bearer {fixture.provider_key}"}
    kiosk = {"Authorization": f"Bearer {fixture.kiosk_credential}"}
    created = await client.post(
        "/v1/sessions",
        json={"mode": "auth", "claims": ["did"], "purpose": "bench"},
        headers=provider,
    )
    created.raise_for_status()
    session = created.json()
    if separate_consent:
        consent = await client.post(
            f"/v1/kiosk/sessions/{session['id']}/consent", json={}, headers=kiosk
        )
        consent.raise_for_status()
    encoded = session["challenge"]["to_be_signed"]
    to_be_signed = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
    signature = fixture.auth_key.sign(to_be_signed, padding.PKCS1v15(), hashes.SHA256())
    card_response: dict[str, Any] = {
        "auth_certificate": fixture.auth_certificate_b64,
        "auth_signature": base64.b64encode(signature).decode(),
    }
    if not separate_consent:
        card_response["consent"] = {}
    answered = await client.post(
        f"/v1/kiosk/sessions/{session['id']}/card-response", json=card_response, headers=kiosk
    )
    answered.raise_for_status()
    result = await client.get(f"/v1/sessions/{session['id']}", headers=provider)
    result.raise_for_status()
    if result.json()["status"] != "verified":
        raise RuntimeError(f"flow ended {result.json()['status']}")


def _describe(error: Exception) -> str:
    if isinstance(error, httpx.HTTPStatusError):
        try:
            code = error.response.json().get("code", "")
        except ValueError:
            code = ""
        return (
            f"HTTP {error.response.status_code} {code} on {error.request.url.path.split('/')[-1]}"
        )
    return f"{type(error).__name__}: {str(error)[:80]}"


def _group_cpu_seconds(group: int) -> float:
    """User + system CPU seconds of the live processes in a process group (the service)."""
    ticks = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == group:  # pgrp
            ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


def _named_cpu_seconds(name: str) -> float:
    ticks = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command, rest = (entry / "stat").read_text().split(" (", 1)[1].rsplit(")", 1)
        except (OSError, ValueError):
            continue
        if command == name:
            fields = rest.split()
            ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def _sockets_on_port(port: int, state: str) -> set[str]:
    """Inodes of the TCP sockets on a local port in a state (01 ESTABLISHED, 0A LISTEN)."""
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[3] == state and int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(fields[9])
    return inodes


def _connections_per_process(group: int, port: int) -> list[int]:
    """How the client's keep-alive connections are spread over the service's processes.

    A connection stays with the worker that accepted it for its lifetime, and which
    worker that is the kernel decides by hash (commonid.serving): random, not even."""
    inodes = _sockets_on_port(port, "01")
    counts = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[2]) != group:
                continue
            links = [os.readlink(fd) for fd in (entry / "fd").iterdir()]
        except OSError:
            continue
        count = sum(link.startswith("socket:[") and link[8:-1] in inodes for link in links)
        if count:
            counts.append(count)
    return sorted(counts, reverse=True)


def _machine_busy_seconds() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far, from /proc/stat."""
    values = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]
    tick = os.sysconf("SC_CLK_TCK")
    return (sum(values) - idle) / tick, sum(values) / tick


@dataclass
class CpuShares:
    """CPU seconds per wall second (1.0 = one core) while the flows ran."""

    client: float
    service: float
    postgres: float
    machine: float


async def drive(
    fixture: Fixture,
    *,
    seconds: float,
    concurrency: int,
    label: str,
    service_group: int,
    separate_consent: bool = False,
) -> tuple[Figures, CpuShares]:
    figures = Figures(label, 0, 0, seconds, [])
    lean = LeanRequests.of(fixture, separate_consent=separate_consent)
    url = httpx.URL(fixture.base_url)
    connections = [LeanConnection(url.host, url.port or 80) for _ in range(concurrency)]
    for connection in connections:  # warm up connections and worker caches
        await lean_flow(connection, fixture, lean)
    figures.connections_per_worker = _connections_per_process(service_group, url.port or 80)
    stop_at = time.perf_counter() + seconds

    async def worker(connection: LeanConnection) -> None:
        while time.perf_counter() < stop_at:
            started = time.perf_counter()
            try:
                await lean_flow(connection, fixture, lean)
            except (FlowFailed, RuntimeError, OSError, asyncio.IncompleteReadError) as error:
                figures.errors += 1
                kind = str(error)[:100] if isinstance(error, FlowFailed) else _describe(error)
                figures.error_kinds[kind] = figures.error_kinds.get(kind, 0) + 1
                continue
            figures.latencies_ms.append((time.perf_counter() - started) * 1000)
            figures.flows += 1

    client_cpu = time.process_time()
    service_cpu = _group_cpu_seconds(service_group)
    postgres_cpu = _named_cpu_seconds("postgres")
    machine_busy, _ = _machine_busy_seconds()
    began = time.perf_counter()
    await asyncio.gather(*(worker(connection) for connection in connections))
    figures.seconds = time.perf_counter() - began
    shares = CpuShares(
        client=(time.process_time() - client_cpu) / figures.seconds,
        service=(_group_cpu_seconds(service_group) - service_cpu) / figures.seconds,
        postgres=(_named_cpu_seconds("postgres") - postgres_cpu) / figures.seconds,
        machine=(_machine_busy_seconds()[0] - machine_busy) / figures.seconds,
    )
    for connection in connections:
        connection.close()
    return figures, shares


def run_database(
    label: str,
    database_url: str,
    hierarchy_dir: Path,
    person: IssuedPerson,
    args: argparse.Namespace,
) -> tuple[Figures, CpuShares]:
    with tempfile.TemporaryDirectory(prefix=f"bench-{label}-") as tmp:
        workdir = Path(tmp)
        provider_key, kiosk_credential = register_accounts(database_url, workdir / "data")
        process, base_url, _env = start_service(workdir, database_url, hierarchy_dir, args.workers)
        try:
            fixture = Fixture(
                base_url=base_url,
                provider_key=provider_key,
                kiosk_credential=kiosk_credential,
                auth_key=person.auth_private_key,
                auth_certificate_b64=base64.b64encode(
                    person.auth_certificate.public_bytes(serialization.Encoding.DER)
                ).decode(),
            )
            # uvloop, as the service has: the client shares the machine's two cores, and
            # what it spends is taken from the service.
            with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
                return runner.run(
                    drive(
                        fixture,
                        seconds=args.seconds,
                        concurrency=args.concurrency,
                        label=label,
                        service_group=process.pid,  # started in its own session: pgid = pid
                        separate_consent=args.separate_consent,
                    )
                )
        finally:
            stop_service(process)


def report(figures: Figures, shares: CpuShares) -> None:
    rate = figures.flows / figures.seconds if figures.seconds else 0.0
    p50, p99 = figures.percentile(0.5), figures.percentile(0.99)
    verdict = (
        "meets"
        if rate >= TARGET_FLOWS_PER_SECOND and p99 <= TARGET_P99_MS and not (figures.errors)
        else "BELOW"
    )
    print(
        f"{figures.database:10s} flows/s {rate:7.1f}  p50 {p50:6.1f} ms  p99 {p99:6.1f} ms  "
        f"errors {figures.errors}  flows {figures.flows}  "
        f"[{verdict} target >= {TARGET_FLOWS_PER_SECOND:.0f}/s, p99 <= {TARGET_P99_MS:.0f} ms]"
    )
    for kind, count in sorted(figures.error_kinds.items(), key=lambda item: -item[1]):
        print(f"{'':10s} error x{count}: {kind}")
    cores = os.cpu_count() or 1
    print(
        f"{'':10s} CPU in cores (of {cores}): client {shares.client:.2f}, "
        f"service workers {shares.service:.2f}, postgres processes {shares.postgres:.2f} "
        f"(all of the machine's), machine busy {shares.machine:.2f}; "
        f"client share of the busy CPU {shares.client / max(shares.machine, 1e-9):.0%}; "
        f"load average after: {os.getloadavg()[0]:.2f}"
    )
    print(
        f"{'':10s} client connections per service worker: "
        f"{'/'.join(str(count) for count in figures.connections_per_worker) or '?'}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--postgres",
        default=os.environ.get(
            "COMMONID_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
        ),
    )
    parser.add_argument("--skip-postgres", action="store_true")
    parser.add_argument("--skip-sqlite", action="store_true")
    parser.add_argument(
        "--separate-consent",
        action="store_true",
        help="post the consent on its own before the card response (four requests a flow)",
    )
    args = parser.parse_args()

    print(
        f"machine: {os.cpu_count()} CPUs; service workers {args.workers}; "
        f"client concurrency {args.concurrency}; {args.seconds:.0f} s per database"
    )
    print(
        f"crypto floor: RSA-2048 PKCS#1 v1.5 verifications/s (one core): "
        f"{rsa_verifications_per_second():.0f}; signatures/s (the client's card, one core): "
        f"{rsa_signatures_per_second():.0f}; load average {os.getloadavg()[0]:.2f}"
    )
    with tempfile.TemporaryDirectory(prefix="bench-hierarchy-") as hierarchy_tmp:
        hierarchy_dir = Path(hierarchy_tmp)
        hierarchy = Hierarchy.init(hierarchy_dir)
        person = hierarchy.issue_person(PERSON)
        results = []
        if not args.skip_sqlite:
            with tempfile.TemporaryDirectory(prefix="bench-sqlite-") as sqlite_tmp:
                sqlite_url = f"sqlite:///{Path(sqlite_tmp) / 'commonid.sqlite3'}"
                results.append(run_database("sqlite", sqlite_url, hierarchy_dir, person, args))
            report(*results[-1])
        if not args.skip_postgres:
            url, schema = postgres_schema_url(args.postgres)
            try:
                results.append(run_database("postgresql", url, hierarchy_dir, person, args))
            finally:
                drop_schema(args.postgres, schema)
            report(*results[-1])


if __name__ == "__main__":
    main()
