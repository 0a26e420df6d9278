"""Verification records (確認記録): made with the completion, the hash in the audit log,
reuse citing the verification it relies on, export, retention and its audited purge."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import subprocess
from datetime import date, timedelta
from pathlib import Path

import pytest
import rfc8785
from fastapi.testclient import TestClient

from commonid.audit.report_signing import create_test_organisation
from commonid.flows.records import purge_expired
from commonid.runtime import Runtime
from jpki.testca import Hierarchy, IssuedPerson
from tests.fixtures.jpki import make_person
from tests.fixtures.service import ServiceAccounts, ServiceClock

from .flow_helpers import CardKeys, bearer, challenge_bytes, consent, create_session, respond

IDENTITY = {"mode": "identity", "claims": ["name", "birthdate", "address"]}


@pytest.fixture
def card(demo_person: IssuedPerson) -> CardKeys:
    return CardKeys(demo_person)


def _verify(client: TestClient, key: str, kiosk: str, card: CardKeys, **body: object) -> dict:
    session = create_session(client, key, **body)
    consent(client, kiosk, session)
    answer = card.response(challenge_bytes(session), identity=body.get("mode") == "identity")
    assert respond(client, kiosk, session["id"], answer).status_code == 200
    return session


def _records(client: TestClient, key: str, **params: str) -> list[dict]:
    response = client.get("/v1/records", params=params, headers=bearer(key))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/jsonl")
    return [json.loads(line) for line in response.text.splitlines()]


def _logged(runtime: Runtime, event_type: str) -> list[dict]:
    assert runtime.audit is not None
    return [json.loads(e.entry)["data"] for e in runtime.audit.entries(event_type=event_type)]


def test_an_identity_verification_leaves_a_record_whose_hash_is_in_the_audit_log(
    service_client: TestClient,
    service_accounts: ServiceAccounts,
    service_runtime: Runtime,
    card: CardKeys,
) -> None:
    session = _verify(
        service_client,
        service_accounts.provider_a_key,
        service_accounts.kiosk_credential,
        card,
        reference="cust-000123",
        **IDENTITY,
    )
    (exported,) = _records(service_client, service_accounts.provider_a_key)
    record = exported["record"]
    assert record["kind"] == "identity_verification" and record["session_id"] == session["id"]
    assert record["provider"]["reference"] == "cust-000123"
    assert record["verifier"]["kiosk_id"].startswith("ksk_")
    verification = record["verification"]
    assert verification["person"] == {
        "name": "山田\u3000太郎",
        "birthdate": "1990-04-01",
        "address": "東京都千代田区千代田一丁目1番1号",
    }
    assert verification["method"] == {"code": "jpki.signature_certificate", "rules": "2020-04"}
    sign = card.person.sign_certificate
    assert verification["certificate"]["serial"] == format(sign.serial_number, "x")
    assert verification["certificate"]["issuer"] == sign.issuer.rfc4514_string()
    assert (
        verification["signed_data_sha256"] == hashlib.sha256(challenge_bytes(session)).hexdigest()
    )
    revocation = verification["revocation"]
    assert revocation["source"] == "crl" and revocation["crl_number"] >= 1
    assert len(revocation["evidence_sha256"]) == 64
    # The hash over the record's canonical form is the one logged at completion.
    digest = hashlib.sha256(rfc8785.dumps(record)).hexdigest()
    assert exported["record_hash"] == digest
    (created,) = _logged(service_runtime, "record.created")
    assert created == {
        "record_id": record["record_id"],
        "provider_id": record["provider"]["id"],
        "session_id": session["id"],
        "kind": "identity_verification",
        "record_hash": digest,
    }
    # Encrypted at rest: the name is nowhere in the database file's record row.
    from commonid.store.models import VerificationRecord

    with service_runtime.sessions.begin() as db:
        row = db.get(VerificationRecord, record["record_id"])
        assert row is not None and "山田".encode() not in row.content_encrypted
    one = service_client.get(
        f"/v1/records/{record['record_id']}", headers=bearer(service_accounts.provider_a_key)
    )
    assert one.status_code == 200 and one.json()["record"] == record
    # Another provider cannot read it; an authentication alone makes no record.
    other = service_client.get(
        f"/v1/records/{record['record_id']}", headers=bearer(service_accounts.provider_b_key)
    )
    assert other.status_code == 404 and other.json()["code"] == "record_not_found"
    _verify(
        service_client,
        service_accounts.provider_b_key,
        service_accounts.kiosk_credential,
        card,
        mode="auth",
    )
    assert _records(service_client, service_accounts.provider_b_key) == []


def test_a_reuse_record_cites_the_verification_it_relies_on(
    service_client: TestClient, service_accounts: ServiceAccounts, card: CardKeys
) -> None:
    kiosk = service_accounts.kiosk_credential
    _verify(service_client, service_accounts.provider_a_key, kiosk, card, **IDENTITY)
    _verify(
        service_client,
        service_accounts.provider_b_key,
        kiosk,
        card,
        mode="auth",
        reuse=True,
        claims=["name"],
        reference="acct:42",
    )
    (source,) = _records(service_client, service_accounts.provider_a_key)
    (reuse,) = _records(service_client, service_accounts.provider_b_key)
    assert reuse["record"]["kind"] == "reuse"
    assert reuse["record"]["source_record_id"] == source["record"]["record_id"]
    # The verification relied on, holding only what provider B was given (the name).
    relied_on = reuse["record"]["verification"]
    assert relied_on["person"] == {"name": "山田\u3000太郎"}
    assert relied_on == source["record"]["verification"] | {"person": relied_on["person"]}
    assert reuse["record"]["provider"]["reference"] == "acct:42"
    assert reuse["record"]["subject_id"] != source["record"]["subject_id"]  # pairwise


def test_retention_runs_seven_years_from_the_declared_end_then_the_purge_is_audited(
    service_client: TestClient,
    service_accounts: ServiceAccounts,
    service_runtime: Runtime,
    service_clock: ServiceClock,
    card: CardKeys,
) -> None:
    key = service_accounts.provider_a_key
    _verify(service_client, key, service_accounts.kiosk_credential, card, **IDENTITY)
    (exported,) = _records(service_client, key)
    sub = exported["record"]["subject_id"]
    assert exported["retain_until"] is None  # kept while the relationship lasts
    path = "/v1/records/relationship-ended"
    today = service_clock().date()
    future = service_client.post(
        path, json={"sub": sub, "ended_on": (today + timedelta(days=1)).isoformat()},
        headers=bearer(key),
    )  # fmt: skip
    assert future.status_code == 422
    unknown = service_client.post(
        path, json={"sub": "abcdefgh", "ended_on": today.isoformat()}, headers=bearer(key)
    )
    assert unknown.status_code == 404 and unknown.json()["code"] == "record_not_found"
    ended = service_client.post(
        path, json={"sub": sub, "ended_on": "2026-12-01"}, headers=bearer(key)
    )
    assert ended.status_code == 200, ended.text
    assert ended.json()["records"] == 1
    assert ended.json()["retain_until"].startswith("2033-12-02T00:00:00")
    (declared,) = _logged(service_runtime, "record.relationship_ended")
    assert declared["records"] == 1 and "sub" not in declared

    def purge_at(day: date) -> int:
        from datetime import UTC, datetime

        moment = datetime.combine(day, datetime.min.time(), tzinfo=UTC)
        with service_runtime.write_transaction() as db:
            assert service_runtime.audit is not None
            return purge_expired(
                db,
                now=moment,
                audit=lambda events: service_runtime.audit.append_many_in(db, events),  # type: ignore[union-attr]
            )

    assert purge_at(date(2033, 12, 1)) == 0  # the last day of the seven years: kept
    assert len(_records(service_client, key, **{"from": "2026-01-01"})) == 1
    assert purge_at(date(2033, 12, 3)) == 1
    assert _records(service_client, key, **{"from": "2026-01-01"}) == []
    (purged,) = _logged(service_runtime, "record.purged")
    assert purged["record_hash"] == exported["record_hash"]


def test_records_as_a_pdf_signed_by_the_operating_organisation(
    service_client: TestClient,
    service_accounts: ServiceAccounts,
    service_runtime: Runtime,
    card: CardKeys,
    tmp_path: Path,
) -> None:
    key = service_accounts.provider_a_key
    _verify(service_client, key, service_accounts.kiosk_credential, card, **IDENTITY)
    (exported,) = _records(service_client, key)
    record_id = exported["record"]["record_id"]
    missing = service_client.get(f"/v1/records/{record_id}/pdf", headers=bearer(key))
    assert missing.status_code == 503 and missing.json()["code"] == "records_signing_unavailable"
    create_test_organisation(service_runtime.settings.effective_report_signing_dir)
    for response in (
        service_client.get(f"/v1/records/{record_id}/pdf", headers=bearer(key)),
        service_client.get("/v1/records", params={"format": "pdf"}, headers=bearer(key)),
    ):
        assert response.status_code == 200 and response.content.startswith(b"%PDF")
        pdf = tmp_path / "records.pdf"
        pdf.write_bytes(response.content)
        text = subprocess.run(
            ["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True
        ).stdout
        assert "確認記録" in text and "山田" in text
        assert exported["record_hash"] in text.replace("\n", "")  # wrapped in its cell
        checked = subprocess.run(["pdfsig", str(pdf)], capture_output=True, text=True).stdout
        assert "Signature is Valid." in checked
    bad = service_client.get("/v1/records", params={"from": "2026-12-05", "to": "2026-12-01"},
                             headers=bearer(key))  # fmt: skip
    assert bad.status_code == 422
    assert service_client.get("/v1/records/vrc_nope", headers=bearer(key)).status_code == 404
    assert service_client.get("/v1/records").status_code == 401


def test_commonid_records_export_writes_what_the_api_serves(
    service_client: TestClient,
    service_accounts: ServiceAccounts,
    service_runtime: Runtime,
    card: CardKeys,
    tmp_path: Path,
) -> None:
    from typer.testing import CliRunner

    from commonid.cli import app

    key = service_accounts.provider_a_key
    _verify(service_client, key, service_accounts.kiosk_credential, card, **IDENTITY)
    served = service_client.get("/v1/records", headers=bearer(key)).text
    settings = service_runtime.settings
    env = {
        "COMMONID_DATA_DIR": str(settings.data_dir),
        "COMMONID_DATABASE_URL": settings.effective_database_url,
    }
    today = date.today().isoformat()
    period = ["--provider", "Provider A", "--from", "2026-01-01", "--to", today]
    out = tmp_path / "records.jsonl"
    done = CliRunner().invoke(app, ["records", "export", *period, "--out", str(out)], env=env)
    assert done.exit_code == 0, done.output
    assert out.read_text(encoding="utf-8") == served
    pdf = tmp_path / "records.pdf"
    command = ["records", "export", *period, "--format", "pdf", "--out", str(pdf)]
    unsigned = CliRunner().invoke(app, command, env=env)
    assert unsigned.exit_code == 2 and "report-signer init" in unsigned.output
    create_test_organisation(settings.effective_report_signing_dir)
    signed = CliRunner().invoke(app, command, env=env)
    assert signed.exit_code == 0, signed.output
    assert (
        "Signature is Valid."
        in subprocess.run(["pdfsig", str(pdf)], capture_output=True, text=True).stdout
    )
    unknown = CliRunner().invoke(
        app, ["records", "export", *period, "--record", "vrc_none", "--out", str(out)], env=env
    )
    assert unknown.exit_code == 1


def test_a_renewed_card_joins_its_record_only_on_evidence_and_says_which(
    service_client: TestClient,
    service_accounts: ServiceAccounts,
    service_runtime: Runtime,
    test_hierarchy: Hierarchy,
) -> None:
    """Renewal brings new keys (a new DID): the fresh identity verification's four basic
    attributes are the evidence that links it. A renewal whose attributes differ (the
    person moved, then renewed) makes a new record, and the log says why."""
    key, kiosk = service_accounts.provider_a_key, service_accounts.kiosk_credential
    person = make_person(test_hierarchy, name="鈴木\u3000一郎")
    _verify(service_client, key, kiosk, CardKeys(person), **IDENTITY)
    renewed = test_hierarchy.renew(person.person_id)
    assert renewed.auth_certificate.public_key() != person.auth_certificate.public_key()
    _verify(service_client, key, kiosk, CardKeys(renewed), **IDENTITY)
    first, second = _records(service_client, key)
    assert second["record"]["subject_id"] == first["record"]["subject_id"]
    created = _logged(service_runtime, "identity.created")
    linked = _logged(service_runtime, "identity.linked")
    assert [c["reason"] for c in created] == ["no_record_with_these_attributes"]
    assert [entry["evidence"] for entry in linked] == ["basic_attributes_match"]
    assert linked[0]["person_id"] == created[0]["person_id"]

    moved = dataclasses.replace(renewed.record, address="大阪府大阪市北区梅田一丁目1番1号")
    changed = test_hierarchy.change(renewed.person_id, moved)
    after_move = test_hierarchy.renew(changed.person_id)
    _verify(service_client, key, kiosk, CardKeys(after_move), **IDENTITY)
    *_, third = _records(service_client, key)
    assert third["record"]["subject_id"] != first["record"]["subject_id"]
    reasons = [c["reason"] for c in _logged(service_runtime, "identity.created")]
    assert reasons == ["no_record_with_these_attributes"] * 2
    assert len(_logged(service_runtime, "identity.linked")) == 1


def test_a_renewed_cards_did_is_linked_to_the_old_one_by_a_signed_statement(
    service_client: TestClient,
    service_accounts: ServiceAccounts,
    service_runtime: Runtime,
    test_hierarchy: Hierarchy,
) -> None:
    from did.keys import resolve_did_document
    from did.links import DidLinkError, verify_did_link

    key, kiosk = service_accounts.provider_a_key, service_accounts.kiosk_credential
    with_did = {"mode": "identity", "claims": ["name", "did"]}
    person = make_person(test_hierarchy, name="渡辺\u3000三郎")
    _verify(service_client, key, kiosk, CardKeys(person), **with_did)
    renewed = test_hierarchy.renew(person.person_id)
    second = _verify(service_client, key, kiosk, CardKeys(renewed), **with_did)
    done = service_client.get(f"/v1/sessions/{second['id']}", headers=bearer(key)).json()
    identity = service_client.get(f"/v1/identities/{done['sub']}", headers=bearer(key)).json()
    (statement,) = identity["did_links"]
    # Anyone holding the service's DID document checks it: the issuer did:key's own
    # document, or the service's did:web document.
    for document in (
        resolve_did_document(service_runtime.service_did),
        service_client.get("/.well-known/did.json").json(),
    ):
        claims = verify_did_link(statement, document)
        assert claims["sub"] == done["did"]
        assert claims["previous_dids"] and done["did"] not in claims["previous_dids"]
        assert claims["evidence"] == "basic_attributes_match"
    header, payload, signature = statement.split(".")
    forged = ".".join(
        [header, payload, signature[:-4] + ("AAAA" if signature[-4:] != "AAAA" else "BBBB")]
    )
    with pytest.raises(DidLinkError):
        verify_did_link(forged, resolve_did_document(service_runtime.service_did))
    # Without consent to "did", the DIDs' links are not the provider's either.
    no_did = _verify(service_client, service_accounts.provider_b_key, kiosk, CardKeys(renewed),
                     mode="identity", claims=["name"])  # fmt: skip
    sub_b = service_client.get(
        f"/v1/sessions/{no_did['id']}", headers=bearer(service_accounts.provider_b_key)
    ).json()["sub"]
    seen_by_b = service_client.get(
        f"/v1/identities/{sub_b}", headers=bearer(service_accounts.provider_b_key)
    ).json()
    assert seen_by_b["did_links"] == []


def test_a_renewal_supersedes_the_old_cards_credentials_and_a_new_one_can_be_issued(
    service_client: TestClient,
    service_accounts: ServiceAccounts,
    service_runtime: Runtime,
    test_hierarchy: Hierarchy,
) -> None:
    key, kiosk = service_accounts.provider_a_key, service_accounts.kiosk_credential
    with_credential = {"mode": "identity", "claims": ["name", "credential"]}
    person = make_person(test_hierarchy, name="山本\u3000四郎")
    first = _verify(service_client, key, kiosk, CardKeys(person), **with_credential)
    old = service_client.get(f"/v1/sessions/{first['id']}", headers=bearer(key)).json()
    old_credential = old["credential"]

    def verify(credential: dict) -> dict:
        return service_client.post(
            "/v1/credentials/verify", json={"credential": credential}, headers=bearer(key)
        ).json()

    assert verify(old_credential)["reason"] == "valid"
    renewed = test_hierarchy.renew(person.person_id)
    second = _verify(service_client, key, kiosk, CardKeys(renewed), **with_credential)
    assert verify(old_credential)["reason"] == "credential_superseded"
    new = service_client.get(f"/v1/sessions/{second['id']}", headers=bearer(key)).json()
    assert verify(new["credential"])["reason"] == "valid"
    assert new["credential"]["credentialSubject"]["id"] != old_credential["credentialSubject"]["id"]
    reasons = [e["reason_code"] for e in _logged(service_runtime, "credential.revoked")]
    assert reasons == ["superseded"]
