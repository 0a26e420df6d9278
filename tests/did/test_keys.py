"""Subject did:key from the card's RSA key; the issuer key ring and its did:web document."""

from __future__ import annotations

import asyncio
import base64
import os
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID
from hypothesis import given
from hypothesis import strategies as st

from did.keys import (
    DIDKeyError,
    IssuerKeyring,
    base58btc_decode,
    base58btc_encode,
    did_key_from_certificate,
    did_key_from_ed25519_jwk,
    did_key_from_public_key,
    did_key_verification_method,
    public_jwk_from_did_document,
    resolve_did_document,
    rsa_public_key_from_did_key,
)

# W3C CCG did:key specification, test-vectors/rsa.json (RSA 2048).
W3C_RSA_2048_DID = (
    "did:key:z4MXj1wBzi9jUstyPMS4jQqB6KdJaiatPkAtVtGc6bQEQEEsKTic4G7Rou3iBf9vPmT5dbkm9qsZsuV"
    "Njq8HCuW1w24nhBFGkRE4cd2Uf2tfrB3N7h4mnyPp1BF3ZttHTYv3DLUPi1zMdkULiow3M1GfXkoC6DoxDUm1"
    "jmN6GBj22SjVsr6dxezRVQc7aj9TxE7JLbMH1wh5X3kA58H3DFW8rnYMakFGbca5CB2Jf6CnGQZmL7o5uJAd"
    "TwXfy2iiiyPxXEGerMhHwhjTA1mKYobyk2CpeEcmvynADfNZ5MBvcCS7m3XkFCMNUYBS9NQ3fze6vMSUPsNa"
    "6GVYmKx2x6JrdEjCk3qRMMmyjnjCMfR4pXbRMZa3i"
)
W3C_RSA_2048_JWK = {
    "kty": "RSA",
    "n": (
        "sbX82NTV6IylxCh7MfV4hlyvaniCajuP97GyOqSvTmoEdBOflFvZ06kR_9D6ctt45Fk6hskfnag2GG69NALVH2o4"
        "RCR6tQiLRpKcMRtDYE_thEmfBvDzm_VVkOIYfxu-Ipuo9J_S5XDNDjczx2v-3oDh5-CIHkU46hvFeCvpUS-L8TJS"
        "bgX0kjVk_m4eIb9wh63rtmD6Uz_KBtCo5mmR4TEtcLZKYdqMp3wCjN-TlgHiz_4oVXWbHUefCEe8rFnX1iQnpDHU"
        "49_SaXQoud1jCaexFn25n-Aa8f8bc5Vm-5SeRwidHa6ErvEhTvf1dz6GoNPp2iRvm-wJ1gxwWJEYPQ"
    ),
    "e": "AQAB",
}


def _b64url_int(text: str) -> int:
    return int.from_bytes(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)), "big")


def _vector_public_key() -> rsa.RSAPublicKey:
    numbers = rsa.RSAPublicNumbers(
        _b64url_int(W3C_RSA_2048_JWK["e"]), _b64url_int(W3C_RSA_2048_JWK["n"])
    )
    return numbers.public_key()


def test_rsa_did_key_matches_the_w3c_test_vector() -> None:
    assert did_key_from_public_key(_vector_public_key()) == W3C_RSA_2048_DID


def test_rsa_did_key_decodes_back_to_the_vector_key() -> None:
    decoded = rsa_public_key_from_did_key(W3C_RSA_2048_DID)
    assert decoded.public_numbers() == _vector_public_key().public_numbers()


def test_didkit_resolves_the_vector_did_to_its_public_jwk() -> None:
    document = resolve_did_document(W3C_RSA_2048_DID)
    method = did_key_verification_method(W3C_RSA_2048_DID)
    assert document["id"] == W3C_RSA_2048_DID
    assert method in document["authentication"]
    assert public_jwk_from_did_document(document, method) == W3C_RSA_2048_JWK


def _certificate(public_key: rsa.RSAPublicKey | ec.EllipticCurvePublicKey) -> bytes:
    signer = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "JPKI auth test")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + timedelta(days=1))
        .sign(signer, hashes.SHA256())
    )
    return certificate.public_bytes(Encoding.DER)


