"""Kiosk-side rules, kiosk rate limits, consent decline, and long polling of results."""

from __future__ import annotations

import json
import threading
import time

from fastapi.testclient import TestClient

from commonid.api.app import create_app
from commonid.runtime import Runtime
from jpki.testca import IssuedPerson
from tests.fixtures.service import ServiceAccounts

from .flow_helpers import (
    CardKeys,
    bearer,
    challenge_bytes,
    consent,
    create_session,
    respond,
    result,
)


def test_response_from_another_kiosk_than_the_consenting_one_is_refused(
    service_client: TestClient, service_accounts: ServiceAccounts, demo_person: IssuedPerson
) -> None:
    session = create_session(service_client, service_accounts.provider_a_key, mode="auth")
    consent(service_client, service_accounts.kiosk_credential, session)
    body = CardKeys(demo_person).response(challenge_bytes(session), identity=False)
    other = respond(service_client, service_accounts.other_kiosk_credential, session["id"], body)
    assert other.status_code == 404 and other.json()["code"] == "session_not_found"
    # The consenting kiosk can still answer: the other kiosk did not use the challenge up.
    own = respond(service_client, service_accounts.kiosk_credential, session["id"], body)
    assert own.status_code == 200


def test_declined_consent_rejects_the_session(
    service_client: TestClient, service_accounts: ServiceAccounts
) -> None:
    session = create_session(service_client, service_accounts.provider_a_key, mode="auth")
    declined = service_client.post(
        f"/v1/kiosk/sessions/{session['id']}/consent",
        json={"approved": False},
        headers=bearer(service_accounts.kiosk_credential),
    )
    assert declined.status_code == 200
    outcome = result(service_client, service_accounts.provider_a_key, session["id"])
    assert outcome["status"] == "rejected" and outcome["reason_code"] == "consent_declined"
    again = service_client.post(
        f"/v1/kiosk/sessions/{session['id']}/consent",
        json={},
        headers=bearer(service_accounts.kiosk_credential),
    )
    assert again.status_code == 409 and again.json()["code"] == "consent_already_recorded"


def test_consent_cannot_cover_more_than_was_asked(
    service_client: TestClient, service_accounts: ServiceAccounts
) -> None:
    session = create_session(
        service_client, service_accounts.provider_a_key, mode="identity", claims=["name"]
    )
    response = service_client.post(
        f"/v1/kiosk/sessions/{session['id']}/consent",
        json={"claims": ["name", "address"]},
        headers=bearer(service_accounts.kiosk_credential),
    )
    assert response.status_code == 422 and response.json()["code"] == "consent_exceeds_request"
    # The refused consent left nothing behind: the session is still pending, and a
    # consent within the request goes through.
    assert result(service_client, service_accounts.provider_a_key, session["id"])["status"] == (
        "pending"
    )
    within = service_client.post(
        f"/v1/kiosk/sessions/{session['id']}/consent",
        json={"claims": ["name"]},
        headers=bearer(service_accounts.kiosk_credential),
    )
    assert within.status_code == 200 and within.json()["claims"] == ["name"]


def test_consent_without_claims_covers_what_was_asked_in_its_order(
    service_client: TestClient, service_accounts: ServiceAccounts
) -> None:
    session = create_session(
        service_client,
        service_accounts.provider_a_key,
        mode="identity",
        claims=["address", "name", "birthdate"],
    )
    given = service_client.post(
        f"/v1/kiosk/sessions/{session['id']}/consent",
        json={},
        headers=bearer(service_accounts.kiosk_credential),
    )
    assert given.status_code == 200
    assert given.json() == {
        "session_id": session["id"],
        "status": "awaiting_card",
        "claims": ["address", "name", "birthdate"],
    }


def test_unknown_user_code_is_404(
    service_client: TestClient, service_accounts: ServiceAccounts
) -> None:
    response = service_client.get(
        "/v1/kiosk/sessions/ZZZZZZZZ", headers=bearer(service_accounts.kiosk_credential)
    )
    assert response.status_code == 404 and response.json()["code"] == "session_not_found"


