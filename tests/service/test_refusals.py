"""Everything the service refuses: a 4xx problem+json with a stable code, never a 500."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from cryptography import x509
from fastapi.testclient import TestClient

from commonid import flows
from commonid.api.app import create_app
from commonid.api.schemas import CardResponse
from commonid.runtime import Runtime
from commonid.store import persons
from commonid.store import sessions as session_store
from commonid.store.models import Kiosk, Person, Provider
from jpki.testca import Hierarchy, IssuedPerson
from tests.fixtures.jpki import make_person
from tests.fixtures.service import ServiceAccounts, ServiceClock

from .flow_helpers import (
    CardKeys,
    bearer,
    challenge_bytes,
    consent,
    create_session,
    full_flow,
    respond,
    result,
)


@pytest.fixture
def card(demo_person: IssuedPerson) -> CardKeys:
    return CardKeys(demo_person)


def assert_problem(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["code"] == code
    assert problem["status"] == status
    assert problem["type"].endswith("/" + code)
    assert problem["title"] and problem["detail"]
    return problem


def rejected_codes(runtime: Runtime, session_id: str) -> list[str]:
    with runtime.sessions() as db:
        return session_store.rejected_response_codes(db, session_id)


def consented_session(
    client: TestClient, accounts: ServiceAccounts, *, provider_key: str | None = None, **body: Any
) -> dict[str, Any]:
    body.setdefault("mode", "auth")
    session = create_session(client, provider_key or accounts.provider_a_key, **body)
    consent(client, accounts.kiosk_credential, session)
    return session


def test_replayed_challenge_is_refused_and_recorded(
    service_client: TestClient,
    service_accounts: ServiceAccounts,
    service_runtime: Runtime,
    card: CardKeys,
) -> None:
    session = consented_session(service_client, service_accounts)
    body = card.response(challenge_bytes(session), identity=False)
    first = respond(service_client, service_accounts.kiosk_credential, session["id"], body)
    assert first.status_code == 200
    replay = respond(service_client, service_accounts.kiosk_credential, session["id"], body)
    assert_problem(replay, 409, "challenge_replayed")
    assert rejected_codes(service_runtime, session["id"]) == ["challenge_replayed"]
    assert result(service_client, service_accounts.provider_a_key, session["id"])["status"] == (
        "verified"
    )


def test_response_signed_for_another_providers_session_is_rejected(
    service_client: TestClient,
    service_accounts: ServiceAccounts,
    service_runtime: Runtime,
    card: CardKeys,
) -> None:
    for_a = consented_session(service_client, service_accounts)
    for_b = consented_session(
        service_client, service_accounts, provider_key=service_accounts.provider_b_key
    )
    # The card signed B's challenge; the kiosk posts it to A's session.
    body = card.response(challenge_bytes(for_b), identity=False)
    refused = respond(service_client, service_accounts.kiosk_credential, for_a["id"], body)
    assert_problem(refused, 422, "signature_invalid")
    assert rejected_codes(service_runtime, for_a["id"]) == ["signature_invalid"]
    outcome = result(service_client, service_accounts.provider_a_key, for_a["id"])
    assert outcome["status"] == "rejected"
    assert outcome["reason_code"] == "signature_invalid"
    assert outcome["sub"] is None


def test_tampered_signature_is_rejected(
    service_client: TestClient, service_accounts: ServiceAccounts, card: CardKeys
) -> None:
    session = consented_session(service_client, service_accounts, mode="identity")
    body = card.response(challenge_bytes(session), identity=True)
    signature = bytearray(card.sign_sign(challenge_bytes(session)))
    signature[10] ^= 0x01
    from .flow_helpers import b64

    body["sign_signature"] = b64(bytes(signature))
    refused = respond(service_client, service_accounts.kiosk_credential, session["id"], body)
    assert_problem(refused, 422, "signature_invalid")


def test_identity_mode_without_sign_certificate_is_rejected(
    service_client: TestClient, service_accounts: ServiceAccounts, card: CardKeys
) -> None:
    session = consented_session(service_client, service_accounts, mode="identity")
    body = card.response(challenge_bytes(session), identity=False)
    refused = respond(service_client, service_accounts.kiosk_credential, session["id"], body)
    assert_problem(refused, 422, "sign_certificate_required")


def test_sign_certificate_in_place_of_auth_certificate_fails_validation(
    service_client: TestClient, service_accounts: ServiceAccounts, card: CardKeys
) -> None:
    session = consented_session(service_client, service_accounts)
    tbs = challenge_bytes(session)
    from .flow_helpers import b64, der

    body = {
        "auth_certificate": b64(der(card.person.sign_certificate)),
        "auth_signature": b64(card.sign_sign(tbs)),
    }
    refused = respond(service_client, service_accounts.kiosk_credential, session["id"], body)
    problem = refused.json()
    assert refused.status_code == 422
    assert problem["code"].startswith("certificate_")


def test_expired_session_refuses_consent_and_card_response(
    service_client: TestClient,
    service_accounts: ServiceAccounts,
    service_clock: ServiceClock,
    card: CardKeys,
) -> None:
    pending = create_session(service_client, service_accounts.provider_a_key, mode="auth")
    answered_late = consented_session(service_client, service_accounts)
    service_clock.advance(timedelta(seconds=301))
    late_consent = service_client.post(
        f"/v1/kiosk/sessions/{pending['id']}/consent",
        json={},
        headers=bearer(service_accounts.kiosk_credential),
    )
    assert_problem(late_consent, 410, "session_expired")
    body = card.response(challenge_bytes(answered_late), identity=False)
    late = respond(service_client, service_accounts.kiosk_credential, answered_late["id"], body)
    assert_problem(late, 410, "session_expired")
    assert result(service_client, service_accounts.provider_a_key, pending["id"])["status"] == (
        "expired"
    )


def test_card_response_before_consent_is_refused(
    service_client: TestClient, service_accounts: ServiceAccounts, card: CardKeys
) -> None:
    session = create_session(service_client, service_accounts.provider_a_key, mode="auth")
    body = card.response(challenge_bytes(session), identity=False)
    refused = respond(service_client, service_accounts.kiosk_credential, session["id"], body)
    assert_problem(refused, 409, "consent_required")


def test_two_concurrent_card_responses_exactly_one_wins(
    service_client: TestClient, service_accounts: ServiceAccounts, card: CardKeys
) -> None:
    session = consented_session(service_client, service_accounts)
    body = card.response(challenge_bytes(session), identity=False)
    barrier = threading.Barrier(2)
    statuses: list[int] = []

    def post() -> None:
        barrier.wait()
        response = respond(service_client, service_accounts.kiosk_credential, session["id"], body)
        statuses.append(response.status_code)
        if response.status_code != 200:
            assert_problem(response, 409, "challenge_replayed")

    threads = [threading.Thread(target=post) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [200, 409]


def test_a_new_card_answering_two_sessions_at_once_makes_one_person(
    service_client: TestClient,
    service_accounts: ServiceAccounts,
    service_runtime: Runtime,
    card: CardKeys,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Both responses look the card up before either writes: both see a card never seen
    # before and create its person; the second to write hits the unique DID binding,
    # rolls back, and its retry finds the first one's record.
    first_two_lookups = threading.Barrier(2)
    lookups: list[bool] = []
    original = persons.binding_of_did

    def looked_up_together(db: Any, did: str, **options: Any) -> Any:
        found = original(db, did, **options)
        lookups.append(found is not None)
        if len(lookups) <= 2:
            first_two_lookups.wait(timeout=10)
        return found

    monkeypatch.setattr(persons, "binding_of_did", looked_up_together)
    opened = [consented_session(service_client, service_accounts) for _ in range(2)]
    outcomes: list[Any] = []

    def answer(session: dict[str, Any]) -> None:
        outcomes.append(
            flows.process_card_response(
                service_runtime,
                session["id"],
                service_accounts.kiosk,
                CardResponse(**card.response(challenge_bytes(session), identity=False)),
            )
        )

    threads = [threading.Thread(target=answer, args=(session,)) for session in opened]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert [outcome.status.value for outcome in outcomes] == ["verified", "verified"]
    assert lookups[:2] == [False, False] and lookups[-1]  # the loser found the winner's
    subjects = {
        result(service_client, service_accounts.provider_a_key, s["id"])["sub"] for s in opened
    }
    assert len(subjects) == 1
    with service_runtime.sessions() as db:
        assert db.scalar(sa.select(sa.func.count()).select_from(Person)) == 1


def test_unknown_or_missing_api_key_is_401(service_client: TestClient) -> None:
    body = {"mode": "auth", "purpose": "x"}
    unknown = service_client.post("/v1/sessions", json=body, headers=bearer("cid_pk_nope"))
    assert_problem(unknown, 401, "unauthenticated")
    assert unknown.headers["www-authenticate"] == "Bearer"
    missing = service_client.post("/v1/sessions", json=body)
    assert_problem(missing, 401, "unauthenticated")


def test_kiosk_credential_is_not_a_provider_key(
    service_client: TestClient, service_accounts: ServiceAccounts
) -> None:
    body = {"mode": "auth", "purpose": "x"}
    response = service_client.post(
        "/v1/sessions", json=body, headers=bearer(service_accounts.kiosk_credential)
    )
    assert_problem(response, 401, "unauthenticated")


def test_oversized_body_is_413(
    service_client: TestClient, service_accounts: ServiceAccounts
) -> None:
    body = {"mode": "auth", "purpose": "x" * 70_000}
    response = service_client.post(
        "/v1/sessions", json=body, headers=bearer(service_accounts.provider_a_key)
    )
    assert_problem(response, 413, "body_too_large")


def test_oversized_chunked_body_without_length_is_413(
    service_client: TestClient, service_accounts: ServiceAccounts
) -> None:
    def chunks():  # type: ignore[no-untyped-def]
        yield b'{"mode": "auth", "purpose": "'
        for _ in range(100):
            yield b"x" * 1000
        yield b'"}'

    response = service_client.post(
        "/v1/sessions",
        content=chunks(),
        headers=bearer(service_accounts.provider_a_key) | {"content-type": "application/json"},
    )
    assert_problem(response, 413, "body_too_large")


@pytest.mark.parametrize(
    "raw", [b"{", b"not json", b'{"mode": "auth", "purpose": "x",}', b"\xff\xfe"]
)
def test_malformed_json_is_400(
    service_client: TestClient, service_accounts: ServiceAccounts, raw: bytes
) -> None:
    response = service_client.post(
        "/v1/sessions",
        content=raw,
        headers=bearer(service_accounts.provider_a_key) | {"content-type": "application/json"},
    )
    assert_problem(response, 400, "malformed_json")


@pytest.mark.parametrize(
    "body",
    [
        {"mode": "selfie", "purpose": "x"},
        {"mode": "auth"},
        {"mode": "auth", "purpose": "x", "claims": ["passport_number"]},
        {"mode": "auth", "purpose": "x", "unexpected": 1},
        [],
        "auth",
    ],
)
def test_schema_violations_are_422_with_locations(
    service_client: TestClient, service_accounts: ServiceAccounts, body: Any
) -> None:
    response = service_client.post(
        "/v1/sessions", json=body, headers=bearer(service_accounts.provider_a_key)
    )
    problem = assert_problem(response, 422, "invalid_request")
    assert problem["errors"]


@pytest.mark.parametrize(
    "field,value",
    [
        ("auth_certificate", "!!!not base64!!!"),
        ("auth_certificate", "AAAA"),
        ("auth_signature", "A" * 20_000),
    ],
)
def test_garbage_card_response_is_4xx(
    service_client: TestClient,
    service_accounts: ServiceAccounts,
    card: CardKeys,
    field: str,
    value: str,
) -> None:
    session = consented_session(service_client, service_accounts)
    body = card.response(challenge_bytes(session), identity=False) | {field: value}
    response = respond(service_client, service_accounts.kiosk_credential, session["id"], body)
    assert 400 <= response.status_code < 500, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] in {"certificate_malformed", "invalid_request"}


def test_claims_beyond_provider_allowance_are_refused(
    service_client: TestClient, service_runtime: Runtime
) -> None:
    from commonid.store import accounts

    with service_runtime.sessions.begin() as db:
        narrow = accounts.add_provider(
            db,
            name="Narrow",
            allowed_claims=["did"],
            reuse_max_age_seconds=60,
            now=service_runtime.clock(),
            cipher=service_runtime.cipher,
        )
    response = service_client.post(
        "/v1/sessions",
        json={"mode": "identity", "purpose": "x", "claims": ["name"]},
        headers=bearer(narrow.credential),
    )
    assert_problem(response, 403, "claim_not_allowed")


def test_attributes_in_auth_mode_need_reuse(
    service_client: TestClient, service_accounts: ServiceAccounts
) -> None:
    response = service_client.post(
        "/v1/sessions",
        json={"mode": "auth", "purpose": "x", "claims": ["name"]},
        headers=bearer(service_accounts.provider_a_key),
    )
    assert_problem(response, 422, "claims_need_identity_mode")


def test_unknown_session_and_route_are_404_problems(
    service_client: TestClient, service_accounts: ServiceAccounts
) -> None:
    missing = service_client.get(
        "/v1/sessions/ses_nope", headers=bearer(service_accounts.provider_a_key)
    )
    assert_problem(missing, 404, "session_not_found")
    assert_problem(service_client.get("/v1/nothing-here"), 404, "not_found")
    assert_problem(service_client.delete("/v1/sessions"), 405, "method_not_allowed")


def test_other_providers_session_is_not_visible(
    service_client: TestClient, service_accounts: ServiceAccounts
) -> None:
    session = create_session(service_client, service_accounts.provider_a_key, mode="auth")
    response = service_client.get(
        f"/v1/sessions/{session['id']}", headers=bearer(service_accounts.provider_b_key)
    )
    assert_problem(response, 404, "session_not_found")


def test_reuse_refused_after_sign_certificate_is_revoked(
    service_client: TestClient,
    service_accounts: ServiceAccounts,
    service_runtime: Runtime,
    test_hierarchy: Hierarchy,
) -> None:
    person = make_person(test_hierarchy, name="佐藤\u3000花子")
    card = CardKeys(person)
    first = full_flow(
        service_client,
        service_accounts.provider_a_key,
        service_accounts.kiosk_credential,
        card,
        mode="identity",
        claims=["name"],
    )
    assert first["status"] == "verified"
    test_hierarchy.revoke(
        person.sign_certificate.serial_number,
        purpose="sign",
        reason=x509.ReasonFlags.key_compromise,
        revoked_at=datetime.now(UTC) - timedelta(seconds=1),
    )
    assert service_runtime.refresh_revocation(force=True) == []  # the CRL update arrives
    outcome = full_flow(
        service_client,
        service_accounts.provider_b_key,
        service_accounts.kiosk_credential,
        card,
        mode="auth",
        reuse=True,
        claims=["name"],
    )
    assert outcome["status"] == "reverification_required"
    assert outcome["reason_code"] == "sign_certificate_revoked"


def test_same_new_card_answering_two_sessions_at_once_gets_one_record(
    service_client: TestClient,
    service_accounts: ServiceAccounts,
    service_runtime: Runtime,
    card: CardKeys,
) -> None:
    sessions = [
        consented_session(service_client, service_accounts, mode="identity", claims=["name"])
        for _ in range(2)
    ]
    barrier = threading.Barrier(2)
    statuses: list[int] = []

    def post(session: dict[str, Any]) -> None:
        body = card.response(challenge_bytes(session), identity=True)
        barrier.wait()
        response = respond(service_client, service_accounts.kiosk_credential, session["id"], body)
        statuses.append(response.status_code)

    threads = [threading.Thread(target=post, args=(s,)) for s in sessions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [200, 200]
    subs = {
        result(service_client, service_accounts.provider_a_key, s["id"])["sub"] for s in sessions
    }
    assert len(subs) == 1  # one Common-ID record, so one pairwise id for provider A


def test_the_result_read_refuses_unknown_disabled_and_over_rate_providers(
    service_runtime: Runtime, service_accounts: ServiceAccounts
) -> None:
    # The result read looks the key up in the session's own query (provider_and_session).
    service_runtime.settings = service_runtime.settings.model_copy(
        update={"provider_rate_burst": 3, "provider_rate_per_second": 0.01}
    )
    with TestClient(create_app(runtime=service_runtime)) as client:
        session = create_session(client, service_accounts.provider_a_key, mode="auth")
        url = f"/v1/sessions/{session['id']}"
        unknown = client.get(url, headers=bearer("cid_pk_nope"))
        assert_problem(unknown, 401, "unauthenticated")
        assert unknown.headers["www-authenticate"] == "Bearer"
        assert_problem(client.get(url), 401, "unauthenticated")
        kiosk = client.get(url, headers=bearer(service_accounts.kiosk_credential))
        assert_problem(kiosk, 401, "unauthenticated")
        # Another provider's key finds its own account and no such session.
        other = client.get(url, headers=bearer(service_accounts.provider_b_key))
        assert_problem(other, 404, "session_not_found")
        own = bearer(service_accounts.provider_a_key)
        assert [client.get(url, headers=own).status_code for _ in range(2)] == [200, 200]
        assert_problem(client.get(url, headers=own), 429, "rate_limited")
        _disable(service_runtime, Provider, service_accounts.provider_b.id)
        disabled = client.get(url, headers=bearer(service_accounts.provider_b_key))
        assert_problem(disabled, 403, "account_disabled")


def test_the_card_response_refuses_unknown_disabled_and_over_rate_kiosks(
    service_runtime: Runtime, service_accounts: ServiceAccounts, card: CardKeys
) -> None:
    # The card response looks the kiosk up in the session's own query (kiosk_and_session).
    service_runtime.settings = service_runtime.settings.model_copy(
        update={"kiosk_rate_burst": 1, "kiosk_rate_per_second": 0.01}
    )
    with TestClient(create_app(runtime=service_runtime)) as client:
        session = create_session(client, service_accounts.provider_a_key, mode="auth")
        body = card.response(challenge_bytes(session), identity=False)
        for credential in ("cid_kiosk_nope", service_accounts.provider_a_key):
            assert_problem(respond(client, credential, session["id"], body), 401, "unauthenticated")
        missing = client.post(f"/v1/kiosk/sessions/{session['id']}/card-response", json=body)
        assert_problem(missing, 401, "unauthenticated")
        unknown_session = respond(client, service_accounts.kiosk_credential, "ses_nope", body)
        assert_problem(unknown_session, 404, "session_not_found")
        # That was the kiosk's one request in its burst.
        over = respond(client, service_accounts.kiosk_credential, session["id"], body)
        assert_problem(over, 429, "rate_limited")
        _disable(service_runtime, Kiosk, service_accounts.kiosk.id)
        disabled = respond(client, service_accounts.kiosk_credential, session["id"], body)
        assert_problem(disabled, 403, "account_disabled")
        assert result(client, service_accounts.provider_a_key, session["id"])["status"] == "pending"


def _disable(runtime: Runtime, model: type[Provider] | type[Kiosk], account_id: str) -> None:
    with runtime.sessions.begin() as db:
        db.execute(sa.update(model).where(model.id == account_id).values(disabled=True))
