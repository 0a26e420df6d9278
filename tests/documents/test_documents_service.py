"""The product side: the consent PDF, acceptance of the signed one, storage, report, CLI.

The card is the virtual card in process (the PC/SC path is covered by
test_signing_pcsc.py); everything else is real: pyHanko, the trust policy,
AES-GCM, the CLI.
"""

from __future__ import annotations

import dataclasses
import io
import json
import subprocess
from pathlib import Path

import pytest
from pyhanko.pdf_utils.reader import PdfFileReader
from typer.testing import CliRunner

from commonid.cli import app
from commonid.documents.consent_pdf import DocumentTooLongError, render_consent_pdf
from commonid.documents.service import (
    DocumentRejectedError,
    PreparedDocument,
    accept_signed_document,
    document_download,
    verification_report,
)
from commonid.documents.storage import DocumentIntegrityError, open_document
from commonid.store.encryption import AttributeCipher
from jpki.card import JPKICard, PinKind
from jpki.documents import (
    DocumentReason,
    open_card_signer,
    sign_detached,
    sign_pdf,
    verify_detached_cms,
    verify_pdf,
)
from jpki.emulator.card import VirtualMyNumberCard
from jpki.transport import InProcessTransport
from jpki.validation import TrustPolicy
from tests.fixtures.card import AUTH_PIN, SIGN_PASSWORD
from tests.fixtures.jpki import DEMO_PERSON

from .conftest import VERIFY_AT
from .pdf_bytes import change_a_byte_in_the_content
from .tsa import local_tsa


@pytest.fixture
def card(virtual_card: VirtualMyNumberCard) -> JPKICard:
    return JPKICard(InProcessTransport(virtual_card))


@pytest.fixture
def cipher() -> AttributeCipher:
    return AttributeCipher({"k1": bytes(range(32))}, "k1")


def _sign(card: JPKICard, pdf: bytes, **options: object) -> bytes:
    with open_card_signer(card, SIGN_PASSWORD) as signer:
        return sign_pdf(pdf, signer, **options)  # type: ignore[arg-type]


def test_consent_pdf_carries_the_session_text_in_japanese(
    consent: PreparedDocument, tmp_path: Path
) -> None:
    path = tmp_path / "consent.pdf"
    path.write_bytes(consent.pdf)
    extracted = subprocess.run(
        ["pdftotext", str(path), "-"], capture_output=True, text=True, check=True
    ).stdout
    for text in ("テスト決済株式会社", "犯罪収益移転防止法", "氏名", "同意"):
        assert text in extracted
    # Every font is in the file (a subset of IPA Gothic): no viewer has to supply one.
    fonts = subprocess.run(
        ["pdffonts", str(path)], capture_output=True, text=True, check=True
    ).stdout.splitlines()[2:]
    assert fonts and all(line.split()[-5] == "yes" for line in fonts), fonts
    assert any("IPAPGothic" in line for line in fonts)
    assert len(PdfFileReader(io.BytesIO(consent.pdf)).root["/Pages"]["/Kids"]) == 1
    other = dataclasses.replace(consent.document, purpose="別の目的")
    assert render_consent_pdf(other) != consent.pdf
    # The longest purpose a session holds (500 characters) still fits on the page, and
    # with 500 different characters (the largest font subset) it stays well inside the
    # service's limit for signed PDFs (max_document_bytes, 256 KiB) once signed.
    render_consent_pdf(dataclasses.replace(consent.document, purpose="確" * 500))
    varied = "".join(chr(0x4E00 + 7 * i) for i in range(500))
    largest = render_consent_pdf(dataclasses.replace(consent.document, purpose=varied))
    assert len(largest) < 160 * 1024
    # ...and text that would run off the page is refused rather than cut off.
    with pytest.raises(DocumentTooLongError):
        render_consent_pdf(dataclasses.replace(consent.document, purpose="確" * 2000))


