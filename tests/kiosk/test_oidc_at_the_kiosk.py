"""Signing in to a provider with OpenID Connect, the card step done at the kiosk.

Everything real: Authlib's client as the provider's back end, Chromium as the
person's browser on Common-ID's sign-in page, a second Chromium page as the
kiosk with the agent driving the virtual card through pcscd and vpcd.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
from authlib.common.security import generate_token
from commonid_kiosk.app import create_app as create_agent_app
from commonid_kiosk.settings import KioskSettings

from jpki.emulator.vpcd import VpcdBridge
from tests.fixtures.card import AUTH_PIN, SIGN_PASSWORD
from tests.fixtures.oidc import CARD, REUSE, OpenIdProvider, id_token_claims, rp_a, rp_b

from .conftest import VIEWPORT, Agent, RecordingTransport, Screenshots, serve_in_thread
from .kiosk_helpers import STEP_TIMEOUT_MS, enter_code, expect_screen, type_password, type_pin
from .page_checks import assert_accessible

pytestmark = [pytest.mark.pcsc, pytest.mark.browser]


@pytest.fixture
def op_agent(op: OpenIdProvider, pcsc_reader: str) -> Iterator[Agent]:
    """The kiosk agent for that service, owning the vpcd reader."""
    settings = KioskSettings(service_url=op.url, credential=op.kiosk_credential, reader=pcsc_reader)
    traffic = RecordingTransport()
    app = create_agent_app(settings, service_transport=traffic)
    context = serve_in_thread(app)
    url = context.__enter__()
    yield Agent(url=url, app=app, service_traffic=traffic)
    context.__exit__(None, None, None)


def _sign_in(
    chromium: Any,
    op: OpenIdProvider,
    rp: Any,
    kiosk_page: Any,
    *,
    scope: str,
    at_the_kiosk: Callable[[Any], None],
    here: str | None = None,
    screenshots: Any = None,
    **extra: str,
) -> tuple[dict[str, Any], Any, dict[str, Any]]:
    discovery = op.discovery
    nonce, verifier = generate_token(20), generate_token(48)
    url, state = rp.create_authorization_url(
        discovery["authorization_endpoint"],
        scope=scope,
        nonce=nonce,
        code_verifier=verifier,
        **extra,
    )
    person = chromium.new_context(viewport=VIEWPORT, locale="ja-JP").new_page()
    redirect = urlsplit(rp.redirect_uri)
    back_home = f"{redirect.scheme}://{redirect.netloc}"  # the provider's site
    person.route(f"{back_home}/**", lambda route: route.fulfill(status=200, body="back"))
    person.goto(url)
    code = person.get_by_test_id("user-code")
    code.wait_for(state="visible")
    person.wait_for_function("document.getElementById('user-code').textContent.length > 0")
    assert_accessible(person)
    if screenshots is not None:
        person.wait_for_selector("#user-code-qr:not([hidden])")
        screenshots.take(person, "sign-in-page")
    if here is None:
        enter_code(kiosk_page, code.inner_text())
    else:
        # This computer runs the agent: the page's link opens it with the code typed in.
        link = person.get_by_test_id("use-this-computer").get_attribute("href")
        assert link == f"http://127.0.0.1:8765/?code={code.inner_text()}"
        kiosk_page.goto(f"{here}/?code={code.inner_text()}")
        kiosk_page.wait_for_selector("body[data-ready='true']")
        assert "?code" not in kiosk_page.url  # a reload starts clean
        kiosk_page.get_by_test_id("code-submit").click()
        expect_screen(kiosk_page, "consent")
    kiosk_page.get_by_test_id("consent-yes").click()
    at_the_kiosk(kiosk_page)
    person.wait_for_url(f"{back_home}/**", timeout=STEP_TIMEOUT_MS)
    token = rp.fetch_token(
        discovery["token_endpoint"], authorization_response=person.url, code_verifier=verifier
    )
    assert f"state={state}" in person.url
    person.context.close()
    claims = id_token_claims(op, token["id_token"], rp.client_id, nonce)
    return token, claims, rp.get(discovery["userinfo_endpoint"]).json()


def test_identity_at_provider_a_then_reuse_at_provider_b_through_the_kiosk(
    chromium: Any,
    op: OpenIdProvider,
    op_agent: Agent,
    open_kiosk: Callable[..., Any],
    card_in_reader: VpcdBridge,
    screenshots: Screenshots,
) -> None:
    kiosk = open_kiosk(op_agent)

    def pin_and_password(page: Any) -> None:
        expect_screen(page, "pin")
        type_pin(page, AUTH_PIN)
        page.get_by_test_id("pin-submit").click()
        expect_screen(page, "password")
        type_password(page, SIGN_PASSWORD)
        page.get_by_test_id("password-submit").click()
        expect_screen(page, "result")
        assert page.get_by_test_id("screen-result").get_attribute("data-outcome") == "verified"
        page.get_by_test_id("result-done").click()

    _token, id_token, userinfo = _sign_in(
        chromium,
        op,
        rp_a(op),
        kiosk,
        scope="openid name birthdate address",
        at_the_kiosk=pin_and_password,
        screenshots=screenshots,
    )
    assert id_token.claims["acr"] == CARD
    assert userinfo["name"] == "山田\u3000太郎"
    assert set(userinfo) == {"sub", "name", "birthdate", "address"}

    def pin_only(page: Any) -> None:
        expect_screen(page, "pin")
        type_pin(page, AUTH_PIN)
        page.get_by_test_id("pin-submit").click()
        expect_screen(page, "result")
        assert page.get_by_test_id("screen-result").get_attribute("data-outcome") == "reuse_granted"

    _token, id_token, reused = _sign_in(
        chromium,
        op,
        rp_b(op),
        kiosk,
        scope="openid name birthdate address",
        at_the_kiosk=pin_only,
        here=op_agent.url,
        acr_values=REUSE,
    )
    assert id_token.claims["acr"] == REUSE
    assert reused["name"] == userinfo["name"]
    assert reused["sub"] != userinfo["sub"]  # pairwise
