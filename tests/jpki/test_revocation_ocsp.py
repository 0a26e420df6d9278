"""OCSP: the client against the test CA's real responder on loopback, and hostile responses."""

from __future__ import annotations

import datetime as dt
import socket
from collections.abc import Iterator

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509 import ocsp

from jpki.ocsp_client import OcspCertStatus, OcspClient, OcspResponseError
from jpki.revocation import RevocationIndex
from jpki.revocation_policy import RevocationConfig, RevocationOrder
from jpki.testca import Hierarchy, IssuedPerson
from jpki.testca.crl import build_crl
from jpki.testca.ocsp import OcspAnswerer, OcspResponder
from jpki.validation import ReasonCode, TrustPolicy, validate
from tests.fixtures.jpki import make_person


@pytest.fixture(scope="module")
def responder(test_hierarchy: Hierarchy) -> Iterator[OcspResponder]:
    with OcspResponder(test_hierarchy, "127.0.0.1", 0) as running:
        yield running


@pytest.fixture(scope="module")
def delegated_responder(test_hierarchy: Hierarchy) -> Iterator[OcspResponder]:
    with OcspResponder(test_hierarchy, "127.0.0.1", 0, delegated=True) as running:
        yield running


@pytest.fixture(scope="module")
def person(test_hierarchy: Hierarchy) -> IssuedPerson:
    return make_person(test_hierarchy)


def ocsp_policy(hierarchy: Hierarchy, clients: list[OcspClient], crls=()) -> TrustPolicy:
    return TrustPolicy.for_test_hierarchy(
        hierarchy.auth_ca_certificate,
        hierarchy.sign_ca_certificate,
        revocation=RevocationConfig(
            order=RevocationOrder.OCSP_THEN_CRL, ocsp_clients=tuple(clients), crl_indexes=crls
        ),
    )


def der(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.DER)


@pytest.mark.parametrize("delegated", [False, True])
def test_good_certificate_via_real_responder(
    test_hierarchy, person, responder, delegated_responder, test_now, delegated
) -> None:
    running = delegated_responder if delegated else responder
    client = OcspClient(running.url, test_hierarchy.auth_ca_certificate)
    result = validate(
        der(person.auth_certificate),
        "auth",
        at=test_now,
        policy=ocsp_policy(test_hierarchy, [client]),
    )
    assert result.valid, result
    assert result.revocation is not None and result.revocation.source == "ocsp"
    expected = (
        running.answerer.responder_certificate("auth").fingerprint(hashes.SHA256()).hex()
        if delegated
        else "ca"
    )
    assert result.revocation.responder == expected


def test_revoked_via_ocsp_and_answers_cached_until_next_update(
    test_hierarchy: Hierarchy, responder, test_now
) -> None:
    person = make_person(test_hierarchy)
    revoked_at = test_now - dt.timedelta(hours=2)
    test_hierarchy.revoke(
        person.sign_serial,
        purpose="sign",
        reason=x509.ReasonFlags.key_compromise,
        revoked_at=revoked_at,
    )
    posted = []
    http = httpx.Client(event_hooks={"request": [posted.append]})
    client = OcspClient(responder.url, test_hierarchy.sign_ca_certificate, client=http)
    policy = ocsp_policy(test_hierarchy, [client])
    result = validate(der(person.sign_certificate), "sign", at=test_now, policy=policy)
    assert result.reason is ReasonCode.REVOKED
    assert result.revocation_reason is x509.ReasonFlags.key_compromise
    assert result.revoked_at == revoked_at
    assert result.revocation.source == "ocsp"
    again = validate(
        der(person.sign_certificate), "sign", at=test_now + dt.timedelta(minutes=5), policy=policy
    )
    assert again.reason is ReasonCode.REVOKED
    assert len(posted) == 1  # the second answer came from the cache


class _Interceptor:
    """An httpx transport between client and the real responder logic (a hostile network)."""

    def __init__(self, answerer: OcspAnswerer, rewrite) -> None:
        self.answerer = answerer
        self.rewrite = rewrite

    def __call__(self, request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=self.rewrite(request.content, self.answerer))


def _request_for(certificate, issuer, nonce: bytes) -> bytes:
    return (
        ocsp.OCSPRequestBuilder()
        .add_certificate(certificate, issuer, hashes.SHA256())
        .add_extension(x509.OCSPNonce(nonce), critical=False)
        .build()
        .public_bytes(serialization.Encoding.DER)
    )


def test_response_for_another_serial_is_refused(
    test_hierarchy: Hierarchy, person, responder, test_now
) -> None:
    other = make_person(test_hierarchy)
    issuer = test_hierarchy.auth_ca_certificate

    def answer_for_other(request_der: bytes, answerer: OcspAnswerer) -> bytes:
        nonce = (
            ocsp.load_der_ocsp_request(request_der)
            .extensions.get_extension_for_class(x509.OCSPNonce)
            .value.nonce
        )
        return answerer.answer(_request_for(other.auth_certificate, issuer, nonce))

    http = httpx.Client(
        transport=httpx.MockTransport(_Interceptor(responder.answerer, answer_for_other))
    )
    client = OcspClient("http://responder.invalid/", issuer, client=http)
    with pytest.raises(OcspResponseError, match="does not answer for this certificate"):
        client.query(person.auth_certificate, at=test_now)
    result = validate(
        der(person.auth_certificate),
        "auth",
        at=test_now,
        policy=ocsp_policy(test_hierarchy, [client]),
    )
    assert result.reason is ReasonCode.REVOCATION_UNAVAILABLE
    assert "does not answer" in result.detail


