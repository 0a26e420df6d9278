"""Credentials: issued when requested and consented, verified, revoked with the certificate."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from cryptography import x509
from fastapi.testclient import TestClient

from commonid.revocations import refresh_and_apply
from commonid.runtime import Runtime
from commonid.store import accounts
from commonid.store import webhooks as outbox
from commonid.webhooks import new_webhook_secret
from jpki.testca import Hierarchy
from tests.fixtures.jpki import make_person
from tests.fixtures.service import ServiceAccounts

from .flow_helpers import CardKeys, bearer, full_flow


def verify(client: TestClient, key: str, credential: object) -> dict:
    response = client.post(
        "/v1/credentials/verify", json={"credential": credential}, headers=bearer(key)
    )
    assert response.status_code == 200, response.text
    return response.json()


def test_credential_is_issued_verified_and_revoked_with_its_certificate(
    service_client: TestClient,
    service_accounts: ServiceAccounts,
    service_runtime: Runtime,
    test_hierarchy: Hierarchy,
) -> None:
    person = make_person(test_hierarchy, name="鈴木\u3000一郎")
    card = CardKeys(person)
    secret = new_webhook_secret()
    with service_runtime.sessions.begin() as db:
        provider = db.get(type(service_accounts.provider_a), service_accounts.provider_a.id)
        accounts.set_webhook(provider, "http://a.test/hooks", secret, service_runtime.cipher)
    outcome = full_flow(
        service_client,
        service_accounts.provider_a_key,
        service_accounts.kiosk_credential,
        card,
        mode="identity",
        claims=["name", "credential"],
    )
    credential = outcome["credential"]
    subject = credential["credentialSubject"]
    assert subject["id"] == card_did(outcome)
    assert subject["verified_claims"]["claims"]["name"] == "鈴木\u3000一郎"
    assert "birthdate" not in subject["verified_claims"]["claims"]  # not consented

    status_url = credential["credentialStatus"]["statusListCredential"]
    list_path = status_url[status_url.index("/v1/") :]
    listed = service_client.get(list_path)
    assert listed.status_code == 200
    assert listed.json()["type"] == ["VerifiableCredential", "BitstringStatusListCredential"]
    # The StatusList2021 lists made before are still served for their credentials.
    legacy = service_client.get("/v1/status-lists/revocation-1")
    assert legacy.json()["type"] == ["VerifiableCredential", "StatusList2021Credential"]

    checked = verify(service_client, service_accounts.provider_b_key, credential)
    assert checked["valid"] is True
    assert checked["verified_claims"]["claims"]["name"] == "鈴木\u3000一郎"

    tampered = dict(credential, credentialSubject=dict(subject, id="did:key:zFake"))
    assert verify(service_client, service_accounts.provider_b_key, tampered)["valid"] is False

    test_hierarchy.revoke(
        person.sign_certificate.serial_number,
        purpose="sign",
        reason=x509.ReasonFlags.key_compromise,
        revoked_at=datetime.now(UTC) - timedelta(seconds=1),
    )
    report = refresh_and_apply(service_runtime)
    assert report.revoked_credentials == 1
    after = verify(service_client, service_accounts.provider_b_key, credential)
    assert after == {
        "valid": False,
        "reason": "credential_revoked",
        "subject_did": None,
        "verified_claims": None,
        "format": "ldp_vc",
        "disclosed_claims": None,
        "holder_binding": None,
        "key_binding_checked": None,
    }
    with service_runtime.sessions() as db:
        events = [d.event_type for d in outbox.deliveries_for(db, service_accounts.provider_a.id)]
    assert "identity.changed" in events
    assert service_runtime.audit is not None
    audited = [e.event_type for e in service_runtime.audit.entries()]
    assert audited.count("credential.issued") == 1
    assert audited.count("credential.revoked") == 1


def card_did(outcome: dict) -> str:
    return outcome["credential"]["credentialSubject"]["id"]


def test_unknown_status_list_is_404(service_client: TestClient) -> None:
    response = service_client.get("/v1/status-lists/nope")
    assert response.status_code == 404
    assert response.json()["code"] == "status_list_not_found"


def test_garbage_credential_is_reported_malformed(
    service_client: TestClient, service_accounts: ServiceAccounts
) -> None:
    result = verify(service_client, service_accounts.provider_a_key, "not.a.jwt")
    assert result["valid"] is False and result["reason"] == "credential_malformed"


def test_an_issuer_key_rotated_by_the_cli_reaches_the_running_service(
    service_client: TestClient,
    service_accounts: ServiceAccounts,
    service_runtime: Runtime,
    test_hierarchy: Hierarchy,
) -> None:
    """`commonid issuer rotate` runs as its own process against the service's key file;
    the running service signs the next credential with the new key, without a restart,
    and the credential of the retired key still verifies."""
    import subprocess
    import sys

    def issued(name: str) -> dict:
        outcome = full_flow(
            service_client,
            service_accounts.provider_a_key,
            service_accounts.kiosk_credential,
            CardKeys(make_person(test_hierarchy, name=name)),
            mode="identity",
            claims=["name", "credential"],
        )
        return outcome["credential"]

    before = issued("前田\u3000一郎")
    key_file = service_runtime.settings.data_dir / "issuer-key.json"
    rotated = subprocess.run(
        [sys.executable, "-m", "commonid.cli", "issuer", "rotate", "--key-file", str(key_file)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert rotated.returncode == 0, rotated.stderr
    after = issued("後藤\u3000二郎")
    assert after["issuer"] != before["issuer"]
    assert after["issuer"] == service_runtime.keyring.current.did
    assert f"current: {after['issuer']}" in rotated.stdout
    for credential in (before, after):
        assert verify(service_client, service_accounts.provider_a_key, credential)["valid"]
        # Each credential's status lists are under its own issuer, signed by its key,
        # and the retired key's lists are still served.
        for entry in ("credentialStatus", "suspensionStatus"):
            url = credential[entry]["statusListCredential"]
            listed = service_client.get(url[url.index("/v1/") :])
            assert listed.status_code == 200
            assert listed.json()["issuer"] == credential["issuer"]
            assert listed.json()["proof"]["verificationMethod"].startswith(credential["issuer"])
