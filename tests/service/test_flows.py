"""Identity verification and reuse through the HTTP API, in process, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient

from jpki.testca import IssuedPerson
from tests.fixtures.service import ServiceAccounts, ServiceClock

from .flow_helpers import CardKeys, full_flow

IDENTITY_CLAIMS = ["name", "birthdate", "gender", "address", "did"]


@pytest.fixture
def card(demo_person: IssuedPerson) -> CardKeys:
    return CardKeys(demo_person)


def test_identity_verification_returns_verified_claims_for_provider_a(
    service_client: TestClient, service_accounts: ServiceAccounts, card: CardKeys
) -> None:
    outcome = full_flow(
        service_client,
        service_accounts.provider_a_key,
        service_accounts.kiosk_credential,
        card,
        mode="identity",
        claims=IDENTITY_CLAIMS,
    )
    assert outcome["status"] == "verified"
    verification = outcome["verified_claims"]["verification"]
    assert verification["trust_framework"] == "jp_aml"
    evidence = verification["evidence"][0]
    assert evidence["type"] == "electronic_signature"
    assert evidence["serial_number"] == format(card.person.sign_certificate.serial_number, "X")
    assert evidence["issuer"] == card.person.sign_certificate.issuer.rfc4514_string()
    claims = outcome["verified_claims"]["claims"]
    assert claims["name"] == "山田\u3000太郎"
    assert claims["birthdate"] == "1990-04-01"
    assert claims["gender"] == "male"
    assert claims["address"]["formatted"] == "東京都千代田区千代田一丁目1番1号"
    assert outcome["did"].startswith("did:key:z")
    assert outcome["sub"]


def test_provider_b_reuses_with_pin_only_and_gets_its_own_subject_id(
    service_client: TestClient, service_accounts: ServiceAccounts, card: CardKeys
) -> None:
    first = full_flow(
        service_client,
        service_accounts.provider_a_key,
        service_accounts.kiosk_credential,
        card,
        mode="identity",
        claims=IDENTITY_CLAIMS,
    )
    reused = full_flow(
        service_client,
        service_accounts.provider_b_key,
        service_accounts.kiosk_credential,
        card,
        mode="auth",
        reuse=True,
        claims=["name", "birthdate"],
    )
    assert reused["status"] == "reuse_granted"
    assert reused["verified_claims"]["claims"] == {
        "name": "山田\u3000太郎",
        "birthdate": "1990-04-01",
        "urn:commonid:jpki": reused["verified_claims"]["claims"]["urn:commonid:jpki"],
    }
    assert "address" not in reused["verified_claims"]["claims"]
    assert reused["reuse"]["method"] == "jpki_sign_certificate"
    assert (
        reused["verified_claims"]["verification"]["time"]
        == first["verified_claims"]["verification"]["time"]
    )
    assert reused["sub"] != first["sub"]


def test_reuse_without_earlier_verification_requires_reverification(
    service_client: TestClient, service_accounts: ServiceAccounts, card: CardKeys
) -> None:
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
    assert outcome["reason_code"] == "no_verified_identity"
    assert "verified_claims" not in outcome or outcome["verified_claims"] is None


def test_reuse_refused_when_verification_is_older_than_provider_policy(
    service_client: TestClient,
    service_accounts: ServiceAccounts,
    service_clock: ServiceClock,
    card: CardKeys,
) -> None:
    full_flow(
        service_client,
        service_accounts.provider_a_key,
        service_accounts.kiosk_credential,
        card,
        mode="identity",
        claims=IDENTITY_CLAIMS,
    )
    service_clock.advance(timedelta(days=1, minutes=1))  # provider B accepts one day
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
    assert outcome["reason_code"] == "verification_stale"
