"""Persons of the test hierarchy: their basic attributes and their two certificates."""

from __future__ import annotations

import datetime as dt
import json
import secrets
from dataclasses import dataclass, field
from typing import Any

from asn1crypto import core as asn1_core
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from jpki.profile import (
    ADDRESS_FLAGS_OID,
    ADDRESS_OID,
    BIRTH_DATE_OID,
    GENDER_OID,
    JST,
    MAX_ADDRESS_LENGTH,
    NAME_FLAGS_OID,
    NAME_OID,
    NAME_SEPARATOR,
    Gender,
    encode_birth_date,
)
from jpki.testca import names

# The substitute-character flags are opaque strings to this project: "0" is our
# stand-in for "no substitute characters" (the real encoding is not public).
NO_SUBSTITUTE_CHARACTERS = "0"
PERSON_VALIDITY_BIRTHDAYS = 5


@dataclass(frozen=True, repr=False)
class PersonRecord:
    """The basic attributes (基本4情報) and residence of a test person.

    `name` is family and given name separated by U+3000; `prefecture` and
    `municipality` go into the sign certificate's subject (L, L).
    """

    name: str
    birth_date: dt.date
    gender: Gender | str
    address: str
    prefecture: str
    municipality: str
    name_flags: str = NO_SUBSTITUTE_CHARACTERS
    address_flags: str = NO_SUBSTITUTE_CHARACTERS

    def __post_init__(self) -> None:
        if NAME_SEPARATOR not in self.name:
            raise ValueError("name must separate family and given name with U+3000")
        if len(self.address) > MAX_ADDRESS_LENGTH:
            raise ValueError(f"address is longer than {MAX_ADDRESS_LENGTH} characters")
        object.__setattr__(self, "gender", Gender(self.gender))

    def __repr__(self) -> str:
        # Personal attributes never reach a log through a repr.
        return "PersonRecord(<personal attributes redacted>)"

    @property
    def gender_code(self) -> str:
        assert isinstance(self.gender, Gender)
        return self.gender.value

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "name_flags": self.name_flags,
            "birth_date": self.birth_date.isoformat(),
            "gender": self.gender_code,
            "address": self.address,
            "address_flags": self.address_flags,
            "prefecture": self.prefecture,
            "municipality": self.municipality,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PersonRecord:
        return cls(
            name=data["name"],
            name_flags=data["name_flags"],
            birth_date=dt.date.fromisoformat(data["birth_date"]),
            gender=Gender(data["gender"]),
            address=data["address"],
            address_flags=data["address_flags"],
            prefecture=data["prefecture"],
            municipality=data["municipality"],
        )


