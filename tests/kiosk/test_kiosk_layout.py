"""The kiosk page as staff run it every day, in Chromium against the real agent, service and card.

Every step, its notices and its dialogs fit the screens kiosks have (1024×768
up to a portrait 1080×1920) with the primary button in view and uncovered;
axe-core finds no WCAG 2.1 AA violation on any of them; the next person
always starts clean; focus and announcements follow the steps; the
take-your-card reminder stays until the reader reports the card gone.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from jpki.emulator.state import CardState
from jpki.emulator.vpcd import VpcdBridge
from tests.fixtures.card import AUTH_PIN, SIGN_PASSWORD
from tests.fixtures.service import ServiceAccounts

from .conftest import Agent, Screenshots
from .kiosk_helpers import (
    agent_state,
    create_session,
    enter_code,
    expect_screen,
    insert_card,
    remove_card,
    type_code,
    type_pin,
)
from .page_checks import assert_accessible, assert_fits

pytestmark = [pytest.mark.browser, pytest.mark.pcsc]

OpenKiosk = Callable[[Agent], Any]
FOUR_ATTRIBUTES = ["name", "birthdate", "gender", "address"]
PORTRAIT = {"width": 1080, "height": 1920}


def _check(page: Any, primary: str, *others: str) -> None:
    assert_fits(page, primary, *others)
    assert_accessible(page)


def _portrait_shot(page: Any, screenshots: Screenshots, name: str) -> None:
    original = page.viewport_size
    page.set_viewport_size(PORTRAIT)
    try:
        screenshots.take(page, f"{name}-portrait")
    finally:
        page.set_viewport_size(original)


def _type(page: Any, target: str, text: str) -> None:
    for character in text:
        page.get_by_test_id(f"{target}-key-{character}").click()


def _notice(page: Any) -> str:
    notice = page.get_by_test_id("notice")
    notice.wait_for(state="visible", timeout=15_000)
    return notice.inner_text()


def _focused_test_id(page: Any) -> str | None:
    return page.evaluate("() => document.activeElement && document.activeElement.dataset.testid")


def _assert_clean_start(page: Any, agent: Agent) -> None:
    expect_screen(page, "start")
    page.wait_for_function("() => document.activeElement?.dataset.testid === 'code-display'")
    assert page.get_by_test_id("lang-toggle").inner_text() == "English"  # the page is in Japanese
    assert page.evaluate("() => document.documentElement.lang") == "ja"
    assert page.get_by_test_id("notice").is_hidden()
    assert page.get_by_test_id("code-display").inner_text() == ""
    assert agent_state(agent.url)["notice"] is None


def test_every_step_of_a_verification_fits_the_kiosk_screens(
    agent: Agent,
    open_kiosk: OpenKiosk,
    service_url: str,
    service_accounts: ServiceAccounts,
    card_in_reader: VpcdBridge,
    pcsc_reader: str,
    screenshots: Screenshots,
) -> None:
    remove_card(card_in_reader, pcsc_reader)  # the person has the card in hand at first
    page = open_kiosk(agent)
    expect_screen(page, "start")
    _check(page, "code-submit", "code-key-M", "code-delete")

    # A code that does not exist: the notice and the button both stay in view.
    type_code(page, "ZZZZ9999")
    page.get_by_test_id("code-submit").click()
    assert "受付番号" in _notice(page)
    _check(page, "code-submit", "notice", "code-key-M", "code-delete")
    screenshots.take(page, "unknown-code")
    _portrait_shot(page, screenshots, "unknown-code")
    # Staff clear the code: the notice about it goes with it, here and in the agent.
    page.get_by_test_id("code-clear").click()
    page.get_by_test_id("notice").wait_for(state="hidden")
    assert agent_state(agent.url)["notice"] is None

    session = create_session(
        service_url,
        service_accounts.provider_a_key,
        mode="identity",
        claims=[*FOUR_ATTRIBUTES, "did"],
        document="consent",
    )
    enter_code(page, session["user_code"])
    expect_screen(page, "consent")
    _check(page, "consent-yes", "consent-no")
    _portrait_shot(page, screenshots, "consent")
    page.get_by_test_id("consent-yes").click()

    expect_screen(page, "insert_card")
    _check(page, "card-retry")
    insert_card(card_in_reader, pcsc_reader)

    expect_screen(page, "pin")
    type_pin(page, "9999")
    page.get_by_test_id("pin-submit").click()
    assert "暗証番号" in _notice(page)
    expect_screen(page, "pin")
    type_pin(page, AUTH_PIN[:2])
    _check(page, "pin-submit", "notice", "pin-key-0", "pin-delete")
    screenshots.take(page, "wrong-pin")
    _portrait_shot(page, screenshots, "wrong-pin")
    page.get_by_test_id("pin-clear").click()
    type_pin(page, AUTH_PIN)
    page.get_by_test_id("pin-submit").click()

    expect_screen(page, "password")
    _type(page, "password", "WRONG9")
    page.get_by_test_id("password-submit").click()
    assert "パスワード" in _notice(page)
    expect_screen(page, "password")
    _check(page, "password-submit", "notice", "password-key-M", "password-delete")
    screenshots.take(page, "wrong-password")
    _portrait_shot(page, screenshots, "wrong-password")
    _type(page, "password", SIGN_PASSWORD)
    page.get_by_test_id("password-submit").click()

    expect_screen(page, "document")
    _type(page, "document", "WRONG9")
    page.get_by_test_id("document-submit").click()
    assert "パスワード" in _notice(page)
    expect_screen(page, "document")
    _check(
        page, "document-submit", "notice", "document-decline", "document-key-M", "document-delete"
    )
    screenshots.take(page, "document-wrong-password")
    _portrait_shot(page, screenshots, "document-wrong-password")
    _type(page, "document", SIGN_PASSWORD)
    page.get_by_test_id("document-submit").click()

    expect_screen(page, "result")
    assert page.get_by_test_id("screen-result").get_attribute("data-outcome") == "document_signed"
    take_card = page.get_by_test_id("take-card")
    take_card.wait_for(state="visible")
    assert "カードをお取りください" in take_card.inner_text()
    _check(page, "result-done", "take-card")
    screenshots.take(page, "take-your-card")
    _portrait_shot(page, screenshots, "take-your-card")

    # Done with the card still down: the next person's start screen keeps the reminder.
    page.get_by_test_id("result-done").click()
    _assert_clean_start(page, agent)
    assert take_card.is_visible()
    remove_card(card_in_reader, pcsc_reader)
    take_card.wait_for(state="hidden", timeout=10_000)


def test_the_dialogs_fit_and_the_idle_prompt_counts_down(
    start_agent: Callable[..., Agent],
    open_kiosk: OpenKiosk,
    service_url: str,
    service_accounts: ServiceAccounts,
    card_in_reader: VpcdBridge,
    card_state: CardState,
    screenshots: Screenshots,
) -> None:
    card_state.auth_pin.tries_left = 1
    agent = start_agent(inactivity_timeout_seconds=60.0)
    session = create_session(service_url, service_accounts.provider_a_key, mode="auth")
    page = open_kiosk(agent, fake_clock=True)
    enter_code(page, session["user_code"])
    page.get_by_test_id("consent-yes").click()
    expect_screen(page, "pin")
    assert page.get_by_test_id("pin-last-try").is_visible()
    type_pin(page, AUTH_PIN)
    _check(page, "pin-submit", "pin-last-try", "pin-key-0")
    page.get_by_test_id("pin-submit").click()
    dialog = page.get_by_test_id("last-try-dialog")
    dialog.wait_for(state="visible")
    _check(page, "last-try-go", "last-try-back")
    page.get_by_test_id("last-try-back").click()

    # 50 s without a touch (the page's clock; the agent's real one has not run out).
    page.clock.fast_forward(50_000)
    idle = page.get_by_test_id("idle-dialog")
    idle.wait_for(state="visible", timeout=5_000)
    count = int(page.get_by_test_id("idle-count").inner_text())
    assert 1 <= count <= 10
    assert _focused_test_id(page) == "idle-continue"
    assert page.get_by_test_id("idle-continue").inner_text() == "続ける / Continue"
    _check(page, "idle-continue")
    screenshots.take(page, "idle-prompt")
    _portrait_shot(page, screenshots, "idle-prompt")
    page.clock.fast_forward(3_000)
    assert int(page.get_by_test_id("idle-count").inner_text()) < count  # it counts down
    page.get_by_test_id("idle-continue").click()
    idle.wait_for(state="hidden")
    expect_screen(page, "pin")  # the person goes on where they were
    assert agent_state(agent.url)["step"] == "pin"

    # Left alone again: the prompt, then the clean start.
    page.clock.fast_forward(61_000)
    _assert_clean_start(page, agent)
    assert idle.is_hidden()


def test_cancel_returns_to_the_same_clean_start_as_done_and_timeout(
    agent: Agent,
    open_kiosk: OpenKiosk,
    service_url: str,
    service_accounts: ServiceAccounts,
    card_in_reader: VpcdBridge,
) -> None:
    session = create_session(service_url, service_accounts.provider_a_key, mode="auth")
    page = open_kiosk(agent)
    _assert_clean_start(page, agent)
    page.get_by_test_id("lang-toggle").click()
    enter_code(page, session["user_code"])
    expect_screen(page, "consent")
    assert page.get_by_test_id("consent-yes").inner_text() == "I agree"
    page.get_by_test_id("cancel").click()
    _assert_clean_start(page, agent)


def test_a_notice_left_on_the_start_screen_clears_itself(
    start_agent: Callable[..., Agent], open_kiosk: OpenKiosk
) -> None:
    agent = start_agent(inactivity_timeout_seconds=3.0)
    page = open_kiosk(agent)
    type_code(page, "ZZZZ9999")
    page.get_by_test_id("code-submit").click()
    _notice(page)
    # The agent still says so after a reload, until the inactivity timeout.
    page.reload()
    page.wait_for_selector("body[data-ready='true']")
    assert "受付番号" in _notice(page)
    page.get_by_test_id("notice").wait_for(state="hidden", timeout=10_000)
    _assert_clean_start(page, agent)


def test_focus_and_announcements_follow_the_steps(
    agent: Agent,
    open_kiosk: OpenKiosk,
    service_url: str,
    service_accounts: ServiceAccounts,
    card_in_reader: VpcdBridge,
) -> None:
    session = create_session(service_url, service_accounts.provider_a_key, mode="auth")
    page = open_kiosk(agent)
    enter_code(page, session["user_code"])
    expect_screen(page, "consent")
    page.wait_for_function("() => document.activeElement?.id === 'title-consent'")
    heading = page.locator("#title-consent").inner_text()
    assert page.get_by_test_id("announcer").inner_text() == heading
    assert page.get_by_test_id("announcer").get_attribute("aria-live") == "polite"
    page.get_by_test_id("consent-yes").click()

    expect_screen(page, "pin")
    page.wait_for_function("() => document.activeElement?.id === 'title-pin'")
    assert page.get_by_test_id("pin-display").get_attribute("role") == "status"
    type_pin(page, AUTH_PIN[:2])
    # The status region says how many digits, never which.
    assert page.get_by_test_id("pin-count").inner_text() == "4桁中2桁入力済み"
    assert page.get_by_test_id("pin-display").inner_text() == "4桁中2桁入力済み"
    assert page.get_by_test_id("pin-delete").get_attribute("aria-label") == "1字消す"
    page.get_by_test_id("lang-toggle").click()
    assert page.get_by_test_id("pin-count").inner_text() == "2 of 4 digits entered"
    assert page.get_by_test_id("pin-delete").get_attribute("aria-label") == "Delete"

    # A keyboard user sees where the focus is: a thick ring, not the browser's hairline.
    page.keyboard.press("Tab")
    ring = page.evaluate(
        "() => { const s = getComputedStyle(document.activeElement);"
        " return [s.outlineStyle, parseFloat(s.outlineWidth),"
        " document.activeElement.id]; }"
    )
    assert ring[0] == "solid" and ring[1] >= 3, ring
    assert_accessible(page)
