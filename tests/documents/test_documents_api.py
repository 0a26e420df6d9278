"""POST /v1/documents/verify on the real app (SQLite and PostgreSQL stores)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from commonid.documents.service import PreparedDocument
from commonid.runtime import Runtime
from commonid.store import accounts
from jpki.card import JPKICard
from jpki.documents import open_card_signer, sign_pdf
from jpki.emulator.card import VirtualMyNumberCard
from jpki.transport import InProcessTransport
from tests.documents.pdf_bytes import change_a_byte_in_the_content
from tests.fixtures.card import SIGN_PASSWORD
from tests.fixtures.jpki import DEMO_PERSON


@pytest.fixture
def signed_consent(virtual_card: VirtualMyNumberCard, consent: PreparedDocument) -> bytes:
    card = JPKICard(InProcessTransport(virtual_card))
    with open_card_signer(card, SIGN_PASSWORD) as signer:
        return sign_pdf(consent.pdf, signer)


def _post(client: TestClient, key: str, pdf: bytes, *, signer: bool = False):
    return client.post(
        "/v1/documents/verify",
        params={"signer": "true"} if signer else None,
        content=pdf,
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/pdf"},
    )


def test_provider_gets_the_report_and_attributes_only_within_its_claims(
    service_client: TestClient, service_accounts, service_runtime: Runtime, signed_consent: bytes
) -> None:
    key = service_accounts.provider_a_key
    plain = _post(service_client, key, signed_consent)
    assert plain.status_code == 200, plain.text
    report = plain.json()
    assert report["valid"] is True and report["reason"] == "valid"
    assert report["signatures"][0]["certificate"]["reason"] == "valid"
    assert "signer" not in report["signatures"][0]

    shown = _post(service_client, key, signed_consent, signer=True).json()
    assert shown["signatures"][0]["signer"]["name"] == DEMO_PERSON.name

    with service_runtime.sessions.begin() as db:
        limited = accounts.add_provider(
            db,
            name="Provider C (birthdate only)",
            allowed_claims=["birthdate"],
            reuse_max_age_seconds=86400,
            now=service_runtime.clock(),
            cipher=service_runtime.cipher,
        )
    only_birthdate = _post(service_client, limited.credential, signed_consent, signer=True).json()
    assert only_birthdate["signatures"][0]["signer"] == {"birthdate": "1990-04-01"}


def test_unauthenticated_and_non_pdf_requests_are_refused(
    service_client: TestClient, service_accounts, signed_consent: bytes
) -> None:
    anonymous = service_client.post(
        "/v1/documents/verify", content=signed_consent, headers={"Content-Type": "application/pdf"}
    )
    assert anonymous.status_code == 401
    wrong_type = service_client.post(
        "/v1/documents/verify",
        content=signed_consent,
        headers={
            "Authorization": f"Bearer {service_accounts.provider_a_key}",
            "Content-Type": "application/json",
        },
    )
    # Declared JSON, and not even UTF-8: refused at the edge before the endpoint's 415.
    assert wrong_type.status_code == 400
    assert wrong_type.json()["code"] == "malformed_json"
    tampered = change_a_byte_in_the_content(signed_consent)
    refused = _post(service_client, service_accounts.provider_a_key, tampered)
    assert refused.status_code == 200
    assert refused.json()["reason"] == "modified"