@dataclass(frozen=True)
class IssuedPerson:
    """A person with both key pairs and certificates, as a card would hold them."""

    person_id: str
    record: PersonRecord = field(repr=False)
    auth_private_key: rsa.RSAPrivateKey = field(repr=False)
    sign_private_key: rsa.RSAPrivateKey = field(repr=False)
    auth_certificate: x509.Certificate = field(repr=False)
    sign_certificate: x509.Certificate = field(repr=False)
    auth_ca_certificate: x509.Certificate = field(repr=False)
    sign_ca_certificate: x509.Certificate = field(repr=False)

    @property
    def auth_serial(self) -> int:
        return self.auth_certificate.serial_number

    @property
    def sign_serial(self) -> int:
        return self.sign_certificate.serial_number

    @property
    def serials(self) -> dict[str, int]:
        return {"auth": self.auth_serial, "sign": self.sign_serial}

    def certificate(self, purpose: str) -> x509.Certificate:
        purpose = names.check_purpose(purpose)
        return self.auth_certificate if purpose == "auth" else self.sign_certificate

    def to_json(self) -> dict[str, Any]:
        """A JSON form holding the private keys: store it only with mode 0600."""

        def pem_key(key: rsa.RSAPrivateKey) -> str:
            return key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ).decode()

        def pem_cert(cert: x509.Certificate) -> str:
            return cert.public_bytes(serialization.Encoding.PEM).decode()

        return {
            "person_id": self.person_id,
            "record": self.record.to_json(),
            "auth_private_key": pem_key(self.auth_private_key),
            "sign_private_key": pem_key(self.sign_private_key),
            "auth_certificate": pem_cert(self.auth_certificate),
            "sign_certificate": pem_cert(self.sign_certificate),
            "auth_ca_certificate": pem_cert(self.auth_ca_certificate),
            "sign_ca_certificate": pem_cert(self.sign_ca_certificate),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> IssuedPerson:
        def key(name: str) -> rsa.RSAPrivateKey:
            loaded = serialization.load_pem_private_key(data[name].encode(), password=None)
            assert isinstance(loaded, rsa.RSAPrivateKey)
            return loaded

        def cert(name: str) -> x509.Certificate:
            return x509.load_pem_x509_certificate(data[name].encode())

        return cls(
            person_id=data["person_id"],
            record=PersonRecord.from_json(data["record"]),
            auth_private_key=key("auth_private_key"),
            sign_private_key=key("sign_private_key"),
            auth_certificate=cert("auth_certificate"),
            sign_certificate=cert("sign_certificate"),
            auth_ca_certificate=cert("auth_ca_certificate"),
            sign_ca_certificate=cert("sign_ca_certificate"),
        )

    def dumps(self) -> str:
        return json.dumps(self.to_json(), ensure_ascii=False, indent=1)


def opaque_identifier() -> str:
    """A subject CN that names nobody: random, upper-case hex, like a card's serial-ish id."""
    return secrets.token_hex(12).upper()


def end_of_day_jst(day: dt.date) -> dt.datetime:
    """23:59:59 JST of `day` in UTC: J-LIS certificates expire at the end of a Japanese day."""
    return dt.datetime.combine(day, dt.time(23, 59, 59), JST).astimezone(dt.UTC)


def birthday_in(year: int, birth_date: dt.date) -> dt.date:
    """The birthday in `year`; 29 February becomes 28 February in common years."""
    try:
        return birth_date.replace(year=year)
    except ValueError:
        return dt.date(year, 2, 28)


def person_not_after(birth_date: dt.date, issued_at: dt.datetime) -> dt.datetime:
    """The end of the holder's fifth birthday after issue (in Japan), as J-LIS does it."""
    issue_day = issued_at.astimezone(JST).date()
    year = issue_day.year
    if birthday_in(year, birth_date) <= issue_day:
        year += 1
    return end_of_day_jst(birthday_in(year + PERSON_VALIDITY_BIRTHDAYS - 1, birth_date))


def _utf8_other_name(oid: str, value: str) -> x509.OtherName:
    return x509.OtherName(x509.ObjectIdentifier(oid), asn1_core.UTF8String(value).dump())


def basic_attribute_names(record: PersonRecord) -> list[x509.GeneralName]:
    """The six otherName entries of the sign certificate's subjectAltName."""
    return [
        _utf8_other_name(NAME_OID, record.name),
        _utf8_other_name(NAME_FLAGS_OID, record.name_flags),
        _utf8_other_name(GENDER_OID, record.gender_code),
        _utf8_other_name(BIRTH_DATE_OID, encode_birth_date(record.birth_date)),
        _utf8_other_name(ADDRESS_OID, record.address),
        _utf8_other_name(ADDRESS_FLAGS_OID, record.address_flags),
    ]


def build_end_entity_certificate(
    *,
    purpose: str,
    subject: x509.Name,
    public_key: rsa.RSAPublicKey,
    serial: int,
    not_before: dt.datetime,
    not_after: dt.datetime,
    ca_certificate: x509.Certificate,
    ca_key: rsa.RSAPrivateKey,
    subject_alt_names: list[x509.GeneralName] | None = None,
) -> x509.Certificate:
    """An auth or sign certificate with the key usages and policies of real cards."""
    purpose = names.check_purpose(purpose)
    is_sign = purpose == "sign"
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca_certificate.subject)
        .public_key(public_key)
        .serial_number(serial)
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=is_sign,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.CertificatePolicies(
                [x509.PolicyInformation(x509.ObjectIdentifier(names.TEST_POLICY[purpose]), None)]
            ),
            critical=False,
        )
        .add_extension(
            x509.IssuerAlternativeName([x509.DirectoryName(names.issuer_alt_directory_name())]),
            critical=False,
        )
        .add_extension(
            # Like production: the distribution point is the CA's name, not a URL.
            x509.CRLDistributionPoints(
                [
                    x509.DistributionPoint(
                        full_name=[x509.DirectoryName(ca_certificate.subject)],
                        relative_name=None,
                        reasons=None,
                        crl_issuer=None,
                    )
                ]
            ),
            critical=False,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
    )
    if subject_alt_names:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(subject_alt_names), critical=False
        )
    return builder.sign(ca_key, hashes.SHA256())
