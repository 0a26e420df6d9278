"""Verify a signature made by a certificate's key, refusing weak algorithms.

Used for CRLs and OCSP responses, whose signed bytes are verified directly
(without building a library object around a million-entry CRL).
"""

from __future__ import annotations

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

MIN_RSA_BITS = 2048

# signatureAlgorithm OID -> hash. SHA-1 and MD5 are deliberately absent: refused as weak.
RSA_PKCS1_SHA2 = {
    "1.2.840.113549.1.1.11": hashes.SHA256,
    "1.2.840.113549.1.1.12": hashes.SHA384,
    "1.2.840.113549.1.1.13": hashes.SHA512,
}
ECDSA_SHA2 = {
    "1.2.840.10045.4.3.2": hashes.SHA256,
    "1.2.840.10045.4.3.3": hashes.SHA384,
    "1.2.840.10045.4.3.4": hashes.SHA512,
}


class SignatureCheckError(Exception):
    """The signature is invalid, or made with an algorithm or key size that is refused."""


def verify_with_certificate(
    signer: x509.Certificate, algorithm_oid: str, signature: bytes, signed: bytes | memoryview
) -> None:
    """Raise SignatureCheckError unless `signature` over `signed` verifies with `signer`'s key."""
    try:
        key = signer.public_key()
    except (ValueError, TypeError) as error:
        raise SignatureCheckError("signer public key cannot be loaded") from error
    try:
        if algorithm_oid in RSA_PKCS1_SHA2 and isinstance(key, rsa.RSAPublicKey):
            if key.key_size < MIN_RSA_BITS:
                raise SignatureCheckError(f"signer RSA key of {key.key_size} bits is too weak")
            key.verify(signature, signed, padding.PKCS1v15(), RSA_PKCS1_SHA2[algorithm_oid]())
        elif algorithm_oid in ECDSA_SHA2 and isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, signed, ec.ECDSA(ECDSA_SHA2[algorithm_oid]()))
        else:
            raise SignatureCheckError(
                f"signature algorithm {algorithm_oid} is refused or does not match the key"
            )
    except InvalidSignature as error:
        raise SignatureCheckError("signature does not verify with the signer's key") from error