def test_replayed_response_with_an_old_nonce_is_refused(
    test_hierarchy: Hierarchy, person, responder, test_now
) -> None:
    issuer = test_hierarchy.auth_ca_certificate
    captured = responder.answerer.answer(
        _request_for(person.auth_certificate, issuer, b"an earlier nonce")
    )
    http = httpx.Client(
        transport=httpx.MockTransport(lambda request: httpx.Response(200, content=captured))
    )
    client = OcspClient("http://responder.invalid/", issuer, client=http)
    with pytest.raises(OcspResponseError, match="nonce"):
        client.query(person.auth_certificate, at=test_now)
    result = validate(
        der(person.auth_certificate),
        "auth",
        at=test_now,
        policy=ocsp_policy(test_hierarchy, [client]),
    )
    assert result.reason is ReasonCode.REVOCATION_UNAVAILABLE
    # The same bytes verify for the nonce they were made for: only the replay is refused.
    answer = client.verify_response(
        captured, serial=person.auth_serial, nonce=b"an earlier nonce", at=test_now
    )
    assert answer.status is OcspCertStatus.GOOD


def test_response_signed_by_an_unauthorized_key_is_refused(
    test_hierarchy: Hierarchy, person, test_now
) -> None:
    issuer = test_hierarchy.auth_ca_certificate
    rogue = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    rogue_cert = (
        x509.CertificateBuilder()
        .subject_name(issuer.subject)  # claims the CA's name
        .issuer_name(issuer.subject)
        .public_key(rogue.public_key())
        .serial_number(5)
        .not_valid_before(test_now - dt.timedelta(days=1))
        .not_valid_after(test_now + dt.timedelta(days=1))
        .sign(rogue, hashes.SHA256())
    )
    nonce = b"0123456789abcdef"
    forged = (
        ocsp.OCSPResponseBuilder()
        .add_response(
            cert=person.auth_certificate,
            issuer=issuer,
            algorithm=hashes.SHA256(),
            cert_status=ocsp.OCSPCertStatus.GOOD,
            this_update=test_now,
            next_update=test_now + dt.timedelta(hours=1),
            revocation_time=None,
            revocation_reason=None,
        )
        .responder_id(ocsp.OCSPResponderEncoding.HASH, rogue_cert)
        .certificates([rogue_cert])
        .add_extension(x509.OCSPNonce(nonce), critical=False)
        .sign(rogue, hashes.SHA256())
        .public_bytes(serialization.Encoding.DER)
    )
    client = OcspClient("http://unused.invalid/", issuer)
    with pytest.raises(OcspResponseError):
        client.verify_response(forged, serial=person.auth_serial, nonce=nonce, at=test_now)


def test_stale_ocsp_response_is_refused(test_hierarchy, person, responder, test_now) -> None:
    client = OcspClient(responder.url, test_hierarchy.auth_ca_certificate)
    with pytest.raises(OcspResponseError, match="nextUpdate"):
        # The responder's clock is test_now; its answers are good for one hour.
        client.query(person.auth_certificate, at=test_now + dt.timedelta(hours=3))


def _closed_port_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


def test_unreachable_responder_falls_back_to_the_crl(
    test_hierarchy: Hierarchy, person, test_now
) -> None:
    issuer = test_hierarchy.auth_ca_certificate
    index = RevocationIndex(issuer)
    index.ingest(
        build_crl(
            issuer_certificate=issuer,
            issuer_key=test_hierarchy.ca_key("auth"),
            crl_number=1,
            this_update=test_now,
            next_update=test_now + dt.timedelta(days=1),
        ),
        at=test_now,
    )
    client = OcspClient(_closed_port_url(), issuer, timeout=2.0)
    result = validate(
        der(person.auth_certificate),
        "auth",
        at=test_now,
        policy=ocsp_policy(test_hierarchy, [client], crls=(index,)),
    )
    assert result.valid
    assert result.revocation.source == "crl"
    without_crl = validate(
        der(person.auth_certificate),
        "auth",
        at=test_now,
        policy=ocsp_policy(test_hierarchy, [client]),
    )
    assert without_crl.reason is ReasonCode.REVOCATION_UNAVAILABLE
    crl_only = TrustPolicy.for_test_hierarchy(
        test_hierarchy.auth_ca_certificate,
        test_hierarchy.sign_ca_certificate,
        revocation=RevocationConfig(
            order=RevocationOrder.CRL_ONLY, ocsp_clients=(client,), crl_indexes=(index,)
        ),
    )
    assert validate(der(person.auth_certificate), "auth", at=test_now, policy=crl_only).valid


def test_answer_cache_is_bounded(test_hierarchy: Hierarchy, responder, test_now) -> None:
    people = [make_person(test_hierarchy) for _ in range(3)]
    client = OcspClient(responder.url, test_hierarchy.auth_ca_certificate, max_cached_answers=2)
    for person in people:
        client.query(person.auth_certificate, at=test_now)
    assert client.cached_answers == 2
