"""`commonid serve --workers 2`: what a scrape of /metrics reports is every worker's work,
and a caller's rate limit is one budget across the workers."""

from __future__ import annotations

import datetime as dt
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from commonid.client import KioskClient, ProviderClient
from commonid.settings import Settings
from commonid.store import accounts
from commonid.store.database import create_engine, session_factory, upgrade
from commonid.store.encryption import AttributeCipher
from jpki.testca import Hierarchy
from tests.fixtures.service import _free_port

pytestmark = pytest.mark.slow

SESSIONS = 12


def _register(data_dir: Path) -> tuple[str, str]:
    settings = Settings(data_dir=data_dir).with_generated_secrets()
    upgrade(settings.effective_database_url)
    engine = create_engine(settings.effective_database_url)
    cipher = AttributeCipher(settings.attribute_key_bytes(), settings.current_attribute_key_id)
    now = dt.datetime.now(dt.UTC)
    with session_factory(engine).begin() as db:
        provider = accounts.add_provider(
            db,
            name="Pay",
            allowed_claims=["did"],
            reuse_max_age_seconds=3600,
            now=now,
            cipher=cipher,
        )
        kiosk = accounts.add_kiosk(db, name="Counter", now=now)
    engine.dispose()
    return provider.credential, kiosk.credential


