"""Revocation through a platform operator: the test CA's OCSP responder plays the
operator, answering only with client authentication (a token, or mutual TLS).
The service asks it first, falls back to the CRL or not as its order says, and
the evidence it used goes into the validation log and the verification record."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import secrets
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from fastapi.testclient import TestClient

from commonid.api.app import create_app
from commonid.runtime import build_runtime
from commonid.settings import Settings
from jpki.testca import Hierarchy, IssuedPerson
from jpki.testca.ocsp import OcspResponder
from tests.fixtures.jpki import make_person
from tests.fixtures.service import ServiceClock

from .flow_helpers import CardKeys, bearer, challenge_bytes, consent, create_session, respond

TOKEN = "operator-contract-token"


def _verify_identity(
    settings: Settings, clock: ServiceClock, person: IssuedPerson, mode: str = "identity"
) -> dict:
    """A service on ``settings``: one verification (identity mode unless said otherwise,
    auth mode asks to reuse the name); what it answered and logged."""
    runtime = build_runtime(settings, clock=clock)
    try:
        from commonid.store.accounts import add_kiosk, add_provider

        with runtime.sessions.begin() as db:
            provider = add_provider(
                db,
                name=f"Operator Pay {secrets.token_hex(4)}",
                allowed_claims=["name", "birthdate", "address"],
                reuse_max_age_seconds=3600,
                now=clock(),
                cipher=runtime.cipher,
            ).credential
            kiosk = add_kiosk(db, name=f"Operator kiosk {secrets.token_hex(4)}", now=clock())
            kiosk = kiosk.credential
        with TestClient(create_app(runtime=runtime), raise_server_exceptions=False) as client:
            if mode == "identity":
                wanted = {"claims": ["name", "birthdate", "address"]}
            else:
                wanted = {"claims": ["name"], "reuse": True}
            session = create_session(client, provider, mode=mode, **wanted)
            consent(client, kiosk, session)
            body = CardKeys(person).response(challenge_bytes(session), identity=mode == "identity")
            answer = respond(client, kiosk, session["id"], body)
            records = client.get("/v1/records", headers=bearer(provider)).text.splitlines()
        assert runtime.audit is not None
        validations = [
            json.loads(e.entry)["data"]
            for e in runtime.audit.entries(event_type="validation.outcome")
        ]
        logged = {
            kind: [json.loads(e.entry)["data"] for e in runtime.audit.entries(event_type=kind)]
            for kind in ("identity.linked", "identity.created")
        }
        return {
            "logged": logged,
            "status": answer.status_code,
            "answer": answer.json(),
            "validations": validations,
            "records": [json.loads(line) for line in records],
        }
    finally:
        runtime.close()


@pytest.fixture
def live_hierarchy(test_hierarchy: Hierarchy, test_hierarchy_dir: Path) -> Hierarchy:
    """The session's test CA on the real clock, as the service's CRL source has it (the
    fixture's own clock stays at test_now: its OCSP answers would be a month old)."""
    return Hierarchy.load(test_hierarchy_dir)


@pytest.fixture
def operator(live_hierarchy: Hierarchy) -> Iterator[OcspResponder]:
    with OcspResponder(live_hierarchy, client_token=TOKEN) as responder:
        yield responder


def _with(settings: Settings, **changes: object) -> Settings:
    return Settings(**(settings.model_dump() | changes))


def test_the_operators_ocsp_answers_with_the_contract_token(
    service_settings: Settings, service_clock: ServiceClock, operator: OcspResponder,
    demo_person: IssuedPerson,
) -> None:  # fmt: skip
    settings = _with(service_settings, operator_ocsp_url=operator.url, operator_ocsp_token=TOKEN)
    done = _verify_identity(settings, service_clock, demo_person)
    assert done["status"] == 200 and done["answer"]["status"] == "verified"
    assert {v["revocation_source"] for v in done["validations"]} == {"ocsp"}
    # The OCSP response's producedAt and hash are the record's revocation evidence.
    revocation = done["records"][0]["record"]["verification"]["revocation"]
    assert revocation["source"] == "ocsp" and "ocsp_produced_at" in revocation
    assert len(revocation["evidence_sha256"]) == 64 and "crl_number" not in revocation


def test_a_refused_client_falls_back_to_the_crl_or_is_unavailable_as_the_order_says(
    service_settings: Settings, service_clock: ServiceClock, operator: OcspResponder,
    demo_person: IssuedPerson,
) -> None:  # fmt: skip
    wrong = {"operator_ocsp_url": operator.url, "operator_ocsp_token": "not-the-contract"}
    fallback = _verify_identity(_with(service_settings, **wrong), service_clock, demo_person)
    assert fallback["answer"]["status"] == "verified"
    assert {v["revocation_source"] for v in fallback["validations"]} == {"crl"}
    only = _with(service_settings, revocation_order="ocsp-only", **wrong)
    refused = _verify_identity(only, service_clock, demo_person)
    # No revocation status is the service's trouble, not the card's: 503, with its code.
    assert refused["status"] == 503
    assert refused["answer"]["code"] == "certificate_revocation_unavailable"
    assert refused["records"] == []


def test_an_unreachable_operator_is_revocation_unavailable_with_ocsp_only(
    service_settings: Settings, service_clock: ServiceClock, live_hierarchy: Hierarchy,
    demo_person: IssuedPerson,
) -> None:  # fmt: skip
    responder = OcspResponder(live_hierarchy, client_token=TOKEN).start()
    url = responder.url
    responder.stop()  # the operator is down
    settings = _with(
        service_settings,
        operator_ocsp_url=url,
        operator_ocsp_token=TOKEN,
        revocation_order="ocsp-only",
    )
    done = _verify_identity(settings, service_clock, demo_person)
    assert done["answer"]["code"] == "certificate_revocation_unavailable"
    assert {v["reason_code"] for v in done["validations"]} == {"revocation_unavailable"}
    with pytest.raises(ValueError, match="ocsp-only"):
        _with(service_settings, revocation_order="ocsp-only")


# --- mutual TLS --------------------------------------------------------------------------


Issuer = tuple[x509.Name, ec.EllipticCurvePrivateKey]


def _certificate(
    subject: str, key: ec.EllipticCurvePrivateKey, issuer: Issuer | None,
    *, ca: bool = False, server: bool = False,
) -> x509.Certificate:  # fmt: skip
    now = dt.datetime.now(dt.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    issuer_name, signing_key = issuer if issuer is not None else (name, key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        ).add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)
    elif not ca:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), False
        )
    return builder.sign(signing_key, hashes.SHA256())


