"""A kiosk may send the person's consent with the card response: one request, not two."""

from __future__ import annotations

import threading
from typing import Any

import sqlalchemy as sa
from fastapi.testclient import TestClient

from commonid.runtime import Runtime
from commonid.store.models import RejectedResponse
from jpki.testca import IssuedPerson
from tests.fixtures.service import ServiceAccounts

from .flow_helpers import (
    CardKeys,
    b64,
    bearer,
    challenge_bytes,
    consent,
    create_session,
    respond,
    result,
)
from .test_audit_entries import entries


def _with_consent(
    card: CardKeys, session: dict[str, Any], claims: list[str] | None = None, **options: Any
) -> dict[str, Any]:
    body: dict[str, Any] = card.response(challenge_bytes(session), **options)
    body["consent"] = {} if claims is None else {"claims": claims}
    return body


def test_consent_and_card_response_in_one_request(
    service_client: TestClient,
    service_accounts: ServiceAccounts,
    service_runtime: Runtime,
    demo_person: IssuedPerson,
) -> None:
    card = CardKeys(demo_person)
    session = create_session(
        service_client, service_accounts.provider_a_key, mode="auth", claims=["did"]
    )
    answered = respond(
        service_client,
        service_accounts.kiosk_credential,
        session["id"],
        _with_consent(card, session, identity=False),
    )
    assert answered.status_code == 200, answered.text
    assert answered.json()["status"] == "verified"
    outcome = result(service_client, service_accounts.provider_a_key, session["id"])
    assert outcome["status"] == "verified" and outcome["did"].startswith("did:key:")
    # The provider's link exists with the consented claims, as after a separate consent.
    identity = service_client.get(
        f"/v1/identities/{outcome['sub']}", headers=bearer(service_accounts.provider_a_key)
    )
    assert identity.status_code == 200
    assert [c["claims"] for c in identity.json()["consents"]] == [["did"]]
    logged = entries(service_runtime)
    assert [event for event, _ in logged] == [
        "session.created",
        "session.consent_given",
        "validation.outcome",
        "identity.created",  # a card seen for the first time: why a new record
        "claims.released",
        "session.completed",
    ]
    given = logged[1][1]
    assert given == {
        "session_id": session["id"],
        "kiosk_id": service_accounts.kiosk.id,
        "claims": ["did"],
    }


def test_identity_mode_releases_only_the_claims_consented_with_the_card(
    service_client: TestClient, service_accounts: ServiceAccounts, demo_person: IssuedPerson
) -> None:
    card = CardKeys(demo_person)
    session = create_session(
        service_client,
        service_accounts.provider_a_key,
        mode="identity",
        claims=["name", "birthdate", "did"],
    )
    answered = respond(
        service_client,
        service_accounts.kiosk_credential,
        session["id"],
        _with_consent(card, session, ["name"], identity=True),
    )
    assert answered.status_code == 200, answered.text
    outcome = result(service_client, service_accounts.provider_a_key, session["id"])
    assert outcome["status"] == "verified"
    released = outcome["verified_claims"]["claims"]
    assert "name" in released and "birthdate" not in released
    assert outcome.get("did") is None  # not consented


def test_consent_with_the_card_after_a_recorded_consent_is_refused(
    service_client: TestClient, service_accounts: ServiceAccounts, demo_person: IssuedPerson
) -> None:
    card = CardKeys(demo_person)
    session = create_session(service_client, service_accounts.provider_a_key, mode="auth")
    consent(service_client, service_accounts.kiosk_credential, session)
    refused = respond(
        service_client,
        service_accounts.kiosk_credential,
        session["id"],
        _with_consent(card, session, identity=False),
    )
    assert refused.status_code == 409 and refused.json()["code"] == "consent_already_recorded"
    # The session was not used: the card response without a consent still goes through.
    answered = respond(
        service_client,
        service_accounts.kiosk_credential,
        session["id"],
        card.response(challenge_bytes(session), identity=False),
    )
    assert answered.status_code == 200 and answered.json()["status"] == "verified"


def test_consent_beyond_the_request_is_refused_and_recorded_leaving_the_session_pending(
    service_client: TestClient,
    service_accounts: ServiceAccounts,
    service_runtime: Runtime,
    demo_person: IssuedPerson,
) -> None:
    card = CardKeys(demo_person)
    session = create_session(
        service_client, service_accounts.provider_a_key, mode="auth", claims=["did"]
    )
    refused = respond(
        service_client,
        service_accounts.kiosk_credential,
        session["id"],
        _with_consent(card, session, ["did", "credential"], identity=False),
    )
    assert refused.status_code == 422 and refused.json()["code"] == "consent_exceeds_request"
    assert result(service_client, service_accounts.provider_a_key, session["id"])["status"] == (
        "pending"
    )
    with service_runtime.sessions() as db:
        codes = db.scalars(
            sa.select(RejectedResponse.code).where(RejectedResponse.session_id == session["id"])
        ).all()
    assert codes == ["consent_exceeds_request"]


def test_a_bad_signature_with_consent_burns_the_session_and_keeps_the_consent(
    service_client: TestClient,
    service_accounts: ServiceAccounts,
    service_runtime: Runtime,
    demo_person: IssuedPerson,
) -> None:
    card = CardKeys(demo_person)
    session = create_session(service_client, service_accounts.provider_a_key, mode="auth")
    body = _with_consent(card, session, identity=False)
    body["auth_signature"] = b64(card.sign_auth(b"some other bytes"))
    rejected = respond(service_client, service_accounts.kiosk_credential, session["id"], body)
    assert rejected.status_code == 422 and rejected.json()["code"] == "signature_invalid"
    outcome = result(service_client, service_accounts.provider_a_key, session["id"])
    assert outcome["status"] == "rejected" and outcome["reason_code"] == "signature_invalid"
    events = [event for event, _ in entries(service_runtime)]
    assert events[1:3] == ["session.consent_given", "card_response.rejected"]
    # The challenge was used: the right signature cannot come afterwards.
    again = respond(
        service_client,
        service_accounts.kiosk_credential,
        session["id"],
        _with_consent(card, session, identity=False),
    )
    assert again.status_code == 409 and again.json()["code"] == "challenge_replayed"


def test_a_replayed_response_with_consent_is_a_replay(
    service_client: TestClient, service_accounts: ServiceAccounts, demo_person: IssuedPerson
) -> None:
    card = CardKeys(demo_person)
    session = create_session(service_client, service_accounts.provider_a_key, mode="auth")
    body = _with_consent(card, session, identity=False)
    first = respond(service_client, service_accounts.kiosk_credential, session["id"], body)
    assert first.status_code == 200
    replayed = respond(service_client, service_accounts.kiosk_credential, session["id"], body)
    assert replayed.status_code == 409 and replayed.json()["code"] == "challenge_replayed"


def test_two_kiosks_answering_with_consent_at_once_one_wins(
    service_client: TestClient, service_accounts: ServiceAccounts, demo_person: IssuedPerson
) -> None:
    card = CardKeys(demo_person)
    session = create_session(service_client, service_accounts.provider_a_key, mode="auth")
    body = _with_consent(card, session, identity=False)
    statuses: list[int] = []
    start = threading.Barrier(2)

    def post(credential: str) -> None:
        start.wait(timeout=10)
        statuses.append(respond(service_client, credential, session["id"], body).status_code)

    kiosks = (service_accounts.kiosk_credential, service_accounts.other_kiosk_credential)
    threads = [threading.Thread(target=post, args=(credential,)) for credential in kiosks]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(statuses) == [200, 409]
