"""Property tests: validate(), CRL ingest and OCSP checks raise only documented errors."""

from __future__ import annotations

import datetime as dt
import os

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jpki.ocsp_client import OcspCertStatus, OcspClient, OcspError
from jpki.revocation import CrlError, RevocationIndex
from jpki.testca.crl import RevokedEntry, build_crl
from jpki.testca.ocsp import OcspAnswerer
from jpki.validation import ReasonCode, RevocationMode, TrustPolicy, validate
from tests.fixtures.jpki import TEST_NOW
from tests.jpki.validation_corpus import der

_RESPONSES: dict[bytes, bytes] = {}  # request -> the responder's answer, signed once
SETTINGS = settings(
    max_examples=int(os.environ.get("JPKI_FUZZ_EXAMPLES", "200")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


def _mutations(original: bytes) -> st.SearchStrategy[bytes]:
    """Flip, delete or insert bytes of a real DER object: mostly-valid structure, broken detail."""

    @st.composite
    def mutate(draw: st.DrawFn) -> bytes:
        data = bytearray(original)
        for _ in range(draw(st.integers(1, 4))):
            position = draw(st.integers(0, len(data) - 1))
            action = draw(st.sampled_from(["flip", "delete", "insert", "truncate"]))
            if action == "flip":
                data[position] ^= draw(st.integers(1, 255))
            elif action == "delete":
                del data[position]
            elif action == "insert":
                data.insert(position, draw(st.integers(0, 255)))
            else:
                del data[position:]
            if not data:
                break
        return bytes(data)

    return mutate()


@SETTINGS
@given(data=st.binary(max_size=2048))
def test_random_bytes_give_a_result(data: bytes, test_hierarchy) -> None:
    policy = TrustPolicy.for_test_hierarchy(
        test_hierarchy.auth_ca_certificate, test_hierarchy.sign_ca_certificate
    )
    result = validate(data, "auth", at=TEST_NOW, policy=policy)
    assert result.reason is ReasonCode.MALFORMED
    assert not result.valid


def test_an_undefined_version_number_is_malformed(test_hierarchy, demo_person) -> None:
    """Found by the mutation test below: version 3 (v4) parses, then reading it raised
    cryptography's InvalidVersion out of validate()."""
    policy = TrustPolicy.for_test_hierarchy(
        test_hierarchy.auth_ca_certificate,
        test_hierarchy.sign_ca_certificate,
        revocation=RevocationMode.OFF,
    )
    original = der(demo_person.sign_certificate)
    version_v3 = b"\xa0\x03\x02\x01\x02"  # [0] EXPLICIT INTEGER 2, in the TBS header
    assert original.count(version_v3) == 1
    mutated = original.replace(version_v3, b"\xa0\x03\x02\x01\x03")
    result = validate(mutated, "sign", at=TEST_NOW, policy=policy)
    assert result.reason is ReasonCode.MALFORMED and not result.valid


@SETTINGS
@given(data=st.data())
def test_mutated_certificates_give_a_result(data, test_hierarchy, demo_person) -> None:
    policy = TrustPolicy.for_test_hierarchy(
        test_hierarchy.auth_ca_certificate,
        test_hierarchy.sign_ca_certificate,
        revocation=RevocationMode.OFF,
    )
    original = der(demo_person.sign_certificate)
    mutated = data.draw(_mutations(original))
    result = validate(mutated, "sign", at=TEST_NOW, policy=policy)
    assert isinstance(result.reason, ReasonCode)
    if result.valid:
        # Only changes outside the signed part and the signature can keep a certificate valid,
        # e.g. a different but equivalent length encoding is refused by the DER parser.
        assert mutated == original


@SETTINGS
@given(data=st.data())
def test_mutated_crls_raise_only_crl_errors(data, test_hierarchy) -> None:
    original = build_crl(
        issuer_certificate=test_hierarchy.auth_ca_certificate,
        issuer_key=test_hierarchy.ca_key("auth"),
        crl_number=1,
        this_update=TEST_NOW,
        next_update=TEST_NOW + dt.timedelta(days=1),
        entries=[RevokedEntry(n, TEST_NOW, None) for n in range(1, 40)],
    )
    mutated = data.draw(_mutations(original) | st.binary(max_size=512))
    index = RevocationIndex(test_hierarchy.auth_ca_certificate)
    try:
        index.ingest(mutated, at=TEST_NOW)
    except CrlError:
        assert index.current is None
    else:
        assert mutated == original


@SETTINGS
@given(data=st.data())
def test_mutated_ocsp_responses_raise_only_ocsp_errors(data, test_hierarchy, demo_person) -> None:
    issuer = test_hierarchy.auth_ca_certificate
    nonce = b"property-test-nonce"
    request = (
        ocsp.OCSPRequestBuilder()
        .add_certificate(demo_person.auth_certificate, issuer, hashes.SHA256())
        .add_extension(x509.OCSPNonce(nonce), critical=False)
        .build()
        .public_bytes(serialization.Encoding.DER)
    )
    if request not in _RESPONSES:
        _RESPONSES[request] = OcspAnswerer(test_hierarchy).answer(request)
    original = _RESPONSES[request]
    mutated = data.draw(_mutations(original) | st.binary(max_size=512))
    client = OcspClient("http://unused.invalid/", issuer)
    try:
        answer = client.verify_response(
            mutated, serial=demo_person.auth_serial, nonce=nonce, at=TEST_NOW
        )
    except OcspError:
        return
    assert answer.status is OcspCertStatus.GOOD
