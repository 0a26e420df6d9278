"""The virtual My Number Card at the APDU level, in process (no reader).

Each test sends the bytes a client would send and checks what a real JPKI
card answers: data and status word.
"""

from __future__ import annotations

import functools
import hashlib
import operator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from jpki.emulator.card import (
    JPKI_AID,
    JPKI_ATR,
    KENMEN_KAKUNIN_AID,
    KENMEN_NYURYOKU_HOJO_AID,
    VirtualMyNumberCard,
)
from jpki.emulator.state import CardState
from tests.fixtures.card import AUTH_PIN, SIGN_PASSWORD

SHA256_DIGEST_INFO_PREFIX = bytes.fromhex("3031300d060960864801650304020105000420")

AUTH_CERT, AUTH_CA_CERT, SIGN_CERT, SIGN_CA_CERT, TOKEN_INFO = 0x000A, 0x000B, 0x0001, 0x0002, 6
AUTH_PIN_EF, SIGN_PASSWORD_EF, AUTH_KEY_EF, SIGN_KEY_EF = 0x0018, 0x001B, 0x0017, 0x001A


def send(card: VirtualMyNumberCard, command: bytes | str) -> tuple[bytes, int]:
    raw = bytes.fromhex(command) if isinstance(command, str) else command
    response = card.process_apdu(raw)
    assert len(response) >= 2
    return response[:-2], int.from_bytes(response[-2:], "big")


def select_ap(card: VirtualMyNumberCard, aid: bytes = JPKI_AID) -> int:
    return send(card, bytes([0x00, 0xA4, 0x04, 0x0C, len(aid)]) + aid)[1]


def select_ef(card: VirtualMyNumberCard, fid: int) -> int:
    return send(card, bytes([0x00, 0xA4, 0x02, 0x0C, 0x02]) + fid.to_bytes(2, "big"))[1]


def read(card: VirtualMyNumberCard, offset: int, le: int) -> tuple[bytes, int]:
    return send(card, bytes([0x00, 0xB0, offset >> 8, offset & 0xFF, le]))


def verify(card: VirtualMyNumberCard, fid: int, pin: str | None) -> int:
    assert select_ef(card, fid) == 0x9000
    if pin is None:
        return send(card, "00200080")[1]
    secret = pin.encode("ascii")
    return send(card, bytes([0x00, 0x20, 0x00, 0x80, len(secret)]) + secret)[1]


def sign_command(digest_info: bytes, le: bytes = b"\x00") -> bytes:
    return bytes([0x80, 0x2A, 0x00, 0x80, len(digest_info)]) + digest_info + le


def read_certificate_in_chunks(card: VirtualMyNumberCard, fid: int) -> bytes:
    """What every client does: 4 header bytes, the DER length, then 256-byte chunks."""
    assert select_ef(card, fid) == 0x9000
    header, sw = read(card, 0, 4)
    assert sw == 0x9000
    assert header[:2] == b"\x30\x82"
    total = int.from_bytes(header[2:4], "big") + 4
    certificate = bytearray()
    while len(certificate) < total:
        chunk, sw = read(card, len(certificate), min(256, total - len(certificate)) & 0xFF)
        assert sw == 0x9000
        certificate += chunk
    return bytes(certificate)


@pytest.fixture
def card(virtual_card: VirtualMyNumberCard) -> VirtualMyNumberCard:
    virtual_card.power_on()
    return virtual_card


def test_atr_is_the_real_jpki_contact_atr(card: VirtualMyNumberCard) -> None:
    assert card.atr == bytes.fromhex("3B E0 00 FF 81 31 FE 45 14") == JPKI_ATR


# --- SELECT ---------------------------------------------------------------------------


def test_select_jpki_ap_by_aid_without_fci(card: VirtualMyNumberCard) -> None:
    data, sw = send(card, bytes([0x00, 0xA4, 0x04, 0x0C, 0x0A]) + JPKI_AID)
    assert (data, sw) == (b"", 0x9000)


