"""The test hierarchy on disk: CAs, persons, persistence."""

from __future__ import annotations

import datetime as dt
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.x509.oid import ExtensionOID, NameOID

from jpki.testca import Hierarchy, IssuedPerson, UnknownSerialError
from tests.fixtures.jpki import make_person


def test_fixture_person_is_issued_at_the_frozen_time(
    demo_person: IssuedPerson, test_hierarchy: Hierarchy, test_now: dt.datetime
) -> None:
    assert demo_person.auth_certificate.not_valid_before_utc == test_now
    assert demo_person.sign_certificate.not_valid_before_utc == test_now
    assert test_hierarchy.status("auth", demo_person.auth_serial).status == "good"
    assert test_hierarchy.status("sign", demo_person.sign_serial).status == "good"


def test_person_certificates_are_signed_by_their_ca(
    demo_person: IssuedPerson, test_hierarchy: Hierarchy
) -> None:
    for certificate, ca in (
        (demo_person.auth_certificate, test_hierarchy.auth_ca_certificate),
        (demo_person.sign_certificate, test_hierarchy.sign_ca_certificate),
    ):
        assert certificate.issuer == ca.subject
        certificate.verify_directly_issued_by(ca)


def test_ca_names_are_production_layout_marked_as_test(test_hierarchy: Hierarchy) -> None:
    for ca, purpose_ou in (
        (test_hierarchy.auth_ca_certificate, "JPKI for user authentication"),
        (test_hierarchy.sign_ca_certificate, "JPKI for digital signature"),
    ):
        subject = ca.subject
        assert subject == ca.issuer
        assert subject.get_attributes_for_oid(NameOID.COUNTRY_NAME)[0].value == "JP"
        assert [a.value for a in subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)] == [
            "JPKI TEST"
        ]
        units = [a.value for a in subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)]
        assert units[:2] == [purpose_ou, "Japan Agency for Local Authority Information Systems"]
        assert "TEST HIERARCHY" in units[2]
        key_usage = ca.extensions.get_extension_for_class(x509.KeyUsage)
        assert key_usage.critical and key_usage.value.key_cert_sign and key_usage.value.crl_sign
        assert not key_usage.value.digital_signature
        constraints = ca.extensions.get_extension_for_class(x509.BasicConstraints)
        assert constraints.critical and constraints.value.ca
        assert ca.public_key().key_size == 2048
        assert ca.signature_hash_algorithm is not None
        assert ca.signature_hash_algorithm.name == "sha256"
        ca.verify_directly_issued_by(ca)


def test_auth_certificate_carries_no_personal_data(demo_person: IssuedPerson) -> None:
    certificate = demo_person.auth_certificate
    assert [attribute.oid for attribute in certificate.subject] == [
        NameOID.COUNTRY_NAME,
        NameOID.COMMON_NAME,
    ]
    common_name = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    assert "山田" not in common_name
    with pytest.raises(x509.ExtensionNotFound):
        certificate.extensions.get_extension_for_oid(ExtensionOID.SUBJECT_ALTERNATIVE_NAME)
    key_usage = certificate.extensions.get_extension_for_class(x509.KeyUsage)
    assert key_usage.critical
    assert key_usage.value.digital_signature and not key_usage.value.content_commitment


def test_sign_certificate_subject_names_the_municipality(demo_person: IssuedPerson) -> None:
    certificate = demo_person.sign_certificate
    localities = [
        a.value for a in certificate.subject.get_attributes_for_oid(NameOID.LOCALITY_NAME)
    ]
    assert localities == ["東京都", "千代田区"]
    key_usage = certificate.extensions.get_extension_for_class(x509.KeyUsage)
    assert key_usage.critical
    assert key_usage.value.digital_signature and key_usage.value.content_commitment


def test_keys_match_certificates(demo_person: IssuedPerson) -> None:
    from cryptography.hazmat.primitives import hashes

    for key, certificate in (
        (demo_person.auth_private_key, demo_person.auth_certificate),
        (demo_person.sign_private_key, demo_person.sign_certificate),
    ):
        signature = key.sign(b"challenge", padding.PKCS1v15(), hashes.SHA256())
        certificate.public_key().verify(  # type: ignore[union-attr]
            signature,
            b"challenge",
            padding.PKCS1v15(),  # type: ignore[call-arg]
            hashes.SHA256(),  # type: ignore[call-arg]
        )


