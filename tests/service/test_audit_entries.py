"""The service's flows leave their audit trail (commonid.audit): no personal data, all evidence."""

from __future__ import annotations

import json

from fastapi.testclient import TestClient

from commonid.runtime import Runtime
from jpki.testca import IssuedPerson
from tests.fixtures.service import ServiceAccounts

from .flow_helpers import (
    CardKeys,
    b64,
    challenge_bytes,
    consent,
    create_session,
    full_flow,
    respond,
)


def entries(runtime: Runtime) -> list[tuple[str, dict]]:
    assert runtime.audit is not None
    return [
        (entry.event_type, json.loads(entry.entry)["data"]) for entry in runtime.audit.entries()
    ]


def test_identity_flow_is_audited_with_validation_evidence(
    service_client: TestClient,
    service_accounts: ServiceAccounts,
    service_runtime: Runtime,
    demo_person: IssuedPerson,
) -> None:
    outcome = full_flow(
        service_client,
        service_accounts.provider_a_key,
        service_accounts.kiosk_credential,
        CardKeys(demo_person),
        mode="identity",
        claims=["name", "birthdate", "did"],
    )
    logged = entries(service_runtime)
    assert [event for event, _ in logged] == [
        "session.created",
        "session.consent_given",
        "validation.outcome",
        "validation.outcome",
        "claims.released",
        "session.completed",
    ]
    validations = [data for event, data in logged if event == "validation.outcome"]
    assert {v["certificate_kind"] for v in validations} == {"auth", "sign"}
    assert all(v["outcome"] == "valid" and v["revocation_source"] == "crl" for v in validations)
    assert all(len(v["path_fingerprints"]) >= 2 for v in validations)
    completed = logged[-1][1]
    assert completed["status"] == "verified" and completed["session_id"] == outcome["id"]
    text = json.dumps(logged, ensure_ascii=False)
    assert "山田" not in text and "1990-04-01" not in text and outcome["did"] not in text


def test_rejected_response_is_audited_with_its_reason(
    service_client: TestClient,
    service_accounts: ServiceAccounts,
    service_runtime: Runtime,
    demo_person: IssuedPerson,
) -> None:
    session = create_session(service_client, service_accounts.provider_a_key, mode="auth")
    consent(service_client, service_accounts.kiosk_credential, session)
    card = CardKeys(demo_person)
    body = card.response(challenge_bytes(session), identity=False)
    body["auth_signature"] = b64(card.sign_auth(b"something else"))
    respond(service_client, service_accounts.kiosk_credential, session["id"], body)
    logged = entries(service_runtime)
    rejected = [data for event, data in logged if event == "card_response.rejected"]
    assert rejected == [
        {
            "session_id": session["id"],
            "kiosk_id": service_accounts.kiosk.id,
            "reason_code": "signature_invalid",
        }
    ]
    assert logged[-1][0] == "session.completed" and logged[-1][1]["status"] == "rejected"
