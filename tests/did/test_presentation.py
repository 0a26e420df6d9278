"""Card-signed presentations (RS256 JWS over a DigestInfo) and their verification."""

from __future__ import annotations

import base64
import json
from datetime import datetime, timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from did.keys import did_key_from_public_key
from did.presentation import (
    InMemoryNonceStore,
    PresentationReason,
    create_presentation,
    sha256_digest_info,
    verify_presentation,
)

from .conftest import software_sign_digest_info

AUDIENCE = "did:web:provider-b.test"
NONCE = "q3C1iN9sVbB1Xv0dFJ0yJY5S2d3oQbA7m8sCk2ZlXaE"


@pytest.fixture
def present(subject_key: rsa.RSAPrivateKey, subject_did: str, now: datetime):
    def make(**overrides) -> str:
        arguments = {
            "subject_did": subject_did,
            "audience": AUDIENCE,
            "nonce": NONCE,
            "sign_digest_info": software_sign_digest_info(subject_key),
            "issued_at": now,
        }
        arguments.update(overrides)
        return create_presentation(**arguments)

    return make


def _verify(token: str, at: datetime, store: InMemoryNonceStore | None = None, **overrides):
    arguments = {"audience": AUDIENCE, "nonce": NONCE, "at": at}
    arguments.update(overrides)
    return verify_presentation(token, nonce_store=store or InMemoryNonceStore(), **arguments)


def _segments(token: str) -> tuple[dict, dict]:
    header, payload, _ = token.split(".")
    decode = lambda s: json.loads(base64.urlsafe_b64decode(s + "=" * (-len(s) % 4)))  # noqa: E731
    return decode(header), decode(payload)


def test_presentation_verifies_and_names_its_subject(present, subject_did: str, now) -> None:
    token = present(credential={"id": "urn:uuid:c1", "type": ["VerifiableCredential"]})
    header, payload = _segments(token)
    assert header["alg"] == "RS256"
    assert header["kid"].startswith(subject_did + "#")
    assert payload["iss"] == payload["sub"] == subject_did
    assert payload["aud"] == AUDIENCE and payload["nonce"] == NONCE

    result = _verify(token, now + timedelta(seconds=10))

    assert result.reason is PresentationReason.VALID
    assert result.subject_did == subject_did
    assert result.credential == {"id": "urn:uuid:c1", "type": ["VerifiableCredential"]}


def test_wrong_audience_is_rejected(present, now) -> None:
    result = _verify(present(), now, audience="did:web:someone-else.test")
    assert result.reason is PresentationReason.WRONG_AUDIENCE


def test_wrong_nonce_is_rejected(present, now) -> None:
    result = _verify(present(nonce="an-old-nonce"), now)
    assert result.reason is PresentationReason.WRONG_NONCE


def test_replayed_presentation_is_rejected(present, now) -> None:
    store = InMemoryNonceStore()
    token = present()
    assert _verify(token, now, store).valid
    assert _verify(token, now, store).reason is PresentationReason.REPLAYED


def test_rejected_presentation_does_not_burn_the_nonce(present, now) -> None:
    store = InMemoryNonceStore()
    assert not _verify(present(audience="did:web:elsewhere.test"), now, store).valid
    assert _verify(present(), now, store).valid


def test_expired_and_future_presentations_are_rejected(present, now) -> None:
    token = present(lifetime=timedelta(minutes=2))
    assert _verify(token, now + timedelta(minutes=3)).reason is PresentationReason.EXPIRED
    assert _verify(token, now - timedelta(minutes=5)).reason is PresentationReason.NOT_YET_VALID


def test_overlong_lifetime_is_rejected(present, now) -> None:
    token = present(lifetime=timedelta(hours=1))
    assert _verify(token, now).reason is PresentationReason.LIFETIME_TOO_LONG


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def test_tampered_payload_fails_the_signature(present, now) -> None:
    token = present()
    header, _, signature = token.split(".")
    claims = _segments(token)[1]
    claims["aud"] = "did:web:attacker.test"
    forged = f"{header}.{_b64(json.dumps(claims).encode())}.{signature}"
    result = _verify(forged, now, audience="did:web:attacker.test")
    assert result.reason is PresentationReason.INVALID_SIGNATURE