def test_subject_did_from_certificate_resolves_to_the_certificate_key(
    subject_key: rsa.RSAPrivateKey,
) -> None:
    did = did_key_from_certificate(_certificate(subject_key.public_key()))
    assert did == did_key_from_public_key(subject_key.public_key())
    jwk = public_jwk_from_did_document(resolve_did_document(did), did_key_verification_method(did))
    assert _b64url_int(jwk["n"]) == subject_key.public_key().public_numbers().n


def test_non_rsa_certificate_has_no_subject_did() -> None:
    with pytest.raises(DIDKeyError):
        did_key_from_certificate(_certificate(ec.generate_private_key(ec.SECP256R1()).public_key()))


def test_ed25519_did_key_is_not_taken_for_an_rsa_subject(keyring: IssuerKeyring) -> None:
    with pytest.raises(DIDKeyError, match="rsa-pub"):
        rsa_public_key_from_did_key(keyring.current.did)


def test_key_file_is_created_owner_only_and_reopened_with_the_same_key(tmp_path: Path) -> None:
    path = tmp_path / "state" / "issuer.json"
    created = IssuerKeyring.open(path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert created.current.did.startswith("did:key:z6Mk")  # Ed25519
    assert IssuerKeyring.open(path).current.did == created.current.did
    assert "private_jwk" not in repr(created.current)


def test_rotation_keeps_retired_keys_trusted_and_persisted(keyring: IssuerKeyring) -> None:
    first = keyring.current
    rotated = keyring.rotate(now=datetime(2030, 1, 1, tzinfo=UTC))
    assert rotated.current.did != first.did
    reloaded = IssuerKeyring.load(keyring.path)
    assert [key.did for key in reloaded.retired] == [first.did]
    assert reloaded.retired[0].retired_at == datetime(2030, 1, 1, tzinfo=UTC)
    assert reloaded.trusts(first.did) and reloaded.trusts(rotated.current.did)
    assert not reloaded.trusts("did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK")
    assert stat.S_IMODE(os.stat(keyring.path).st_mode) == 0o600


def test_did_web_document_lists_current_and_retired_keys(keyring: IssuerKeyring) -> None:
    first = keyring.current
    rotated = keyring.rotate()
    document = rotated.did_web_document("commonid.test:8443")
    assert document["id"] == "did:web:commonid.test%3A8443"
    jwks = [method["publicKeyJwk"] for method in document["verificationMethod"]]
    assert jwks == [first.public_jwk, rotated.current.public_jwk]
    assert all("d" not in jwk for jwk in jwks)  # never the private part
    assert len(document["assertionMethod"]) == 2
    assert document["authentication"] == [
        f"did:web:commonid.test%3A8443#{rotated.current.fingerprint}"
    ]
    assert document["alsoKnownAs"] == [first.did, rotated.current.did]


def test_ed25519_did_key_from_jwk_agrees_with_didkit(keyring: IssuerKeyring) -> None:
    assert did_key_from_ed25519_jwk(keyring.current.public_jwk) == keyring.current.did


def test_demo_persons_auth_certificate_gives_a_resolvable_subject_did(demo_person) -> None:
    auth_der = demo_person.auth_certificate.public_bytes(Encoding.DER)
    did = did_key_from_certificate(auth_der)
    jwk = public_jwk_from_did_document(resolve_did_document(did), did_key_verification_method(did))
    assert _b64url_int(jwk["n"]) == demo_person.auth_private_key.public_key().public_numbers().n
    # The sign certificate holds another key pair, hence never the subject DID.
    assert did_key_from_certificate(demo_person.sign_certificate.public_bytes(Encoding.DER)) != did


@given(st.binary(max_size=300))  # up to an RSA-2048 key's size: many ten-digit chunks
def test_base58btc_round_trips(data: bytes) -> None:
    assert base58btc_decode(base58btc_encode(data)) == data


def test_didkit_calls_work_from_synchronous_code_and_inside_a_running_loop() -> None:
    # didkit's own async functions need a running loop; an async web handler
    # already has one, where asyncio.run() would fail. The adapter serves both.
    async def handler() -> str:
        return resolve_did_document(W3C_RSA_2048_DID)["id"]

    assert asyncio.run(handler()) == W3C_RSA_2048_DID
    assert resolve_did_document(W3C_RSA_2048_DID)["id"] == W3C_RSA_2048_DID
