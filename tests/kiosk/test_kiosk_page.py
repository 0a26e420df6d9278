"""The kiosk page in Debian's Chromium, against the real agent, service and card (pcscd + vpcd).

Each test is a person at the kiosk: staff types the user code on the page, the
person agrees, puts the card down, types the PIN on the pad. The provider's
result is then read from the service, as a provider would.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from typing import Any

import pytest

from jpki.emulator.card import VirtualMyNumberCard
from jpki.emulator.state import CardState
from jpki.emulator.vpcd import VpcdBridge
from jpki.testca import Hierarchy
from tests.fixtures.card import AUTH_PIN, SIGN_PASSWORD
from tests.fixtures.jpki import make_person
from tests.fixtures.service import ServiceAccounts

from .conftest import Agent, Screenshots, card_state_for
from .kiosk_helpers import (
    agent_state,
    create_session,
    enter_code,
    expect_screen,
    insert_card,
    provider_result,
    remove_card,
    sent_to_service,
    type_password,
    type_pin,
)
from .page_checks import assert_accessible

pytestmark = [pytest.mark.browser, pytest.mark.pcsc]

IDENTITY_CLAIMS = ["name", "birthdate", "gender", "address", "did"]
OpenKiosk = Callable[[Agent], Any]


def _shown(page: Any, screenshots: Screenshots, name: str) -> None:
    """Every screen a test stops at: axe finds no WCAG 2.1 AA violation; then its picture."""
    assert_accessible(page)
    screenshots.take(page, name)


def _identity_steps(page: Any, session: dict[str, Any]) -> None:
    """Code, consent, PIN and password for a session, with the card already down."""
    enter_code(page, session["user_code"])
    expect_screen(page, "consent")
    page.get_by_test_id("consent-yes").click()
    expect_screen(page, "pin")
    type_pin(page, AUTH_PIN)
    page.get_by_test_id("pin-submit").click()
    expect_screen(page, "password")
    type_password(page, SIGN_PASSWORD)
    page.get_by_test_id("password-submit").click()


def _at_document_step(
    agent: Agent, open_kiosk: OpenKiosk, service_url: str, accounts: ServiceAccounts
) -> tuple[Any, dict[str, Any]]:
    """A kiosk page at the document step of an identity session asking for the name."""
    session = create_session(
        service_url, accounts.provider_a_key, mode="identity", claims=["name"], document="consent"
    )
    page = open_kiosk(agent)
    _identity_steps(page, session)
    expect_screen(page, "document")
    return page, session


def _identity_at_kiosk(
    page: Any, service_url: str, accounts: ServiceAccounts, shots: Screenshots | None = None
) -> dict[str, Any]:
    """Provider A's identity verification, done at the kiosk with the card already down."""
    session = create_session(
        service_url, accounts.provider_a_key, mode="identity", claims=IDENTITY_CLAIMS
    )
    enter_code(page, session["user_code"])
    expect_screen(page, "consent")
    page.get_by_test_id("consent-yes").click()
    expect_screen(page, "pin")
    type_pin(page, AUTH_PIN)
    page.get_by_test_id("pin-submit").click()
    expect_screen(page, "password")
    type_password(page, SIGN_PASSWORD)
    page.get_by_test_id("password-submit").click()
    expect_screen(page, "result")
    return session


