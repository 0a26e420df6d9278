"""CRLs of the test CAs: full CRLs of real revocations, and large synthetic ones."""

from __future__ import annotations

import datetime as dt
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from asn1crypto import crl as asn1_crl
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from jpki.testca import Hierarchy, IssuedPerson
from jpki.testca.crl import der_time
from tests.fixtures.jpki import make_person


@pytest.fixture(scope="module")
def crl_hierarchy(
    tmp_path_factory: pytest.TempPathFactory, test_now: dt.datetime
) -> Iterator[Hierarchy]:
    """A hierarchy of this module only, so the revocations in it are exactly these tests'."""
    yield Hierarchy.init(tmp_path_factory.mktemp("crl-hierarchy"), now=test_now)


@pytest.fixture(scope="module")
def revoked_people(
    crl_hierarchy: Hierarchy, test_now: dt.datetime
) -> tuple[IssuedPerson, IssuedPerson, IssuedPerson]:
    """Three persons: the first lost the card (key compromise), the second moved
    (sign: no reason given, auth: affiliation changed), the third stays good."""
    lost, moved, good = (make_person(crl_hierarchy) for _ in range(3))
    crl_hierarchy.revoke(
        lost.sign_serial,
        purpose="sign",
        reason=x509.ReasonFlags.key_compromise,
        revoked_at=test_now - dt.timedelta(hours=2),
    )
    crl_hierarchy.revoke(
        moved.sign_serial,
        purpose="sign",
        reason=x509.ReasonFlags.unspecified,
        revoked_at=test_now - dt.timedelta(hours=1),
    )
    crl_hierarchy.revoke(
        moved.auth_serial,
        purpose="auth",
        reason=x509.ReasonFlags.affiliation_changed,
        revoked_at=test_now - dt.timedelta(hours=1),
    )
    return lost, moved, good


def _reason(entry: x509.RevokedCertificate) -> x509.ReasonFlags | None:
    try:
        return entry.extensions.get_extension_for_class(x509.CRLReason).value.reason
    except x509.ExtensionNotFound:
        return None


def _crl_number(crl: x509.CertificateRevocationList) -> int:
    return crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number


def test_full_crl_lists_revocations_with_reasons(
    crl_hierarchy: Hierarchy,
    revoked_people: tuple[IssuedPerson, IssuedPerson, IssuedPerson],
    test_now: dt.datetime,
) -> None:
    lost, moved, good = revoked_people
    crl = x509.load_der_x509_crl(crl_hierarchy.crl("sign"))

    assert crl.issuer == crl_hierarchy.sign_ca_certificate.subject
    assert crl.is_signature_valid(crl_hierarchy.sign_ca_certificate.public_key())  # type: ignore[arg-type]
    assert not crl.is_signature_valid(crl_hierarchy.auth_ca_certificate.public_key())  # type: ignore[arg-type]
    assert crl.last_update_utc == test_now
    assert crl.next_update_utc == test_now + dt.timedelta(days=1)
    entries = {entry.serial_number: entry for entry in crl}
    assert set(entries) == {lost.sign_serial, moved.sign_serial}
    assert _reason(entries[lost.sign_serial]) is x509.ReasonFlags.key_compromise
    # RFC 5280: the reasonCode "unspecified" is left out
    assert _reason(entries[moved.sign_serial]) is None
    assert entries[lost.sign_serial].revocation_date_utc == test_now - dt.timedelta(hours=2)
    assert crl.get_revoked_certificate_by_serial_number(good.sign_serial) is None


def test_crl_does_not_list_revocations_after_this_update(
    crl_hierarchy: Hierarchy, test_now: dt.datetime
) -> None:
    person = make_person(crl_hierarchy)
    crl_hierarchy.revoke(
        person.auth_serial,
        purpose="auth",
        reason=x509.ReasonFlags.superseded,
        revoked_at=test_now + dt.timedelta(days=2),
    )
    before = x509.load_der_x509_crl(crl_hierarchy.crl("auth"))
    after = x509.load_der_x509_crl(
        crl_hierarchy.crl("auth", this_update=test_now + dt.timedelta(days=3))
    )
    assert before.get_revoked_certificate_by_serial_number(person.auth_serial) is None
    assert after.get_revoked_certificate_by_serial_number(person.auth_serial) is not None
    assert after.next_update_utc == test_now + dt.timedelta(days=4)
    assert crl_hierarchy.status("auth", person.auth_serial).status == "good"
    later = test_now + dt.timedelta(days=2)
    assert crl_hierarchy.status("auth", person.auth_serial, at=later).status == "revoked"


def test_crl_carries_authority_key_identifier_and_increasing_numbers(
    crl_hierarchy: Hierarchy, revoked_people: tuple[IssuedPerson, IssuedPerson, IssuedPerson]
) -> None:
    first = x509.load_der_x509_crl(crl_hierarchy.crl("auth"))
    second = x509.load_der_x509_crl(crl_hierarchy.crl("auth"))
    assert _crl_number(second) == _crl_number(first) + 1
    aki = first.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    ski = crl_hierarchy.auth_ca_certificate.extensions.get_extension_for_class(
        x509.SubjectKeyIdentifier
    ).value
    assert aki.key_identifier == ski.digest
    _, moved, _ = revoked_people
    entry = first.get_revoked_certificate_by_serial_number(moved.auth_serial)
    assert entry is not None
    assert _reason(entry) is x509.ReasonFlags.affiliation_changed


