"""The test CA's OCSP responder, queried over real HTTP on loopback."""

from __future__ import annotations

import base64
import datetime as dt
import secrets
import urllib.parse
from collections.abc import Iterator

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID

from jpki.testca import Hierarchy, IssuedPerson
from jpki.testca.ocsp import OcspResponder
from tests.fixtures.jpki import make_person


@pytest.fixture(scope="module")
def ocsp_hierarchy(tmp_path_factory: pytest.TempPathFactory, test_now: dt.datetime) -> Hierarchy:
    return Hierarchy.init(tmp_path_factory.mktemp("ocsp-hierarchy"), now=test_now)


@pytest.fixture(scope="module")
def responder(ocsp_hierarchy: Hierarchy) -> Iterator[OcspResponder]:
    with OcspResponder(ocsp_hierarchy, "127.0.0.1", 0) as running:
        yield running


def _request(
    certificate: x509.Certificate,
    issuer: x509.Certificate,
    *,
    nonce: bytes | None = None,
    algorithm: hashes.HashAlgorithm | None = None,
) -> bytes:
    builder = ocsp.OCSPRequestBuilder().add_certificate(
        certificate,
        issuer,
        algorithm or hashes.SHA1(),  # noqa: S303 - the CertID hash most OCSP clients send
    )
    if nonce is not None:
        builder = builder.add_extension(x509.OCSPNonce(nonce), critical=False)
    return builder.build().public_bytes(serialization.Encoding.DER)


def _post(url: str, request_der: bytes) -> ocsp.OCSPResponse:
    reply = httpx.post(
        url, content=request_der, headers={"Content-Type": "application/ocsp-request"}
    )
    assert reply.status_code == 200
    assert reply.headers["content-type"] == "application/ocsp-response"
    return ocsp.load_der_ocsp_response(reply.content)


def _verify_signature(response: ocsp.OCSPResponse, signer: x509.Certificate) -> None:
    assert response.signature_hash_algorithm is not None
    signer.public_key().verify(  # type: ignore[union-attr]
        response.signature,
        response.tbs_response_bytes,
        padding.PKCS1v15(),  # type: ignore[call-arg]
        response.signature_hash_algorithm,  # type: ignore[call-arg]
    )


def test_good_certificate_with_nonce_echoed(
    responder: OcspResponder, ocsp_hierarchy: Hierarchy, test_now: dt.datetime
) -> None:
    person = make_person(ocsp_hierarchy)
    nonce = secrets.token_bytes(16)
    response = _post(
        responder.url,
        _request(person.auth_certificate, ocsp_hierarchy.auth_ca_certificate, nonce=nonce),
    )
    assert response.response_status is ocsp.OCSPResponseStatus.SUCCESSFUL
    assert response.certificate_status is ocsp.OCSPCertStatus.GOOD
    assert response.serial_number == person.auth_serial
    assert response.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce == nonce
    assert response.this_update_utc == test_now
    assert response.next_update_utc is not None and response.next_update_utc > test_now
    _verify_signature(response, ocsp_hierarchy.auth_ca_certificate)


def test_revocation_shows_with_time_and_reason(
    responder: OcspResponder, ocsp_hierarchy: Hierarchy, test_now: dt.datetime
) -> None:
    person = make_person(ocsp_hierarchy)
    request = _request(person.sign_certificate, ocsp_hierarchy.sign_ca_certificate)
    assert _post(responder.url, request).certificate_status is ocsp.OCSPCertStatus.GOOD

    revoked_at = test_now - dt.timedelta(minutes=5)
    ocsp_hierarchy.revoke(
        person.sign_serial,
        purpose="sign",
        reason=x509.ReasonFlags.key_compromise,
        revoked_at=revoked_at,
    )
    response = _post(responder.url, request)
    assert response.certificate_status is ocsp.OCSPCertStatus.REVOKED
    assert response.revocation_time_utc == revoked_at
    assert response.revocation_reason is x509.ReasonFlags.key_compromise
    _verify_signature(response, ocsp_hierarchy.sign_ca_certificate)