def test_identity_verification_at_the_kiosk(
    agent: Agent,
    open_kiosk: OpenKiosk,
    service_url: str,
    service_accounts: ServiceAccounts,
    card_in_reader: VpcdBridge,
    pcsc_reader: str,
    screenshots: Screenshots,
) -> None:
    remove_card(card_in_reader, pcsc_reader)  # the person has the card in hand at first
    session = create_session(
        service_url, service_accounts.provider_a_key, mode="identity", claims=IDENTITY_CLAIMS
    )
    page = open_kiosk(agent)
    expect_screen(page, "start")
    for character in session["user_code"]:
        page.get_by_test_id(f"code-key-{character}").click()
    _shown(page, screenshots, "user-code")
    page.get_by_test_id("code-submit").click()

    expect_screen(page, "consent")
    assert page.get_by_test_id("provider-name").inner_text() == "Provider A"
    assert "口座開設" in page.get_by_test_id("purpose").inner_text()
    assert page.get_by_test_id("claims").locator("li").all_inner_texts() == [
        "氏名",
        "生年月日",
        "性別",
        "住所",
        "デジタルID（DID）",
    ]
    _shown(page, screenshots, "consent")
    page.get_by_test_id("lang-toggle").click()
    assert page.get_by_test_id("consent-yes").inner_text() == "I agree"
    _shown(page, screenshots, "consent-english")
    page.get_by_test_id("lang-toggle").click()
    page.get_by_test_id("consent-yes").click()

    expect_screen(page, "insert_card")
    # vpcd has two readers: the footer lists both, each with its state.
    this_reader = page.locator(f'[data-testid="reader-item"][data-reader="{pcsc_reader}"]')
    assert this_reader.get_attribute("data-card") == "none"
    assert "カードなし" in this_reader.inner_text()
    _shown(page, screenshots, "insert-card")
    insert_card(card_in_reader, pcsc_reader)

    expect_screen(page, "pin")  # the page noticed the card by itself
    assert page.get_by_test_id("pin-tries").inner_text().endswith("3回")
    type_pin(page, AUTH_PIN)
    # Dots, and for screen readers a count: never the digits.
    assert page.get_by_test_id("pin-display").inner_text() == "4桁中4桁入力済み"
    _shown(page, screenshots, "pin")
    page.get_by_test_id("pin-submit").click()

    expect_screen(page, "password")
    assert page.get_by_test_id("password-tries").inner_text().endswith("5回")
    type_password(page, SIGN_PASSWORD)
    _shown(page, screenshots, "password")
    # Hold the request in the browser a moment to see the page while the card works.
    held: list[Any] = []
    page.route("**/api/session/password", lambda route: held.append(route))
    page.get_by_test_id("password-submit").click()
    expect_screen(page, "progress")
    assert page.get_by_test_id("password-display").locator("span.filled").count() == 0
    _shown(page, screenshots, "progress")
    page.wait_for_timeout(50)
    held[0].continue_()

    expect_screen(page, "result")
    assert page.get_by_test_id("screen-result").get_attribute("data-outcome") == "verified"
    assert page.get_by_test_id("result-title").inner_text() == "本人確認が完了しました"
    # The kiosk shows no personal attribute: the name is never on screen.
    assert "山田" not in page.content()
    # The verified identity is offered for the person's wallet: QR code, link, and the
    # code to type in the wallet, shown beside it (docs/wallet.md).
    assert page.get_by_test_id("wallet-offer").is_visible()
    assert re.fullmatch(r"[0-9]{6}", page.get_by_test_id("wallet-tx-code").inner_text())
    link = page.get_by_test_id("wallet-link").get_attribute("href")
    assert link.startswith("openid-credential-offer://?credential_offer=")
    assert page.get_by_test_id("wallet-qr").evaluate("img => img.naturalWidth") > 0
    _shown(page, screenshots, "verified")

    result = provider_result(service_url, service_accounts.provider_a_key, session["id"])
    assert result["status"] == "verified"
    assert result["verified_claims"]["claims"]["name"] == "山田\u3000太郎"
    traffic = sent_to_service(agent.service_traffic)
    assert AUTH_PIN.encode() not in traffic
    assert SIGN_PASSWORD.encode() not in traffic
    assert b"auth_signature" in traffic and b"sign_signature" in traffic

    page.get_by_test_id("result-done").click()
    expect_screen(page, "start")
    assert agent_state(agent.url)["step"] == "start"


def test_reuse_needs_only_the_pin(
    agent: Agent,
    open_kiosk: OpenKiosk,
    service_url: str,
    service_accounts: ServiceAccounts,
    card_in_reader: VpcdBridge,
    screenshots: Screenshots,
) -> None:
    page = open_kiosk(agent)
    _identity_at_kiosk(page, service_url, service_accounts)
    page.get_by_test_id("result-done").click()

    session = create_session(
        service_url,
        service_accounts.provider_b_key,
        mode="auth",
        reuse=True,
        claims=["name", "birthdate"],
        purpose="後払い決済のご利用登録",
    )
    enter_code(page, session["user_code"])
    expect_screen(page, "consent")
    assert "暗証番号4桁のみ" in page.get_by_test_id("method").inner_text()
    _shown(page, screenshots, "consent")
    page.get_by_test_id("consent-yes").click()
    expect_screen(page, "pin")
    type_pin(page, AUTH_PIN)
    page.get_by_test_id("pin-submit").click()

    expect_screen(page, "result")
    assert page.get_by_test_id("screen-result").get_attribute("data-outcome") == "reuse_granted"
    assert page.get_by_test_id("wallet-offer").is_hidden()  # no attributes were verified
    assert not page.get_by_test_id("screen-password").is_visible()
    _shown(page, screenshots, "reuse-granted")
    result = provider_result(service_url, service_accounts.provider_b_key, session["id"])
    assert result["status"] == "reuse_granted"
    assert set(result["verified_claims"]["claims"]) >= {"name", "birthdate"}
    assert "address" not in result["verified_claims"]["claims"]