def test_accepted_document_is_stored_encrypted_and_served(
    card: JPKICard, consent: PreparedDocument, policy: TrustPolicy, cipher: AttributeCipher
) -> None:
    signed = _sign(card, consent.pdf)
    accepted = accept_signed_document(consent, signed, policy=policy, at=VERIFY_AT, cipher=cipher)
    sealed = accepted.sealed
    name_utf16 = DEMO_PERSON.name.encode("utf-16-be")
    assert b"%PDF" not in sealed.ciphertext and name_utf16 not in sealed.ciphertext
    assert open_document(cipher, sealed) == signed
    download = document_download(cipher, sealed)
    assert download.content == signed and download.media_type == "application/pdf"
    event = accepted.audit_event
    assert event["document_sha256"] == sealed.sha256
    assert event["unsigned_document_sha256"] == consent.sha256
    assert event["reason_code"] == "valid" and event["revocation_source"] == "crl"
    assert not any(DEMO_PERSON.name in str(value) for value in event.values())
    # A blob moved to another document does not decrypt.
    moved = dataclasses.replace(sealed, document_id="doc_other")
    with pytest.raises(DocumentIntegrityError):
        open_document(cipher, moved)


def test_signature_on_another_document_is_refused(
    card: JPKICard, consent: PreparedDocument, policy: TrustPolicy, cipher: AttributeCipher
) -> None:
    other = render_consent_pdf(dataclasses.replace(consent.document, purpose="別の目的"))
    signed_other = _sign(card, other)
    with pytest.raises(DocumentRejectedError) as raised:
        accept_signed_document(consent, signed_other, policy=policy, at=VERIFY_AT, cipher=cipher)
    assert raised.value.code == "document_mismatch"


def test_auth_key_signed_consent_is_refused_with_the_certificate_reason(
    card: JPKICard, consent: PreparedDocument, policy: TrustPolicy, cipher: AttributeCipher
) -> None:
    with open_card_signer(card, AUTH_PIN, kind=PinKind.AUTH) as signer:
        signed = sign_pdf(consent.pdf, signer)
    with pytest.raises(DocumentRejectedError) as raised:
        accept_signed_document(consent, signed, policy=policy, at=VERIFY_AT, cipher=cipher)
    assert raised.value.code == "document_certificate_invalid"
    assert "wrong_purpose" in str(raised.value)


def test_report_shows_signer_attributes_only_when_authorized(
    card: JPKICard, consent: PreparedDocument, policy: TrustPolicy
) -> None:
    signed = _sign(card, consent.pdf)
    verification = verify_pdf(signed, policy=policy, at=VERIFY_AT, include_signer_attributes=True)
    public = verification_report(verification, authorized=False)
    authorized = verification_report(verification, authorized=True)
    assert "signer" not in public["signatures"][0]
    assert DEMO_PERSON.name not in json.dumps(public, ensure_ascii=False)
    assert authorized["signatures"][0]["signer"]["name"] == DEMO_PERSON.name
    assert authorized["signatures"][0]["signer"]["birthdate"] == "1990-04-01"
    assert public["signatures"][0]["integrity"] == "intact"
    assert public["signatures"][0]["certificate"]["reason"] == "valid"


def test_unsigned_and_non_pdf_files_get_their_own_reasons(
    consent: PreparedDocument, policy: TrustPolicy
) -> None:
    assert verify_pdf(consent.pdf, policy=policy, at=VERIFY_AT).reason is (
        DocumentReason.NO_SIGNATURE
    )
    assert verify_pdf(b"not a pdf", policy=policy, at=VERIFY_AT).reason is (
        DocumentReason.NOT_A_PDF
    )


