"""The service's flows leave their audit trail (commonid.audit): no personal data, all evidence."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from fastapi.testclient import TestClient

from commonid.audit.figures import compute_figures
from commonid.revocations import refresh_and_apply
from commonid.runtime import Runtime
from commonid.trust import refresh_revocation
from jpki.revocation import FileCrlSource, RevocationIndex
from jpki.revocation_policy import RevocationConfig, RevocationMode
from jpki.testca import Hierarchy, IssuedPerson
from jpki.validation import TrustPolicy
from tests.fixtures.jpki import make_person
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


def entries(runtime: Runtime, *, refreshes: bool = False) -> list[tuple[str, dict]]:
    """The log's entries; without the refresher's ``revocation.refreshed`` unless asked
    (it records the CRLs the service loads as it starts, before any flow)."""
    assert runtime.audit is not None
    return [
        (entry.event_type, json.loads(entry.entry)["data"])
        for entry in runtime.audit.entries()
        if refreshes or entry.event_type != "revocation.refreshed"
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
        "identity.created",  # a card seen for the first time, and why a new record
        "claims.released",
        "record.created",  # the verification record (docs/compliance.md)
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


def _refreshed(runtime: Runtime) -> list[dict]:
    return [
        data for kind, data in entries(runtime, refreshes=True) if kind == "revocation.refreshed"
    ]


def _held_crl(runtime: Runtime, purpose_anchor: str) -> dict:
    """What the audit entry must say of the CRL the service now holds for a CA."""
    anchor = next(a for a in runtime.trust_policy.anchors if a.name == purpose_anchor)
    index = next(
        i
        for i in runtime.trust_policy.revocation.crl_indexes
        if i.issuer_certificate == anchor.certificate
    )
    held = index.current
    assert held is not None
    return {
        "crl_number": held.crl_number,
        "revocation_evidence_hash": held.sha256,
        "revocation_this_update": held.this_update.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
    }


def test_the_refresher_records_each_crl_it_installs(
    service_runtime: Runtime, test_hierarchy: Hierarchy
) -> None:
    person = make_person(test_hierarchy, name="佐藤\u3000花子")
    at_start = _refreshed(service_runtime)  # the service loads both CAs' CRLs as it starts
    assert {data["trust_anchor"] for data in at_start} == {"test-auth", "test-sign"}
    sign = next(data for data in at_start if data["trust_anchor"] == "test-sign")
    assert sign["revocation_source"] == "crl"
    assert sign["revoked_count"] == len(test_hierarchy.revoked_entries("sign"))
    assert sign["revocation_next_update"] > sign["revocation_this_update"]

    test_hierarchy.revoke(
        person.sign_certificate.serial_number,
        purpose="sign",
        reason=x509.ReasonFlags.affiliation_changed,
        revoked_at=datetime.now(UTC) - timedelta(seconds=1),
    )
    refresh_and_apply(service_runtime)  # what the service's periodic task runs
    # The test CA issues a new list (the next CRL number) at every fetch: both are new.
    latest = {data["trust_anchor"]: data for data in _refreshed(service_runtime)[len(at_start) :]}
    assert set(latest) == {"test-auth", "test-sign"}
    assert latest["test-sign"]["crl_number"] > sign["crl_number"]
    assert latest["test-sign"]["revoked_count"] == sign["revoked_count"] + 1
    held = _held_crl(service_runtime, "test-sign")
    assert {key: latest["test-sign"][key] for key in held} == held

    # The reviewer's figures now have a revocation data age for both CAs.
    assert service_runtime.audit is not None
    service_runtime.audit.checkpoint()
    figures = compute_figures(
        service_runtime.audit,
        datetime.now(UTC) - timedelta(days=1),
        datetime.now(UTC) + timedelta(days=1),
    )
    assert set(figures.revocation_updates) == {"test-auth", "test-sign"}


def test_a_crl_fetched_again_unchanged_is_not_recorded_again(
    test_hierarchy: Hierarchy, tmp_path: Path
) -> None:
    published = tmp_path / "sign.crl"
    published.write_bytes(test_hierarchy.crl("sign"))  # what a CRL endpoint serves all day
    index = RevocationIndex(test_hierarchy.sign_ca_certificate, source=FileCrlSource(published))
    policy = TrustPolicy.for_test_hierarchy(
        test_hierarchy.auth_ca_certificate,
        test_hierarchy.sign_ca_certificate,
        revocation=RevocationConfig.from_crls((index,), RevocationMode.REQUIRE),
    )
    now = test_hierarchy.now()  # the test CA's clock stands still: its lists are fresh then
    first = refresh_revocation(policy, at=now, force=True)
    assert [(crl.trust_anchor, crl.crl.sha256) for crl in first.installed] == [
        ("test-sign", hashlib.sha256(published.read_bytes()).hexdigest())
    ]
    assert refresh_revocation(policy, at=now, force=True).installed == ()
    published.write_bytes(test_hierarchy.crl("sign"))  # the next day's list
    assert len(refresh_revocation(policy, at=now, force=True).installed) == 1


def test_a_refused_session_counts_once_under_the_code_the_service_answered(
    service_client: TestClient,
    service_accounts: ServiceAccounts,
    service_runtime: Runtime,
    test_hierarchy: Hierarchy,
) -> None:
    """The validation outcome says `revoked`, the refusal `certificate_revoked`: the
    reviewer's figures count the session once, under the code the kiosk was answered."""
    person = make_person(test_hierarchy, name="鈴木\u3000一郎")
    test_hierarchy.revoke(
        person.sign_certificate.serial_number,
        purpose="sign",
        reason=x509.ReasonFlags.key_compromise,
        revoked_at=datetime.now(UTC) - timedelta(seconds=1),
    )
    service_runtime.refresh_revocation(force=True)
    session = create_session(
        service_client, service_accounts.provider_a_key, mode="identity", claims=["name"]
    )
    consent(service_client, service_accounts.kiosk_credential, session)
    refused = respond(
        service_client,
        service_accounts.kiosk_credential,
        session["id"],
        CardKeys(person).response(challenge_bytes(session), identity=True),
    )
    assert refused.status_code == 422 and refused.json()["code"] == "certificate_revoked"
    logged_reasons = {
        data.get("reason_code")
        for kind, data in entries(service_runtime)
        if data.get("session_id") == session["id"] and kind != "session.created"
    }
    assert {"revoked", "certificate_revoked"} <= logged_reasons  # two codes in the log

    assert service_runtime.audit is not None
    service_runtime.audit.checkpoint()
    figures = compute_figures(
        service_runtime.audit,
        datetime.now(UTC) - timedelta(days=1),
        datetime.now(UTC) + timedelta(days=1),
    )
    assert dict(figures.rejection_reasons) == {"certificate_revoked": 1}