def test_wrong_pin_then_correct_pin(
    agent: Agent,
    open_kiosk: OpenKiosk,
    service_url: str,
    service_accounts: ServiceAccounts,
    card_in_reader: VpcdBridge,
    card_state: CardState,
    screenshots: Screenshots,
) -> None:
    session = create_session(service_url, service_accounts.provider_a_key, mode="auth")
    page = open_kiosk(agent)
    enter_code(page, session["user_code"])
    page.get_by_test_id("consent-yes").click()
    expect_screen(page, "pin")
    type_pin(page, "9999")
    page.get_by_test_id("pin-submit").click()

    notice = page.get_by_test_id("notice")
    notice.wait_for(state="visible")
    assert "暗証番号が違います" in notice.inner_text()
    assert "残り回数: 2" in notice.inner_text()
    assert page.get_by_test_id("pin-tries").inner_text().endswith("2回")
    assert card_state.auth_pin.tries_left == 2  # exactly one VERIFY reached the card
    assert page.get_by_test_id("pin-display").locator("span.filled").count() == 0
    _shown(page, screenshots, "wrong-pin")
    # Nothing went to the service for the wrong PIN: the session is still answerable.
    assert not any(path.endswith("/card-response") for path in agent.service_traffic.paths)

    type_pin(page, AUTH_PIN)
    page.get_by_test_id("pin-submit").click()
    expect_screen(page, "result")
    assert page.get_by_test_id("screen-result").get_attribute("data-outcome") == "verified"
    assert card_state.auth_pin.tries_left == 3  # a correct PIN resets the counter
    assert (
        provider_result(service_url, service_accounts.provider_a_key, session["id"])["status"]
        == "verified"
    )


def test_last_try_needs_an_extra_confirmation(
    agent: Agent,
    open_kiosk: OpenKiosk,
    service_url: str,
    service_accounts: ServiceAccounts,
    card_in_reader: VpcdBridge,
    card_state: CardState,
    screenshots: Screenshots,
) -> None:
    card_state.auth_pin.tries_left = 1  # two wrong PINs on an earlier day
    session = create_session(service_url, service_accounts.provider_a_key, mode="auth")
    page = open_kiosk(agent)
    enter_code(page, session["user_code"])
    page.get_by_test_id("consent-yes").click()
    expect_screen(page, "pin")
    assert page.get_by_test_id("pin-last-try").is_visible()
    type_pin(page, AUTH_PIN)
    page.get_by_test_id("pin-submit").click()

    dialog = page.get_by_test_id("last-try-dialog")
    dialog.wait_for(state="visible")
    _shown(page, screenshots, "last-try-confirmation")
    page.get_by_test_id("last-try-back").click()
    assert not dialog.is_visible()
    assert card_state.auth_pin.tries_left == 1  # backing out sent nothing to the card
    expect_screen(page, "pin")

    type_pin(page, AUTH_PIN)
    page.get_by_test_id("pin-submit").click()
    dialog.wait_for(state="visible")
    page.get_by_test_id("last-try-go").click()
    expect_screen(page, "result")
    assert page.get_by_test_id("screen-result").get_attribute("data-outcome") == "verified"
    assert card_state.auth_pin.tries_left == 3


