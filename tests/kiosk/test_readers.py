"""Readers as they are on counters: two vpcd readers, cards recognised by the JPKI AP.

pcscd with vpcd exposes two readers, "Virtual PCD 00 00" (vpcd port 35963) and
"Virtual PCD 00 01" (35964). A contactless reader reports an ATR of its own
making, so the agent must recognise a My Number Card by selecting the JPKI
application; here the emulator presents such an ATR in the second reader.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from commonid_kiosk.reader_monitor import CHECKING, ReaderMonitor, ReaderSnapshot

from jpki.emulator.card import CONTACTLESS_ATR, JPKI_ATR, VirtualMyNumberCard
from jpki.emulator.state import CardState
from jpki.emulator.vpcd import VpcdBridge
from jpki.recognition import CardKind, identify_card
from tests.fixtures.card import AUTH_PIN
from tests.fixtures.pcsc import (
    SECOND_VPCD_PORT,
    SECOND_VPCD_READER,
    VPCD_PORT,
    VPCD_READER,
    wait_for_card_state,
)
from tests.fixtures.service import ServiceAccounts

from .conftest import Agent, Screenshots
from .kiosk_helpers import create_session, enter_code, expect_screen, type_pin
from .page_checks import assert_accessible

pytestmark = [pytest.mark.pcsc, pytest.mark.browser]


class _NotAMyNumberCard:
    """A card with the My Number Card's own contact ATR but no JPKI application."""

    atr = JPKI_ATR

    def power_on(self) -> None: ...

    def power_off(self) -> None: ...

    def reset(self) -> None: ...

    def process_apdu(self, command: bytes) -> bytes:
        return bytes.fromhex("6A82")


def _readers(agent: Agent) -> dict[str, Any]:
    return httpx.get(f"{agent.url}/api/readers", timeout=10).json()


def _wait_for_readers(
    agent: Agent, wanted: Callable[[dict[str, Any]], bool], timeout: float = 15
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        shown = _readers(agent)
        if wanted(shown):
            return shown
        if time.monotonic() > deadline:
            raise AssertionError(f"the agent's readers never matched: {shown}")
        time.sleep(0.1)


def _card_of(shown: dict[str, Any], reader: str) -> str:
    return next(r["card"] for r in shown["readers"] if r["name"] == reader)


@pytest.fixture
def contactless_card_process(card_state: CardState, tmp_path: Path, pcscd: None) -> Iterator[None]:
    """`jpki-emulator --atr contactless` holding the card in the second vpcd reader."""
    card_file = tmp_path / "card.json"
    card_state.save(card_file)
    emulator = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("jpki-emulator")),
            "--card",
            str(card_file),
            "--port",
            str(SECOND_VPCD_PORT),
            "--atr",
            "contactless",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert emulator.stdout is not None
        for line in emulator.stdout:
            if line.startswith(("inserted", "error")):
                assert line.startswith("inserted"), line
                break
        wait_for_card_state(SECOND_VPCD_READER, present=True)
        yield
    finally:
        emulator.terminate()
        emulator.wait(timeout=10)
    wait_for_card_state(SECOND_VPCD_READER, present=False)


def _atr_in(reader: str) -> bytes:
    from smartcard.System import readers

    connection = next(r for r in readers() if str(r) == reader).createConnection()
    connection.connect()
    try:
        return bytes(connection.getATR())
    finally:
        connection.disconnect()


def test_a_contactless_my_number_card_in_the_second_reader_is_recognised_and_used(
    start_agent: Callable[..., Agent],
    contactless_card_process: None,
    open_kiosk: Callable[..., Any],
    service_url: str,
    service_accounts: ServiceAccounts,
    screenshots: Screenshots,
    tmp_path: Path,
) -> None:
    # The ATR is the contactless reader's, which no ATR table would take for a JPKI card.
    assert _atr_in(SECOND_VPCD_READER) == CONTACTLESS_ATR
    assert identify_card(SECOND_VPCD_READER) is CardKind.MY_NUMBER_CARD
    assert identify_card(VPCD_READER) is CardKind.NONE

    agent = start_agent(reader=None, reader_choice_file=tmp_path / "reader-choice.json")
    shown = _wait_for_readers(agent, lambda s: _card_of(s, SECOND_VPCD_READER) == "my_number_card")
    assert _card_of(shown, VPCD_READER) == "none"
    # Nothing chosen or configured: the reader holding a My Number Card is used.
    assert (shown["reader"], shown["chosen_by"]) == (SECOND_VPCD_READER, "automatic")

    page = open_kiosk(agent)
    second = page.locator(f'[data-testid="reader-item"][data-reader="{SECOND_VPCD_READER}"]')
    assert second.get_attribute("data-card") == "my_number_card"
    assert second.get_by_test_id("reader-choose").get_attribute("aria-pressed") == "true"
    assert "マイナンバーカード" in second.inner_text()
    assert_accessible(page)
    screenshots.take(page, "contactless-reader")

    session = create_session(service_url, service_accounts.provider_a_key, mode="auth")
    enter_code(page, session["user_code"])
    page.get_by_test_id("consent-yes").click()
    expect_screen(page, "pin")  # the card is already on the (contactless) reader
    type_pin(page, AUTH_PIN)
    page.get_by_test_id("pin-submit").click()
    expect_screen(page, "result")
    assert page.get_by_test_id("screen-result").get_attribute("data-outcome") == "verified"


