"""An independent JPKI client sees the virtual card as a My Number Card.

OpenSC (Debian's opensc package: card-jpki.c, pkcs15-jpki.c) talks to the
emulator through pcscd like to a real card: it must list the four
certificates, read the PIN counters, and have the card sign with either key,
the signature checked by openssl against the card's certificate.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from jpki.emulator.card import CONTACTLESS_ATR, VirtualMyNumberCard
from jpki.emulator.state import CardState
from jpki.emulator.vpcd import VpcdBridge
from tests.fixtures.card import AUTH_PIN, SIGN_PASSWORD
from tests.fixtures.pcsc import VPCD_PORT, wait_for_card_state

pytestmark = pytest.mark.pcsc

PKCS11_MODULE = Path("/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so")
AUTH_TOKEN = "JPKI (User Authentication PIN)"
SIGN_TOKEN = "JPKI (Digital Signature PIN)"


@pytest.fixture(scope="module")
def opensc_tools() -> None:
    missing = [tool for tool in ("pkcs15-tool", "pkcs11-tool", "openssl") if not shutil.which(tool)]
    if missing or not PKCS11_MODULE.exists():
        pytest.fail(f"OpenSC is not installed ({missing or PKCS11_MODULE}): run `make test`")


def run(*command: str, pin: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
    environment = dict(os.environ)
    if pin is not None:
        # Passed through the environment ("env:PIN"), never on a command line.
        environment["JPKI_TEST_PIN"] = pin
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=60, env=environment, check=False
    )
    if check and result.returncode != 0:
        raise AssertionError(f"{command[0]} failed ({result.returncode}): {result.stderr}")
    return result


def slot_of(reader: str, token_label: str) -> str:
    """The PKCS#11 slot id OpenSC gives the token in our reader (a reader has one per PIN)."""
    listing = run("pkcs11-tool", "--module", str(PKCS11_MODULE), "--list-slots").stdout
    for block in re.split(r"\n(?=Slot \d+)", listing):
        header = re.match(r"Slot \d+ \((0x[0-9a-f]+)\): (.*)", block)
        if (
            header
            and header.group(2).strip() == reader
            and f"token label        : {token_label}" in block
        ):
            return header.group(1)
    raise AssertionError(f"no token {token_label!r} in {reader!r}:\n{listing}")


def test_pkcs15_tool_lists_the_four_certificates(
    opensc_tools: None, card_in_reader: VpcdBridge, pcsc_reader: str
) -> None:
    listing = run("pkcs15-tool", "--reader", pcsc_reader, "--list-certificates").stdout
    for label, path in [
        ("User Authentication Certificate", "000a"),
        ("Digital Signature Certificate", "0001"),
        ("User Authentication Certificate CA", "000b"),
        ("Digital Signature Certificate CA", "0002"),
    ]:
        assert re.search(rf"\[{label}\]\n(?:.*\n)*?\s+Path\s+: {path}\n", listing), listing


def test_pkcs15_tool_reads_the_auth_certificate(
    opensc_tools: None, card_in_reader: VpcdBridge, pcsc_reader: str, card_state: CardState
) -> None:
    pem = run("pkcs15-tool", "--reader", pcsc_reader, "--read-certificate", "01").stdout
    certificate = x509.load_pem_x509_certificate(pem.encode("ascii"))
    assert certificate.public_bytes(serialization.Encoding.DER) == card_state.auth_certificate


def test_pkcs11_tool_sees_both_tokens_and_the_public_objects(
    opensc_tools: None, card_in_reader: VpcdBridge, pcsc_reader: str
) -> None:
    objects = run(
        "pkcs11-tool",
        "--module",
        str(PKCS11_MODULE),
        "--slot",
        slot_of(pcsc_reader, AUTH_TOKEN),
        "--list-objects",
    ).stdout
    assert "label:      User Authentication Certificate\n" in objects
    assert "label:      User Authentication Certificate CA\n" in objects
    assert "label:      Digital Signature Certificate CA\n" in objects
    # The sign certificate is protected by the password: not listed before login.
    assert "label:      Digital Signature Certificate\n" not in objects
    slot_of(pcsc_reader, SIGN_TOKEN)


