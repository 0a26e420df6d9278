"""Signing documents with the card over pcscd + vpcd, then verifying them."""

from __future__ import annotations

import io
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter

from commonid.documents.service import PreparedDocument
from jpki.card import JPKICard, PinKind
from jpki.documents import DocumentReason, open_card_signer, sign_detached, sign_pdf, verify_pdf
from jpki.errors import WrongPinError
from jpki.testca import Hierarchy, IssuedPerson
from jpki.validation import ReasonCode, TrustPolicy
from tests.documents.pdf_bytes import change_a_byte_in_the_content
from tests.fixtures.card import AUTH_PIN, SIGN_PASSWORD
from tests.fixtures.jpki import DEMO_PERSON, make_person

from .conftest import VERIFY_AT, PinVerifyCounter, sign_policy

pytestmark = pytest.mark.pcsc

PYHANKO = Path(__file__).resolve().parents[2] / ".venv" / "bin" / "pyhanko"


def _sign(card: JPKICard, pdf: bytes, *, kind: PinKind = PinKind.SIGN) -> bytes:
    secret = SIGN_PASSWORD if kind is PinKind.SIGN else AUTH_PIN
    with open_card_signer(card, secret, kind=kind) as signer:
        return sign_pdf(pdf, signer)


def _pem(certificate: x509.Certificate, path: Path) -> Path:
    path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return path


def test_signed_consent_verifies_with_one_password_entry(
    pcsc_card: JPKICard,
    consent: PreparedDocument,
    policy: TrustPolicy,
    verify_counter: PinVerifyCounter,
) -> None:
    with open_card_signer(pcsc_card, SIGN_PASSWORD) as signer:
        signed = sign_pdf(consent.pdf, signer)
        p7s = sign_detached(consent.pdf, signer)
        assert signer.signatures_made == 2
    assert verify_counter.count == 1  # one VERIFY for the whole signing run
    assert signed.startswith(consent.pdf)  # an incremental update of the issued document
    assert p7s

    result = verify_pdf(signed, policy=policy, at=VERIFY_AT)
    assert result.reason is DocumentReason.VALID
    (signature,) = result.signatures
    assert signature.intact and signature.signature_valid
    assert signature.covers_whole_document and not signature.changed_after_signing
    assert signature.modification_level == "none"
    assert signature.certificate_reason is ReasonCode.VALID
    assert signature.certificate.revocation is not None  # checked against the CRL
    assert signature.certificate.revocation.source == "crl"
    assert signature.signing_time is not None
    assert signature.signer is None  # attributes only when asked for

    with_signer = verify_pdf(signed, policy=policy, at=VERIFY_AT, include_signer_attributes=True)
    attributes = with_signer.signatures[0].signer
    assert attributes is not None
    assert attributes.name == DEMO_PERSON.name
    assert attributes.birth_date == DEMO_PERSON.birth_date


def test_changed_byte_after_signing_is_reported_as_modified(
    pcsc_card: JPKICard, consent: PreparedDocument, policy: TrustPolicy
) -> None:
    signed = _sign(pcsc_card, consent.pdf)
    tampered = change_a_byte_in_the_content(signed)
    result = verify_pdf(tampered, policy=policy, at=VERIFY_AT)
    assert result.reason is DocumentReason.MODIFIED
    assert not result.signatures[0].intact
    assert result.signatures[0].certificate_reason is ReasonCode.VALID


def test_incremental_update_altering_content_is_changed_after_signing(
    pcsc_card: JPKICard, consent: PreparedDocument, policy: TrustPolicy
) -> None:
    signed = _sign(pcsc_card, consent.pdf)
    writer = IncrementalPdfFileWriter(io.BytesIO(signed))
    overlay = generic.StreamObject(stream_data=b"0 0 1 rg 56 400 200 40 re f")
    writer.add_stream_to_page(0, writer.add_object(overlay))
    output = io.BytesIO()
    writer.write(output)
    result = verify_pdf(output.getvalue(), policy=policy, at=VERIFY_AT)
    (signature,) = result.signatures
    assert signature.intact  # the signed revision itself is untouched...
    assert signature.changed_after_signing
    assert signature.modification_level == "other"  # ...but the page was painted over
    assert result.reason is DocumentReason.CHANGED_AFTER_SIGNING


def test_revoked_signature_certificate_is_reported(
    card_for_person: Callable[[IssuedPerson], JPKICard],
    test_hierarchy: Hierarchy,
    consent: PreparedDocument,
) -> None:
    import datetime as dt

    person = make_person(test_hierarchy)
    card = card_for_person(person)
    signed = _sign(card, consent.pdf)
    test_hierarchy.revoke(
        person.sign_certificate.serial_number,
        purpose="sign",
        reason=x509.ReasonFlags.key_compromise,
        revoked_at=VERIFY_AT - dt.timedelta(hours=2),
    )
    result = verify_pdf(signed, policy=sign_policy(test_hierarchy), at=VERIFY_AT)
    (signature,) = result.signatures
    assert signature.intact and signature.covers_whole_document
    assert signature.certificate_reason is ReasonCode.REVOKED
    assert signature.certificate.revocation_reason is x509.ReasonFlags.key_compromise
    assert result.reason is DocumentReason.CERTIFICATE_INVALID