def _pem(path: Path, *objects: object) -> Path:
    data = b""
    for item in objects:
        if isinstance(item, x509.Certificate):
            data += item.public_bytes(serialization.Encoding.PEM)
        else:
            data += item.private_bytes(  # type: ignore[attr-defined]
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
    path.write_bytes(data)
    return path


def test_mutual_tls_admits_the_contracted_client_only(
    service_settings: Settings, service_clock: ServiceClock, live_hierarchy: Hierarchy,
    demo_person: IssuedPerson, tmp_path: Path,
) -> None:  # fmt: skip
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _certificate("Operator TLS CA", ca_key, None, ca=True)
    server_key, client_key = (
        ec.generate_private_key(ec.SECP256R1()),
        ec.generate_private_key(ec.SECP256R1()),
    )
    server = _certificate("127.0.0.1", server_key, (ca.subject, ca_key), server=True)
    client = _certificate("Common-ID service", client_key, (ca.subject, ca_key))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(_pem(tmp_path / "server.pem", server, server_key))
    context.load_verify_locations(_pem(tmp_path / "ca.pem", ca))
    context.verify_mode = ssl.CERT_REQUIRED
    with OcspResponder(live_hierarchy, tls=context) as operator:
        assert operator.url.startswith("https://127.0.0.1:")
        tls = {
            "operator_ocsp_url": operator.url,
            "operator_ca_file": tmp_path / "ca.pem",
            "revocation_order": "ocsp-only",
        }
        admitted = _verify_identity(
            _with(
                service_settings,
                operator_client_certificate=_pem(tmp_path / "client.pem", client),
                operator_client_key=_pem(tmp_path / "client-key.pem", client_key),
                **tls,
            ),
            service_clock,
            demo_person,
        )
        assert admitted["answer"]["status"] == "verified", admitted
        assert {v["revocation_source"] for v in admitted["validations"]} == {"ocsp"}
        # Without the client certificate the handshake fails: no status, so no verification.
        refused = _verify_identity(_with(service_settings, **tls), service_clock, demo_person)
        assert refused["answer"]["code"] == "certificate_revocation_unavailable"
    with pytest.raises(ValueError, match="go together"):
        _with(service_settings, operator_client_certificate=tmp_path / "client.pem")


def test_the_switch_over_window_reaches_every_crl_index(
    service_settings: Settings, service_clock: ServiceClock
) -> None:
    runtime = build_runtime(
        _with(service_settings, crl_switchover_grace_seconds=3600), clock=service_clock
    )
    try:
        indexes = runtime.trust_policy.revocation.crl_indexes
        assert indexes and {i.switchover_grace for i in indexes} == {dt.timedelta(hours=1)}
    finally:
        runtime.close()
    with pytest.raises(ValueError):
        _with(service_settings, crl_switchover_grace_seconds=-1)


def test_the_operators_linkage_record_joins_a_renewed_card_to_its_record(
    service_settings: Settings, service_clock: ServiceClock, operator: OcspResponder,
    test_hierarchy: Hierarchy,
) -> None:  # fmt: skip
    """A renewed card has new keys: the operator's linkage record (old serial to new) is
    evidence enough, in identity mode and in auth mode alike, where no attribute is
    proved. Without linkage records, a renewed card in auth mode makes a new record."""
    person = make_person(test_hierarchy, name="高橋\u3000次郎")
    linked = _with(
        service_settings,
        operator_linkage_url=operator.url + "linkage/",
        operator_ocsp_token=TOKEN,
    )
    first = _verify_identity(linked, service_clock, person)
    (created,) = first["logged"]["identity.created"]
    renewed = test_hierarchy.renew(person.person_id)
    pin_only = _verify_identity(linked, service_clock, renewed, mode="auth")
    (joined,) = pin_only["logged"]["identity.linked"]
    assert joined["evidence"] == "certificate_linkage"
    assert joined["person_id"] == created["person_id"]
    # The old signature certificate was revoked as superseded: reuse needs a new check.
    assert pin_only["answer"]["status"] == "reverification_required"
    again = test_hierarchy.renew(renewed.person_id)
    identity = _verify_identity(linked, service_clock, again)
    assert identity["logged"]["identity.linked"][-1] == {
        "session_id": identity["logged"]["identity.linked"][-1]["session_id"],
        "person_id": created["person_id"],
        "evidence": "certificate_linkage",
    }
    unlinked = _verify_identity(
        service_settings, service_clock, test_hierarchy.renew(again.person_id), mode="auth"
    )
    assert unlinked["logged"]["identity.created"][-1]["reason"] == "authentication_only"
    assert len(unlinked["logged"]["identity.linked"]) == 2


def test_the_operators_daily_crl_inside_its_switch_over_window(
    service_settings: Settings, service_clock: ServiceClock, live_hierarchy: Hierarchy,
    demo_person: IssuedPerson,
) -> None:  # fmt: skip
    """The operator is 30 minutes into its switch-over window: its CRL endpoint still
    serves yesterday's list (nextUpdate passed 30 minutes ago). A service that accepts
    an hour's window installs it and verifies; one that accepts none has no revocation
    data and refuses."""
    late = dt.timedelta(minutes=30)
    with OcspResponder(live_hierarchy, client_token=TOKEN, in_switchover=late) as operator:
        through_operator = {
            "crl_sources": {
                f"test-{purpose}": f"operator:{operator.url}crl/{purpose}"
                for purpose in ("auth", "sign")
            },
            "operator_ocsp_token": TOKEN,
            "revocation_order": "crl-only",
        }
        accepted = _verify_identity(
            _with(service_settings, crl_switchover_grace_seconds=3600, **through_operator),
            service_clock,
            demo_person,
        )
        assert accepted["answer"]["status"] == "verified", accepted
        revocation = accepted["records"][0]["record"]["verification"]["revocation"]
        assert revocation["source"] == "crl"
        assert revocation["next_update"] < revocation["checked_at"]  # yesterday's list
        refused = _verify_identity(_with(service_settings, **through_operator), service_clock,
                                   demo_person)  # fmt: skip
        assert refused["answer"]["code"] == "certificate_revocation_unavailable"
        # The operator's CRL endpoint wants the client token too.
        wrong = dict(through_operator, operator_ocsp_token="not-the-contract")
        no_token = _verify_identity(
            _with(service_settings, crl_switchover_grace_seconds=3600, **wrong),
            service_clock,
            demo_person,
        )
        assert no_token["answer"]["code"] == "certificate_revocation_unavailable"