def test_card_removed_at_the_pin_step(
    agent: Agent,
    open_kiosk: OpenKiosk,
    service_url: str,
    service_accounts: ServiceAccounts,
    card_in_reader: VpcdBridge,
    pcsc_reader: str,
    screenshots: Screenshots,
) -> None:
    session = create_session(
        service_url, service_accounts.provider_a_key, mode="identity", claims=["name"]
    )
    page = open_kiosk(agent)
    enter_code(page, session["user_code"])
    page.get_by_test_id("consent-yes").click()
    expect_screen(page, "pin")
    type_pin(page, AUTH_PIN)
    page.get_by_test_id("pin-submit").click()
    expect_screen(page, "password")

    remove_card(card_in_reader, pcsc_reader)
    expect_screen(page, "insert_card")
    notice = page.get_by_test_id("notice")
    notice.wait_for(state="visible")
    assert "カードが取り外されました" in notice.inner_text()
    _shown(page, screenshots, "card-removed")

    insert_card(card_in_reader, pcsc_reader)
    # The first signature went with the old connection: the PIN is asked again.
    expect_screen(page, "pin")
    type_pin(page, AUTH_PIN)
    page.get_by_test_id("pin-submit").click()
    expect_screen(page, "password")
    type_password(page, SIGN_PASSWORD)
    page.get_by_test_id("password-submit").click()
    expect_screen(page, "result")
    assert page.get_by_test_id("screen-result").get_attribute("data-outcome") == "verified"