def test_auth_key_signature_is_rejected_as_wrong_purpose(
    pcsc_card: JPKICard, consent: PreparedDocument, policy: TrustPolicy
) -> None:
    signed = _sign(pcsc_card, consent.pdf, kind=PinKind.AUTH)
    result = verify_pdf(signed, policy=policy, at=VERIFY_AT)
    (signature,) = result.signatures
    assert signature.intact and signature.signature_valid  # a sound signature...
    assert signature.certificate_reason is ReasonCode.WRONG_PURPOSE  # ...by the wrong key
    assert result.reason is DocumentReason.CERTIFICATE_INVALID


def test_wrong_password_consumes_one_try_and_signs_nothing(
    pcsc_card: JPKICard, consent: PreparedDocument, verify_counter: PinVerifyCounter
) -> None:
    assert pcsc_card.pin_tries_left(PinKind.SIGN) == 5
    signed = None
    with pytest.raises(WrongPinError) as raised, open_card_signer(pcsc_card, "WRONG9") as signer:
        signed = sign_pdf(consent.pdf, signer)
    assert raised.value.tries_left == 4
    assert signed is None
    assert verify_counter.count == 1
    assert pcsc_card.pin_tries_left(PinKind.SIGN) == 4
    assert SIGN_PASSWORD not in str(raised.value) and "WRONG9" not in str(raised.value)


def test_cms_signature_verifies_with_openssl_against_the_test_root(
    pcsc_card: JPKICard, test_hierarchy: Hierarchy, tmp_path: Path
) -> None:
    content = tmp_path / "application.xml"
    content.write_bytes("<申請 種別='転居'/>\n".encode() * 100)
    with open_card_signer(pcsc_card, SIGN_PASSWORD) as signer:
        signature = tmp_path / "application.xml.p7s"
        signature.write_bytes(sign_detached(content.read_bytes(), signer))
    root = _pem(test_hierarchy.sign_ca_certificate, tmp_path / "sign-root.pem")

    def openssl_verify(path: Path) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            ["openssl", "cms", "-verify", "-binary", "-inform", "DER", "-in", str(signature),
             "-content", str(path), "-CAfile", str(root), "-purpose", "any", "-out", "/dev/null"],
            capture_output=True, timeout=30,
        )  # fmt: skip

    accepted = openssl_verify(content)
    assert accepted.returncode == 0, accepted.stderr
    assert b"Verification successful" in accepted.stderr
    altered = tmp_path / "altered.xml"
    altered.write_bytes(content.read_bytes().replace(b"'/>", b"'/> ", 1))
    assert openssl_verify(altered).returncode != 0


def test_pyhanko_command_line_validator_accepts_the_signed_pdf(
    pcsc_card: JPKICard, consent: PreparedDocument, test_hierarchy: Hierarchy, tmp_path: Path
) -> None:
    signed = tmp_path / "signed.pdf"
    signed.write_bytes(_sign(pcsc_card, consent.pdf))
    root = _pem(test_hierarchy.sign_ca_certificate, tmp_path / "sign-root.pem")
    other_root = _pem(test_hierarchy.auth_ca_certificate, tmp_path / "auth-root.pem")

    def pyhanko_validate(trust: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(PYHANKO), "sign", "validate", "--trust", str(trust), "--trust-replace",
             "--no-revocation-check", str(signed)],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip

    accepted = pyhanko_validate(root)
    assert accepted.returncode == 0, accepted.stdout + accepted.stderr
    assert ":INTACT:TRUSTED,UNTOUCHED" in accepted.stdout
    # Under the wrong anchor the same file is not trusted: the test root is what made it pass.
    assert pyhanko_validate(other_root).returncode != 0


def test_cli_sign_asks_for_the_password_and_writes_a_verifiable_pdf(
    card_in_reader: object,
    pcsc_reader: str,
    consent: PreparedDocument,
    policy: TrustPolicy,
    tmp_path: Path,
) -> None:
    from typer.testing import CliRunner

    from commonid.cli import app

    source, out = tmp_path / "consent.pdf", tmp_path / "consent-signed.pdf"
    source.write_bytes(consent.pdf)
    arguments = ["document", "sign", str(source), "--out", str(out), "--reader", pcsc_reader]
    result = CliRunner().invoke(app, arguments, input=f"{SIGN_PASSWORD}\n")
    assert result.exit_code == 0, result.output
    assert SIGN_PASSWORD not in result.output  # the prompt hides the entry
    assert verify_pdf(out.read_bytes(), policy=policy, at=VERIFY_AT).valid
    wrong = CliRunner().invoke(app, arguments, input="WRONG9\n")
    assert wrong.exit_code == 2
    assert "4 tries left" in wrong.output