@pytest.mark.parametrize(
    ("command", "expected_sw"),
    [
        ("00A4040C05D392F00026", 0x6A82),  # unknown (truncated) AID
        ("00A4040C09A00000030800001000", 0x6A82),  # the PIV AID
        ("00A40400" + "0A" + JPKI_AID.hex(), 0x6A86),  # FCI requested: not offered
        ("00A4090C04" + "3F00000A", 0x6A86),  # select by path is not supported
        ("00A4080C02000A", 0x6A86),
        ("00A4000C023F00", 0x6A86),  # MF selection is not supported
        ("00A4040C", 0x6700),  # no AID
    ],
)
def test_select_refusals(card: VirtualMyNumberCard, command: str, expected_sw: int) -> None:
    assert send(card, command)[1] == expected_sw


def test_select_ef_needs_the_jpki_ap(card: VirtualMyNumberCard) -> None:
    assert select_ef(card, AUTH_CERT) == 0x6A82
    assert select_ap(card) == 0x9000
    assert select_ef(card, AUTH_CERT) == 0x9000


def test_select_unknown_fid_and_mf_inside_the_ap(card: VirtualMyNumberCard) -> None:
    select_ap(card)
    assert select_ef(card, 0x0099) == 0x6A82
    assert select_ef(card, 0x3F00) == 0x6A82
    assert send(card, "00A4020C03000A00")[1] == 0x6700


def test_failed_select_keeps_the_current_file(card: VirtualMyNumberCard) -> None:
    select_ap(card)
    select_ef(card, AUTH_CERT)
    assert select_ef(card, 0x0099) == 0x6A82
    assert read(card, 0, 2) == (b"\x30\x82", 0x9000)


def test_other_aps_exist_but_hold_no_jpki_files(card: VirtualMyNumberCard) -> None:
    for aid in (KENMEN_NYURYOKU_HOJO_AID, KENMEN_KAKUNIN_AID):
        assert select_ap(card, aid) == 0x9000
        assert select_ef(card, AUTH_CERT) == 0x6A82
        assert select_ef(card, AUTH_PIN_EF) == 0x6A82


# --- READ BINARY ----------------------------------------------------------------------


def test_read_certificates_in_chunks(card: VirtualMyNumberCard, card_state: CardState) -> None:
    select_ap(card)
    auth = read_certificate_in_chunks(card, AUTH_CERT)
    assert len(auth) > 256, "the certificate must need several short READ BINARYs"
    assert auth == card_state.auth_certificate
    certificate = x509.load_der_x509_certificate(auth)
    assert certificate.public_key().public_numbers() == (
        card_state.auth_private_key.public_key().public_numbers()
    )
    assert read_certificate_in_chunks(card, AUTH_CA_CERT) == card_state.auth_ca_certificate
    assert read_certificate_in_chunks(card, SIGN_CA_CERT) == card_state.sign_ca_certificate


def test_le_zero_reads_256_bytes(card: VirtualMyNumberCard, card_state: CardState) -> None:
    select_ap(card)
    select_ef(card, AUTH_CERT)
    data, sw = read(card, 0, 0)
    assert sw == 0x9000
    assert data == card_state.auth_certificate[:256]
    data, _sw = read(card, 0x0100, 0x10)
    assert data == card_state.auth_certificate[256:272]


def test_filler_follows_the_der_inside_the_ef(
    card: VirtualMyNumberCard, card_state: CardState
) -> None:
    select_ap(card)
    select_ef(card, AUTH_CERT)
    end = len(card_state.auth_certificate)
    data, sw = read(card, end - 2, 10)
    assert sw == 0x9000
    assert data == card_state.auth_certificate[-2:] + b"\xff" * 8


