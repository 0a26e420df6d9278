"""A session that asks for a signed consent document, through the HTTP API (SQLite and PostgreSQL).

The identity part is answered with the test person's card keys
(flow_helpers); the document is signed by the virtual card in process with
the real pyHanko signer (the PC/SC path: test_pcsc_end_to_end.py). The
service's verification, storage, audit and problems are all real.
"""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives import serialization
from fastapi.testclient import TestClient

from commonid.api.app import create_app
from commonid.client import ProviderClient
from commonid.runtime import Runtime, build_runtime
from commonid.settings import Settings
from commonid.store.models import RejectedResponse, SignedDocument
from jpki.card import JPKICard, PinKind
from jpki.documents import open_card_signer, sign_pdf
from jpki.emulator.card import VirtualMyNumberCard
from jpki.testca import Hierarchy, IssuedPerson
from jpki.transport import InProcessTransport
from tests.documents.tsa import local_tsa
from tests.fixtures.card import AUTH_PIN, SIGN_PASSWORD, CardMaterial
from tests.fixtures.jpki import make_person
from tests.fixtures.service import ServiceAccounts, ServiceClock

from .flow_helpers import (
    CardKeys,
    bearer,
    challenge_bytes,
    consent,
    create_session,
    respond,
    result,
)
from .test_audit_entries import entries

# All four: the signed PDF (whose certificate discloses all four) is released to the provider.
CLAIMS = ["name", "birthdate", "gender", "address"]


@pytest.fixture
def card(virtual_card: VirtualMyNumberCard) -> JPKICard:
    """The demo person's card (the same keys CardKeys(demo_person) signs with)."""
    return JPKICard(InProcessTransport(virtual_card))


def sign(card: JPKICard, pdf: bytes, *, kind: PinKind = PinKind.SIGN, **options: Any) -> bytes:
    secret = SIGN_PASSWORD if kind is PinKind.SIGN else AUTH_PIN
    with open_card_signer(card, secret, kind=kind) as signer:
        return sign_pdf(pdf, signer, **options)


def fetch_document(client: TestClient, kiosk: str, session_id: str) -> Any:
    return client.get(f"/v1/kiosk/sessions/{session_id}/document", headers=bearer(kiosk))


def post_document(
    client: TestClient, kiosk: str, session_id: str, pdf: bytes, media_type: str = "application/pdf"
) -> Any:
    return client.post(
        f"/v1/kiosk/sessions/{session_id}/document",
        content=pdf,
        headers={**bearer(kiosk), "Content-Type": media_type},
    )


def verified_session_with_document(
    client: TestClient,
    accounts: ServiceAccounts,
    person: IssuedPerson,
    claims: list[str] = CLAIMS,
) -> tuple[dict[str, Any], bytes]:
    """Create (document: consent), consent, fetch the document, verify the identity."""
    session = create_session(
        client, accounts.provider_a_key, mode="identity", claims=claims, document="consent"
    )
    assert session["document"] == "consent"
    consent(client, accounts.kiosk_credential, session)
    issued = fetch_document(client, accounts.kiosk_credential, session["id"])
    assert issued.status_code == 200, issued.text
    pdf = base64.b64decode(issued.json()["pdf"])
    answered = respond(
        client,
        accounts.kiosk_credential,
        session["id"],
        CardKeys(person).response(challenge_bytes(session), identity=True),
    )
    assert answered.json()["status"] == "verified", answered.text
    return session, pdf


