"""Two hosts behind a load balancer, as two network namespaces that each run `commonid
serve` on one PostgreSQL: with rate_limit_store = "database" a provider's rate limit is
one budget across both; with the host's file, each host allows the full burst."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from commonid.oidc.keys import SigningKeys
from commonid.settings import Settings
from commonid.store import accounts
from commonid.store.database import create_engine, session_factory, upgrade
from commonid.store.encryption import AttributeCipher
from did.keys import IssuerKeyring
from jpki.testca import Hierarchy
from tests.fixtures.netns import NamespaceHost, TcpForwarder, network_namespaces

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

BURST = 4
PORT = 8000  # each host has its own address, so both can use it
POSTGRES = ("127.0.0.1", 5432)


def _register_provider(database_url: str, data_dir: Path) -> str:
    settings = Settings(data_dir=data_dir, database_url=database_url).with_generated_secrets()
    # The hosts of one service share its keys (copied with this data directory below):
    # one with its own issuer key would be refused at start (commonid.shared_keys).
    IssuerKeyring.open(data_dir / "issuer-key.json")
    SigningKeys.open(data_dir / "oidc-signing-keys.json")  # the ID token key, likewise
    SigningKeys.open(data_dir / "credential-issuer-keys.json")  # and the SD-JWT VC issuer
    upgrade(database_url)
    engine = create_engine(database_url)
    cipher = AttributeCipher(settings.attribute_key_bytes(), settings.current_attribute_key_id)
    with session_factory(engine).begin() as db:
        provider = accounts.add_provider(
            db,
            name="Pay",
            allowed_claims=["did"],
            reuse_max_age_seconds=3600,
            now=dt.datetime.now(dt.UTC),
            cipher=cipher,
        )
    engine.dispose()
    return provider.credential


def _through(url: str, gateway: tuple[str, int]) -> str:
    """``url`` with its server swapped for the forwarder at ``gateway``."""
    return (
        sa.make_url(url).set(host=gateway[0], port=gateway[1]).render_as_string(hide_password=False)
    )


@contextmanager
def _serve_in(host: NamespaceHost, env: dict[str, str]) -> Iterator[str]:
    """`commonid serve` inside the host's namespace, until the block ends."""
    command = ["ip", "netns", "exec", host.namespace, sys.executable, "-m", "commonid.cli"]
    process = subprocess.Popen(
        [*command, "serve", "--host", host.address, "--port", str(PORT)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    url = f"http://{host.address}:{PORT}"
    try:
        deadline = time.monotonic() + 60
        while not _answers(url):
            if process.poll() is not None or time.monotonic() > deadline:
                os.killpg(process.pid, signal.SIGKILL)
                stderr = process.stderr.read().decode() if process.stderr else ""
                pytest.fail(f"the service in {host.namespace} did not start:\n{stderr[-2000:]}")
            time.sleep(0.2)
        yield url
    finally:
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            with suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


def _answers(url: str) -> bool:
    try:
        with httpx.Client(trust_env=False, timeout=1) as client:
            return client.get(f"{url}/healthz").status_code == 200
    except httpx.HTTPError:
        return False


@pytest.mark.parametrize(("store", "passed"), [("database", BURST), ("file", 2 * BURST)])
def test_a_providers_burst_is_shared_by_two_hosts_only_with_a_shared_store(
    store: str,
    passed: int,
    postgres_schema_url: str,
    tmp_path: Path,
    test_hierarchy: Hierarchy,
    test_hierarchy_dir: Path,
) -> None:
    provider_key = _register_provider(postgres_schema_url, tmp_path / "host-0")
    # The second host is configured like the first: the same secrets.
    shutil.copytree(tmp_path / "host-0", tmp_path / "host-1")
    with ExitStack() as stack:
        hosts = stack.enter_context(network_namespaces(2))
        urls = []
        for index, host in enumerate(hosts):
            # PostgreSQL listens on 127.0.0.1 here; the host reaches it through its link.
            forwarder = TcpForwarder(host.gateway, POSTGRES)
            stack.callback(forwarder.close)
            env = {
                key: value
                for key, value in os.environ.items()
                if not key.startswith("COMMONID_") and key != "PROMETHEUS_MULTIPROC_DIR"
            } | {
                "COMMONID_DATA_DIR": str(tmp_path / f"host-{index}"),
                "COMMONID_DATABASE_URL": _through(postgres_schema_url, forwarder.address),
                "COMMONID_TRUST_MODE": "test",
                "COMMONID_TEST_HIERARCHY_DIR": str(test_hierarchy_dir),
                "COMMONID_RATE_LIMIT_STORE": store,
                "COMMONID_PROVIDER_RATE_BURST": str(BURST),
                "COMMONID_PROVIDER_RATE_PER_SECOND": "0.001",
                "COMMONID_WEBHOOK_DISPATCH_INTERVAL_SECONDS": "0",
                "COMMONID_CRL_REFRESH_INTERVAL_SECONDS": "0",
            }
            urls.append(stack.enter_context(_serve_in(host, env)))
        client = stack.enter_context(httpx.Client(trust_env=False, timeout=10))
        # Alternately at each host, as a load balancer would send them; each request
        # authenticates and spends a token, then finds no such session.
        responses = [
            client.get(
                f"{url}/v1/sessions/ses_missing",
                headers={"Authorization": f"Bearer {provider_key}"},
            )
            for url in urls * (2 * BURST)
        ]
    statuses = [response.status_code for response in responses]
    assert statuses.count(404) == passed
    assert statuses.count(429) == len(statuses) - passed
    for response in responses:
        if response.status_code == 429:
            assert response.json()["code"] == "rate_limited"
            assert int(response.headers["retry-after"]) >= 1