def test_staff_choose_the_reader_on_the_page_and_the_agent_remembers_it(
    start_agent: Callable[..., Agent],
    virtual_card: VirtualMyNumberCard,
    open_kiosk: Callable[..., Any],
    service_url: str,
    service_accounts: ServiceAccounts,
    pcscd: None,
    screenshots: Screenshots,
    tmp_path: Path,
) -> None:
    choice_file = tmp_path / "state" / "reader-choice.json"
    my_number_card = VirtualMyNumberCard(virtual_card.state, atr=CONTACTLESS_ATR)
    with (
        VpcdBridge(_NotAMyNumberCard(), port=VPCD_PORT),
        VpcdBridge(my_number_card, port=SECOND_VPCD_PORT),
    ):
        wait_for_card_state(VPCD_READER, present=True)
        wait_for_card_state(SECOND_VPCD_READER, present=True)
        agent = start_agent(reader=None, reader_choice_file=choice_file)
        shown = _wait_for_readers(
            agent,
            lambda s: (
                {_card_of(s, VPCD_READER), _card_of(s, SECOND_VPCD_READER)}
                == {"other", "my_number_card"}
            ),
        )
        # The first reader's card has the JPKI contact ATR, yet it is not a My Number Card.
        assert _card_of(shown, VPCD_READER) == "other"
        assert shown["reader"] == SECOND_VPCD_READER

        page = open_kiosk(agent)
        first = page.locator(f'[data-testid="reader-item"][data-reader="{VPCD_READER}"]')
        assert "マイナンバーカード以外のカード" in first.inner_text()
        first.get_by_test_id("reader-choose").click()
        page.wait_for_function(
            f"""document.querySelector('[data-reader="{VPCD_READER}"] button')
                .getAttribute('aria-pressed') === 'true'"""
        )
        shown = _readers(agent)
        assert (shown["reader"], shown["chosen_by"]) == (VPCD_READER, "staff")
        assert json.loads(choice_file.read_text())["reader"] == VPCD_READER
        assert_accessible(page)
        screenshots.take(page, "reader-chosen")

        # Not while a person is between steps: their card is in the reader in use.
        session = create_session(service_url, service_accounts.provider_a_key, mode="auth")
        enter_code(page, session["user_code"])
        expect_screen(page, "consent")
        assert first.get_by_test_id("reader-choose").is_disabled()
        refused = httpx.post(
            f"{agent.url}/api/reader", json={"name": SECOND_VPCD_READER}, timeout=10
        )
        assert refused.status_code == 409 and refused.json()["error"] == "reader_busy"
        page.get_by_test_id("consent-no").click()
        unknown = httpx.post(f"{agent.url}/api/reader", json={"name": "Nowhere 00"}, timeout=10)
        assert unknown.status_code == 404 and unknown.json()["error"] == "unknown_reader"
        assert _readers(agent)["reader"] == VPCD_READER

        # A restarted agent, even one configured for the other reader, keeps staff's choice.
        restarted = start_agent(reader=SECOND_VPCD_READER, reader_choice_file=choice_file)
        shown = _readers(restarted)
        assert (shown["reader"], shown["chosen_by"]) == (VPCD_READER, "staff")
    wait_for_card_state(VPCD_READER, present=False)
    wait_for_card_state(SECOND_VPCD_READER, present=False)


def test_each_card_put_in_a_reader_is_asked_once(
    virtual_card: VirtualMyNumberCard, pcscd: None
) -> None:
    """The monitor shows `checking`, asks the card, and does not ask again until a new card."""
    asked: list[str] = []
    seen: list[ReaderSnapshot] = []

    def identify(reader: str) -> CardKind:
        asked.append(reader)
        return identify_card(reader)

    monitor = ReaderMonitor(identify=identify)
    changed = threading.Event()

    def listen(snapshot: ReaderSnapshot) -> None:
        seen.append(snapshot)
        changed.set()

    def card_in_first_reader() -> str:
        return next(r.card for r in monitor.snapshot.readers if r.name == VPCD_READER)

    def wait_until(card: str) -> None:
        deadline = time.monotonic() + 10
        while card_in_first_reader() != card:
            assert time.monotonic() < deadline, f"never {card}: {monitor.snapshot}"
            changed.wait(0.2)
            changed.clear()

    monitor.add_listener(listen)
    monitor.start()
    try:
        with VpcdBridge(virtual_card, port=VPCD_PORT):
            wait_until("my_number_card")
            # Open and close connections (as the flow does): the card is not asked again.
            for _ in range(3):
                assert identify_card(VPCD_READER) is CardKind.MY_NUMBER_CARD
            time.sleep(1.0)
            assert asked.count(VPCD_READER) == 1
        wait_until("none")
        with VpcdBridge(_NotAMyNumberCard(), port=VPCD_PORT):
            wait_until("other")
        wait_until("none")
    finally:
        monitor.stop()
    assert asked.count(VPCD_READER) == 2
    shown = [next(r.card for r in s.readers if r.name == VPCD_READER) for s in seen]
    assert shown.index(CHECKING) < shown.index("my_number_card")
