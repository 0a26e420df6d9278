"""The agent without a browser: its HTTP API, the reader events, and how it treats PINs.

Card parts run over pcscd + vpcd; the service is the real app under uvicorn.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from commonid_kiosk.card_session import CardSession
from commonid_kiosk.secret_entry import SecretEntry
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from commonid.runtime import Runtime
from jpki.card import PinKind
from jpki.emulator.card import VirtualMyNumberCard
from jpki.emulator.state import CardState
from jpki.emulator.vpcd import VpcdBridge
from jpki.errors import WrongPinError
from jpki.testca import Hierarchy
from tests.fixtures.card import AUTH_PIN, SIGN_PASSWORD
from tests.fixtures.jpki import make_person
from tests.fixtures.service import ServiceAccounts

from .conftest import Agent, card_state_for
from .kiosk_helpers import create_session, insert_card, provider_result, remove_card


def test_secret_entry_is_wiped_and_never_shows_itself() -> None:
    entry = SecretEntry("4321")
    assert "4321" not in repr(entry) and "4321" not in str(entry)
    with entry.revealed() as pin:
        assert pin == "4321"
    with entry:
        pass
    assert entry.wiped
    with entry.revealed() as pin:
        assert pin == "\0" * 4


@pytest.mark.pcsc
def test_card_step_signs_and_wipes_the_pin(card_in_reader: VpcdBridge, pcsc_reader: str) -> None:
    card = CardSession.open(pcsc_reader)
    try:
        status = card.status(with_sign=True)
        assert (status.auth_tries_left, status.sign_tries_left) == (3, 5)
        wrong = SecretEntry("9999")
        with pytest.raises(WrongPinError):
            card.sign(PinKind.AUTH, wrong, b"challenge", confirm_last_try=False)
        assert wrong.wiped
        right = SecretEntry(AUTH_PIN)
        signed = card.sign(PinKind.AUTH, right, b"challenge", confirm_last_try=False)
        assert right.wiped
    finally:
        card.close()
    public_key = x509.load_der_x509_certificate(signed.certificate).public_key()
    assert isinstance(public_key, rsa.RSAPublicKey)
    public_key.verify(signed.signature, b"challenge", padding.PKCS1v15(), hashes.SHA256())


def _read_events(
    response: httpx.Response, found: list[dict[str, Any]], stop: threading.Event
) -> None:
    event = None
    try:
        for line in response.iter_lines():
            if line.startswith("event: "):
                event = line.removeprefix("event: ")
            elif line.startswith("data: ") and event == "reader":
                found.append(json.loads(line.removeprefix("data: ")))
            if stop.is_set():
                return
    except httpx.HTTPError:
        return  # the test closed the stream


@pytest.mark.pcsc
def test_reader_events_follow_the_card(
    agent: Agent, card_in_reader: VpcdBridge, pcsc_reader: str
) -> None:
    found: list[dict[str, Any]] = []
    stop = threading.Event()
    with (
        httpx.Client(timeout=httpx.Timeout(30, read=30)) as client,
        client.stream("GET", agent.url + "/api/events") as response,
    ):
        assert response.headers["content-type"].startswith("text/event-stream")
        reader_thread = threading.Thread(
            target=_read_events, args=(response, found, stop), daemon=True
        )
        reader_thread.start()
        remove_card(card_in_reader, pcsc_reader)
        insert_card(card_in_reader, pcsc_reader)
        # A card put down is asked what it is (SELECT of the JPKI AP) before it is named.
        _wait_until(
            lambda: [e["card"] for e in found][-3:] == ["none", "checking", "my_number_card"]
        )
        stop.set()
    assert [e["card_present"] for e in found][-3:] == [False, True, True]
    assert found[0]["reader"] == pcsc_reader
    assert found[0]["service_available"] is True


def _wait_until(condition: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def _visits(runtime: Runtime) -> list[dict[str, Any]]:
    """The kiosk's visit reports as the service logged them."""
    assert runtime.audit is not None
    return [
        json.loads(logged.entry)["data"]
        for logged in runtime.audit.entries(event_type="kiosk.visit_ended")
    ]


def _last_call(agent: Agent) -> str:
    """The agent's last call to the service about the person's session (the visit's
    report, sent when a visit ends, and the wallet offer after a verification, aside)."""
    return [
        path
        for path in agent.service_traffic.paths
        if not path.endswith(("/visit", "/credential-offer"))
    ][-1]