def test_cancel_clears_the_screen_and_the_session_can_resume(
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
    page.get_by_test_id("cancel").click()
    expect_screen(page, "start")
    assert page.get_by_test_id("code-display").inner_text() == ""

    enter_code(page, session["user_code"])
    page.get_by_test_id("consent-yes").click()
    expect_screen(page, "pin")
    type_pin(page, "12")
    page.get_by_test_id("cancel").click()
    expect_screen(page, "start")
    assert agent_state(agent.url)["step"] == "start"
    assert (
        provider_result(service_url, service_accounts.provider_a_key, session["id"])["status"]
        == "awaiting_card"
    )

    # The same person comes back: the consent given here stands, the PIN is asked afresh.
    enter_code(page, session["user_code"])
    page.get_by_test_id("consent-yes").click()
    expect_screen(page, "pin")
    assert page.get_by_test_id("pin-display").locator("span.filled").count() == 0
    type_pin(page, AUTH_PIN)
    page.get_by_test_id("pin-submit").click()
    expect_screen(page, "result")
    assert page.get_by_test_id("screen-result").get_attribute("data-outcome") == "verified"


def test_inactivity_clears_the_screen_for_the_next_person(
    start_agent: Callable[..., Agent],
    open_kiosk: OpenKiosk,
    service_url: str,
    service_accounts: ServiceAccounts,
    card_in_reader: VpcdBridge,
    screenshots: Screenshots,
) -> None:
    agent = start_agent(inactivity_timeout_seconds=3.0)
    session = create_session(service_url, service_accounts.provider_a_key, mode="auth")
    page = open_kiosk(agent)
    enter_code(page, session["user_code"])
    page.get_by_test_id("consent-yes").click()
    expect_screen(page, "pin")
    page.get_by_test_id("lang-toggle").click()
    type_pin(page, "12")
    page.get_by_test_id("idle-dialog").wait_for(state="visible", timeout=5_000)
    _shown(page, screenshots, "idle-prompt")

    expect_screen(page, "start")
    assert page.get_by_test_id("code-display").inner_text() == ""
    assert page.get_by_test_id("lang-toggle").inner_text() == "English"  # back to Japanese
    assert agent_state(agent.url)["step"] == "start"


def test_blocked_pin_is_explained(
    agent: Agent,
    open_kiosk: OpenKiosk,
    service_url: str,
    service_accounts: ServiceAccounts,
    card_in_reader: VpcdBridge,
    card_state: CardState,
    screenshots: Screenshots,
) -> None:
    card_state.auth_pin.tries_left = 0
    session = create_session(service_url, service_accounts.provider_a_key, mode="auth")
    page = open_kiosk(agent)
    enter_code(page, session["user_code"])
    page.get_by_test_id("consent-yes").click()
    expect_screen(page, "result")
    assert page.get_by_test_id("screen-result").get_attribute("data-outcome") == "pin_blocked"
    assert "市区町村の窓口" in page.get_by_test_id("result-advice").inner_text()
    _shown(page, screenshots, "pin-blocked")


class _NotAMyNumberCard:
    """A contact card without the JPKI application: every SELECT answers 6A82."""

    atr = bytes.fromhex("3B8F8001804F0CA000000306030001000000006A")

    def power_on(self) -> None: ...

    def power_off(self) -> None: ...

    def reset(self) -> None: ...

    def process_apdu(self, command: bytes) -> bytes:
        return bytes.fromhex("6A82")


def test_a_card_that_is_not_a_my_number_card(
    agent: Agent,
    open_kiosk: OpenKiosk,
    service_url: str,
    service_accounts: ServiceAccounts,
    pcsc_reader: str,
    virtual_card: VirtualMyNumberCard,
    screenshots: Screenshots,
) -> None:
    session = create_session(service_url, service_accounts.provider_a_key, mode="auth")
    page = open_kiosk(agent)
    enter_code(page, session["user_code"])
    page.get_by_test_id("consent-yes").click()
    expect_screen(page, "insert_card")
    other = VpcdBridge(_NotAMyNumberCard())
    insert_card(other, pcsc_reader)
    try:
        notice = page.get_by_test_id("notice")
        notice.wait_for(state="visible", timeout=15_000)
        assert "マイナンバーカードではありません" in notice.inner_text()
        _shown(page, screenshots, "not-my-number-card")
    finally:
        remove_card(other, pcsc_reader)
    right = VpcdBridge(virtual_card)
    insert_card(right, pcsc_reader)
    try:
        expect_screen(page, "pin")
    finally:
        remove_card(right, pcsc_reader)


@pytest.fixture
def expired_card(test_hierarchy: Hierarchy, test_now: dt.datetime) -> VirtualMyNumberCard:
    """A card whose certificates ended an hour after the test CA issued them."""
    person = make_person(
        test_hierarchy, not_before=test_now, not_after=test_now + dt.timedelta(hours=1)
    )
    if dt.datetime.now(dt.UTC) < person.auth_certificate.not_valid_after_utc:
        pytest.skip("the machine's clock is before the test certificates' end")
    return VirtualMyNumberCard(card_state_for(test_hierarchy, person))


def test_an_expired_certificate_is_explained(
    agent: Agent,
    open_kiosk: OpenKiosk,
    service_url: str,
    service_accounts: ServiceAccounts,
    pcsc_reader: str,
    expired_card: VirtualMyNumberCard,
    screenshots: Screenshots,
) -> None:
    session = create_session(service_url, service_accounts.provider_a_key, mode="auth")
    bridge = VpcdBridge(expired_card)
    insert_card(bridge, pcsc_reader)
    try:
        page = open_kiosk(agent)
        enter_code(page, session["user_code"])
        page.get_by_test_id("consent-yes").click()
        expect_screen(page, "pin")
        type_pin(page, AUTH_PIN)
        page.get_by_test_id("pin-submit").click()
        expect_screen(page, "result")
        outcome = page.get_by_test_id("screen-result").get_attribute("data-outcome")
        assert outcome == "certificate_expired"
        assert "更新" in page.get_by_test_id("result-advice").inner_text()
        _shown(page, screenshots, "certificate-expired")
    finally:
        remove_card(bridge, pcsc_reader)
    result = provider_result(service_url, service_accounts.provider_a_key, session["id"])
    assert result["status"] == "rejected"
    assert result["reason_code"] == "certificate_expired"


def test_consent_document_signed_at_the_kiosk(
    agent: Agent,
    open_kiosk: OpenKiosk,
    service_url: str,
    service_accounts: ServiceAccounts,
    card_in_reader: VpcdBridge,
    card_state: CardState,
    screenshots: Screenshots,
) -> None:
    session = create_session(
        service_url,
        service_accounts.provider_a_key,
        mode="identity",
        claims=["name", "birthdate", "address"],
        document="consent",
    )
    page = open_kiosk(agent)
    enter_code(page, session["user_code"])
    expect_screen(page, "consent")
    assert "同意書" in page.get_by_test_id("method").inner_text()
    page.get_by_test_id("consent-yes").click()
    expect_screen(page, "pin")
    type_pin(page, AUTH_PIN)
    page.get_by_test_id("pin-submit").click()
    expect_screen(page, "password")
    type_password(page, SIGN_PASSWORD)
    page.get_by_test_id("password-submit").click()

    # Verified; the document's text, and the password asked for again.
    expect_screen(page, "document")
    assert page.get_by_test_id("document-provider").inner_text() == "Provider A"
    assert "口座開設" in page.get_by_test_id("document-purpose").inner_text()
    assert page.get_by_test_id("document-claims").locator("li").all_inner_texts() == [
        "氏名",
        "生年月日",
        "住所",
    ]
    assert "JST" in page.get_by_test_id("document-date").inner_text()
    # Three attributes consented: the signed PDF (its certificate has all four) is withheld.
    assert "渡されません" in page.get_by_test_id("document-disclosure").inner_text()
    assert page.get_by_test_id("document-tries").inner_text().endswith("5回")
    assert "山田" not in page.content()
    _shown(page, screenshots, "document")
    page.get_by_test_id("lang-toggle").click()
    assert page.get_by_test_id("document-submit").inner_text() == "Sign"
    assert "is not given" in page.get_by_test_id("document-disclosure").inner_text()
    _shown(page, screenshots, "document-english")
    page.get_by_test_id("lang-toggle").click()

    # A wrong password: the notice, one try fewer, the same document.
    for character in "WRONG1":
        page.get_by_test_id(f"document-key-{character}").click()
    page.get_by_test_id("document-submit").click()
    page.get_by_test_id("notice").wait_for(state="visible")
    expect_screen(page, "document")
    assert "署名用パスワードが違います" in page.get_by_test_id("notice").inner_text()
    assert page.get_by_test_id("document-tries").inner_text().endswith("4回")
    assert page.get_by_test_id("document-display").locator("span.filled").count() == 0
    _shown(page, screenshots, "wrong-password")

    # Down to the last try behind the kiosk's back (another program used two):
    # jpki reads the tries first and sends nothing without the confirmation...
    card_state.sign_password.tries_left = 1
    for character in SIGN_PASSWORD:
        page.get_by_test_id(f"document-key-{character}").click()
    page.get_by_test_id("document-submit").click()
    expect_screen(page, "document")
    page.get_by_test_id("notice").wait_for(state="visible")
    assert card_state.sign_password.tries_left == 1
    assert page.get_by_test_id("document-last-try").is_visible()
    _shown(page, screenshots, "last-try")
    # ...and the page then asks once more before the password goes to the card.
    for character in SIGN_PASSWORD:
        page.get_by_test_id(f"document-key-{character}").click()
    page.get_by_test_id("document-submit").click()
    dialog = page.get_by_test_id("last-try-dialog")
    dialog.wait_for(state="visible")
    page.get_by_test_id("last-try-go").click()

    expect_screen(page, "result")
    assert page.get_by_test_id("screen-result").get_attribute("data-outcome") == "document_signed"
    assert "署名が完了しました" in page.get_by_test_id("result-title").inner_text()
    _shown(page, screenshots, "signed")

    result = provider_result(service_url, service_accounts.provider_a_key, session["id"])
    assert result["document"]["status"] == "signed"
    assert len(result["documents"]) == 1
    traffic = sent_to_service(agent.service_traffic)
    assert SIGN_PASSWORD.encode() not in traffic and b"WRONG1" not in traffic


def test_cancel_at_the_document_step(
    agent: Agent,
    open_kiosk: OpenKiosk,
    service_url: str,
    service_accounts: ServiceAccounts,
    card_in_reader: VpcdBridge,
) -> None:
    page, session = _at_document_step(agent, open_kiosk, service_url, service_accounts)
    for character in "ABC":
        page.get_by_test_id(f"document-key-{character}").click()
    page.get_by_test_id("cancel").click()
    expect_screen(page, "start")
    assert agent_state(agent.url)["step"] == "start"
    # Typed characters are gone from the page too.
    assert page.get_by_test_id("document-display").locator("span.filled").count() == 0
    result = provider_result(service_url, service_accounts.provider_a_key, session["id"])
    assert result["status"] == "verified" and result["documents"] == []


def test_declining_to_sign_the_document(
    agent: Agent,
    open_kiosk: OpenKiosk,
    service_url: str,
    service_accounts: ServiceAccounts,
    card_in_reader: VpcdBridge,
    screenshots: Screenshots,
) -> None:
    page, session = _at_document_step(agent, open_kiosk, service_url, service_accounts)
    assert page.get_by_test_id("document-decline").inner_text() == "署名しない"
    page.get_by_test_id("document-decline").click()
    expect_screen(page, "result")
    assert page.get_by_test_id("screen-result").get_attribute("data-outcome") == "document_declined"
    assert "署名しませんでした" in page.get_by_test_id("result-title").inner_text()
    _shown(page, screenshots, "declined")
    result = provider_result(service_url, service_accounts.provider_a_key, session["id"])
    assert result["status"] == "verified"
    assert result["document"]["status"] == "declined" and result["documents"] == []
