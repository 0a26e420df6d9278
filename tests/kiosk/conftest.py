"""The kiosk's real surroundings: the service and the agent under uvicorn, Chromium, the card.

The service is the real app on SQLite trusting the session's test hierarchy;
the agent reaches it over HTTP with a kiosk credential and the card through
pcscd + vpcd. What the agent sends to the service goes through a recording
transport (the real HTTP transport, with a copy of each request kept) so tests
can show that no PIN ever leaves the agent.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from commonid_kiosk.app import create_app as create_agent_app
from commonid_kiosk.settings import KioskSettings
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from jpki.emulator.state import CardState
from jpki.testca import Hierarchy, IssuedPerson
from tests.fixtures.card import CardMaterial
from tests.fixtures.service import ServiceAccounts

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOT_VARIABLE = "COMMONID_KIOSK_SCREENSHOTS"
VIEWPORT = {"width": 1366, "height": 768}  # the commonest kiosk and counter-PC screen


@pytest.fixture
def database_url(sqlite_url: str) -> str:
    """The kiosk tests run the service on SQLite only (the service's own tests cover PostgreSQL)."""
    return sqlite_url


@contextmanager
def serve_in_thread(app: Any) -> Iterator[str]:
    """Run ``app`` under uvicorn on a free loopback port; yield its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        sock.close()


@pytest.fixture
def service_url(service_app: Any, service_accounts: ServiceAccounts) -> Iterator[str]:
    with serve_in_thread(service_app) as url:
        yield url


class RecordingTransport(httpx.HTTPTransport):
    """The real HTTP transport, keeping a copy of every request body it sends."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[bytes] = []
        self.paths: list[str] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.sent.append(request.read())
        self.paths.append(request.url.path)
        return super().handle_request(request)


@dataclass
class Agent:
    url: str
    app: Any
    service_traffic: RecordingTransport


@pytest.fixture
def start_agent(
    service_url: str, service_accounts: ServiceAccounts, pcsc_reader: str
) -> Iterator[Callable[..., Agent]]:
    """Start a kiosk agent (settings overridable); stopped at teardown."""
    stack: list[Any] = []

    def start(**overrides: Any) -> Agent:
        defaults: dict[str, Any] = {
            "service_url": service_url,
            "credential": service_accounts.kiosk_credential,
            "reader": pcsc_reader,
            "inactivity_timeout_seconds": 60.0,
        }
        settings = KioskSettings(**(defaults | overrides))
        traffic = RecordingTransport()
        app = create_agent_app(settings, service_transport=traffic)
        context = serve_in_thread(app)
        url = context.__enter__()
        stack.append(context)
        return Agent(url=url, app=app, service_traffic=traffic)

    yield start
    for context in reversed(stack):
        context.__exit__(None, None, None)


@pytest.fixture
def agent(start_agent: Callable[..., Agent]) -> Agent:
    return start_agent()


# Module scope, not session: Playwright's sync API keeps an asyncio loop running in
# the main thread while it is open, and later tests that run their own loop
# (asyncio.run, anyio.run) would fail with "Already running asyncio in this thread".
@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    if not os.path.exists(CHROMIUM):
        pytest.skip("Debian's chromium is not installed (make test installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@dataclass
class Screenshots:
    """Saves numbered screenshots of a flow (into docs/kiosk when asked to refresh them)."""

    directory: Path
    prefix: str
    taken: list[Path] = field(default_factory=list)

    def take(self, page: Any, name: str) -> Path:
        path = self.directory / f"{self.prefix}-{len(self.taken) + 1:02d}-{name}.png"
        page.screenshot(path=str(path))
        self.taken.append(path)
        return path


@pytest.fixture
def screenshots(request: pytest.FixtureRequest, tmp_path: Path) -> Screenshots:
    """``COMMONID_KIOSK_SCREENSHOTS=docs/kiosk`` refreshes the documentation's screenshots."""
    target = os.environ.get(SCREENSHOT_VARIABLE)
    directory = Path(target) if target else tmp_path / "screenshots"
    directory.mkdir(parents=True, exist_ok=True)
    prefix = request.node.name.removeprefix("test_").split("[")[0].replace("_", "-")
    return Screenshots(directory, prefix)


@pytest.fixture
def open_kiosk(chromium: Any) -> Iterator[Callable[[Agent], Any]]:
    """A fresh browser page on an agent's kiosk page, ready (scripts loaded, events open)."""
    contexts: list[Any] = []

    def open_page(agent: Agent, *, fake_clock: bool = False) -> Any:
        context = chromium.new_context(viewport=VIEWPORT, locale="ja-JP")
        contexts.append(context)
        page = context.new_page()
        if fake_clock:  # the page's timers, on Playwright's clock (``page.clock.fast_forward``)
            page.clock.install()
        page.goto(agent.url + "/")
        page.wait_for_selector("body[data-ready='true']")
        return page

    yield open_page
    for context in contexts:
        context.close()


def _der(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.DER)


def card_state_for(hierarchy: Hierarchy, person: IssuedPerson) -> CardState:
    """A fresh card (PIN 1234, password ABC123) holding ``person``'s keys and certificates."""
    return CardMaterial(
        auth_private_key=person.auth_private_key,
        sign_private_key=person.sign_private_key,
        auth_certificate=_der(person.auth_certificate),
        auth_ca_certificate=_der(hierarchy.auth_ca_certificate),
        sign_certificate=_der(person.sign_certificate),
        sign_ca_certificate=_der(hierarchy.sign_ca_certificate),
    ).new_card_state()
