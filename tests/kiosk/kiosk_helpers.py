"""Driving the kiosk page the way staff and the person do: touch the on-screen keys."""

from __future__ import annotations

from typing import Any

import httpx

from tests.fixtures.pcsc import wait_for_card_state

STEP_TIMEOUT_MS = 15_000


def create_session(service_url: str, provider_key: str, **body: Any) -> dict[str, Any]:
    """What a provider's back end does: create a session, get the user code for the kiosk."""
    body.setdefault("purpose", "口座開設のための本人確認（犯罪収益移転防止法）")
    response = httpx.post(
        f"{service_url}/v1/sessions",
        json=body,
        headers={"Authorization": f"Bearer {provider_key}"},
        timeout=30,
    )
    assert response.status_code == 201, response.text
    return response.json()


def provider_result(service_url: str, provider_key: str, session_id: str) -> dict[str, Any]:
    response = httpx.get(
        f"{service_url}/v1/sessions/{session_id}",
        headers={"Authorization": f"Bearer {provider_key}"},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    return response.json()


def agent_state(agent_url: str) -> dict[str, Any]:
    return httpx.get(f"{agent_url}/api/state", timeout=10).json()


def expect_screen(page: Any, step: str) -> None:
    page.get_by_test_id(f"screen-{step}").wait_for(state="visible", timeout=STEP_TIMEOUT_MS)


def type_code(page: Any, user_code: str) -> None:
    for character in user_code:
        page.get_by_test_id(f"code-key-{character}").click()


def enter_code(page: Any, user_code: str) -> None:
    expect_screen(page, "start")
    type_code(page, user_code)
    page.get_by_test_id("code-submit").click()


def type_pin(page: Any, pin: str) -> None:
    for digit in pin:
        page.get_by_test_id(f"pin-key-{digit}").click()


def type_password(page: Any, password: str) -> None:
    for character in password:
        page.get_by_test_id(f"password-key-{character}").click()


def remove_card(bridge: Any, reader: str) -> None:
    bridge.remove()
    wait_for_card_state(reader, present=False)


def insert_card(bridge: Any, reader: str) -> None:
    bridge.insert()
    wait_for_card_state(reader, present=True)


def sent_to_service(traffic: Any) -> bytes:
    return b"\n".join(traffic.sent)
