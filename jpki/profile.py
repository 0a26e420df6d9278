"""The JPKI certificate profile: what a My Number Card certificate looks like, and parsing it.

The constants here (policy OIDs, the basic-attribute OIDs, era codes, issuer
names) are the one place the profile is written down; the test CA issues
certificates from them and :func:`parse_certificate` reads certificates
against them. Facts marked unconfirmed in the design notes stay flagged here.
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass, field
from typing import TypeVar

from asn1crypto import core as asn1_core
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID, SignatureAlgorithmOID

_E = TypeVar("_E", bound=x509.ExtensionType)

# --- Issuer names ---------------------------------------------------------------------------

JLIS_OU = "Japan Agency for Local Authority Information Systems"
AUTH_CA_OU = "JPKI for user authentication"
SIGN_CA_OU = "JPKI for digital signature"
PRODUCTION_O = "JPKI"
# The test hierarchy of this project: a different O *and* an extra OU, so that
# neither a person nor a string comparison can take it for J-LIS's production CA.
TEST_O = "JPKI TEST"
TEST_OU = "Common-ID TEST HIERARCHY - NOT J-LIS"
ISSUER_ALT_NAME_O = "公的個人認証サービス"

# --- Certificate policies -------------------------------------------------------------------

SIGN_POLICY_PRODUCTION = "1.2.392.200149.8.5.1.1.20"
SIGN_POLICY_TEST = "1.2.392.200149.8.5.1.0.20"  # the policy J-LIS test cards carry
AUTH_POLICY_PRODUCTION = "1.2.392.200149.8.5.1.3.30"  # unconfirmed (one source)
# Our choice, by analogy with the sign test policy (the "0" arc for tests): no
# public source gives the auth policy of J-LIS test cards.
AUTH_POLICY_TEST = "1.2.392.200149.8.5.1.0.30"

PRODUCTION_POLICIES = {SIGN_POLICY_PRODUCTION: "sign", AUTH_POLICY_PRODUCTION: "auth"}
TEST_POLICIES = {SIGN_POLICY_TEST: "sign", AUTH_POLICY_TEST: "auth"}

# --- The four basic attributes (基本4情報) as subjectAltName otherName entries -------------

NAME_OID = "1.2.392.200149.8.5.5.1"
NAME_FLAGS_OID = "1.2.392.200149.8.5.5.2"
GENDER_OID = "1.2.392.200149.8.5.5.3"
BIRTH_DATE_OID = "1.2.392.200149.8.5.5.4"
ADDRESS_OID = "1.2.392.200149.8.5.5.5"
ADDRESS_FLAGS_OID = "1.2.392.200149.8.5.5.6"
BASIC_ATTRIBUTE_OIDS = (
    NAME_OID,
    NAME_FLAGS_OID,
    GENDER_OID,
    BIRTH_DATE_OID,
    ADDRESS_OID,
    ADDRESS_FLAGS_OID,
)
NAME_SEPARATOR = "\u3000"  # ideographic space between family and given name
MAX_ADDRESS_LENGTH = 200

JST = dt.timezone(dt.timedelta(hours=9), "JST")


class Gender(enum.Enum):
    """The gender code of the sign certificate (JIS X 0303-like codes)."""

    MALE = "1"
    FEMALE = "2"
    NOT_KNOWN = "3"


class Era(enum.Enum):
    """Japanese eras as coded in the first digit of the birth-date attribute."""

    UNKNOWN = (0, "不明", None)
    MEIJI = (1, "明治", dt.date(1868, 10, 23))
    TAISHO = (2, "大正", dt.date(1912, 7, 30))
    SHOWA = (3, "昭和", dt.date(1926, 12, 25))
    HEISEI = (4, "平成", dt.date(1989, 1, 8))
    REIWA = (5, "令和", dt.date(2019, 5, 1))

    def __init__(self, code: int, name_ja: str, first_day: dt.date | None) -> None:
        self.code = code
        self.name_ja = name_ja
        self.first_day = first_day

    @classmethod
    def from_code(cls, code: int) -> Era:
        for era in cls:
            if era.code == code:
                return era
        raise ValueError(f"no era has code {code}")

    @classmethod
    def of(cls, day: dt.date) -> Era:
        """The era a Gregorian date falls in (UNKNOWN before Meiji)."""
        found = cls.UNKNOWN
        for era in cls:
            if era.first_day is not None and day >= era.first_day:
                found = era
        return found


def encode_birth_date(day: dt.date) -> str:
    """`EYYYYMMDD`: the era code followed by the Gregorian date."""
    return f"{Era.of(day).code}{day:%Y%m%d}"


# --- Parsing ----------------------------------------------------------------------------------


class MalformedCertificateError(ValueError):
    """The bytes are not a well-formed DER X.509 certificate."""


class Kind(enum.Enum):
    """Which JPKI key a certificate is for."""

    AUTH = "auth"  # 利用者証明用
    SIGN = "sign"  # 署名用


class HierarchyKind(enum.Enum):
    """Whose hierarchy the certificate's names and policies claim (not a trust decision)."""

    PRODUCTION = "production"
    TEST = "test"
    UNKNOWN = "unknown"


