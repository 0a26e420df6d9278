"""Builders for the validation negative corpus: certificates the test CA would never issue.

Good certificates come from `jpki.testca` (`issue_person`); the variants here
are signed with the test CA's own key (`Hierarchy.ca_key`) or with keys made
up for the case, so that exactly one property differs from a good one.
"""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass
from functools import cache

from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from jpki import profile
from jpki.revocation import RevocationIndex
from jpki.revocation_policy import RevocationConfig
from jpki.testca import Hierarchy
from jpki.testca.crl import build_crl

USAGE_AUTH = {"digital_signature": True}
USAGE_SIGN = {"digital_signature": True, "content_commitment": True}


@cache
def leaf_key() -> rsa.RSAPrivateKey:
    """One RSA 2048 key for all crafted leaves: key generation is the slow part."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@cache
def weak_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505 (the weak case)


def key_usage(**flags: bool) -> x509.KeyUsage:
    names = [
        "digital_signature",
        "content_commitment",
        "key_encipherment",
        "data_encipherment",
        "key_agreement",
        "key_cert_sign",
        "crl_sign",
        "encipher_only",
        "decipher_only",
    ]
    return x509.KeyUsage(**{name: flags.get(name, False) for name in names})


@dataclass
class Issuer:
    certificate: x509.Certificate
    key: rsa.RSAPrivateKey


def ca_of(hierarchy: Hierarchy, purpose: str) -> Issuer:
    return Issuer(hierarchy.ca_certificate(purpose), hierarchy.ca_key(purpose))


def make_root(subject: x509.Name, *, now: dt.datetime) -> Issuer:
    """A self-signed CA with the JPKI root profile under any name (e.g. a copy of J-LIS')."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=365))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(key_usage(key_cert_sign=True, crl_sign=True), critical=True)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return Issuer(certificate, key)


def make_leaf(
    issuer: Issuer,
    *,
    now: dt.datetime,
    usage: dict[str, bool] | None = None,
    policies: list[str] | None = None,
    not_before: dt.datetime | None = None,
    not_after: dt.datetime | None = None,
    ca: bool | None = None,
    key: rsa.RSAPrivateKey | None = None,
    digest: hashes.HashAlgorithm | None = None,
    extra_extensions: list[tuple[x509.ExtensionType, bool]] = (),  # type: ignore[assignment]
    self_signed: bool = False,
    serial: int | None = None,
) -> x509.Certificate:
    """A card-like end-entity certificate; every argument changes one property."""
    key = key or leaf_key()
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "JP"),
            x509.NameAttribute(NameOID.COMMON_NAME, secrets.token_hex(8).upper()),
        ]
    )
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject if self_signed else issuer.certificate.subject)
        .public_key(key.public_key())
        .serial_number(serial or secrets.randbelow(2**31) + 2**24)
        .not_valid_before(not_before or now - dt.timedelta(days=30))
        .not_valid_after(not_after or now + dt.timedelta(days=365))
        .add_extension(key_usage(**(usage if usage is not None else USAGE_AUTH)), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if policies is None:
        policies = [profile.AUTH_POLICY_TEST]
    if policies:
        builder = builder.add_extension(
            x509.CertificatePolicies(
                [x509.PolicyInformation(x509.ObjectIdentifier(oid), None) for oid in policies]
            ),
            critical=False,
        )
    if ca is not None:
        builder = builder.add_extension(x509.BasicConstraints(ca=ca, path_length=None), True)
    if not self_signed:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()),
            critical=False,
        )
    for extension, critical in extra_extensions:
        builder = builder.add_extension(extension, critical=critical)
    signer = key if self_signed else issuer.key
    return builder.sign(signer, digest or hashes.SHA256())


def resign_with_sha1(certificate: x509.Certificate, issuer_key: rsa.RSAPrivateKey) -> bytes:
    """The same certificate signed with sha1WithRSA (cryptography no longer makes these)."""
    parsed = asn1_x509.Certificate.load(der(certificate))
    tbs = parsed["tbs_certificate"]
    tbs["signature"] = {"algorithm": "sha1_rsa"}
    parsed["signature_algorithm"] = {"algorithm": "sha1_rsa"}
    signature = issuer_key.sign(tbs.dump(force=True), padding.PKCS1v15(), hashes.SHA1())  # noqa: S303
    parsed["signature_value"] = signature
    return parsed.dump(force=True)


def resign_with_serial(
    certificate: x509.Certificate, issuer_key: rsa.RSAPrivateKey, serial: int
) -> bytes:
    """The same certificate with another serial (cryptography builds no non-positive ones)."""
    parsed = asn1_x509.Certificate.load(der(certificate))
    tbs = parsed["tbs_certificate"]
    tbs["serial_number"] = serial
    parsed["signature_value"] = issuer_key.sign(
        tbs.dump(force=True), padding.PKCS1v15(), hashes.SHA256()
    )
    return parsed.dump(force=True)


def der(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(Encoding.DER)


def flip_last_signature_byte(certificate_der: bytes) -> bytes:
    """The signature BIT STRING is the DER's last element: change its final byte."""
    return certificate_der[:-1] + bytes([certificate_der[-1] ^ 0x01])


def flip_subject_byte(certificate: x509.Certificate) -> bytes:
    """Change one byte inside the signed subject CN (the signature no longer covers it)."""
    encoded = der(certificate)
    common_name = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    position = encoded.index(common_name.encode())
    replacement = b"0" if encoded[position : position + 1] != b"0" else b"1"
    return encoded[:position] + replacement + encoded[position + 1 :]


def crl_indexes(hierarchy: Hierarchy, at: dt.datetime, revoked=()) -> RevocationConfig:
    """Fresh CRLs of both test CAs (with `revoked` entries added to the auth one)."""
    indexes = []
    for purpose in ("auth", "sign"):
        index = RevocationIndex(hierarchy.ca_certificate(purpose))
        extra = [e for p, e in revoked if p == purpose]
        index.ingest(
            build_crl(
                issuer_certificate=hierarchy.ca_certificate(purpose),
                issuer_key=hierarchy.ca_key(purpose),
                crl_number=1,
                this_update=at - dt.timedelta(hours=1),
                next_update=at + dt.timedelta(days=1),
                entries=[*hierarchy.revoked_entries(purpose), *extra],
            ),
            at=at,
        )
        indexes.append(index)
    return RevocationConfig.from_crls(indexes)