def test_crl_parses_with_asn1crypto_and_openssl(
    crl_hierarchy: Hierarchy,
    revoked_people: tuple[IssuedPerson, IssuedPerson, IssuedPerson],
    tmp_path: Path,
) -> None:
    der = crl_hierarchy.crl("sign")
    native = asn1_crl.CertificateList.load(der).native
    revoked = native["tbs_cert_list"]["revoked_certificates"]
    assert {entry["user_certificate"] for entry in revoked} == {
        revoked_people[0].sign_serial,
        revoked_people[1].sign_serial,
    }
    (tmp_path / "crl.der").write_bytes(der)
    (tmp_path / "ca.pem").write_bytes(
        crl_hierarchy.sign_ca_certificate.public_bytes(serialization.Encoding.PEM)
    )
    result = subprocess.run(
        [
            "openssl",
            "crl",
            "-inform",
            "DER",
            "-in",
            str(tmp_path / "crl.der"),
            "-noout",
            "-CAfile",
            str(tmp_path / "ca.pem"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "verify OK" in result.stdout + result.stderr


def test_empty_crl_has_no_revoked_certificates(tmp_path: Path, test_now: dt.datetime) -> None:
    hierarchy = Hierarchy.init(tmp_path / "h", now=test_now)
    der = hierarchy.crl("auth")
    crl = x509.load_der_x509_crl(der)
    assert len(crl) == 0
    assert crl.is_signature_valid(hierarchy.auth_ca_certificate.public_key())  # type: ignore[arg-type]
    assert "revoked_certificates" not in {
        key
        for key, value in asn1_crl.CertificateList.load(der).native["tbs_cert_list"].items()
        if value
    }


def test_large_crl_has_exactly_n_unique_entries_and_keeps_good_certificates_good(
    crl_hierarchy: Hierarchy,
    revoked_people: tuple[IssuedPerson, IssuedPerson, IssuedPerson],
) -> None:
    lost, moved, good = revoked_people
    progress: list[tuple[int, int]] = []
    der = crl_hierarchy.large_crl(
        "sign", 5000, seed=7, progress=lambda done, total: progress.append((done, total))
    )
    crl = x509.load_der_x509_crl(der)
    assert crl.is_signature_valid(crl_hierarchy.sign_ca_certificate.public_key())  # type: ignore[arg-type]
    entries = list(crl)
    serials = [entry.serial_number for entry in entries]
    assert len(serials) == len(set(serials)) == 5000
    by_serial = dict(zip(serials, entries, strict=True))
    assert _reason(by_serial[lost.sign_serial]) is x509.ReasonFlags.key_compromise
    assert moved.sign_serial in by_serial
    assert good.sign_serial not in by_serial
    assert all(0x0100_0000 <= serial < 0x8000_0000 for serial in serials)
    reasons = {_reason(entry) for entry in entries}
    assert reasons == {
        None,
        x509.ReasonFlags.key_compromise,
        x509.ReasonFlags.affiliation_changed,
        x509.ReasonFlags.superseded,
        x509.ReasonFlags.cessation_of_operation,
    }
    dates = [entry.revocation_date_utc for entry in entries]
    assert max(dates) <= crl.last_update_utc
    assert min(dates) >= crl.last_update_utc - dt.timedelta(days=5 * 365 + 1)
    assert len(set(dates)) > 1000
    assert progress[-1] == (5000 - 2, 5000 - 2)
    native = asn1_crl.CertificateList.load(der).native
    assert len(native["tbs_cert_list"]["revoked_certificates"]) == 5000


def test_large_crl_is_reproducible_from_a_seed(crl_hierarchy: Hierarchy) -> None:
    this_update = crl_hierarchy.now()
    first = x509.load_der_x509_crl(crl_hierarchy.large_crl("auth", 300, seed=1))
    again = x509.load_der_x509_crl(crl_hierarchy.large_crl("auth", 300, seed=1))
    other = x509.load_der_x509_crl(crl_hierarchy.large_crl("auth", 300, seed=2))
    assert first.last_update_utc == this_update
    assert [e.serial_number for e in first] == [e.serial_number for e in again]
    assert [e.serial_number for e in first] != [e.serial_number for e in other]


def test_times_after_2049_are_generalized_time() -> None:
    assert der_time(dt.datetime(2049, 12, 31, 23, 59, 59, tzinfo=dt.UTC))[0] == 0x17
    assert der_time(dt.datetime(2050, 1, 1, tzinfo=dt.UTC)) == b"\x18\x0f20500101000000Z"


@pytest.mark.slow
def test_one_million_entry_crl_in_under_a_minute(crl_hierarchy: Hierarchy) -> None:
    started = time.perf_counter()
    der = crl_hierarchy.large_crl("sign", 1_000_000, seed=3)
    elapsed = time.perf_counter() - started
    assert elapsed < 60, f"1,000,000-entry CRL took {elapsed:.1f} s"
    crl = x509.load_der_x509_crl(der)
    assert len(crl) == 1_000_000
    assert crl.is_signature_valid(crl_hierarchy.sign_ca_certificate.public_key())  # type: ignore[arg-type]
