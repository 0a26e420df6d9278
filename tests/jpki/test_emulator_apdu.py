"""The emulator's APDU decoder against every ISO 7816-4 case, short and extended."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from jpki.emulator.card import CommandApdu, VirtualMyNumberCard
from tests.fixtures.card import CardMaterial


def encode(
    header: bytes, data: bytes, ne: int | None, extended: bool
) -> bytes:  # the ISO 7816-4 encoding, written independently of the decoder
    if not extended:
        body = (bytes([len(data)]) + data) if data else b""
        if ne is not None:
            body += bytes([ne % 256])
        return header + body
    body = (b"\x00" + len(data).to_bytes(2, "big") + data) if data else b""
    if ne is not None:
        body += (b"" if data else b"\x00") + (ne % 65536).to_bytes(2, "big")
    return header + body


@st.composite
def commands(draw: st.DrawFn) -> tuple[bytes, bytes, int | None, bool]:
    header = draw(st.binary(min_size=4, max_size=4))
    extended = draw(st.booleans())
    data = draw(st.binary(max_size=300 if extended else 255))
    ne = draw(st.none() | st.integers(1, 65536 if extended else 256))
    if extended and not data and ne is None:
        extended = False  # case 1 has no extended form
    return header, data, ne, extended


@given(commands())
def test_decoder_reads_what_iso_encodes(command: tuple[bytes, bytes, int | None, bool]) -> None:
    header, data, ne, extended = command
    apdu = CommandApdu.parse(encode(header, data, ne, extended))
    assert (apdu.cla, apdu.ins, apdu.p1, apdu.p2) == tuple(header)
    assert apdu.data == data
    assert apdu.ne == ne
    assert apdu.extended == (extended and bool(data or ne))


@pytest.fixture(scope="module")
def fuzzed_card(card_material: CardMaterial) -> VirtualMyNumberCard:
    return VirtualMyNumberCard(card_material.new_card_state())


# Random bytes, and bytes behind the headers of the commands the card knows, so
# the fuzzing reaches SELECT, READ BINARY, VERIFY and the signature code.
_KNOWN_HEADERS = [
    bytes.fromhex(h) for h in ("00A4040C", "00A4020C", "00B00000", "00200080", "802A0080")
]
_FUZZ = st.binary(max_size=400) | st.builds(
    bytes.__add__, st.sampled_from(_KNOWN_HEADERS), st.binary(max_size=300)
)


@given(raw=_FUZZ)
def test_card_answers_any_bytes_with_a_status_word(
    fuzzed_card: VirtualMyNumberCard, raw: bytes
) -> None:
    response = fuzzed_card.process_apdu(raw)
    assert len(response) >= 2
    assert response[-2] in (0x62, 0x63, 0x67, 0x68, 0x69, 0x6A, 0x6B, 0x6C, 0x6D, 0x6E, 0x90)