@contextmanager
def _serve_two_workers(data_dir: Path, test_hierarchy_dir: Path, **settings: str) -> Iterator[str]:
    port = _free_port()
    env = os.environ | {
        "COMMONID_DATA_DIR": str(data_dir),
        "COMMONID_TRUST_MODE": "test",
        "COMMONID_TEST_HIERARCHY_DIR": str(test_hierarchy_dir),
    }
    env |= {f"COMMONID_{name.upper()}": value for name, value in settings.items()}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    env.pop("COMMONID_RATE_LIMIT_DIR", None)
    command = [sys.executable, "-m", "commonid.cli", "serve", "--port", str(port)]
    process = subprocess.Popen(
        [*command, "--workers", "2"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            # Both workers listening (each on its own socket), and answering.
            if _listening(port) >= 2 and _answers(url):
                break
            if process.poll() is not None or time.monotonic() > deadline:
                stderr = process.stderr.read().decode() if process.stderr else ""
                pytest.fail(f"the service did not start:\n{stderr[-2000:]}")
            time.sleep(0.2)
        yield url
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@pytest.fixture
def two_workers(
    tmp_path: Path, test_hierarchy: Hierarchy, test_hierarchy_dir: Path
) -> Iterator[tuple[str, str, str, Path]]:
    data_dir = tmp_path / "data"
    provider_key, kiosk_credential = _register(data_dir)
    with _serve_two_workers(data_dir, test_hierarchy_dir) as url:
        yield url, provider_key, kiosk_credential, data_dir


def _completed(text: str, outcome: str) -> float:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if (
                sample.name == "commonid_sessions_completed_total"
                and sample.labels.get("outcome") == outcome
            ):
                return sample.value
    return 0.0


def test_every_scrape_counts_the_sessions_of_both_workers(
    two_workers: tuple[str, str, str, Path],
) -> None:
    url, provider_key, kiosk_credential, data_dir = two_workers
    # A new connection per request, so the kernel spreads them over both workers.
    for _ in range(SESSIONS):
        with ProviderClient(url, provider_key) as provider:
            created = provider.create_session(mode="auth", purpose="metrics")
        with KioskClient(url, kiosk_credential) as kiosk:
            shown = kiosk.session(created.user_code)
        with KioskClient(url, kiosk_credential) as kiosk:
            kiosk.consent(shown.id, approved=False)  # declined: the session completes, rejected

    scrapes = [httpx.get(f"{url}/metrics", timeout=10).text for _ in range(6)]
    assert [_completed(text, "rejected") for text in scrapes] == [SESSIONS] * 6
    # Both workers wrote their values where a scrape collects them.
    assert len({path.name for path in (data_dir / "metrics").glob("counter_*.db")}) >= 2


def test_a_providers_rate_limit_is_one_budget_across_the_workers(
    tmp_path: Path, test_hierarchy: Hierarchy, test_hierarchy_dir: Path
) -> None:
    data_dir = tmp_path / "data"
    provider_key, _ = _register(data_dir)
    burst = 4
    with _serve_two_workers(
        data_dir,
        test_hierarchy_dir,
        provider_rate_per_second="0.001",
        provider_rate_burst=str(burst),
    ) as url:
        statuses = []
        # A new connection per request, so the kernel spreads them over both workers;
        # each one authenticates and spends a token, then finds no such session.
        for _ in range(4 * burst):
            response = httpx.get(
                f"{url}/v1/sessions/ses_missing",
                headers={"Authorization": f"Bearer {provider_key}"},
                timeout=10,
            )
            statuses.append(response.status_code)
    assert statuses.count(404) == burst
    assert statuses.count(429) == 3 * burst
    assert (data_dir / "rate-limits" / "providers.buckets").exists()


def _worker_pids(group: int) -> list[int]:
    """The service's worker processes (multiprocessing's spawned children in its group;
    not the supervisor, nor multiprocessing's resource tracker)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != group:
            try:
                in_group = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[2]) == group
                if in_group and b"spawn_main" in (entry / "cmdline").read_bytes():
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


def _sockets_on_port(port: int, state: str) -> set[str]:
    """The TCP sockets on a local port in a state (01 ESTABLISHED, 0A LISTEN), as the
    links a process's file descriptors show."""
    sockets = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[3] == state and int(fields[1].rsplit(":", 1)[1], 16) == port:
            sockets.add(f"socket:[{fields[9]}]")
    return sockets


def _connections_of(pid: int, port: int) -> int:
    connections = _sockets_on_port(port, "01")
    try:
        return sum(os.readlink(fd) in connections for fd in Path(f"/proc/{pid}/fd").iterdir())
    except OSError:
        return 0


def test_keep_alive_connections_are_spread_over_the_workers_and_a_dead_worker_is_replaced(
    two_workers: tuple[str, str, str, Path],
) -> None:
    url, provider_key, _, _ = two_workers
    port = int(url.rsplit(":", 1)[1])
    group = next(
        int(entry.name)
        for entry in Path("/proc").iterdir()
        if entry.name.isdigit()
        and f"--port\x00{port}\x00".encode() in (entry / "cmdline").read_bytes()
    )
    clients = [httpx.Client(base_url=url, timeout=10) for _ in range(32)]
    try:
        for client in clients:  # opened one after the other, as provider back ends do
            assert client.get("/healthz").status_code == 200
        workers = _worker_pids(group)
        assert len(workers) == 2
        held = sorted(_connections_of(pid, port) for pid in workers)
        # Spread by the kernel (SO_REUSEPORT): 6 or fewer on one worker is a 1-in-10k event.
        assert sum(held) == 32 and held[0] >= 6, held
    finally:
        for client in clients:
            client.close()

    os.kill(workers[0], signal.SIGKILL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        replaced = _worker_pids(group)
        if len(replaced) == 2 and workers[0] not in replaced:
            break
        time.sleep(0.2)
    else:
        pytest.fail("the dead worker was not replaced")
    for _ in range(10):  # every connection is answered, whichever worker takes it
        response = httpx.get(
            f"{url}/v1/sessions/ses_missing",
            headers={"Authorization": f"Bearer {provider_key}"},
            timeout=10,
        )
        assert response.status_code == 404


def test_workers_that_cannot_start_stop_the_service(
    tmp_path: Path, test_hierarchy: Hierarchy, test_hierarchy_dir: Path
) -> None:
    data_dir = tmp_path / "data"
    _register(data_dir)
    env = os.environ | {
        "COMMONID_DATA_DIR": str(data_dir),
        "COMMONID_TRUST_MODE": "test",
        "COMMONID_TEST_HIERARCHY_DIR": str(test_hierarchy_dir),
        # The app refuses this at startup: a TSA without a root to trust its tokens.
        "COMMONID_TIMESTAMP_URL": "http://127.0.0.1:9/tsa",
    }
    finished = subprocess.run(
        [
            sys.executable,
            "-m",
            "commonid.cli",
            "serve",
            "--port",
            str(_free_port()),
            "--workers",
            "2",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert finished.returncode != 0
    assert "failed to start" in finished.stderr


@pytest.mark.parametrize(
    ("signum", "whole_group"),
    [(signal.SIGINT, True), (signal.SIGTERM, True), (signal.SIGTERM, False)],
    ids=["ctrl-c", "kill-group", "kill-supervisor"],
)
def test_the_workers_shut_down_gracefully(
    tmp_path: Path,
    test_hierarchy: Hierarchy,
    test_hierarchy_dir: Path,
    signum: signal.Signals,
    whole_group: bool,
) -> None:
    data_dir = tmp_path / "data"
    _register(data_dir)
    port = _free_port()
    env = os.environ | {
        "COMMONID_DATA_DIR": str(data_dir),
        "COMMONID_TRUST_MODE": "test",
        "COMMONID_TEST_HIERARCHY_DIR": str(test_hierarchy_dir),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "commonid.cli", "serve", "--port", str(port), "--workers", "2"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while _listening(port) < 2 or not _answers(f"http://127.0.0.1:{port}"):
            assert process.poll() is None and time.monotonic() < deadline, "did not start"
            time.sleep(0.2)
        workers = _worker_pids(process.pid)
        if whole_group:  # what a terminal's Ctrl-C or `kill -- -PGID` does
            os.killpg(process.pid, signum)
        else:  # a process manager that signals the main process only
            os.kill(process.pid, signum)
        _, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    assert process.returncode == 0
    assert "Traceback" not in stderr.decode()
    assert stderr.decode().count("Finished server process") == 2, stderr.decode()
    assert not any(Path(f"/proc/{pid}").exists() for pid in workers)


def _listening(port: int) -> int:
    """Sockets listening on the port: one per worker that has started."""
    return len(_sockets_on_port(port, "0A"))


def _answers(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def test_a_port_in_use_is_a_clear_error(tmp_path: Path) -> None:
    with socket.socket() as taken:  # bound without SO_REUSEPORT: nobody may join it
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        finished = subprocess.run(
            [sys.executable, "-m", "commonid.cli", "serve", "--port", str(port), "--workers", "2"],
            env=os.environ | {"COMMONID_DATA_DIR": str(tmp_path / "data")},
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert finished.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}: Address already in use" in finished.stderr
    assert "Traceback" not in finished.stderr


def test_workers_exit_when_their_supervisor_is_killed(
    tmp_path: Path, test_hierarchy: Hierarchy, test_hierarchy_dir: Path
) -> None:
    """`kill -9` of the supervisor: no orphaned generation keeps serving the port (a
    restarted `serve` would otherwise bind beside it with SO_REUSEPORT)."""
    data_dir = tmp_path / "data"
    _register(data_dir)
    with _serve_two_workers(data_dir, test_hierarchy_dir) as url:
        port = int(url.rsplit(":", 1)[1])
        supervisor = next(
            int(entry.name)
            for entry in Path("/proc").iterdir()
            if entry.name.isdigit()
            and f"--port\x00{port}\x00".encode() in (entry / "cmdline").read_bytes()
        )
        workers = _worker_pids(supervisor)
        assert len(workers) == 2
        os.kill(supervisor, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while any(Path(f"/proc/{pid}").exists() for pid in workers) or _listening(port):
            assert time.monotonic() < deadline, "workers outlived their supervisor"
            time.sleep(0.2)
        assert not _answers(url)