def test_kiosk_over_its_rate_gets_429(
    service_runtime: Runtime, service_accounts: ServiceAccounts
) -> None:
    service_runtime.settings = service_runtime.settings.model_copy(
        update={"kiosk_rate_burst": 2, "kiosk_rate_per_second": 0.01}
    )
    with TestClient(create_app(runtime=service_runtime)) as client:
        kiosk = bearer(service_accounts.kiosk_credential)
        codes = [
            client.get("/v1/kiosk/sessions/ZZZZZZZZ", headers=kiosk).status_code for _ in range(3)
        ]
        assert codes == [404, 404, 429]
        other = bearer(service_accounts.other_kiosk_credential)
        assert client.get("/v1/kiosk/sessions/ZZZZZZZZ", headers=other).status_code == 404


def test_long_poll_returns_as_soon_as_the_session_completes(
    service_client: TestClient, service_accounts: ServiceAccounts, demo_person: IssuedPerson
) -> None:
    session = create_session(service_client, service_accounts.provider_a_key, mode="auth")
    consent(service_client, service_accounts.kiosk_credential, session)
    polled: dict[str, object] = {}

    def poll() -> None:
        started = time.monotonic()
        response = service_client.get(
            f"/v1/sessions/{session['id']}",
            params={"wait": 10},
            headers=bearer(service_accounts.provider_a_key),
        )
        polled["status"] = response.json()["status"]
        polled["seconds"] = time.monotonic() - started

    poller = threading.Thread(target=poll)
    poller.start()
    time.sleep(0.5)
    assert "status" not in polled  # still waiting: nothing has happened yet
    body = CardKeys(demo_person).response(challenge_bytes(session), identity=False)
    assert (
        respond(service_client, service_accounts.kiosk_credential, session["id"], body).status_code
        == 200
    )
    poller.join(timeout=10)
    assert polled["status"] == "verified"
    assert polled["seconds"] < 5


def test_a_kiosk_reports_a_visit_with_counts_only(
    service_client: TestClient, service_accounts: ServiceAccounts, service_runtime: Runtime
) -> None:
    session = create_session(service_client, service_accounts.provider_a_key, mode="auth")
    tally = {"outcome": "timed_out", "duration_ms": 61000.5, "card_ms": 812, "pin_wrong": 2}
    kiosk = bearer(service_accounts.kiosk_credential)
    path = f"/v1/kiosk/sessions/{session['id']}/visit"
    recorded = service_client.post(path, json=tally, headers=kiosk)
    assert recorded.status_code == 200 and recorded.json()["session_id"] == session["id"]
    assert service_runtime.audit is not None
    (logged,) = service_runtime.audit.entries(event_type="kiosk.visit_ended")
    data = json.loads(logged.entry)["data"]
    assert data["kiosk_id"] == recorded.json()["kiosk_id"]
    assert (data["outcome"], data["pin_wrong"], data["card_removed"]) == ("timed_out", 2, 0)
    # Anything else a kiosk might add (a name, a PIN) has no field to go into.
    extra = service_client.post(path, json={**tally, "pin": "1234"}, headers=kiosk)
    assert extra.status_code == 422 and extra.json()["code"] == "invalid_request"
    for bad in ({**tally, "outcome": "Yamada Taro"}, {**tally, "pin_wrong": -1}, {}):
        refused = service_client.post(path, json=bad, headers=kiosk)
        assert refused.status_code == 422, bad
    unknown = service_client.post(
        "/v1/kiosk/sessions/ses_unknownunknownunknown/visit", json=tally, headers=kiosk
    )
    assert unknown.status_code == 404 and unknown.json()["code"] == "session_not_found"
    assert service_client.post(path, json=tally).status_code == 401
    assert len(list(service_runtime.audit.entries(event_type="kiosk.visit_ended"))) == 1