def test_pades_b_t_carries_a_trusted_timestamp_from_a_loopback_tsa(
    card: JPKICard, consent: PreparedDocument, policy: TrustPolicy
) -> None:
    with local_tsa() as tsa:
        signed = _sign(card, consent.pdf, timestamp_url=tsa.url)
    plain = verify_pdf(signed, policy=policy, at=VERIFY_AT)
    trusted = verify_pdf(signed, policy=policy, at=VERIFY_AT, timestamp_roots=[tsa.root])
    signature = trusted.signatures[0]
    assert trusted.reason is DocumentReason.VALID
    assert signature.timestamp_time is not None and signature.timestamp_trusted is True
    # Without the TSA's root the token is still reported, but not as trusted.
    assert plain.signatures[0].timestamp_trusted is False


def test_cli_verify_reports_and_exits_by_verdict(
    card: JPKICard, consent: PreparedDocument, test_hierarchy_dir: Path, tmp_path: Path
) -> None:
    signed = tmp_path / "signed.pdf"
    signed.write_bytes(_sign(card, consent.pdf))
    runner = CliRunner()
    arguments = ["document", "verify", str(signed), "--trust", "test-hierarchy",
                 "--hierarchy", str(test_hierarchy_dir), "--json"]  # fmt: skip
    result = runner.invoke(app, arguments)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["reason"] == "valid"
    assert report["signatures"][0]["certificate"]["revocation_source"] == "crl"
    assert "signer" not in report["signatures"][0]
    shown = runner.invoke(app, [*arguments, "--show-signer"])
    assert json.loads(shown.stdout)["signatures"][0]["signer"]["name"] == DEMO_PERSON.name
    tampered = tmp_path / "tampered.pdf"
    tampered.write_bytes(change_a_byte_in_the_content(signed.read_bytes()))
    refused = runner.invoke(app, [*arguments[:2], str(tampered), *arguments[3:-1]])
    assert refused.exit_code == 1
    assert "modified" in refused.stdout