def test_serial_never_issued_is_unknown(
    responder: OcspResponder, ocsp_hierarchy: Hierarchy
) -> None:
    issuer = ocsp_hierarchy.auth_ca_certificate
    genuine = ocsp.load_der_ocsp_request(
        _request(make_person(ocsp_hierarchy).auth_certificate, issuer)
    )
    request = (
        ocsp.OCSPRequestBuilder()
        .add_certificate_by_hash(
            genuine.issuer_name_hash,
            genuine.issuer_key_hash,
            0x01020304,
            hashes.SHA1(),  # noqa: S303 - CertID hash, as the request above
        )
        .build()
        .public_bytes(serialization.Encoding.DER)
    )
    response = _post(responder.url, request)
    assert response.response_status is ocsp.OCSPResponseStatus.SUCCESSFUL
    assert response.certificate_status is ocsp.OCSPCertStatus.UNKNOWN


def test_certificate_of_another_ca_is_unauthorized(
    responder: OcspResponder, demo_person: IssuedPerson
) -> None:
    # demo_person belongs to the session hierarchy, not to this responder's
    response = _post(
        responder.url, _request(demo_person.auth_certificate, demo_person.auth_ca_certificate)
    )
    assert response.response_status is ocsp.OCSPResponseStatus.UNAUTHORIZED


def test_get_request_and_sha256_cert_id(
    responder: OcspResponder, ocsp_hierarchy: Hierarchy
) -> None:
    person = make_person(ocsp_hierarchy)
    request = _request(
        person.sign_certificate, ocsp_hierarchy.sign_ca_certificate, algorithm=hashes.SHA256()
    )
    # RFC 6960 A.1: the URL-encoded base64 of the DER request
    reply = httpx.get(responder.url + urllib.parse.quote(base64.b64encode(request), safe=""))
    assert reply.status_code == 200
    response = ocsp.load_der_ocsp_response(reply.content)
    assert response.certificate_status is ocsp.OCSPCertStatus.GOOD
    assert response.serial_number == person.sign_serial
    assert isinstance(response.hash_algorithm, hashes.SHA256)


def test_malformed_request_gets_malformed_request_status(responder: OcspResponder) -> None:
    response = _post(responder.url, b"\x30\x03\x02\x01\x00")
    assert response.response_status is ocsp.OCSPResponseStatus.MALFORMED_REQUEST
    wrong_type = httpx.post(responder.url, content=b"x", headers={"Content-Type": "text/plain"})
    assert wrong_type.status_code == 415


def test_delegated_responder_signs_with_an_ocsp_signing_certificate(
    ocsp_hierarchy: Hierarchy,
) -> None:
    person = make_person(ocsp_hierarchy)
    with OcspResponder(ocsp_hierarchy, delegated=True) as delegated:
        response = _post(
            delegated.url, _request(person.auth_certificate, ocsp_hierarchy.auth_ca_certificate)
        )
    assert response.certificate_status is ocsp.OCSPCertStatus.GOOD
    (signer,) = response.certificates
    assert signer != ocsp_hierarchy.auth_ca_certificate
    signer.verify_directly_issued_by(ocsp_hierarchy.auth_ca_certificate)
    usage = signer.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.OCSP_SIGNING in usage
    _verify_signature(response, signer)
    with pytest.raises(Exception):  # noqa: B017 - any verification failure will do
        _verify_signature(response, ocsp_hierarchy.auth_ca_certificate)


def test_stopped_responder_refuses_connections(ocsp_hierarchy: Hierarchy) -> None:
    responder = OcspResponder(ocsp_hierarchy).start()
    url = responder.url
    responder.stop()
    with pytest.raises(httpx.ConnectError):
        httpx.post(url, content=b"x", headers={"Content-Type": "application/ocsp-request"})
