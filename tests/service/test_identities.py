"""What a provider may still see of an identity, and consent withdrawal."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from jpki.testca import IssuedPerson
from tests.fixtures.service import ServiceAccounts

from .flow_helpers import CardKeys, bearer, full_flow, result


@pytest.fixture
def card(demo_person: IssuedPerson) -> CardKeys:
    return CardKeys(demo_person)


def test_identity_shows_consented_claims_until_withdrawn(
    service_client: TestClient, service_accounts: ServiceAccounts, card: CardKeys
) -> None:
    a_key, b_key = service_accounts.provider_a_key, service_accounts.provider_b_key
    kiosk = service_accounts.kiosk_credential
    verified = full_flow(
        service_client, a_key, kiosk, card, mode="identity", claims=["name", "birthdate"]
    )
    reused = full_flow(service_client, b_key, kiosk, card, mode="auth", reuse=True, claims=["name"])
    sub_a, sub_b = verified["sub"], reused["sub"]

    seen = service_client.get(f"/v1/identities/{sub_a}", headers=bearer(a_key))
    assert seen.status_code == 200
    identity = seen.json()
    assert identity["sub"] == sub_a
    assert identity["consents"][0]["session_id"] == verified["id"]
    assert identity["verified_claims"]["claims"]["birthdate"] == "1990-04-01"
    # B consented to the name only, and cannot look A's subject id up.
    b_view = service_client.get(f"/v1/identities/{sub_b}", headers=bearer(b_key)).json()
    assert set(b_view["verified_claims"]["claims"]) == {"name", "urn:commonid:jpki"}
    assert service_client.get(f"/v1/identities/{sub_a}", headers=bearer(b_key)).status_code == 404

    withdrawn = service_client.delete(f"/v1/identities/{sub_a}", headers=bearer(a_key))
    assert withdrawn.status_code == 204
    gone = service_client.get(f"/v1/identities/{sub_a}", headers=bearer(a_key))
    assert gone.status_code == 404 and gone.json()["code"] == "identity_not_found"
    # A's stored result is gone too; B's link is untouched.
    after = result(service_client, a_key, verified["id"])
    assert after["status"] == "verified" and after["verified_claims"] is None
    assert after["sub"] is None
    assert service_client.get(f"/v1/identities/{sub_b}", headers=bearer(b_key)).status_code == 200
    again = service_client.delete(f"/v1/identities/{sub_a}", headers=bearer(a_key))
    assert again.status_code == 404


def test_pairwise_ids_are_stable_per_provider(
    service_client: TestClient, service_accounts: ServiceAccounts, card: CardKeys
) -> None:
    a_key, kiosk = service_accounts.provider_a_key, service_accounts.kiosk_credential
    first = full_flow(service_client, a_key, kiosk, card, mode="auth", claims=["did"])
    second = full_flow(service_client, a_key, kiosk, card, mode="auth", claims=[])
    assert first["sub"] == second["sub"]
    assert first["did"].startswith("did:key:")
    assert second["did"] is None  # not requested, not released
