"""`commonid testca ...` and `commonid card new`, run as a user runs them."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp
from typer.testing import CliRunner

from commonid.cli import app
from jpki.card import CertificateKind, JPKICard, PinKind
from jpki.emulator.card import VirtualMyNumberCard
from jpki.emulator.state import CardState
from jpki.errors import WrongPinError
from jpki.profile import Era, Gender, Kind, parse_certificate
from jpki.testca import Hierarchy, IssuedPerson
from jpki.transport import InProcessTransport

runner = CliRunner()


def commonid(*args: str | Path) -> tuple[int, str]:
    result = runner.invoke(app, [str(arg) for arg in args])
    return result.exit_code, result.output


@pytest.fixture(scope="module")
def cli_hierarchy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("cli") / "hierarchy"
    code, output = commonid("testca", "init", directory, "--now", "2026-11-01T00:00:00Z")
    assert code == 0, output
    return directory


@pytest.fixture(scope="module")
def person_file(cli_hierarchy: Path) -> Path:
    out = cli_hierarchy.parent / "person.json"
    code, output = commonid(
        "testca", "person", "new", "--dir", cli_hierarchy,
        "--name", "佐藤 花子", "--birth-date", "1989-01-07", "--gender", "female",
        "--address", "大阪府大阪市北区中之島一丁目3番20号", "--out", out,
    )  # fmt: skip
    assert code == 0, output
    return out


def load_person(path: Path) -> IssuedPerson:
    return IssuedPerson.from_json(json.loads(path.read_text(encoding="utf-8")))


def test_init_creates_test_roots_and_refuses_to_overwrite(cli_hierarchy: Path) -> None:
    hierarchy = Hierarchy.load(cli_hierarchy)
    assert hierarchy.auth_ca_certificate.not_valid_before_utc == dt.datetime(
        2026, 11, 1, tzinfo=dt.UTC
    )
    assert "JPKI TEST" in hierarchy.sign_ca_certificate.subject.rfc4514_string()
    assert stat.S_IMODE((cli_hierarchy / "auth_ca.key.pem").stat().st_mode) == 0o600
    code, output = commonid("testca", "init", cli_hierarchy)
    assert code == 1
    assert "already holds" in output


def test_person_new_issues_the_given_attributes_without_echoing_them(
    cli_hierarchy: Path, person_file: Path
) -> None:
    person = load_person(person_file)
    assert stat.S_IMODE(person_file.stat().st_mode) == 0o600
    parsed = parse_certificate(person.sign_certificate.public_bytes(serialization.Encoding.DER))
    assert parsed.kind is Kind.SIGN and parsed.on_profile
    attributes = parsed.attributes
    assert attributes is not None
    assert attributes.name == "佐藤\u3000花子"  # the typed space became U+3000
    assert attributes.gender is Gender.FEMALE
    assert (attributes.birth_date, attributes.birth_era) == (dt.date(1989, 1, 7), Era.SHOWA)
    localities = person.sign_certificate.subject.get_attributes_for_oid(
        x509.oid.NameOID.LOCALITY_NAME
    )
    assert [a.value for a in localities] == ["大阪府", "大阪市"]
    code, output = commonid("testca", "person", "list", "--dir", cli_hierarchy)
    assert code == 0
    assert person.person_id in output
    assert f"{person.sign_serial:#010x}" in output
    assert "佐藤" not in output


def test_person_new_rejects_bad_input(cli_hierarchy: Path) -> None:
    common = ["testca", "person", "new", "--dir", cli_hierarchy, "--name", "山田 一郎"]
    code, _ = commonid(*common, "--birth-date", "1990-13-01", "--gender", "male",
                       "--address", "東京都港区芝公園4-2-8")  # fmt: skip
    assert code == 2
    code, _ = commonid(*common, "--birth-date", "1990-01-01", "--gender", "9",
                       "--address", "東京都港区芝公園4-2-8")  # fmt: skip
    assert code == 2
    code, output = commonid(*common, "--birth-date", "1990-01-01", "--gender", "male",
                            "--address", "どこか")  # fmt: skip
    assert code == 1
    assert "--prefecture" in output


def test_revoke_by_hex_serial_then_crl_lists_it(
    cli_hierarchy: Path, person_file: Path, tmp_path: Path
) -> None:
    person = load_person(person_file)
    code, output = commonid(
        "testca", "revoke", "--dir", cli_hierarchy, "--serial", f"{person.auth_serial:#x}",
        "--purpose", "auth", "--reason", "keyCompromise", "--at", "2026-11-02T00:00:00Z",
    )  # fmt: skip
    assert code == 0, output
    assert Hierarchy.load(cli_hierarchy).status("auth", person.auth_serial).status == "revoked"

    out = tmp_path / "auth.crl"
    code, output = commonid("testca", "crl", "--dir", cli_hierarchy, "--purpose", "auth",
                            "--out", out)  # fmt: skip
    assert code == 0, output
    crl = x509.load_der_x509_crl(out.read_bytes())
    entry = crl.get_revoked_certificate_by_serial_number(person.auth_serial)
    assert entry is not None
    reason = entry.extensions.get_extension_for_class(x509.CRLReason).value.reason
    assert reason is x509.ReasonFlags.key_compromise


def test_revoke_unknown_serial_fails(cli_hierarchy: Path) -> None:
    code, output = commonid("testca", "revoke", "--dir", cli_hierarchy, "--serial", "12345",
                            "--purpose", "sign", "--reason", "superseded")  # fmt: skip
    assert code == 1
    assert "issued no serial" in output


def test_large_crl_from_the_cli(cli_hierarchy: Path, tmp_path: Path) -> None:
    out = tmp_path / "large.crl"
    code, output = commonid("testca", "crl", "--dir", cli_hierarchy, "--purpose", "sign",
                            "--entries", "20000", "--seed", "5", "--out", out)  # fmt: skip
    assert code == 0, output
    assert "20,000 entries" in output
    crl = x509.load_der_x509_crl(out.read_bytes())
    assert len(crl) == 20000
    hierarchy = Hierarchy.load(cli_hierarchy)
    assert crl.is_signature_valid(hierarchy.sign_ca_certificate.public_key())  # type: ignore[arg-type]


def test_card_new_writes_a_card_the_emulator_runs(
    cli_hierarchy: Path, person_file: Path, tmp_path: Path
) -> None:
    person = load_person(person_file)
    card_file = tmp_path / "card.json"
    code, output = commonid(
        "card", "new", "--dir", cli_hierarchy, "--person", person.person_id,
        "--pin", "4321", "--password", "pass2026", "--out", card_file,
    )  # fmt: skip
    assert code == 0, output
    assert "4321" not in output and "PASS2026" not in output.upper()
    assert stat.S_IMODE(card_file.stat().st_mode) == 0o600
    assert b"4321" not in card_file.read_bytes()
    assert b"PASS2026" not in card_file.read_bytes()

    card = JPKICard(InProcessTransport(VirtualMyNumberCard(CardState.load(card_file))))
    card.select_jpki_ap()
    auth_der = person.auth_certificate.public_bytes(serialization.Encoding.DER)
    assert card.read_certificate(CertificateKind.AUTH) == auth_der
    with pytest.raises(WrongPinError):
        card.verify_pin(PinKind.AUTH, "1234")
    card.verify_pin(PinKind.AUTH, "4321")
    card.verify_pin(PinKind.SIGN, "PASS2026")  # the lower-case password was upper-cased
    sign_der = person.sign_certificate.public_bytes(serialization.Encoding.DER)
    assert card.read_certificate(CertificateKind.SIGN) == sign_der


def test_card_new_from_a_person_file_refuses_to_overwrite(
    person_file: Path, tmp_path: Path
) -> None:
    card_file = tmp_path / "card.json"
    args = ["card", "new", "--person", person_file, "--pin", "1234", "--password", "ABC123",
            "--out", card_file]  # fmt: skip
    assert commonid(*args)[0] == 0
    code, output = commonid(*args)
    assert code == 1
    assert "--force" in output
    assert commonid(*args, "--force")[0] == 0


@pytest.mark.parametrize(
    ("pin", "password"),
    [("12345", "ABC123"), ("12a4", "ABC123"), ("1234", "ABC12"), ("1234", "ABC-123456")],
)
def test_card_new_refuses_malformed_pin_or_password_without_echoing_it(
    person_file: Path, tmp_path: Path, pin: str, password: str
) -> None:
    card_file = tmp_path / "card.json"
    code, output = commonid("card", "new", "--person", person_file, "--pin", pin,
                            "--password", password, "--out", card_file)  # fmt: skip
    assert code == 2
    assert pin not in output and password not in output
    assert not card_file.exists()


@pytest.fixture
def ocsp_server(cli_hierarchy: Path) -> Iterator[str]:
    """`commonid testca ocsp serve` as its own process; yields its URL."""
    command = [str(Path(sys.executable).parent / "commonid"), "testca", "ocsp", "serve"]
    process = subprocess.Popen(
        [*command, "--dir", str(cli_hierarchy), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=os.environ | {"PYTHONUNBUFFERED": "1"},
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert " at http://" in line, line
        yield line.split(" at ")[1].split()[0]
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


def test_ocsp_serve_answers_over_http(
    cli_hierarchy: Path, person_file: Path, ocsp_server: str
) -> None:
    person = load_person(person_file)
    request = (
        ocsp.OCSPRequestBuilder()
        .add_certificate(person.sign_certificate, person.sign_ca_certificate, hashes.SHA256())
        .build()
        .public_bytes(serialization.Encoding.DER)
    )
    reply = httpx.post(
        ocsp_server, content=request, headers={"Content-Type": "application/ocsp-request"}
    )
    response = ocsp.load_der_ocsp_response(reply.content)
    assert response.certificate_status is ocsp.OCSPCertStatus.GOOD
    assert response.serial_number == person.sign_serial
