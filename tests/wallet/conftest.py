"""The wallet tests' service: on a real port whose public URL (the credential issuer
identifier) is that port, so offers, metadata and status list URIs name it."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from fastapi import FastAPI

from commonid.runtime import Runtime
from commonid.settings import Settings
from tests.fixtures.service import ServiceAccounts, _free_port

from .helpers import WalletService


@pytest.fixture
def wallet_port() -> int:
    return _free_port()


@pytest.fixture
def service_settings(service_settings: Settings, wallet_port: int) -> Settings:
    """The public URL (the credential issuer identifier) is the live server's."""
    return service_settings.model_copy(update={"public_url": f"http://127.0.0.1:{wallet_port}"})


@pytest.fixture
def wallet_service(
    service_app: FastAPI, service_runtime: Runtime, wallet_port: int
) -> Iterator[WalletService]:
    """The service on a real TCP port (uvicorn in a thread)."""
    import uvicorn

    server = uvicorn.Server(
        uvicorn.Config(service_app, host="127.0.0.1", port=wallet_port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.02)
    service = WalletService(f"http://127.0.0.1:{wallet_port}", service_runtime)
    try:
        yield service
    finally:
        service.http.close()
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture
def wallet_accounts(
    wallet_service: WalletService, service_accounts: ServiceAccounts
) -> ServiceAccounts:
    return service_accounts
