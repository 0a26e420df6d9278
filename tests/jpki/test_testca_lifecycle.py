"""A person's card over the years in the test CA: renewal, a change of address or name, loss.

The revocation reasons are J-LIS's (its CPS, 4.9): superseded for a renewal
(証明書を更新した), affiliationChanged when what the certificate says changes
(証明書の記載内容に変更), keyCompromise for a lost card (秘密鍵が危殆化した).
Renewals and changes leave certificate linkage records (old serial to new),
as a platform operator offers them.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from typer.testing import CliRunner

from commonid.cli import app
from jpki.profile import parse_certificate
from jpki.testca import Hierarchy, IssuedPerson
from tests.fixtures.jpki import DEMO_PERSON

NEW_ADDRESS = "大阪府大阪市北区中之島一丁目3番20号"


@pytest.fixture
def hierarchy(tmp_path: Path, test_now: dt.datetime) -> Hierarchy:
    return Hierarchy.init(tmp_path / "hierarchy", now=test_now)


@pytest.fixture
def person(hierarchy: Hierarchy) -> IssuedPerson:
    return hierarchy.issue_person(DEMO_PERSON)


def _address(certificate: x509.Certificate) -> str:
    attributes = parse_certificate(certificate.public_bytes(Encoding.DER)).attributes
    assert attributes is not None
    return attributes.address


def test_renewal_replaces_both_certificates_and_links_them(
    hierarchy: Hierarchy, person: IssuedPerson
) -> None:
    renewed = hierarchy.renew(person.person_id)
    assert renewed.record == person.record
    for purpose in ("auth", "sign"):
        assert renewed.serials[purpose] != person.serials[purpose]
        assert hierarchy.status(purpose, person.serials[purpose]).status == "revoked"
        assert hierarchy.status(purpose, renewed.serials[purpose]).status == "good"
        assert renewed.certificate(purpose).public_key() != person.certificate(purpose).public_key()
    reasons = {e.serial: e.reason for p in ("auth", "sign") for e in hierarchy.revoked_entries(p)}
    assert reasons[person.auth_serial] is x509.ReasonFlags.superseded
    assert reasons[person.sign_serial] is x509.ReasonFlags.superseded
    links = {(link.purpose, link.old_serial, link.new_serial) for link in hierarchy.linkages()}
    assert links == {
        ("auth", person.auth_serial, renewed.auth_serial),
        ("sign", person.sign_serial, renewed.sign_serial),
    }


def test_a_move_reissues_only_the_signature_certificate(
    hierarchy: Hierarchy, person: IssuedPerson
) -> None:
    moved = hierarchy.change(
        person.person_id,
        dataclasses.replace(
            person.record, address=NEW_ADDRESS, prefecture="大阪府", municipality="大阪市"
        ),
    )
    # The authentication certificate holds no personal data: it stays, good.
    assert moved.auth_serial == person.auth_serial
    assert hierarchy.status("auth", person.auth_serial).status == "good"
    assert hierarchy.status("sign", person.sign_serial).status == "revoked"
    revoked = {e.serial: e.reason for e in hierarchy.revoked_entries("sign")}
    assert revoked[person.sign_serial] is x509.ReasonFlags.affiliation_changed
    assert _address(moved.sign_certificate) == NEW_ADDRESS
    assert _address(person.sign_certificate) == DEMO_PERSON.address
    assert [(link.purpose, link.old_serial, link.new_serial) for link in hierarchy.linkages()] == [
        ("sign", person.sign_serial, moved.sign_serial)
    ]
    # The new signature certificate is the CA's, for a new key on the same card.
    moved.sign_certificate.verify_directly_issued_by(hierarchy.sign_ca_certificate)
    assert moved.auth_private_key.private_numbers() == person.auth_private_key.private_numbers()


def test_a_lost_card_revokes_both_as_key_compromise(
    hierarchy: Hierarchy, person: IssuedPerson
) -> None:
    hierarchy.lose(person.person_id)
    for purpose in ("auth", "sign"):
        entries = {e.serial: e.reason for e in hierarchy.revoked_entries(purpose)}
        assert entries[person.serials[purpose]] is x509.ReasonFlags.key_compromise
    assert hierarchy.linkages() == []


def test_the_cli_renews_moves_and_reports_a_loss(
    hierarchy: Hierarchy, person: IssuedPerson
) -> None:
    runner = CliRunner()
    directory = str(hierarchy.directory)

    def commonid(*args: str) -> tuple[int, str]:
        result = runner.invoke(app, ["testca", *args])
        return result.exit_code, result.output

    code, output = commonid("person", "renew", "--dir", directory, person.person_id)
    assert code == 0, output
    assert "superseded" in output
    renewed_id = output.split()[1]
    code, output = commonid("person", "change", "--dir", directory, renewed_id)
    assert code != 0 and "--address" in output
    code, output = commonid(
        "person", "change", "--dir", directory, renewed_id, "--address", NEW_ADDRESS
    )
    assert code == 0, output
    moved = hierarchy.load_person(output.split()[1])
    assert moved.record.address == NEW_ADDRESS and moved.record.municipality == "大阪市"
    assert NEW_ADDRESS not in output  # attributes are not echoed
    code, output = commonid("person", "lose", "--dir", directory, moved.person_id)
    assert code == 0 and "keyCompromise" in output
    code, output = commonid("linkage", "--dir", directory)
    assert code == 0
    lines = output.strip().splitlines()
    assert len(lines) == 3  # auth and sign at the renewal, sign at the move
    assert [line.split("\t")[3] for line in lines] == [
        "superseded",
        "superseded",
        "affiliationChanged",
    ]
    code, output = commonid("person", "renew", "--dir", directory, "nobody123")
    assert code != 0 and "no person" in output