def test_signed_consent_is_stored_encrypted_listed_and_downloadable(
    service_client: TestClient,
    service_accounts: ServiceAccounts,
    service_runtime: Runtime,
    demo_person: IssuedPerson,
    card: JPKICard,
) -> None:
    kiosk, provider = service_accounts.kiosk_credential, service_accounts.provider_a_key
    session = create_session(
        service_client, provider, mode="identity", claims=CLAIMS, document="consent"
    )
    assert result(service_client, provider, session["id"])["document"]["status"] == "pending"
    consent(service_client, kiosk, session)
    issued = fetch_document(service_client, kiosk, session["id"]).json()
    assert issued["content"]["provider_name"] == "Provider A"
    assert issued["content"]["claims"] == CLAIMS
    assert issued["content"]["purpose"] == session["purpose"]
    pdf = base64.b64decode(issued["pdf"])
    assert hashlib.sha256(pdf).hexdigest() == issued["sha256"] and pdf.startswith(b"%PDF")
    # Fetched again (a retry, a reload): the very same bytes.
    assert fetch_document(service_client, kiosk, session["id"]).json()["pdf"] == issued["pdf"]

    respond(
        service_client,
        kiosk,
        session["id"],
        CardKeys(demo_person).response(challenge_bytes(session), identity=True),
    )
    waiting = result(service_client, provider, session["id"])
    assert waiting["status"] == "verified"
    assert waiting["document"]["status"] == "awaiting_signature" and waiting["documents"] == []

    signed = sign(card, pdf)
    accepted = post_document(service_client, kiosk, session["id"], signed)
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["sha256"] == hashlib.sha256(signed).hexdigest()

    done = result(service_client, provider, session["id"])
    assert done["document"] == {"kind": "consent", "status": "signed", "sign_by": None}
    (listed,) = done["documents"]
    assert listed["id"] == issued["document_id"]
    assert listed["sha256"] == hashlib.sha256(signed).hexdigest()
    assert listed["size"] == len(signed)

    # The provider's SDK: the result is final, the download matches its digest.
    with ProviderClient(
        "http://testserver", provider, transport=service_client._transport
    ) as client:
        assert client.get_session(session["id"]).final
        downloaded = client.download_document(session["id"], listed["id"])
    assert downloaded.content == signed and downloaded.sha256 == listed["sha256"]

    # At rest: ciphertext only (the signed PDF carries the person's certificate).
    with service_runtime.sessions.begin() as db:
        row = db.scalar(sa.select(SignedDocument))
        assert row is not None and row.ciphertext is not None
        assert b"%PDF" not in row.ciphertext
        assert demo_person.sign_certificate.public_bytes(serialization.Encoding.DER) not in (
            row.ciphertext
        )

    # One audit entry with the evidence, no personal data.
    logged = entries(service_runtime)
    signed_entries = [data for event, data in logged if event == "document.signed"]
    assert len(signed_entries) == 1
    entry = signed_entries[0]
    assert entry["document_sha256"] == listed["sha256"]
    assert entry["unsigned_document_sha256"] == issued["sha256"]
    assert entry["reason_code"] == "valid" and entry["revocation_source"] == "crl"
    assert len(entry["path_fingerprints"]) >= 2
    text = json.dumps(logged, ensure_ascii=False)
    assert "山田" not in text and "1990-04-01" not in text

    # Signed once: neither a second post nor a new fetch.
    again = post_document(service_client, kiosk, session["id"], signed)
    assert again.status_code == 409 and again.json()["code"] == "document_already_signed"
    refetch = fetch_document(service_client, kiosk, session["id"])
    assert refetch.json()["code"] == "document_already_signed"