def _post(agent: Agent, path: str, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(agent.url + path, json=body, timeout=30)


def _to_pin_step(agent: Agent, service_url: str, accounts: ServiceAccounts, **body: Any) -> dict:
    session = create_session(service_url, accounts.provider_a_key, **body)
    assert (
        _post(agent, "/api/session/lookup", {"user_code": session["user_code"]}).json()["step"]
        == "consent"
    )
    assert _post(agent, "/api/session/consent", {"approved": True}).json()["step"] == "insert_card"
    assert _post(agent, "/api/session/card", {}).json()["step"] == "pin"
    return session


def _to_document_step(
    agent: Agent, service_url: str, accounts: ServiceAccounts, claims: list[str], series: str
) -> tuple[dict, dict]:
    """An identity session with the consent document, PIN and password entered (entries
    ``entry-<series>01`` and ``-02``): the session, and the agent's state, at the document."""
    session = _to_pin_step(
        agent, service_url, accounts, mode="identity", claims=claims, document="consent"
    )
    _post(agent, "/api/session/pin", {"pin": AUTH_PIN, "entry_id": f"entry-{series}01"})
    shown = _post(
        agent, "/api/session/password", {"password": SIGN_PASSWORD, "entry_id": f"entry-{series}02"}
    ).json()
    return session, shown


@pytest.mark.pcsc
def test_one_pin_entry_reaches_the_card_once(
    agent: Agent,
    service_runtime: Runtime,
    service_url: str,
    service_accounts: ServiceAccounts,
    card_in_reader: VpcdBridge,
    card_state: CardState,
) -> None:
    _to_pin_step(agent, service_url, service_accounts, mode="auth")
    entry = {"pin": "9999", "entry_id": "entry-0001", "confirm_last_try": False}
    first = _post(agent, "/api/session/pin", entry)
    assert first.json()["notice"]["code"] == "wrong_pin"
    assert card_state.auth_pin.tries_left == 2
    # A double tap or a retried request carries the same entry: refused, nothing sent.
    again = _post(agent, "/api/session/pin", entry)
    assert again.status_code == 409
    assert "9999" not in again.text
    assert card_state.auth_pin.tries_left == 2
    # Cancelled by staff: the visit is reported with its one wrong PIN, counted once.
    assert _post(agent, "/api/session/cancel", {}).json()["step"] == "start"
    (visit,) = _visits(service_runtime)
    assert visit["outcome"] == "cancelled"
    assert (visit["pin_wrong"], visit["password_wrong"], visit["card_blocked"]) == (1, 0, 0)
    assert visit["card_ms"] > 0 and visit["duration_ms"] >= visit["card_ms"]


@pytest.mark.pcsc
def test_last_try_without_confirmation_sends_nothing(
    agent: Agent,
    service_url: str,
    service_accounts: ServiceAccounts,
    card_in_reader: VpcdBridge,
    card_state: CardState,
) -> None:
    card_state.auth_pin.tries_left = 1
    _to_pin_step(agent, service_url, service_accounts, mode="auth")
    answer = _post(agent, "/api/session/pin", {"pin": "9999", "entry_id": "entry-0002"}).json()
    assert answer["step"] == "pin"
    assert answer["notice"]["code"] == "last_try"
    assert card_state.auth_pin.tries_left == 1


def test_malformed_pin_requests_are_refused_without_echo(agent: Agent) -> None:
    not_text = _post(agent, "/api/session/pin", {"pin": 8642, "entry_id": "entry-0003"})
    assert not_text.status_code == 400
    assert "8642" not in not_text.text
    out_of_step = _post(agent, "/api/session/pin", {"pin": "8642", "entry_id": "entry-0004"})
    assert out_of_step.status_code == 409
    assert "8642" not in out_of_step.text
    assert out_of_step.json()["state"]["step"] == "start"


@pytest.mark.pcsc
def test_identity_flow_over_the_api_keeps_secrets_out_of_logs_and_service(
    agent: Agent,
    service_url: str,
    service_accounts: ServiceAccounts,
    card_in_reader: VpcdBridge,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    session = _to_pin_step(
        agent, service_url, service_accounts, mode="identity", claims=["name", "address"]
    )
    answer = _post(agent, "/api/session/pin", {"pin": AUTH_PIN, "entry_id": "entry-0005"}).json()
    assert answer["step"] == "password"
    assert answer["card"]["sign_tries_left"] == 5
    answer = _post(
        agent,
        "/api/session/password",
        {"password": SIGN_PASSWORD.lower(), "entry_id": "entry-0006"},  # case-insensitive
    ).json()
    assert answer["step"] == "result"
    assert answer["result"]["success"] is True
    assert (
        provider_result(service_url, service_accounts.provider_a_key, session["id"])["status"]
        == "verified"
    )
    # The kiosk's own view carries no personal attribute.
    assert "山田" not in json.dumps(answer, ensure_ascii=False)
    assert SIGN_PASSWORD not in caplog.text and SIGN_PASSWORD.lower() not in caplog.text
    sent = b"\n".join(agent.service_traffic.sent)
    assert SIGN_PASSWORD.lower().encode() not in sent and SIGN_PASSWORD.encode() not in sent
    # The card response, the wallet offer shown with the result, then the visit's
    # report (counts and times only).
    assert agent.service_traffic.paths[-3].endswith("/card-response")
    assert agent.service_traffic.paths[-2].endswith("/credential-offer")
    assert agent.service_traffic.paths[-1].endswith("/visit")
    assert answer["result"]["wallet_offer"]["offer_uri"].startswith("openid-credential-offer://")
    assert b"\\u5c71\\u7530" not in agent.service_traffic.sent[-1]  # no name, escaped or not
    assert "山田".encode() not in agent.service_traffic.sent[-1]


def test_declining_ends_the_session_without_the_card(
    agent: Agent, service_url: str, service_accounts: ServiceAccounts
) -> None:
    session = create_session(service_url, service_accounts.provider_a_key, mode="auth")
    _post(agent, "/api/session/lookup", {"user_code": session["user_code"].lower()})
    answer = _post(agent, "/api/session/consent", {"approved": False}).json()
    assert answer["step"] == "result"
    assert answer["result"] == answer["result"] | {"success": False, "code": "declined"}
    result = provider_result(service_url, service_accounts.provider_a_key, session["id"])
    assert result["status"] not in ("pending", "awaiting_card")
    # The code cannot be used again at the kiosk.
    again = _post(agent, "/api/session/lookup", {"user_code": session["user_code"]}).json()
    assert again["step"] == "start"
    assert again["notice"]["code"] == "session_used"


def test_unknown_code_is_explained(agent: Agent) -> None:
    answer = _post(agent, "/api/session/lookup", {"user_code": "2345-6789"}).json()
    assert answer["step"] == "start"
    assert answer["notice"]["code"] == "session_not_found"
    assert answer["notice"]["title_en"] == "Unknown code"


def test_unreachable_service_is_explained(
    start_agent: Callable[..., Agent], unused_tcp_port: int
) -> None:
    agent = start_agent(service_url=f"http://127.0.0.1:{unused_tcp_port}")
    answer = _post(agent, "/api/session/lookup", {"user_code": "23456789"}).json()
    assert answer["notice"]["code"] == "service_unreachable"


@pytest.fixture
def unused_tcp_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def revoked_card(test_hierarchy: Hierarchy, service_runtime: Runtime) -> VirtualMyNumberCard:
    """A person whose authentication certificate was revoked (the service has the new CRL)."""
    person = make_person(test_hierarchy, name="佐藤\u3000花子")
    test_hierarchy.revoke(
        person.auth_certificate.serial_number,
        purpose="auth",
        reason=x509.ReasonFlags.key_compromise,
    )
    service_runtime.refresh_revocation(force=True)
    return VirtualMyNumberCard(card_state_for(test_hierarchy, person))


@pytest.mark.pcsc
def test_revoked_certificate_is_explained(
    agent: Agent,
    service_url: str,
    service_accounts: ServiceAccounts,
    revoked_card: VirtualMyNumberCard,
    pcsc_reader: str,
) -> None:
    bridge = VpcdBridge(revoked_card)
    insert_card(bridge, pcsc_reader)
    try:
        _to_pin_step(agent, service_url, service_accounts, mode="auth")
        answer = _post(
            agent, "/api/session/pin", {"pin": AUTH_PIN, "entry_id": "entry-0007"}
        ).json()
    finally:
        remove_card(bridge, pcsc_reader)
    assert answer["step"] == "result"
    assert answer["result"]["code"] == "certificate_revoked"
    assert "再発行" in answer["result"]["advice_ja"]


@pytest.mark.pcsc
def test_other_web_sites_cannot_drive_the_agent(
    agent: Agent,
    service_url: str,
    service_accounts: ServiceAccounts,
    card_in_reader: VpcdBridge,
    card_state: CardState,
) -> None:
    _to_pin_step(agent, service_url, service_accounts, mode="auth")
    guess = json.dumps({"pin": "0000", "entry_id": "entry-0008"})
    attempts = [
        # A form or no-cors fetch from a foreign page: text/plain, no preflight.
        {"content-type": "text/plain", "origin": "https://attacker.example"},
        {"content-type": "text/plain"},
        {"content-type": "application/json", "origin": "https://attacker.example"},
        {"content-type": "application/json", "sec-fetch-site": "cross-site"},
        # DNS rebinding: the attacker's name resolving to 127.0.0.1.
        {"content-type": "application/json", "host": "attacker.example"},
    ]
    for headers in attempts:
        response = httpx.post(agent.url + "/api/session/pin", content=guess, headers=headers)
        assert response.status_code == 403, headers
    assert card_state.auth_pin.tries_left == 3
    same_origin = httpx.post(
        agent.url + "/api/session/pin",
        content=guess,
        headers={"content-type": "application/json", "origin": agent.url},
    )
    assert same_origin.json()["notice"]["code"] == "wrong_pin"
    assert card_state.auth_pin.tries_left == 2


@pytest.mark.pcsc
def test_wrong_password_asks_only_for_the_password_again(
    agent: Agent,
    service_runtime: Runtime,
    service_url: str,
    service_accounts: ServiceAccounts,
    card_in_reader: VpcdBridge,
    card_state: CardState,
) -> None:
    session = _to_pin_step(agent, service_url, service_accounts, mode="identity", claims=["name"])
    _post(agent, "/api/session/pin", {"pin": AUTH_PIN, "entry_id": "entry-0009"})
    wrong = _post(
        agent, "/api/session/password", {"password": "WRONG1", "entry_id": "entry-0010"}
    ).json()
    assert wrong["step"] == "password"
    assert wrong["notice"]["code"] == "wrong_password"
    assert wrong["card"]["sign_tries_left"] == 4
    assert card_state.sign_password.tries_left == 4
    # The authentication signature made over this card connection still stands.
    right = _post(
        agent, "/api/session/password", {"password": SIGN_PASSWORD, "entry_id": "entry-0011"}
    ).json()
    assert right["result"]["code"] == "verified"
    assert card_state.sign_password.tries_left == 5
    result = provider_result(service_url, service_accounts.provider_a_key, session["id"])
    assert result["verified_claims"]["claims"]["name"] == "山田\u3000太郎"
    # The visit is reported once, at its result: times and counts, nothing else.
    (visit,) = _visits(service_runtime)
    assert visit["session_id"] == session["id"] and visit["outcome"] == "verified"
    assert (visit["pin_wrong"], visit["password_wrong"]) == (0, 1)
    assert visit["service_ms"] > 0 and visit["card_ms"] > 0
    assert set(visit) == {
        "session_id", "kiosk_id", "outcome", "duration_ms", "card_ms", "service_ms",
        "pin_wrong", "password_wrong", "last_try_confirmed", "card_blocked", "card_removed",
    }  # fmt: skip


@pytest.mark.pcsc
def test_document_step_signs_with_the_password_asked_again(
    agent: Agent,
    service_url: str,
    service_accounts: ServiceAccounts,
    card_in_reader: VpcdBridge,
    card_state: CardState,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    session, shown = _to_document_step(
        agent, service_url, service_accounts, ["name", "address"], "01"
    )
    # Verified; now the document, its text on screen, the password asked for again.
    assert shown["step"] == "document"
    assert shown["document"]["provider_name"] == "Provider A"
    assert shown["document"]["claims"] == ["name", "address"]
    assert shown["card"]["sign_tries_left"] == 5
    assert "山田" not in json.dumps(shown, ensure_ascii=False)
    waiting = provider_result(service_url, service_accounts.provider_a_key, session["id"])
    assert waiting["document"]["status"] == "awaiting_signature"

    wrong = _post(
        agent, "/api/session/document", {"password": "WRONG1", "entry_id": "entry-0103"}
    ).json()
    assert wrong["step"] == "document" and wrong["notice"]["code"] == "wrong_password"
    assert wrong["card"]["sign_tries_left"] == 4 == card_state.sign_password.tries_left
    # The same entry id again (a double tap) never reaches the card.
    repeated = _post(
        agent, "/api/session/document", {"password": "WRONG1", "entry_id": "entry-0103"}
    )
    assert repeated.status_code == 409
    assert card_state.sign_password.tries_left == 4

    signed = _post(
        agent, "/api/session/document", {"password": SIGN_PASSWORD, "entry_id": "entry-0104"}
    ).json()
    assert signed["step"] == "result"
    assert signed["result"]["success"] is True and signed["result"]["code"] == "document_signed"
    result = provider_result(service_url, service_accounts.provider_a_key, session["id"])
    assert result["document"]["status"] == "signed" and len(result["documents"]) == 1
    assert _last_call(agent).endswith("/document")
    sent = b"\n".join(agent.service_traffic.sent)
    assert SIGN_PASSWORD.encode() not in sent and b"WRONG1" not in sent
    assert SIGN_PASSWORD not in caplog.text and "WRONG1" not in caplog.text


@pytest.mark.pcsc
def test_document_at_the_last_try_needs_confirmation_and_cancel_leaves_it_unsigned(
    agent: Agent,
    service_url: str,
    service_accounts: ServiceAccounts,
    card_in_reader: VpcdBridge,
    card_state: CardState,
) -> None:
    session, _ = _to_document_step(agent, service_url, service_accounts, ["name"], "02")
    card_state.sign_password.tries_left = 1  # as if two wrong passwords had been typed
    unconfirmed = _post(
        agent, "/api/session/document", {"password": SIGN_PASSWORD, "entry_id": "entry-0203"}
    ).json()
    assert unconfirmed["step"] == "document" and unconfirmed["notice"]["code"] == "last_try"
    assert card_state.sign_password.tries_left == 1  # nothing was sent
    cancelled = _post(agent, "/api/session/cancel", {}).json()
    assert cancelled["step"] == "start" and cancelled["document"] is None
    result = provider_result(service_url, service_accounts.provider_a_key, session["id"])
    assert result["status"] == "verified"
    assert result["document"]["status"] == "awaiting_signature" and result["documents"] == []
    # The document was fetched, never posted: no PDF went to the service.
    assert _last_call(agent).endswith("/document")
    assert not any(body.startswith(b"%PDF") for body in agent.service_traffic.sent)


@pytest.mark.pcsc
def test_declining_to_sign_tells_the_service_and_touches_no_card(
    agent: Agent,
    service_url: str,
    service_accounts: ServiceAccounts,
    card_in_reader: VpcdBridge,
    card_state: CardState,
) -> None:
    session, shown = _to_document_step(agent, service_url, service_accounts, ["name"], "03")
    assert shown["step"] == "document"
    tries_before = card_state.sign_password.tries_left

    declined = _post(agent, "/api/session/document/decline", {}).json()
    assert declined["step"] == "result" and declined["result"]["success"] is True
    assert declined["result"]["code"] == "document_declined"
    assert card_state.sign_password.tries_left == tries_before  # no VERIFY was sent
    result = provider_result(service_url, service_accounts.provider_a_key, session["id"])
    assert result["status"] == "verified"
    assert result["document"]["status"] == "declined" and result["documents"] == []
    assert _last_call(agent).endswith("/document/decline")
    assert not any(body.startswith(b"%PDF") for body in agent.service_traffic.sent)


def test_the_person_is_told_whether_the_signed_document_goes_to_the_provider() -> None:
    """The signed PDF's certificate discloses all four basic attributes: the agent tells
    the page, from the service's own rule, whether the provider will receive it."""
    from datetime import UTC, datetime

    from commonid_kiosk.flow import _document_view

    from commonid.client import KioskDocument

    def view(claims: list[str]) -> bool:
        document = KioskDocument(
            document_id="doc_1",
            session_id="ses_1",
            kind="consent",
            sha256="0" * 64,
            pdf=b"%PDF",
            provider_name="Pay",
            purpose="x",
            claims=claims,
            created_at=datetime(2026, 12, 5, tzinfo=UTC),
            timestamp_url=None,
        )
        return _document_view(document)["released_to_provider"]

    assert view(["name", "birthdate", "gender", "address"]) is True
    assert view(["name", "birthdate", "address"]) is False
    assert view(["name"]) is False