def test_end_of_file(card: VirtualMyNumberCard) -> None:
    select_ap(card)
    select_ef(card, AUTH_CERT)
    # Find the EF size the way a client would: the first offset answered 6B00.
    assert read(card, 0x7FFF, 1)[1] == 0x6B00
    size = _ef_size(card)
    assert read(card, size, 1)[1] == 0x6B00
    data, sw = read(card, size - 3, 8)  # explicit Le across the end: the rest, and a warning
    assert (len(data), sw) == (3, 0x6282)
    data, sw = read(card, size - 3, 0)  # Le=00 means "up to 256": the rest, 90 00
    assert (len(data), sw) == (3, 0x9000)


def _ef_size(card: VirtualMyNumberCard) -> int:
    low, high = 0, 0x8000
    while high - low > 1:
        middle = (low + high) // 2
        if read(card, middle, 1)[1] == 0x6B00:
            high = middle
        else:
            low = middle
    return high


def test_extended_length_read_returns_the_whole_certificate_at_once(
    card: VirtualMyNumberCard, card_state: CardState
) -> None:
    select_ap(card)
    select_ef(card, SIGN_CA_CERT)
    length = len(card_state.sign_ca_certificate)
    data, sw = send(card, b"\x00\xb0\x00\x00\x00" + length.to_bytes(2, "big"))
    assert (data, sw) == (card_state.sign_ca_certificate, 0x9000)
    data, sw = send(card, "00B00000000000")  # Le=0000: up to 65536, i.e. the whole EF
    assert sw == 0x9000
    assert data.startswith(card_state.sign_ca_certificate)
    assert set(data[length:]) == {0xFF}


def test_token_info(card: VirtualMyNumberCard) -> None:
    select_ap(card)
    assert select_ef(card, TOKEN_INFO) == 0x9000
    data, sw = read(card, 0, 0)
    assert sw == 0x9000
    assert len(data) == 160
    assert data.startswith(b"JPKIAPICCTOKEN2 ")
    assert data[:32].rstrip(b" ") == b"JPKIAPICCTOKEN2"


@pytest.mark.parametrize(
    ("command", "expected_sw"),
    [
        ("00B00000", 0x6700),  # no Le
        ("00B0000001FF", 0x6700),  # data in a READ BINARY
        ("00B08A0000", 0x6A86),  # short-EF addressing is not offered
    ],
)
def test_read_binary_refusals(card: VirtualMyNumberCard, command: str, expected_sw: int) -> None:
    select_ap(card)
    select_ef(card, AUTH_CERT)
    assert send(card, command)[1] == expected_sw


def test_read_binary_without_or_on_a_non_transparent_ef(card: VirtualMyNumberCard) -> None:
    select_ap(card)
    assert read(card, 0, 4)[1] == 0x6986  # nothing selected
    select_ef(card, AUTH_PIN_EF)
    assert read(card, 0, 4)[1] == 0x6981
    select_ef(card, AUTH_KEY_EF)
    assert read(card, 0, 4)[1] == 0x6981


def test_sign_certificate_needs_the_sign_password(
    card: VirtualMyNumberCard, card_state: CardState
) -> None:
    select_ap(card)
    select_ef(card, SIGN_CERT)
    assert read(card, 0, 4) == (b"", 0x6982)
    assert verify(card, AUTH_PIN_EF, AUTH_PIN) == 0x9000  # the auth PIN does not open it
    select_ef(card, SIGN_CERT)
    assert read(card, 0, 4) == (b"", 0x6982)
    assert verify(card, SIGN_PASSWORD_EF, SIGN_PASSWORD) == 0x9000
    assert read_certificate_in_chunks(card, SIGN_CERT) == card_state.sign_certificate


# --- VERIFY ---------------------------------------------------------------------------