@pytest.mark.parametrize(
    ("birth_date", "issued", "expected_end"),
    [
        # the fifth birthday after issue, at 23:59:59 JST (14:59:59 UTC)
        (dt.date(1990, 4, 1), dt.datetime(2026, 11, 1, tzinfo=dt.UTC), "2031-04-01T14:59:59"),
        # issued on the birthday itself: that birthday does not count
        (dt.date(1990, 11, 1), dt.datetime(2026, 11, 1, 3, tzinfo=dt.UTC), "2031-11-01T14:59:59"),
        # 29 February in a common year ends on 28 February
        (dt.date(2000, 2, 29), dt.datetime(2026, 11, 1, tzinfo=dt.UTC), "2031-02-28T14:59:59"),
    ],
)
def test_validity_ends_on_the_fifth_birthday_after_issue(
    test_hierarchy: Hierarchy, birth_date: dt.date, issued: dt.datetime, expected_end: str
) -> None:
    person = make_person(test_hierarchy, birth_date=birth_date, not_before=issued)
    expected = dt.datetime.fromisoformat(expected_end).replace(tzinfo=dt.UTC)
    assert person.sign_certificate.not_valid_after_utc == expected
    assert person.auth_certificate.not_valid_after_utc == expected


def test_hierarchy_survives_reload_with_keys_private(tmp_path: Path, test_now: dt.datetime) -> None:
    created = Hierarchy.init(tmp_path / "h", now=test_now)
    person = make_person(created)
    created.revoke(person.sign_serial, purpose="sign", reason=x509.ReasonFlags.key_compromise)

    loaded = Hierarchy.load(tmp_path / "h", now=test_now)
    assert loaded.auth_ca_certificate == created.auth_ca_certificate
    assert loaded.ca_key("sign").private_numbers() == created.ca_key("sign").private_numbers()
    assert loaded.status("sign", person.sign_serial).status == "revoked"
    assert loaded.status("auth", person.auth_serial).status == "good"
    again = loaded.load_person(person.person_id)
    assert again.sign_certificate == person.sign_certificate
    assert again.record == person.record
    for name in ("auth_ca.key.pem", "sign_ca.key.pem", f"persons/{person.person_id}.json"):
        assert stat.S_IMODE((tmp_path / "h" / name).stat().st_mode) == 0o600
    with pytest.raises(FileExistsError):
        Hierarchy.init(tmp_path / "h")


def test_serials_are_random_32_bit_and_unique(test_hierarchy: Hierarchy) -> None:
    people = [make_person(test_hierarchy) for _ in range(3)]
    serials = [serial for person in people for serial in person.serials.values()]
    assert len(set(serials)) == len(serials)
    assert all(0x0100_0000 <= serial < 0x8000_0000 for serial in serials)


def test_revoking_a_serial_the_ca_never_issued_fails(
    test_hierarchy: Hierarchy, demo_person: IssuedPerson
) -> None:
    with pytest.raises(UnknownSerialError):
        # the auth serial is not a serial of the sign CA
        test_hierarchy.revoke(
            demo_person.auth_serial, purpose="sign", reason=x509.ReasonFlags.superseded
        )
    assert test_hierarchy.status("auth", demo_person.auth_serial).status == "good"


def test_remove_from_crl_is_not_a_revocation_reason(test_hierarchy: Hierarchy) -> None:
    person = make_person(test_hierarchy)
    with pytest.raises(ValueError, match="delta CRL"):
        test_hierarchy.revoke(
            person.auth_serial, purpose="auth", reason=x509.ReasonFlags.remove_from_crl
        )
    assert test_hierarchy.status("auth", person.auth_serial).status == "good"


def test_repr_of_a_person_shows_no_personal_data_or_keys(demo_person: IssuedPerson) -> None:
    shown = repr(demo_person) + repr(demo_person.record)
    assert demo_person.person_id in shown
    for secret in ("山田", "千代田", "1990", "PRIVATE KEY"):
        assert secret not in shown


def test_concurrent_processes_lose_no_update(tmp_path: Path, test_now: dt.datetime) -> None:
    import subprocess
    import sys
    import time

    hierarchy = Hierarchy.init(tmp_path / "h", now=test_now)
    victims = [make_person(hierarchy) for _ in range(2)]
    # Each process issues a person, revokes its victim and takes 100 CRLs (each
    # a read-modify-write of the CRL number): without the lock, updates get lost.
    script = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from cryptography import x509\n"
        "from jpki.testca import Hierarchy\n"
        "from tests.fixtures.jpki import make_person\n"
        "h = Hierarchy.load(Path(sys.argv[1]))\n"
        "make_person(h)\n"
        "h.revoke(int(sys.argv[2]), purpose='auth', reason=x509.ReasonFlags.superseded)\n"
        "while time.time() < float(sys.argv[3]):\n"  # start the loops together
        "    time.sleep(0.001)\n"
        "for _ in range(100):\n"
        "    h.crl('sign')\n"
    )
    start = str(time.time() + 3)
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", script, str(tmp_path / "h"), str(v.auth_serial), start]
        )
        for v in victims
    ]
    assert [process.wait(timeout=60) for process in processes] == [0, 0]

    assert len(hierarchy.person_ids()) == 2 + 2
    assert len(hierarchy.issued_serials("auth")) == 2 + 2
    assert {entry.serial for entry in hierarchy.revoked_entries("auth")} == {
        v.auth_serial for v in victims
    }
    crl = x509.load_der_x509_crl(hierarchy.crl("sign"))
    assert crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number == 201
