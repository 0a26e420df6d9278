"""Checking a card response: signatures over the recomputed challenge, certificate paths.

Pure (no database, no web): bytes and a trust policy in, a CheckedCard or a
CardRejected with a stable reason code out.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass
from datetime import datetime

from cryptography import x509

from did.keys import DIDKeyError, did_key_from_certificate
from jpki.profile import BasicAttributes, MalformedCertificateError, parse_certificate
from jpki.signatures import SignatureCheckError, verify_with_certificate
from jpki.validation import Purpose, TrustPolicy, ValidationCache, ValidationResult, validate

SHA256_WITH_RSA = "1.2.840.113549.1.1.11"  # RS256: what the card's PKCS#1 v1.5 signature is


class CardRejected(Exception):
    def __init__(self, code: str, detail: str, validation: ValidationResult | None = None) -> None:
        self.code = code
        self.detail = detail
        self.validation = validation  # the failed path validation, for the audit log
        super().__init__(f"{code}: {detail}")


@dataclass(frozen=True)
class SubmittedCard:
    """A kiosk's response, decoded: DER certificates and raw signatures."""

    auth_certificate: bytes
    auth_signature: bytes
    sign_certificate: bytes | None = None
    sign_signature: bytes | None = None


@dataclass(frozen=True)
class CheckedCertificate:
    purpose: str  # "auth" | "sign"
    der: bytes
    certificate: x509.Certificate
    fingerprint_sha256: str
    validation: ValidationResult


@dataclass(frozen=True)
class CheckedCard:
    subject_did: str
    auth: CheckedCertificate
    sign: CheckedCertificate | None
    attributes: BasicAttributes | None
    signed_data: bytes  # the challenge both keys signed (its hash goes into the record)


def decode_base64(field: str, value: str) -> bytes:
    """Standard or URL-safe base64, padding optional."""
    cleaned = value.strip().replace("-", "+").replace("_", "/")
    try:
        return base64.b64decode(cleaned + "=" * (-len(cleaned) % 4), validate=True)
    except (binascii.Error, ValueError) as error:
        raise CardRejected("certificate_malformed", f"{field} is not base64") from error


def _load(field: str, der: bytes) -> x509.Certificate:
    try:
        return x509.load_der_x509_certificate(der)
    except ValueError as error:
        raise CardRejected("certificate_malformed", f"{field} is not a DER certificate") from error


def _check_signature(
    field: str, certificate: x509.Certificate, signature: bytes, tbs: bytes
) -> None:
    try:
        verify_with_certificate(certificate, SHA256_WITH_RSA, signature, tbs)
    except SignatureCheckError as error:
        raise CardRejected(
            "signature_invalid", f"{field} does not verify over this session's challenge"
        ) from error


def _validate(
    purpose: str,
    der: bytes,
    certificate: x509.Certificate,
    *,
    policy: TrustPolicy,
    at: datetime,
    cache: ValidationCache | None,
) -> CheckedCertificate:
    result = validate(
        der, Purpose.AUTH if purpose == "auth" else Purpose.SIGN, at=at, policy=policy, cache=cache
    )
    if not result.valid:
        code = f"certificate_{result.reason.value}"
        raise CardRejected(
            code, f"the {purpose} certificate did not validate: {result.reason}", result
        )
    return CheckedCertificate(
        purpose=purpose,
        der=der,
        certificate=certificate,
        fingerprint_sha256=hashlib.sha256(der).hexdigest(),
        validation=result,
    )


def check_card(
    submitted: SubmittedCard,
    *,
    to_be_signed: bytes,
    mode: str,
    policy: TrustPolicy,
    at: datetime,
    cache: ValidationCache | None = None,
) -> CheckedCard:
    """Verify signatures first (cheap, and nothing else matters if they fail), then paths.

    With a `cache`, path checks of a certificate seen before are reused (revocation is
    checked every time; see jpki.validation.ValidationCache)."""
    auth_certificate = _load("auth_certificate", submitted.auth_certificate)
    _check_signature("auth_signature", auth_certificate, submitted.auth_signature, to_be_signed)
    sign_certificate = None
    if mode == "identity":
        if submitted.sign_certificate is None or submitted.sign_signature is None:
            raise CardRejected(
                "sign_certificate_required",
                "identity mode needs the sign certificate and signature",
            )
        sign_certificate = _load("sign_certificate", submitted.sign_certificate)
        # Both keys signing the same fresh challenge shows both are on the card at hand.
        _check_signature("sign_signature", sign_certificate, submitted.sign_signature, to_be_signed)

    auth = _validate(
        "auth", submitted.auth_certificate, auth_certificate, policy=policy, at=at, cache=cache
    )
    sign = None
    attributes = None
    if sign_certificate is not None and submitted.sign_certificate is not None:
        sign = _validate(
            "sign", submitted.sign_certificate, sign_certificate, policy=policy, at=at, cache=cache
        )
        try:
            attributes = parse_certificate(submitted.sign_certificate).attributes
        except MalformedCertificateError as error:
            raise CardRejected("certificate_malformed", "sign certificate profile") from error
        if attributes is None or attributes.name is None or attributes.birth_date is None:
            raise CardRejected(
                "certificate_invalid", "the sign certificate carries no basic attributes"
            )
    try:
        subject_did = did_key_from_certificate(submitted.auth_certificate)
    except DIDKeyError as error:
        raise CardRejected("certificate_invalid", "the auth key is not RSA") from error
    return CheckedCard(
        subject_did=subject_did,
        auth=auth,
        sign=sign,
        attributes=attributes,
        signed_data=to_be_signed,
    )