def test_empty_verify_reports_tries_even_after_success(card: VirtualMyNumberCard) -> None:
    select_ap(card)
    assert verify(card, AUTH_PIN_EF, None) == 0x63C3
    assert verify(card, SIGN_PASSWORD_EF, None) == 0x63C5
    assert verify(card, AUTH_PIN_EF, AUTH_PIN) == 0x9000
    assert verify(card, AUTH_PIN_EF, None) == 0x63C3


def test_wrong_pin_counts_down_and_success_resets(card: VirtualMyNumberCard) -> None:
    select_ap(card)
    assert verify(card, AUTH_PIN_EF, "9999") == 0x63C2
    assert verify(card, AUTH_PIN_EF, None) == 0x63C2
    assert verify(card, AUTH_PIN_EF, "0000") == 0x63C1
    assert verify(card, AUTH_PIN_EF, AUTH_PIN) == 0x9000
    assert verify(card, AUTH_PIN_EF, None) == 0x63C3


def test_auth_pin_blocks_after_three_wrong_tries(card: VirtualMyNumberCard) -> None:
    select_ap(card)
    assert [verify(card, AUTH_PIN_EF, "9999") for _ in range(3)] == [0x63C2, 0x63C1, 0x63C0]
    assert verify(card, AUTH_PIN_EF, AUTH_PIN) == 0x6984
    assert verify(card, AUTH_PIN_EF, None) == 0x63C0
    card.reset()
    select_ap(card)
    assert verify(card, AUTH_PIN_EF, AUTH_PIN) == 0x6984
    # The other PIN is independent.
    assert verify(card, SIGN_PASSWORD_EF, SIGN_PASSWORD) == 0x9000


def test_sign_password_blocks_after_five_wrong_tries(card: VirtualMyNumberCard) -> None:
    select_ap(card)
    statuses = [verify(card, SIGN_PASSWORD_EF, "WRONG1") for _ in range(5)]
    assert statuses == [0x63C4, 0x63C3, 0x63C2, 0x63C1, 0x63C0]
    assert verify(card, SIGN_PASSWORD_EF, SIGN_PASSWORD) == 0x6984


def test_password_is_compared_as_sent(card: VirtualMyNumberCard) -> None:
    # The card does not upper-case: that is the client's job.
    select_ap(card)
    assert verify(card, SIGN_PASSWORD_EF, SIGN_PASSWORD.lower()) == 0x63C4


def test_wrong_verify_drops_an_earlier_verification(card: VirtualMyNumberCard) -> None:
    select_ap(card)
    verify(card, SIGN_PASSWORD_EF, SIGN_PASSWORD)
    verify(card, SIGN_PASSWORD_EF, "WRONG1")
    select_ef(card, SIGN_CERT)
    assert read(card, 0, 4)[1] == 0x6982


@pytest.mark.parametrize(
    ("command", "expected_sw"),
    [
        ("0020008104" + b"1234".hex(), 0x6A86),
        ("0020018004" + b"1234".hex(), 0x6A86),
        ("0020008004" + b"1234".hex() + "00", 0x6700),  # VERIFY has no Le
        ("0020008011" + "31" * 17, 0x6700),
    ],
)
def test_verify_refusals_consume_no_try(
    card: VirtualMyNumberCard, command: str, expected_sw: int
) -> None:
    select_ap(card)
    select_ef(card, AUTH_PIN_EF)
    assert send(card, command)[1] == expected_sw
    assert verify(card, AUTH_PIN_EF, None) == 0x63C3


def test_verify_needs_a_pin_ef(card: VirtualMyNumberCard) -> None:
    select_ap(card)
    assert send(card, "002000800431323334")[1] == 0x6986
    select_ef(card, AUTH_CERT)
    assert send(card, "002000800431323334")[1] == 0x6981


# --- security state -------------------------------------------------------------------


def _sign_certificate_readable(card: VirtualMyNumberCard) -> bool:
    select_ap(card)
    select_ef(card, SIGN_CERT)
    return read(card, 0, 4)[1] == 0x9000


