"""Parsing certificates against the JPKI profile (jpki.profile)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from asn1crypto import core as asn1_core
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from jpki import profile
from jpki.profile import (
    Era,
    Gender,
    HierarchyKind,
    Kind,
    MalformedCertificateError,
    encode_birth_date,
    parse_certificate,
)
from jpki.testca import Hierarchy, IssuedPerson
from jpki.testca.names import auth_subject, sign_subject
from jpki.testca.person import build_end_entity_certificate
from tests.fixtures.jpki import make_person

TRUST_DIR = Path(profile.__file__).parent / "trust"


def der(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.DER)


def test_sign_certificate_round_trips_every_basic_attribute(demo_person: IssuedPerson) -> None:
    parsed = parse_certificate(der(demo_person.sign_certificate))

    assert parsed.kind is Kind.SIGN
    assert parsed.hierarchy is HierarchyKind.TEST
    assert not parsed.is_ca
    assert parsed.off_profile_reasons == ()
    assert parsed.serial == demo_person.sign_serial
    assert parsed.not_after == demo_person.sign_certificate.not_valid_after_utc
    assert "JPKI TEST" in parsed.issuer
    assert parsed.policies == ("1.2.392.200149.8.5.1.0.20",)
    attributes = parsed.attributes
    assert attributes is not None
    assert attributes.name == "山田\u3000太郎"
    assert attributes.name_flags == "0"
    assert attributes.birth_date == dt.date(1990, 4, 1)
    assert attributes.birth_era is Era.HEISEI
    assert attributes.birth_era_name == "平成"
    assert attributes.birth_date_code == "419900401"
    assert attributes.gender is Gender.MALE
    assert attributes.address == "東京都千代田区千代田一丁目1番1号"
    assert attributes.address_flags == "0"


def test_auth_certificate_is_auth_without_attributes(demo_person: IssuedPerson) -> None:
    parsed = parse_certificate(der(demo_person.auth_certificate))
    assert parsed.kind is Kind.AUTH
    assert parsed.hierarchy is HierarchyKind.TEST
    assert parsed.attributes is None
    assert parsed.off_profile_reasons == ()
    assert parsed.policies == ("1.2.392.200149.8.5.1.0.30",)


def test_substitute_character_flags_and_rare_characters_survive(
    test_hierarchy: Hierarchy,
) -> None:
    person = make_person(
        test_hierarchy,
        name="髙橋\u3000𠮷子",
        name_flags="0102",
        gender=Gender.FEMALE,
        address="大阪府大阪市北区中之島一丁目3番20号　ﾃｽﾄ荘101",
        address_flags="1",
        prefecture="大阪府",
        municipality="大阪市",
    )
    attributes = parse_certificate(der(person.sign_certificate)).attributes
    assert attributes is not None
    assert (attributes.name, attributes.name_flags) == ("髙橋\u3000𠮷子", "0102")
    assert attributes.address == "大阪府大阪市北区中之島一丁目3番20号　ﾃｽﾄ荘101"
    assert attributes.address_flags == "1"
    assert attributes.gender is Gender.FEMALE


@pytest.mark.parametrize(
    ("day", "era"),
    [
        (dt.date(1912, 7, 29), Era.MEIJI),
        (dt.date(1912, 7, 30), Era.TAISHO),
        (dt.date(1926, 12, 24), Era.TAISHO),
        (dt.date(1926, 12, 25), Era.SHOWA),
        (dt.date(1989, 1, 7), Era.SHOWA),
        (dt.date(1989, 1, 8), Era.HEISEI),
        (dt.date(2019, 4, 30), Era.HEISEI),
        (dt.date(2019, 5, 1), Era.REIWA),
    ],
)
def test_birth_date_era_code_at_era_boundaries(day: dt.date, era: Era) -> None:
    assert encode_birth_date(day) == f"{era.code}{day:%Y%m%d}"


@pytest.mark.parametrize(
    ("day", "era_name"),
    [
        (dt.date(1989, 1, 7), "昭和"),
        (dt.date(1989, 1, 8), "平成"),
        (dt.date(2019, 4, 30), "平成"),
        (dt.date(2019, 5, 1), "令和"),
    ],
)
def test_issued_birth_date_decodes_to_era_and_iso_date(
    test_hierarchy: Hierarchy, day: dt.date, era_name: str
) -> None:
    person = make_person(test_hierarchy, birth_date=day)
    attributes = parse_certificate(der(person.sign_certificate)).attributes
    assert attributes is not None
    assert attributes.birth_date == day
    assert attributes.birth_era_name == era_name


@pytest.mark.parametrize("path", sorted(TRUST_DIR.glob("*.pem")), ids=lambda p: p.name)
def test_production_roots_parse_as_production_cas(path: Path) -> None:
    parsed = parse_certificate(der(x509.load_pem_x509_certificate(path.read_bytes())))
    assert parsed.is_ca
    assert parsed.hierarchy is HierarchyKind.PRODUCTION
    assert parsed.kind is (Kind.AUTH if path.name.startswith("auth") else Kind.SIGN)
    assert parsed.off_profile_reasons == ()


def test_test_roots_parse_as_test_cas(test_hierarchy: Hierarchy) -> None:
    auth = parse_certificate(der(test_hierarchy.auth_ca_certificate))
    sign = parse_certificate(der(test_hierarchy.sign_ca_certificate))
    assert (auth.kind, sign.kind) == (Kind.AUTH, Kind.SIGN)
    assert auth.is_ca and sign.is_ca
    assert auth.hierarchy is sign.hierarchy is HierarchyKind.TEST
    assert auth.off_profile_reasons == sign.off_profile_reasons == ()


# --- Off-profile certificates ---------------------------------------------------------------


def _attributes(**values: asn1_core.Asn1Value) -> list[x509.GeneralName]:
    defaults: dict[str, asn1_core.Asn1Value] = {
        profile.NAME_OID: asn1_core.UTF8String("山田\u3000花子"),
        profile.NAME_FLAGS_OID: asn1_core.UTF8String("0"),
        profile.GENDER_OID: asn1_core.UTF8String("2"),
        profile.BIRTH_DATE_OID: asn1_core.UTF8String("419900401"),
        profile.ADDRESS_OID: asn1_core.UTF8String("東京都千代田区"),
        profile.ADDRESS_FLAGS_OID: asn1_core.UTF8String("0"),
    }
    oid_by_field = {
        "name": profile.NAME_OID,
        "gender": profile.GENDER_OID,
        "birth_date": profile.BIRTH_DATE_OID,
        "address": profile.ADDRESS_OID,
    }
    for field, value in values.items():
        defaults[oid_by_field[field]] = value
    return [
        x509.OtherName(x509.ObjectIdentifier(oid), value.dump())
        for oid, value in defaults.items()
        if not isinstance(value, asn1_core.Null)  # Null: leave the attribute out
    ]


def _sign_certificate(
    hierarchy: Hierarchy, alt_names: list[x509.GeneralName], *, purpose: str = "sign"
) -> bytes:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = hierarchy.now()
    return der(
        build_end_entity_certificate(
            purpose=purpose,
            subject=sign_subject("東京都", "千代田区", "X")
            if purpose == "sign"
            else auth_subject("X"),
            public_key=key.public_key(),
            serial=0x01234567,
            not_before=now,
            not_after=now + dt.timedelta(days=1),
            ca_certificate=hierarchy.ca_certificate(purpose),
            ca_key=hierarchy.ca_key(purpose),
            subject_alt_names=alt_names,
        )
    )


def test_printable_string_attributes_are_accepted(test_hierarchy: Hierarchy) -> None:
    certificate = _sign_certificate(
        test_hierarchy,
        _attributes(
            gender=asn1_core.PrintableString("3"),
            birth_date=asn1_core.PrintableString("000000000"),
        ),
    )
    parsed = parse_certificate(certificate)
    assert parsed.attributes is not None
    assert parsed.attributes.gender is Gender.NOT_KNOWN
    assert parsed.attributes.birth_date is None  # 0 era and no date: unknown, not guessed
    assert parsed.attributes.birth_era is Era.UNKNOWN
    assert parsed.off_profile_reasons == ("birth date 00000000 is not a calendar date",)


def test_unknown_gender_code_is_kept_and_reported(test_hierarchy: Hierarchy) -> None:
    parsed = parse_certificate(
        _sign_certificate(test_hierarchy, _attributes(gender=asn1_core.UTF8String("9")))
    )
    assert parsed.attributes is not None
    assert parsed.attributes.gender is None
    assert parsed.attributes.gender_code == "9"
    assert any("gender code '9'" in reason for reason in parsed.off_profile_reasons)
    assert not parsed.on_profile


def test_era_code_contradicting_the_date_is_reported(test_hierarchy: Hierarchy) -> None:
    parsed = parse_certificate(
        _sign_certificate(test_hierarchy, _attributes(birth_date=asn1_core.UTF8String("319900401")))
    )
    assert parsed.attributes is not None
    assert parsed.attributes.birth_date == dt.date(1990, 4, 1)
    assert parsed.attributes.birth_era is Era.SHOWA
    assert parsed.off_profile_reasons == ("era code 3 (昭和) does not match 1990-04-01",)


def test_wrong_string_type_and_missing_attribute_are_reported(test_hierarchy: Hierarchy) -> None:
    parsed = parse_certificate(
        _sign_certificate(
            test_hierarchy,
            _attributes(name=asn1_core.BMPString("山田\u3000花子"), address=asn1_core.Null()),
        )
    )
    assert parsed.attributes is not None
    assert parsed.attributes.name is None
    assert parsed.attributes.address is None
    reasons = " | ".join(parsed.off_profile_reasons)
    assert "BMPString" in reasons
    assert profile.ADDRESS_OID in reasons


def test_sign_certificate_without_attributes_is_off_profile(test_hierarchy: Hierarchy) -> None:
    parsed = parse_certificate(_sign_certificate(test_hierarchy, []))
    assert parsed.kind is Kind.SIGN
    assert parsed.attributes is None
    assert "sign certificate without basic attributes" in parsed.off_profile_reasons


def test_conflicting_kind_signals_give_no_kind(test_hierarchy: Hierarchy) -> None:
    # Issued by the sign CA with the sign policy, but with the auth key usage.
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    certificate = build_end_entity_certificate(
        purpose="auth",
        subject=auth_subject("X"),
        public_key=key.public_key(),
        serial=0x01234568,
        not_before=test_hierarchy.now(),
        not_after=test_hierarchy.now() + dt.timedelta(days=1),
        ca_certificate=test_hierarchy.sign_ca_certificate,
        ca_key=test_hierarchy.ca_key("sign"),
    )
    parsed = parse_certificate(der(certificate))
    assert parsed.kind is None
    assert any(reason.startswith("conflicting kind") for reason in parsed.off_profile_reasons)


def test_foreign_certificate_is_unknown_hierarchy_and_off_profile() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "example.org")])
    now = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(7)
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    parsed = parse_certificate(der(certificate))
    assert parsed.kind is None
    assert parsed.hierarchy is HierarchyKind.UNKNOWN
    reasons = " | ".join(parsed.off_profile_reasons)
    assert "RSA 2048" in reasons
    assert "sha256WithRSAEncryption" in reasons
    assert "neither J-LIS's nor the test hierarchy's" in reasons


@pytest.mark.parametrize(
    "garbage",
    [b"", b"\x30\x03\x02\x01\x01", b"not a certificate", b"\x30\x82\xff\xff" + b"\x00" * 10],
)
def test_malformed_der_raises_a_value_error(garbage: bytes) -> None:
    with pytest.raises(MalformedCertificateError):
        parse_certificate(garbage)
    assert issubclass(MalformedCertificateError, ValueError)


def test_truncated_certificate_is_malformed(demo_person: IssuedPerson) -> None:
    with pytest.raises(MalformedCertificateError):
        parse_certificate(der(demo_person.sign_certificate)[:-20])


def test_repr_of_a_profile_shows_no_personal_data(demo_person: IssuedPerson) -> None:
    parsed = parse_certificate(der(demo_person.sign_certificate))
    shown = repr(parsed)
    assert str(parsed.serial) in shown
    for personal in ("山田", "千代田", "東京都", "419900401"):
        assert personal not in shown