def test_bad_documents_get_stable_problem_codes_and_are_recorded(
    service_client: TestClient,
    service_accounts: ServiceAccounts,
    service_runtime: Runtime,
    demo_person: IssuedPerson,
    test_hierarchy: Hierarchy,
    card: JPKICard,
) -> None:
    kiosk = service_accounts.kiosk_credential
    session, pdf = verified_session_with_document(service_client, service_accounts, demo_person)
    session_id = session["id"]
    other, other_pdf = verified_session_with_document(service_client, service_accounts, demo_person)
    someone_else = make_person(test_hierarchy, name="佐藤\u3000花子")
    material = CardMaterial(
        auth_private_key=someone_else.auth_private_key,
        sign_private_key=someone_else.sign_private_key,
        auth_certificate=someone_else.auth_certificate.public_bytes(serialization.Encoding.DER),
        auth_ca_certificate=test_hierarchy.auth_ca_certificate.public_bytes(
            serialization.Encoding.DER
        ),
        sign_certificate=someone_else.sign_certificate.public_bytes(serialization.Encoding.DER),
        sign_ca_certificate=test_hierarchy.sign_ca_certificate.public_bytes(
            serialization.Encoding.DER
        ),
    )
    other_card = JPKICard(InProcessTransport(VirtualMyNumberCard(material.new_card_state())))

    cases = {
        "garbage": (b"%PDF-1.7 nothing here", 422, "document_mismatch"),
        "the unsigned document": (pdf, 422, "document_mismatch"),
        "the document with junk appended": (pdf + b"\n% junk\n", 422, "document_signature_count"),
        "another session's document": (sign(card, other_pdf), 422, "document_mismatch"),
        "signed with the authentication key": (
            sign(card, pdf, kind=PinKind.AUTH),
            422,
            "document_certificate_invalid",
        ),
        "signed by another person's card": (
            sign(other_card, pdf),
            422,
            "document_signer_mismatch",
        ),
    }
    for label, (body, status, code) in cases.items():
        response = post_document(service_client, kiosk, session_id, body)
        assert response.status_code == status, (label, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["code"] == code, label
    auth_signed = post_document(service_client, kiosk, session_id, cases[
        "signed with the authentication key"][0])  # fmt: skip
    assert auth_signed.json()["certificate_reason"] == "wrong_purpose"

    too_large = post_document(service_client, kiosk, session_id, b"%PDF" + bytes(300_000))
    assert too_large.status_code == 413 and too_large.json()["code"] == "body_too_large"
    # A signed PDF may be larger than any JSON body (its embedded font subset grows with
    # the characters on the page): PDF uploads have their own limit, 256 KiB by default.
    large_pdf = post_document(service_client, kiosk, session_id, b"%PDF" + bytes(100_000))
    assert large_pdf.status_code == 422, large_pdf.text
    not_pdf = post_document(service_client, kiosk, session_id, b"{}", "application/json")
    assert not_pdf.status_code == 415 and not_pdf.json()["code"] == "unsupported_media_type"
    at_other_kiosk = post_document(
        service_client, service_accounts.other_kiosk_credential, session_id, sign(card, pdf)
    )
    assert at_other_kiosk.status_code == 404
    assert at_other_kiosk.json()["code"] == "session_not_found"
    unknown = post_document(service_client, kiosk, "ses_unknown", sign(card, pdf))
    assert unknown.status_code == 404 and unknown.json()["code"] == "session_not_found"

    # Every refusal of a known session was recorded, with its code.
    with service_runtime.sessions.begin() as db:
        recorded = db.scalars(
            sa.select(RejectedResponse.code).where(RejectedResponse.session_id == session_id)
        ).all()
    assert sorted(recorded) == sorted(
        [code for _, _, code in cases.values()]
        + ["document_certificate_invalid", "session_not_found", large_pdf.json()["code"]]
    )
    rejected = [data for event, data in entries(service_runtime) if event == "document.rejected"]
    assert len(rejected) == len(recorded)
    assert {"reason_code": "document_certificate_invalid", "certificate_reason_code": (
        "wrong_purpose")}.items() <= rejected[4].items()  # fmt: skip

    # The genuine signature is still accepted after all that.
    assert post_document(service_client, kiosk, session_id, sign(card, pdf)).status_code == 200
    # The other provider sees neither the session nor its document.
    listed = result(service_client, service_accounts.provider_a_key, session_id)["documents"]
    path = f"/v1/sessions/{session_id}/documents/{listed[0]['id']}"
    foreign = service_client.get(path, headers=bearer(service_accounts.provider_b_key))
    assert foreign.status_code == 404 and foreign.json()["code"] == "session_not_found"
    wrong_session = service_client.get(
        f"/v1/sessions/{other['id']}/documents/{listed[0]['id']}",
        headers=bearer(service_accounts.provider_a_key),
    )
    assert wrong_session.status_code == 404 and wrong_session.json()["code"] == "document_not_found"


def test_document_steps_follow_the_session(
    service_client: TestClient,
    service_accounts: ServiceAccounts,
    service_clock: ServiceClock,
    demo_person: IssuedPerson,
    card: JPKICard,
) -> None:
    kiosk, provider = service_accounts.kiosk_credential, service_accounts.provider_a_key
    auth_mode = service_client.post(
        "/v1/sessions",
        json={"mode": "auth", "purpose": "送金", "document": "consent"},
        headers=bearer(provider),
    )
    assert auth_mode.status_code == 422
    assert auth_mode.json()["code"] == "document_needs_identity_mode"
    plain = create_session(service_client, provider, mode="identity", claims=CLAIMS)
    assert plain["document"] is None
    consent(service_client, kiosk, plain)
    not_asked = fetch_document(service_client, kiosk, plain["id"])
    assert not_asked.status_code == 404 and not_asked.json()["code"] == "document_not_requested"

    session = create_session(
        service_client, provider, mode="identity", claims=CLAIMS, document="consent"
    )
    before_consent = fetch_document(service_client, kiosk, session["id"])
    assert before_consent.status_code == 404  # no kiosk owns it yet
    consent(service_client, kiosk, session)
    pdf = base64.b64decode(fetch_document(service_client, kiosk, session["id"]).json()["pdf"])
    early = post_document(service_client, kiosk, session["id"], sign(card, pdf))
    assert early.status_code == 409 and early.json()["code"] == "identity_not_verified"
    respond(
        service_client,
        kiosk,
        session["id"],
        CardKeys(demo_person).response(challenge_bytes(session), identity=True),
    )
    # The person has session_ttl (300 s here) after the verification to sign.
    service_clock.advance(timedelta(seconds=301))
    late = post_document(service_client, kiosk, session["id"], sign(card, pdf))
    assert late.status_code == 410 and late.json()["code"] == "document_signing_closed"
    closed = result(service_client, provider, session["id"])
    assert closed["status"] == "verified"
    assert closed["document"]["status"] == "not_signed" and closed["documents"] == []


def test_with_a_timestamp_authority_only_b_t_signatures_are_accepted(
    service_settings: Settings,
    service_clock: ServiceClock,
    service_accounts: ServiceAccounts,
    demo_person: IssuedPerson,
    card: JPKICard,
    tmp_path: Any,
) -> None:
    with local_tsa() as tsa:
        root = tmp_path / "tsa-root.pem"
        root.write_bytes(tsa.root.public_bytes(serialization.Encoding.PEM))
        settings = service_settings.model_copy(
            update={"timestamp_url": tsa.url, "timestamp_roots": [root]}
        )
        runtime = build_runtime(settings, clock=service_clock)
        try:
            with TestClient(create_app(runtime=runtime), raise_server_exceptions=False) as client:
                session, pdf = verified_session_with_document(client, service_accounts, demo_person)
                kiosk = service_accounts.kiosk_credential
                plain = post_document(client, kiosk, session["id"], sign(card, pdf))
                assert plain.status_code == 422
                assert plain.json()["code"] == "document_timestamp_required"
                stamped = sign(card, pdf, timestamp_url=tsa.url)
                accepted = post_document(client, kiosk, session["id"], stamped)
                assert accepted.status_code == 200, accepted.text
            timestamped = [d for e, d in entries(runtime) if e == "document.signed"]
            assert timestamped[0]["timestamped_at"]
        finally:
            runtime.close()


def test_a_document_signed_for_the_provider_goes_with_the_consent_withdrawal(
    service_client: TestClient,
    service_accounts: ServiceAccounts,
    demo_person: IssuedPerson,
    card: JPKICard,
) -> None:
    session, pdf = verified_session_with_document(service_client, service_accounts, demo_person)
    post_document(service_client, service_accounts.kiosk_credential, session["id"], sign(card, pdf))
    provider = service_accounts.provider_a_key
    done = result(service_client, provider, session["id"])
    document_id = done["documents"][0]["id"]
    withdrawn = service_client.delete(f"/v1/identities/{done['sub']}", headers=bearer(provider))
    assert withdrawn.status_code in (200, 204), withdrawn.text
    gone = service_client.get(
        f"/v1/sessions/{session['id']}/documents/{document_id}", headers=bearer(provider)
    )
    assert gone.status_code == 404 and gone.json()["code"] == "document_not_found"


def test_sdk_long_poll_waits_for_the_document(
    service_client: TestClient,
    service_accounts: ServiceAccounts,
    demo_person: IssuedPerson,
) -> None:
    """A verified session that still awaits its document is not final for the SDK."""
    session, _pdf = verified_session_with_document(service_client, service_accounts, demo_person)
    with ProviderClient(
        "http://testserver",
        service_accounts.provider_a_key,
        transport=service_client._transport,
    ) as client:
        waited = client.get_session(session["id"], wait=0.3)
    assert waited.status == "verified" and not waited.final
    assert waited.document is not None and waited.document["status"] == "awaiting_signature"


def test_the_person_can_decline_to_sign_and_the_provider_knows_at_once(
    service_client: TestClient,
    service_accounts: ServiceAccounts,
    service_runtime: Runtime,
    demo_person: IssuedPerson,
    card: JPKICard,
) -> None:
    kiosk, provider = service_accounts.kiosk_credential, service_accounts.provider_a_key
    session, pdf = verified_session_with_document(service_client, service_accounts, demo_person)

    def decline(credential: str) -> Any:
        return service_client.post(
            f"/v1/kiosk/sessions/{session['id']}/document/decline", headers=bearer(credential)
        )

    # Only the kiosk that took the consent may decline for the person.
    other = decline(service_accounts.other_kiosk_credential)
    assert other.status_code == 404 and other.json()["code"] == "session_not_found"

    declined = decline(kiosk)
    assert declined.status_code == 200, declined.text
    assert declined.json()["session_id"] == session["id"]

    # Final for the provider now, not when the signing window closes.
    done = result(service_client, provider, session["id"])
    assert done["status"] == "verified"
    assert done["document"] == {"kind": "consent", "status": "declined", "sign_by": None}
    assert done["documents"] == []
    with ProviderClient(
        "http://testserver", provider, transport=service_client._transport
    ) as client:
        assert client.get_session(session["id"]).final

    # Declined once and for all: no second decline, no signature afterwards.
    again = decline(kiosk)
    assert again.status_code == 409 and again.json()["code"] == "document_declined"
    late = post_document(service_client, kiosk, session["id"], sign(card, pdf))
    assert late.status_code == 409 and late.json()["code"] == "document_declined"
    refetch = fetch_document(service_client, kiosk, session["id"])
    assert refetch.status_code == 409 and refetch.json()["code"] == "document_declined"

    declines = [data for event, data in entries(service_runtime) if event == "document.declined"]
    assert declines == [
        {
            "session_id": session["id"],
            "document_id": declined.json()["document_id"],
            "kiosk_id": service_accounts.kiosk.id,
        }
    ]


def test_a_signed_document_cannot_be_declined(
    service_client: TestClient,
    service_accounts: ServiceAccounts,
    demo_person: IssuedPerson,
    card: JPKICard,
) -> None:
    kiosk = service_accounts.kiosk_credential
    session, pdf = verified_session_with_document(service_client, service_accounts, demo_person)
    assert post_document(service_client, kiosk, session["id"], sign(card, pdf)).status_code == 200
    declined = service_client.post(
        f"/v1/kiosk/sessions/{session['id']}/document/decline", headers=bearer(kiosk)
    )
    assert declined.status_code == 409 and declined.json()["code"] == "document_already_signed"


def test_a_provider_consented_the_name_alone_gets_the_services_word_not_the_pdf(
    service_client: TestClient,
    service_accounts: ServiceAccounts,
    service_runtime: Runtime,
    demo_person: IssuedPerson,
    card: JPKICard,
) -> None:
    """The signed PDF embeds the signature certificate (name, birth date, gender,
    address). A provider consented `name` alone must not obtain the other three, nor the
    certificate, by any endpoint it may call: it gets a signed verification statement."""
    import json as json_module

    from joserfc import jws
    from joserfc.jwk import OKPKey

    from did.keys import resolve_did_document

    kiosk, provider = service_accounts.kiosk_credential, service_accounts.provider_a_key
    session, pdf = verified_session_with_document(
        service_client, service_accounts, demo_person, claims=["name"]
    )
    signed = sign(card, pdf)
    assert post_document(service_client, kiosk, session["id"], signed).status_code == 200

    done = result(service_client, provider, session["id"])
    (listed,) = done["documents"]
    assert listed["released"] is False
    download = service_client.get(
        f"/v1/sessions/{session['id']}/documents/{listed['id']}", headers=bearer(provider)
    )
    assert download.status_code == 403 and download.json()["code"] == "document_withheld"

    # The statement verifies under the service's did:key, and says what was checked.
    token = listed["verification"]
    header = json_module.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
    did = header["kid"].split("#")[0]
    assert did == service_runtime.keyring.current.did
    (method,) = resolve_did_document(did)["verificationMethod"]
    verified = jws.deserialize_compact(
        token, OKPKey.import_key(method["publicKeyJwk"]), algorithms=["EdDSA"]
    )
    statement = json_module.loads(verified.payload)
    assert statement["document_sha256"] == hashlib.sha256(signed).hexdigest()
    assert statement["sub"] == session["id"] and statement["signature"] == "valid"
    assert "serial_sha256" in statement["certificate"]

    # Nothing any provider endpoint answers holds the other attributes or the certificate.
    person = demo_person.record
    withheld = [
        person.birth_date.isoformat(),
        person.address,
        "male",
        base64.b64encode(demo_person.sign_certificate.public_bytes(serialization.Encoding.DER))[
            :40
        ].decode(),
    ]
    answers = [
        service_client.get(f"/v1/sessions/{session['id']}", headers=bearer(provider)).text,
        service_client.get(f"/v1/identities/{done['sub']}", headers=bearer(provider)).text,
        download.text,
        json_module.dumps(statement, ensure_ascii=False),
        # A wallet presentation request's result holds what the wallet disclosed alone.
        _presentation_request_read(service_client, provider),
        # The verification record keeps what the provider was given, no more.
        service_client.get("/v1/records", headers=bearer(provider)).text,
    ]
    assert "山田" in answers[-1]  # the record is there, with the name
    for answer in answers:
        for value in withheld:
            assert value not in answer
    # Every GET a provider may call is one of those: a new one must join this test.
    openapi = service_client.get("/openapi.json").json()
    provider_reads = {
        path
        for path, operations in openapi["paths"].items()
        for method_name, operation in operations.items()
        if method_name == "get" and {"providerKey": []} in operation.get("security", [])
    }
    assert provider_reads == {
        "/v1/sessions/{session_id}",
        "/v1/sessions/{session_id}/documents/{document_id}",
        "/v1/identities/{sub}",
        "/v1/records",
        "/v1/records/{record_id}",
        "/v1/records/{record_id}/pdf",
        "/v1/presentation-requests/{request_id}",
    }


def _presentation_request_read(client: TestClient, provider: str) -> str:
    query = {
        "credentials": [
            {
                "id": "identity",
                "format": "dc+sd-jwt",
                "meta": {"vct_values": ["urn:jp:commonid:vct:jpki-identity:1"]},
                "claims": [{"path": ["age_equal_or_over", "20"]}],
            }
        ]
    }
    created = client.post(
        "/v1/presentation-requests", json={"dcql_query": query}, headers=bearer(provider)
    )
    assert created.status_code == 201, created.text
    read = client.get(f"/v1/presentation-requests/{created.json()['id']}", headers=bearer(provider))
    assert read.status_code == 200
    return read.text


def test_a_refused_document_is_answered_even_when_recording_the_refusal_fails(
    service_client: TestClient,
    service_accounts: ServiceAccounts,
    service_runtime: Runtime,
    demo_person: IssuedPerson,
) -> None:
    import sqlalchemy as sa

    session, _pdf = verified_session_with_document(service_client, service_accounts, demo_person)
    # The audit log's table goes away under the running service: a real database fault.
    with service_runtime.engine.begin() as connection:
        connection.execute(sa.text("ALTER TABLE audit_entries RENAME TO audit_entries_gone"))
    refused = post_document(
        service_client, service_accounts.kiosk_credential, session["id"], b"%PDF-1.7 not really"
    )
    assert refused.status_code == 422, refused.text
    assert refused.json()["code"] == "document_mismatch"  # not the document issued