@dataclass(frozen=True, repr=False)
class BasicAttributes:
    """The four basic attributes (基本4情報) of a sign certificate, with the flags kept.

    `birth_date` is None when the coded date is not a valid Gregorian date;
    `gender` is None when the code is not 1, 2 or 3 (the raw code is kept).
    """

    name: str | None
    name_flags: str | None
    birth_date: dt.date | None
    birth_era: Era | None
    birth_date_code: str | None
    gender: Gender | None
    gender_code: str | None
    address: str | None
    address_flags: str | None

    def __repr__(self) -> str:
        # Personal attributes never reach a log through a repr.
        return "BasicAttributes(<redacted>)"

    @property
    def birth_era_name(self) -> str | None:
        """The era's Japanese name (明治 … 令和, 不明 for code 0)."""
        return self.birth_era.name_ja if self.birth_era is not None else None


@dataclass(frozen=True)
class CertificateProfile:
    """What a certificate is in JPKI terms, and every way it departs from the profile."""

    kind: Kind | None
    is_ca: bool
    hierarchy: HierarchyKind
    serial: int
    issuer: str
    subject: str = field(repr=False)  # a sign certificate's subject names the municipality
    not_before: dt.datetime
    not_after: dt.datetime
    policies: tuple[str, ...]
    attributes: BasicAttributes | None
    off_profile_reasons: tuple[str, ...] = field(default=())

    @property
    def on_profile(self) -> bool:
        return not self.off_profile_reasons


def parse_certificate(der: bytes) -> CertificateProfile:
    """Describe a DER certificate against the JPKI profile.

    Departures from the profile are listed in `off_profile_reasons`; a value
    that cannot be read is left None rather than guessed. Raises
    :class:`MalformedCertificateError` for bytes that are not a DER certificate.
    """
    try:
        certificate = x509.load_der_x509_certificate(bytes(der))
        extensions = certificate.extensions  # parsed lazily: errors surface here
    except (ValueError, TypeError, x509.DuplicateExtension, x509.UnsupportedGeneralNameType) as e:
        raise MalformedCertificateError(f"not a DER X.509 certificate: {e}") from e
    reasons: list[str] = []
    is_ca = _is_ca(extensions)
    policies = _policies(extensions)
    kind = _kind(certificate, extensions, policies, is_ca, reasons)
    hierarchy = _hierarchy(certificate, kind, is_ca, policies, reasons)
    _check_keys_and_algorithms(certificate, reasons)
    if is_ca:
        _check_ca(certificate, extensions, reasons)
    elif kind is not None:
        _check_end_entity(certificate, extensions, kind, reasons)
    attributes = None
    if not is_ca and kind is not Kind.AUTH:
        attributes = _basic_attributes(extensions, reasons, required=kind is Kind.SIGN)
    elif _other_names(extensions):
        reasons.append("basic attributes in a certificate that is not a sign certificate")
    return CertificateProfile(
        kind=kind,
        is_ca=is_ca,
        hierarchy=hierarchy,
        serial=certificate.serial_number,
        issuer=certificate.issuer.rfc4514_string(),
        subject=certificate.subject.rfc4514_string(),
        not_before=certificate.not_valid_before_utc,
        not_after=certificate.not_valid_after_utc,
        policies=policies,
        attributes=attributes,
        off_profile_reasons=tuple(reasons),
    )


def _extension(extensions: x509.Extensions, kind: type[_E]) -> x509.Extension[_E] | None:
    try:
        return extensions.get_extension_for_class(kind)
    except x509.ExtensionNotFound:
        return None


def _is_ca(extensions: x509.Extensions) -> bool:
    constraints = _extension(extensions, x509.BasicConstraints)
    return constraints is not None and constraints.value.ca


def _policies(extensions: x509.Extensions) -> tuple[str, ...]:
    policies = _extension(extensions, x509.CertificatePolicies)
    if policies is None:
        return ()
    return tuple(info.policy_identifier.dotted_string for info in policies.value)