def test_damaged_files_get_a_verdict_never_an_exception(
    card: JPKICard, consent: PreparedDocument, policy: TrustPolicy
) -> None:
    signed = _sign(card, consent.pdf)
    contents = signed.index(b"/Contents <") + len(b"/Contents <")
    compressed = signed.index(b"stream", signed.index(b"/FlateDecode")) + len(b"stream\n") + 20

    def damaged(position: int) -> bytes:
        data = bytearray(signed)
        data[position] = ord("0") if data[position] != ord("0") else ord("1")
        return bytes(data)

    # Inside the CMS's signed attributes (pyHanko fails on a half-read signature),
    # inside a compressed object stream (zlib fails), and cut short.
    for broken in (damaged(contents + 100), damaged(compressed), signed[: len(signed) // 2]):
        result = verify_pdf(broken, policy=policy, at=VERIFY_AT)
        assert result.reason in {
            DocumentReason.SIGNATURE_INVALID,
            DocumentReason.MODIFIED,
            DocumentReason.NOT_A_PDF,
            DocumentReason.NO_SIGNATURE,
        }


def test_a_second_signature_is_an_accepted_change_to_the_first(
    card: JPKICard, consent: PreparedDocument, policy: TrustPolicy
) -> None:
    once = _sign(card, consent.pdf)
    twice = _sign(card, once, field_name="Countersignature")
    result = verify_pdf(twice, policy=policy, at=VERIFY_AT)
    first, second = result.signatures
    assert first.changed_after_signing and first.modification_level == "form_filling"
    assert second.covers_whole_document
    assert result.reason is DocumentReason.VALID


def test_detached_cms_verdicts_under_the_trust_policy(
    card: JPKICard, policy: TrustPolicy, test_hierarchy_dir: Path, tmp_path: Path
) -> None:
    content = "転居届 / notice of moving\n".encode() * 50
    with open_card_signer(card, SIGN_PASSWORD) as signer:
        p7s = sign_detached(content, signer)
    with open_card_signer(card, AUTH_PIN, kind=PinKind.AUTH) as signer:
        auth_p7s = sign_detached(content, signer)

    good = verify_detached_cms(content, p7s, policy=policy, at=VERIFY_AT)
    assert good.reason is DocumentReason.VALID
    assert good.signatures[0].certificate.revocation is not None
    altered = verify_detached_cms(content + b"!", p7s, policy=policy, at=VERIFY_AT)
    assert altered.reason is DocumentReason.MODIFIED
    wrong_key = verify_detached_cms(content, auth_p7s, policy=policy, at=VERIFY_AT)
    assert wrong_key.reason is DocumentReason.CERTIFICATE_INVALID
    assert wrong_key.signatures[0].certificate_reason.value == "wrong_purpose"
    garbage = verify_detached_cms(content, b"\x30\x03\x02\x01\x01", policy=policy, at=VERIFY_AT)
    assert garbage.reason is DocumentReason.SIGNATURE_INVALID

    (tmp_path / "notice.txt").write_bytes(content)
    (tmp_path / "notice.txt.p7s").write_bytes(p7s)
    result = CliRunner().invoke(
        app,
        ["document", "verify", str(tmp_path / "notice.txt"), "--signature",
         str(tmp_path / "notice.txt.p7s"), "--trust", "test-hierarchy",
         "--hierarchy", str(test_hierarchy_dir), "--show-signer"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert DEMO_PERSON.name in result.stdout


def test_cli_verify_trusts_a_timestamp_under_the_tsa_roots_given_and_prints_no_traceback(
    card: JPKICard, consent: PreparedDocument, test_hierarchy_dir: Path, tmp_path: Path
) -> None:
    import subprocess
    import sys

    from cryptography.hazmat.primitives.serialization import Encoding

    with local_tsa() as tsa:
        signed = tmp_path / "signed.pdf"
        signed.write_bytes(_sign(card, consent.pdf, timestamp_url=tsa.url))
        root = tmp_path / "tsa-root.pem"
        root.write_bytes(tsa.root.public_bytes(Encoding.PEM))
    command = [sys.executable, "-m", "commonid.cli", "document", "verify", str(signed),
               "--trust", "test-hierarchy", "--hierarchy", str(test_hierarchy_dir),
               "--json"]  # fmt: skip

    def run(*extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*command, *extra], capture_output=True, text=True, timeout=120, check=False
        )

    untrusted, trusted = run(), run("--tsa-root", str(root))
    for finished in (untrusted, trusted):
        assert "Traceback" not in finished.stderr, finished.stderr
        assert finished.returncode == 0, finished.stderr
    assert json.loads(untrusted.stdout)["signatures"][0]["timestamp_trusted"] is False
    assert json.loads(trusted.stdout)["signatures"][0]["timestamp_trusted"] is True

    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate")
    refused = run("--tsa-root", str(garbage))
    assert refused.returncode == 2
    assert "Traceback" not in refused.stderr
    assert "garbage.pem" in refused.stderr


def test_the_consent_text_extracts_exactly_as_written(tmp_path: Path) -> None:
    """A reader copying the document's text gets its characters back (an `_` used to come
    back as U+0332, guessed from the font's CIDs): checked with poppler's pdftotext."""
    import shutil
    import subprocess
    from datetime import UTC, datetime

    from commonid.documents.consent_pdf import ConsentDocument

    if shutil.which("pdftotext") is None:
        pytest.fail("pdftotext is missing: run `make test`, which installs poppler-utils")
    document = ConsentDocument(
        document_id="doc_text_1",
        session_id="ses_text_1",
        provider_name="Demo_Pay A",
        purpose="口座開設 account_opening (KYC_01) — 確認",
        claims=("name", "address"),
        created_at=datetime(2026, 12, 5, tzinfo=UTC),
    )
    pdf = tmp_path / "consent.pdf"
    pdf.write_bytes(render_consent_pdf(document))
    extracted = subprocess.run(
        ["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True
    ).stdout
    for _size, line in document.lines():
        if line:
            assert line in extracted, line
    assert "\u0332" not in extracted