def test_signature_by_another_key_fails(present, now) -> None:
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    token = present(sign_digest_info=software_sign_digest_info(other))
    assert _verify(token, now).reason is PresentationReason.INVALID_SIGNATURE


def test_claims_for_another_did_are_rejected(present, subject_key, now) -> None:
    other_did = did_key_from_public_key(
        rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    )
    # Validly signed with the subject's key and kid, but claiming to be someone else.
    token = present()
    claims = _segments(token)[1]
    claims["iss"] = claims["sub"] = other_did
    signing_input = f"{token.split('.')[0]}.{_b64(json.dumps(claims).encode())}"
    signature = software_sign_digest_info(subject_key)(sha256_digest_info(signing_input.encode()))
    result = _verify(f"{signing_input}.{_b64(signature)}", now)
    assert result.reason is PresentationReason.KEY_MISMATCH


def test_unsigned_token_is_refused(present, now) -> None:
    _, payload, _ = present().split(".")
    none_header = base64.urlsafe_b64encode(b'{"alg":"none"}').rstrip(b"=").decode()
    result = _verify(f"{none_header}.{payload}.", now)
    assert result.reason is PresentationReason.UNSUPPORTED_ALGORITHM
    assert _verify("garbage", now).reason is PresentationReason.MALFORMED


def test_nonce_store_forgets_nonces_only_after_they_expire(now) -> None:
    moment = [now]
    store = InMemoryNonceStore(clock=lambda: moment[0])
    assert store.consume("n", expires_at=now + timedelta(minutes=5))
    moment[0] = now + timedelta(minutes=4)
    assert not store.consume("n", expires_at=now + timedelta(minutes=5))
    moment[0] = now + timedelta(minutes=6)  # a presentation with "n" can no longer verify
    assert store.consume("n", expires_at=now + timedelta(minutes=11))


def _resigned(token: str, key: rsa.RSAPrivateKey, **payload_changes) -> str:
    """The presentation with its payload changed and signed again by the card's key."""
    from cryptography.hazmat.primitives import serialization
    from joserfc import jws
    from joserfc.jwk import RSAKey

    header, payload = _segments(token)
    payload.update(payload_changes)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return jws.serialize_compact(header, json.dumps(payload), RSAKey.import_key(pem))


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({"iat": 10**18}, id="iat-1e18"),
        pytest.param({"exp": 10**30}, id="exp-1e30"),
        pytest.param({"iat": 1e18, "exp": 1e30}, id="float-times"),
        pytest.param({"vp": "x"}, id="vp-a-string"),
        pytest.param({"vp": {"type": ["Something"]}}, id="vp-not-a-presentation"),
    ],
)
def test_a_signed_presentation_of_the_wrong_shape_is_malformed(
    present, subject_key: rsa.RSAPrivateKey, now, changes: dict
) -> None:
    token = _resigned(present(), subject_key, **changes)
    assert _verify(token, now).reason is PresentationReason.MALFORMED


def test_a_kid_that_is_not_a_did_key_is_a_key_mismatch_not_an_exception(now) -> None:
    def part(value: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    for kid in ("did:key:zzzz#zzzz", "did:key:z6Mk#z6Mk", "did:key:#"):
        token = f"{part({'alg': 'RS256', 'kid': kid})}.{part({'iss': 'x'})}.c2ln"
        assert _verify(token, now).reason is PresentationReason.KEY_MISMATCH


def test_a_presentation_over_the_size_limit_is_too_large_not_a_bad_signature(
    present, subject_key: rsa.RSAPrivateKey, now
) -> None:
    token = _resigned(present(), subject_key, padding="x" * 5_000_000)
    assert _verify(token, now).reason is PresentationReason.TOO_LARGE


def test_an_ldp_credential_given_as_json_text_is_embedded_as_an_object(present, now) -> None:
    credential = {"id": "urn:uuid:c2", "type": ["VerifiableCredential"], "proof": {}}
    token = present(credential=json.dumps(credential))
    assert _segments(token)[1]["vp"]["verifiableCredential"] == [credential]
    assert _verify(token, now).credential == credential
    jwt_credential = "eyJhbGciOiJFZERTQSJ9.e30.c2ln"  # a VC-JWT stays its compact string
    assert _segments(present(credential=jwt_credential))[1]["vp"]["verifiableCredential"] == [
        jwt_credential
    ]