@pytest.mark.parametrize("event", ["reset", "power_off", "other_ap", "jpki_ap_again"])
def test_security_state_is_lost(card: VirtualMyNumberCard, event: str) -> None:
    select_ap(card)
    assert verify(card, SIGN_PASSWORD_EF, SIGN_PASSWORD) == 0x9000
    select_ef(card, SIGN_CERT)
    assert read(card, 0, 4)[1] == 0x9000
    if event == "reset":
        card.reset()
    elif event == "power_off":
        card.power_off()
        card.power_on()
    elif event == "other_ap":
        assert select_ap(card, KENMEN_NYURYOKU_HOJO_AID) == 0x9000
    else:
        assert select_ap(card) == 0x9000
    assert not _sign_certificate_readable(card)


# --- COMPUTE DIGITAL SIGNATURE --------------------------------------------------------


def _digest_info(message: bytes) -> bytes:
    return SHA256_DIGEST_INFO_PREFIX + hashlib.sha256(message).digest()


@pytest.mark.parametrize(
    ("pin_ef", "pin", "key_ef", "key_name"),
    [
        (AUTH_PIN_EF, AUTH_PIN, AUTH_KEY_EF, "auth_private_key"),
        (SIGN_PASSWORD_EF, SIGN_PASSWORD, SIGN_KEY_EF, "sign_private_key"),
    ],
)
def test_signature_is_a_standard_rs256_signature(
    card: VirtualMyNumberCard,
    card_state: CardState,
    pin_ef: int,
    pin: str,
    key_ef: int,
    key_name: str,
) -> None:
    message = b"challenge from the Common-ID service"
    select_ap(card)
    assert verify(card, pin_ef, pin) == 0x9000
    assert select_ef(card, key_ef) == 0x9000
    signature, sw = send(card, sign_command(_digest_info(message)))
    assert sw == 0x9000
    assert len(signature) == 256
    public_key = getattr(card_state, key_name).public_key()
    public_key.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
    # PKCS#1 v1.5 is deterministic: the same bytes as a software RS256 signature.
    expected = getattr(card_state, key_name).sign(message, padding.PKCS1v15(), hashes.SHA256())
    assert signature == expected


def test_sign_needs_the_pin_of_that_key(card: VirtualMyNumberCard) -> None:
    select_ap(card)
    select_ef(card, AUTH_KEY_EF)
    assert send(card, sign_command(_digest_info(b"x")))[1] == 0x6982
    assert verify(card, AUTH_PIN_EF, AUTH_PIN) == 0x9000
    select_ef(card, SIGN_KEY_EF)
    assert send(card, sign_command(_digest_info(b"x")))[1] == 0x6982


def test_sign_survives_repeated_use_within_the_session(card: VirtualMyNumberCard) -> None:
    select_ap(card)
    verify(card, AUTH_PIN_EF, AUTH_PIN)
    select_ef(card, AUTH_KEY_EF)
    first = send(card, sign_command(_digest_info(b"one")))
    second = send(card, sign_command(_digest_info(b"two")))
    assert first[1] == second[1] == 0x9000
    assert first[0] != second[0]


@pytest.mark.parametrize(
    ("command", "expected_sw"),
    [
        ("802A0081" + "33" + _digest_info(b"x").hex() + "00", 0x6A86),
        ("802A0180" + "33" + _digest_info(b"x").hex() + "00", 0x6A86),
        ("802A0080" + "33" + _digest_info(b"x").hex(), 0x6700),  # no Le
        ("802A008000", 0x6700),  # no DigestInfo
        ("802A0080" + "F6" + "00" * 246 + "00", 0x6700),  # longer than k - 11
        ("802A0080" + "33" + _digest_info(b"x").hex() + "80", 0x6C00),  # Le too small
        ("002A0080" + "33" + _digest_info(b"x").hex() + "00", 0x6E00),  # ISO class
    ],
)
def test_sign_refusals(card: VirtualMyNumberCard, command: str, expected_sw: int) -> None:
    select_ap(card)
    verify(card, AUTH_PIN_EF, AUTH_PIN)
    select_ef(card, AUTH_KEY_EF)
    assert send(card, command)[1] == expected_sw