def _units(name: x509.Name) -> list[str]:
    return [str(a.value) for a in name.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)]


def _organizations(name: x509.Name) -> list[str]:
    return [str(a.value) for a in name.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)]


def _kind(
    certificate: x509.Certificate,
    extensions: x509.Extensions,
    policies: tuple[str, ...],
    is_ca: bool,
    reasons: list[str],
) -> Kind | None:
    """Kind from every signal available; conflicting signals give None, not a guess."""
    signals: dict[str, Kind] = {}
    ca_name = certificate.subject if is_ca else certificate.issuer
    units = _units(ca_name)
    if AUTH_CA_OU in units and SIGN_CA_OU not in units:
        signals["CA name"] = Kind.AUTH
    elif SIGN_CA_OU in units and AUTH_CA_OU not in units:
        signals["CA name"] = Kind.SIGN
    for policy in policies:
        purpose = PRODUCTION_POLICIES.get(policy) or TEST_POLICIES.get(policy)
        if purpose is not None:
            signals[f"policy {policy}"] = Kind(purpose)
    key_usage = _extension(extensions, x509.KeyUsage)
    if key_usage is not None and not is_ca and key_usage.value.digital_signature:
        signals["keyUsage"] = Kind.SIGN if key_usage.value.content_commitment else Kind.AUTH
    kinds = set(signals.values())
    if len(kinds) == 1:
        return kinds.pop()
    if not kinds:
        reasons.append("nothing says whether this is an auth or a sign certificate")
    else:
        described = ", ".join(f"{source}: {kind.value}" for source, kind in signals.items())
        reasons.append(f"conflicting kind ({described})")
    return None


def production_ca_name(kind: Kind) -> x509.Name:
    """`C=JP, O=JPKI, OU=<purpose>, OU=Japan Agency for Local Authority Information Systems`."""
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "JP"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, PRODUCTION_O),
            x509.NameAttribute(
                NameOID.ORGANIZATIONAL_UNIT_NAME, AUTH_CA_OU if kind is Kind.AUTH else SIGN_CA_OU
            ),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, JLIS_OU),
        ]
    )


def _hierarchy(
    certificate: x509.Certificate,
    kind: Kind | None,
    is_ca: bool,
    policies: tuple[str, ...],
    reasons: list[str],
) -> HierarchyKind:
    ca_name = certificate.subject if is_ca else certificate.issuer
    test_policy = any(policy in TEST_POLICIES for policy in policies)
    production_policy = any(policy in PRODUCTION_POLICIES for policy in policies)
    test_name = TEST_O in _organizations(ca_name) or TEST_OU in _units(ca_name)
    production_name = kind is not None and ca_name == production_ca_name(kind)
    if production_name and test_policy:
        reasons.append("test policy under the production CA name")
    if test_name and production_policy:
        reasons.append("production policy under a test CA name")
    if test_name or test_policy:
        return HierarchyKind.TEST
    if production_name:
        if not is_ca and not production_policy:
            reasons.append("no JPKI production policy")
        return HierarchyKind.PRODUCTION
    reasons.append(
        f"CA name is neither J-LIS's nor the test hierarchy's: {ca_name.rfc4514_string()}"
    )
    return HierarchyKind.UNKNOWN


def _check_keys_and_algorithms(certificate: x509.Certificate, reasons: list[str]) -> None:
    key = certificate.public_key()
    if not isinstance(key, rsa.RSAPublicKey) or key.key_size != 2048:
        reasons.append("key is not RSA 2048")
    if certificate.signature_algorithm_oid != SignatureAlgorithmOID.RSA_WITH_SHA256:
        reasons.append("signature algorithm is not sha256WithRSAEncryption")


def _check_ca(
    certificate: x509.Certificate, extensions: x509.Extensions, reasons: list[str]
) -> None:
    key_usage = _extension(extensions, x509.KeyUsage)
    if key_usage is None or not key_usage.critical:
        reasons.append("CA keyUsage missing or not critical")
    elif not (key_usage.value.key_cert_sign and key_usage.value.crl_sign):
        reasons.append("CA keyUsage lacks keyCertSign or cRLSign")
    constraints = _extension(extensions, x509.BasicConstraints)
    if constraints is None or not constraints.critical:
        reasons.append("CA basicConstraints not critical")


