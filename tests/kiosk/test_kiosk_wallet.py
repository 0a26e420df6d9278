"""A card-bound presentation driven by the kiosk agent, in Chromium, with the card in the
vpcd reader: the person's wallet asks the agent to have the card sign the key binding
JWT; the kiosk page shows the verifier and the claims and takes the PIN; the verifier
accepts the presentation as bound to the card. The wallet never sees the PIN."""

from __future__ import annotations

import threading
from typing import Any

import httpx
import pytest

from commonid.card_answer import answer_challenge
from commonid.client import KioskClient, ProviderClient
from commonid.wallet.card import JpkiCardBinding
from commonid.wallet.holder import Holder, KioskKeyBinding, WalletError, WalletFile
from jpki.card import JPKICard
from jpki.emulator.vpcd import VpcdBridge
from jpki.transport import PcscTransport
from tests.fixtures.card import AUTH_PIN, SIGN_PASSWORD
from tests.fixtures.service import ServiceAccounts

from .conftest import Agent, Screenshots
from .kiosk_helpers import expect_screen, type_pin

pytestmark = [pytest.mark.browser, pytest.mark.pcsc]

OVER_20 = {
    "credentials": [
        {
            "id": "identity",
            "format": "dc+sd-jwt",
            "meta": {"vct_values": ["urn:jp:commonid:vct:jpki-identity:1"]},
            "claims": [{"path": ["age_equal_or_over", "20"]}],
        }
    ]
}


class _PublicUrl(httpx.HTTPTransport):
    """The service's public URL (settings' default, http://localhost:8000) reaches the
    test's server, as DNS and a proxy would in production."""

    def __init__(self, service_url: str) -> None:
        super().__init__()
        self.target = httpx.URL(service_url)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.host == "localhost" and request.url.port == 8000:
            request.url = request.url.copy_with(host=self.target.host, port=self.target.port)
        return super().handle_request(request)


def _card_bound_credential(
    service_url: str, accounts: ServiceAccounts, reader: str, holder: Holder
) -> None:
    """Verified at a kiosk (the API, the card over PC/SC), then the offer taken with the
    card binding: the card signs the proof of possession."""
    provider = ProviderClient(service_url, accounts.provider_a_key)
    created = provider.create_session(mode="identity", claims=["name"], purpose="口座開設")
    transport = PcscTransport.connect(reader)
    try:
        card = JPKICard(transport)
        with KioskClient(service_url, accounts.kiosk_credential) as kiosk:
            shown = kiosk.session(created.user_code)
            kiosk.consent(shown.id)
            kiosk.submit_card_answer(
                shown.id,
                answer_challenge(
                    card,
                    shown.challenge.to_be_signed,
                    auth_pin=AUTH_PIN,
                    sign_password=SIGN_PASSWORD,
                ),
            )
            offer = kiosk.credential_offer(shown.id)
        with JpkiCardBinding.open(card, AUTH_PIN) as binding:
            holder.receive(offer["offer_uri"], offer["tx_code"], card=binding)
    finally:
        transport.close()
        provider.close()


def test_a_card_bound_presentation_signed_at_the_kiosk(
    agent: Agent,
    open_kiosk: Any,
    service_url: str,
    service_accounts: ServiceAccounts,
    card_in_reader: VpcdBridge,
    pcsc_reader: str,
    screenshots: Screenshots,
    tmp_path: Any,
) -> None:
    http = httpx.Client(transport=_PublicUrl(service_url), timeout=60)
    holder = Holder(WalletFile.open(tmp_path / "wallet.json"), http)
    _card_bound_credential(service_url, service_accounts, pcsc_reader, holder)
    provider_b = {"Authorization": f"Bearer {service_accounts.provider_b_key}"}
    request = http.post(
        f"{service_url}/v1/presentation-requests",
        json={"dcql_query": OVER_20},
        headers=provider_b,
    ).json()

    page = open_kiosk(agent)
    expect_screen(page, "start")
    outcome: dict[str, Any] = {}

    def wallet() -> None:  # the person's wallet, waiting for the card's signature
        try:
            holder.present(request["authorization_request"], kiosk=KioskKeyBinding(agent.url, http))
            outcome["presented"] = True
        except WalletError as error:
            outcome["error"] = error

    waiting = threading.Thread(target=wallet, daemon=True)
    waiting.start()
    expect_screen(page, "pin")
    assert page.get_by_test_id("key-binding-info").is_visible()
    assert page.get_by_test_id("key-binding-verifier").inner_text().endswith("/oid4vp/response")
    assert page.get_by_test_id("key-binding-claims").inner_text() == "age_equal_or_over.20"
    assert "カードで提示します" in page.locator("#title-pin").inner_text()
    type_pin(page, AUTH_PIN)
    screenshots.take(page, "key-binding-pin")
    page.get_by_test_id("pin-submit").click()
    expect_screen(page, "result")
    assert page.get_by_test_id("screen-result").get_attribute("data-outcome") == (
        "presentation_signed"
    )
    waiting.join(timeout=60)
    assert outcome == {"presented": True}, outcome

    result = http.get(
        f"{service_url}/v1/presentation-requests/{request['id']}", headers=provider_b
    ).json()
    assert result["status"] == "verified", result
    shown = result["credentials"]["identity"]
    assert shown["holder_binding"] == "card"
    assert shown["claims"] == {"age_equal_or_over": {"20": True}}
    # The PIN went from the page to the agent to the card, never to the wallet or service.
    assert AUTH_PIN.encode() not in b"\n".join(agent.service_traffic.sent)

    # Cancelled at the kiosk: the wallet is told, nothing is presented.
    page.get_by_test_id("result-done").click()
    expect_screen(page, "start")
    second = http.post(
        f"{service_url}/v1/presentation-requests",
        json={"dcql_query": OVER_20},
        headers=provider_b,
    ).json()
    outcome.clear()
    holder_second = threading.Thread(
        target=lambda: _present_expecting_refusal(holder, second, agent, http, outcome),
        daemon=True,
    )
    holder_second.start()
    expect_screen(page, "pin")
    page.get_by_test_id("cancel").click()
    holder_second.join(timeout=60)
    assert outcome.get("code") == "key_binding_refused", outcome
    pending = http.get(
        f"{service_url}/v1/presentation-requests/{second['id']}", headers=provider_b
    ).json()
    assert pending["status"] == "pending"


def _present_expecting_refusal(
    holder: Holder, request: dict, agent: Agent, http: httpx.Client, outcome: dict
) -> None:
    try:
        holder.present(request["authorization_request"], kiosk=KioskKeyBinding(agent.url, http))
    except WalletError as error:
        outcome["code"] = error.code