def test_sign_needs_a_key_ef(card: VirtualMyNumberCard) -> None:
    select_ap(card)
    verify(card, AUTH_PIN_EF, AUTH_PIN)  # leaves the PIN EF selected
    assert send(card, sign_command(_digest_info(b"x")))[1] == 0x6981


def test_extended_length_sign(card: VirtualMyNumberCard, card_state: CardState) -> None:
    select_ap(card)
    verify(card, AUTH_PIN_EF, AUTH_PIN)
    select_ef(card, AUTH_KEY_EF)
    digest_info = _digest_info(b"extended")
    command = b"\x80\x2a\x00\x80\x00\x00" + bytes([len(digest_info)]) + digest_info + b"\x01\x00"
    signature, sw = send(card, command)
    assert sw == 0x9000
    card_state.auth_private_key.public_key().verify(
        signature, b"extended", padding.PKCS1v15(), hashes.SHA256()
    )


# --- class, instruction, malformed APDUs ----------------------------------------------


@pytest.mark.parametrize(
    ("command", "expected_sw"),
    [
        ("80A4040C0A" + JPKI_AID.hex(), 0x6E00),  # SELECT in the proprietary class
        ("A0A4040C0A" + JPKI_AID.hex(), 0x6E00),
        ("FFCA000000", 0x6E00),  # a reader pseudo-APDU reaching the card
        ("0CA4040C0A" + JPKI_AID.hex(), 0x6882),  # secure messaging
        ("0084000008", 0x6D00),  # GET CHALLENGE: not on this card
        ("80CA000000", 0x6D00),
        ("00A404", 0x6700),  # shorter than a header
        ("00A4040C0BD392F000260100000001", 0x6700),  # Lc larger than the data
    ],
)
def test_class_instruction_and_length_checks(
    card: VirtualMyNumberCard, command: str, expected_sw: int
) -> None:
    assert send(card, command)[1] == expected_sw


# --- CHANGE REFERENCE DATA ------------------------------------------------------------


def test_change_pin_after_verify(card: VirtualMyNumberCard) -> None:
    select_ap(card)
    select_ef(card, AUTH_PIN_EF)
    assert send(card, "0024018004" + b"5678".hex())[1] == 0x6982  # not verified
    assert verify(card, AUTH_PIN_EF, AUTH_PIN) == 0x9000
    assert send(card, "0024018005" + b"56789".hex())[1] == 0x6A80  # not 4 digits
    assert send(card, "0024018004" + b"5678".hex())[1] == 0x9000
    card.reset()
    select_ap(card)
    assert verify(card, AUTH_PIN_EF, AUTH_PIN) == 0x63C2
    assert verify(card, AUTH_PIN_EF, "5678") == 0x9000


@pytest.mark.parametrize("atr", ["zz", "00", "3B" + "00" * 40])
def test_the_emulator_refuses_an_atr_that_is_not_one(tmp_path: Path, atr: str) -> None:
    from jpki.emulator.cli import main

    with pytest.raises(SystemExit) as exited:
        main(["--card", str(tmp_path / "card.json"), "--atr", atr])
    assert exited.value.code == 2


def test_the_emulator_presents_the_atr_it_is_given(card: VirtualMyNumberCard) -> None:
    from jpki.emulator.card import CONTACTLESS_ATR

    contactless = VirtualMyNumberCard(card.state, atr=CONTACTLESS_ATR)
    assert contactless.atr == CONTACTLESS_ATR
    # The ATR's check byte: the XOR of T0 to TCK is zero.
    assert functools.reduce(operator.xor, CONTACTLESS_ATR[1:]) == 0