@pytest.mark.parametrize(
    ("token", "pin", "key_id", "certificate_name"),
    [
        (AUTH_TOKEN, AUTH_PIN, "01", "auth_certificate"),
        (SIGN_TOKEN, SIGN_PASSWORD, "02", "sign_certificate"),
    ],
)
def test_pkcs11_tool_signs_and_openssl_verifies(
    opensc_tools: None,
    card_in_reader: VpcdBridge,
    pcsc_reader: str,
    card_state: CardState,
    tmp_path: Path,
    token: str,
    pin: str,
    key_id: str,
    certificate_name: str,
) -> None:
    message = tmp_path / "message.bin"
    message.write_bytes(b"Common-ID challenge 2026-11-01T00:00:00Z")
    signature = tmp_path / "signature.bin"
    run(
        "pkcs11-tool",
        "--module",
        str(PKCS11_MODULE),
        "--slot",
        slot_of(pcsc_reader, token),
        "--login",
        "--pin",
        "env:JPKI_TEST_PIN",
        "--sign",
        "--mechanism",
        "SHA256-RSA-PKCS",
        "--id",
        key_id,
        "--input-file",
        str(message),
        "--output-file",
        str(signature),
        pin=pin,
    )
    assert len(signature.read_bytes()) == 256
    certificate = x509.load_der_x509_certificate(getattr(card_state, certificate_name))
    public_key = tmp_path / "public.pem"
    public_key.write_bytes(
        certificate.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    verified = run(
        "openssl",
        "dgst",
        "-sha256",
        "-verify",
        str(public_key),
        "-signature",
        str(signature),
        str(message),
        check=False,
    )
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "Verified OK" in verified.stdout


def test_opensc_reports_the_tries_left_after_a_wrong_pin(
    opensc_tools: None, card_in_reader: VpcdBridge, pcsc_reader: str, tmp_path: Path
) -> None:
    message = tmp_path / "message.bin"
    message.write_bytes(b"x")
    failed = run(
        "pkcs11-tool",
        "--module",
        str(PKCS11_MODULE),
        "--slot",
        slot_of(pcsc_reader, AUTH_TOKEN),
        "--login",
        "--pin",
        "env:JPKI_TEST_PIN",
        "--sign",
        "--mechanism",
        "SHA256-RSA-PKCS",
        "--id",
        "01",
        "--input-file",
        str(message),
        pin="9999",
        check=False,
    )
    assert failed.returncode != 0
    assert "CKR_PIN_INCORRECT" in failed.stderr + failed.stdout
    pins = run("pkcs15-tool", "--reader", pcsc_reader, "--list-pins").stdout
    auth_pin_block = pins.split("PIN [User Authentication PIN]")[1].split("PIN [")[0]
    assert re.search(r"Tries left\s+: 2\n", auth_pin_block), pins


def test_opensc_finds_the_card_by_selecting_the_ap_when_the_atr_is_unknown(
    opensc_tools: None, virtual_card: VirtualMyNumberCard, pcsc_reader: str
) -> None:
    # Through a contactless reader the ATR is the reader's (PC/SC part 3 form), not in
    # OpenSC's JPKI table: clients must find the card by selecting the JPKI AP.
    contactless = VirtualMyNumberCard(virtual_card.state, atr=CONTACTLESS_ATR)
    with VpcdBridge(contactless, port=VPCD_PORT):
        wait_for_card_state(pcsc_reader, present=True)
        listing = run("pkcs15-tool", "--reader", pcsc_reader, "--list-certificates").stdout
    wait_for_card_state(pcsc_reader, present=False)
    assert "[User Authentication Certificate]" in listing
    assert "[Digital Signature Certificate CA]" in listing