def _check_end_entity(
    certificate: x509.Certificate,
    extensions: x509.Extensions,
    kind: Kind,
    reasons: list[str],
) -> None:
    key_usage = _extension(extensions, x509.KeyUsage)
    expected_non_repudiation = kind is Kind.SIGN
    if key_usage is None or not key_usage.critical:
        reasons.append("keyUsage missing or not critical")
    else:
        usage = key_usage.value
        other_bits = (
            usage.key_encipherment,
            usage.data_encipherment,
            usage.key_agreement,
            usage.key_cert_sign,
            usage.crl_sign,
        )
        if (
            not usage.digital_signature
            or usage.content_commitment != expected_non_repudiation
            or any(other_bits)
        ):
            reasons.append(f"keyUsage is not that of a {kind.value} certificate")
    expected = [NameOID.COUNTRY_NAME] + (
        [NameOID.LOCALITY_NAME, NameOID.LOCALITY_NAME] if kind is Kind.SIGN else []
    )
    expected.append(NameOID.COMMON_NAME)
    if [attribute.oid for attribute in certificate.subject] != expected:
        layout = "C, L, L, CN" if kind is Kind.SIGN else "C, CN"
        reasons.append(f"subject is not {layout}")
    if not any(p in PRODUCTION_POLICIES or p in TEST_POLICIES for p in _policies(extensions)):
        reasons.append("no JPKI certificate policy")


def _other_names(extensions: x509.Extensions) -> list[x509.OtherName]:
    alt_names = _extension(extensions, x509.SubjectAlternativeName)
    if alt_names is None:
        return []
    return list(alt_names.value.get_values_for_type(x509.OtherName))


def _string_value(other_name: x509.OtherName, reasons: list[str]) -> str | None:
    """The otherName value as text: UTF8String (seen) or PrintableString (accepted)."""
    oid = other_name.type_id.dotted_string
    try:
        value = asn1_core.load(other_name.value)
    except ValueError:
        reasons.append(f"attribute {oid} is not DER")
        return None
    if not isinstance(value, asn1_core.UTF8String | asn1_core.PrintableString):
        reasons.append(f"attribute {oid} is a {type(value).__name__}, not a UTF8String")
        return None
    return str(value.native)


def _basic_attributes(
    extensions: x509.Extensions, reasons: list[str], *, required: bool
) -> BasicAttributes | None:
    values: dict[str, str | None] = {}
    for other_name in _other_names(extensions):
        oid = other_name.type_id.dotted_string
        if oid not in BASIC_ATTRIBUTE_OIDS:
            continue
        if oid in values:
            reasons.append(f"attribute {oid} appears more than once")
            continue
        values[oid] = _string_value(other_name, reasons)
    if not values:
        if required:
            reasons.append("sign certificate without basic attributes")
        return None
    missing = [oid for oid in BASIC_ATTRIBUTE_OIDS if oid not in values]
    if missing:
        reasons.append(f"basic attributes missing: {', '.join(missing)}")
    birth_date, era = _decode_birth_date(values.get(BIRTH_DATE_OID), reasons)
    gender_code = values.get(GENDER_OID)
    gender = None
    if gender_code is not None:
        try:
            gender = Gender(gender_code)
        except ValueError:
            reasons.append(f"gender code {gender_code!r} is not 1, 2 or 3")
    address = values.get(ADDRESS_OID)
    if address is not None and len(address) > MAX_ADDRESS_LENGTH:
        reasons.append(f"address longer than {MAX_ADDRESS_LENGTH} characters")
    return BasicAttributes(
        name=values.get(NAME_OID),
        name_flags=values.get(NAME_FLAGS_OID),
        birth_date=birth_date,
        birth_era=era,
        birth_date_code=values.get(BIRTH_DATE_OID),
        gender=gender,
        gender_code=gender_code,
        address=address,
        address_flags=values.get(ADDRESS_FLAGS_OID),
    )


def _decode_birth_date(code: str | None, reasons: list[str]) -> tuple[dt.date | None, Era | None]:
    """`EYYYYMMDD` to (date, era); an era that does not match the date is reported."""
    if code is None:
        return None, None
    if len(code) != 9 or not code.isascii() or not code.isdigit():
        reasons.append(f"birth date {code!r} is not EYYYYMMDD")
        return None, None
    try:
        era = Era.from_code(int(code[0]))
    except ValueError:
        reasons.append(f"birth date era code {code[0]} is not 0-5")
        era = None
    try:
        day = dt.date(int(code[1:5]), int(code[5:7]), int(code[7:9]))
    except ValueError:
        reasons.append(f"birth date {code[1:]} is not a calendar date")
        return None, era
    if era is not None and era is not Era.UNKNOWN and Era.of(day) is not era:
        reasons.append(f"era code {era.code} ({era.name_ja}) does not match {day.isoformat()}")
    return day, era
