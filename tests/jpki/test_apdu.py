"""APDU encoding and the ISO 7816 Card layer's handling of status words."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from jpki.apdu import Card, CommandAPDU, ResponseAPDU, error_for_status, verification_tries_left
from jpki.errors import (
    PinBlockedError,
    SecurityStatusNotSatisfiedError,
    TransportError,
    UnexpectedStatusWordError,
)
from jpki.trace import ApduTraceEvent
from jpki.transport import InProcessTransport

byte = st.integers(0, 255)


@st.composite
def command_apdus(draw: st.DrawFn) -> CommandAPDU:
    extended = draw(st.booleans())
    max_data = 65535 if extended else 255
    max_le = 65536 if extended else 256
    data = draw(st.binary(max_size=min(max_data, 600)) | st.binary(min_size=250, max_size=300))
    if len(data) > max_data:
        data = data[:max_data]
    le = draw(st.none() | st.integers(1, max_le))
    if extended and not data and le is None:
        le = draw(st.integers(1, max_le))
    if not extended and len(data) > 255:
        data = data[:255]
    return CommandAPDU(draw(byte), draw(byte), draw(byte), draw(byte), data, le, extended)


@given(command_apdus())
def test_command_encoding_round_trips(command: CommandAPDU) -> None:
    assert CommandAPDU.from_bytes(command.to_bytes()) == command


@given(command_apdus())
def test_encoded_length_follows_iso_7816_4(command: CommandAPDU) -> None:
    encoded = command.to_bytes()
    lc_field = (3 if command.extended else 1) if command.data else 0
    if command.le is None:
        le_field = 0
    elif not command.extended:
        le_field = 1
    else:
        le_field = 2 if command.data else 3  # case 2E carries the 00 marker in Le
    assert len(encoded) == 4 + lc_field + len(command.data) + le_field


def test_known_encodings() -> None:
    aid = bytes.fromhex("D392F000260100000001")
    assert CommandAPDU(0, 0xA4, 4, 0x0C, aid).to_bytes().hex() == "00a4040c0a" + aid.hex()
    assert CommandAPDU(0, 0xB0, 0x01, 0x00, le=256).to_bytes().hex() == "00b0010000"
    assert CommandAPDU(0, 0xB0, 0, 0, le=65536, extended=True).to_bytes().hex() == "00b00000000000"
    sign = CommandAPDU(0x80, 0x2A, 0, 0x80, b"\x01" * 51, le=256).to_bytes()
    assert sign[:5].hex() == "802a008033" and sign[-1] == 0 and len(sign) == 57


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"data": b"\x00" * 256}, "data"),
        ({"le": 257}, "Le"),
        ({"le": 0}, "Le"),
        ({"extended": True}, "extended"),
    ],
)
def test_invalid_commands_are_refused(kwargs: dict[str, object], reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        CommandAPDU(0, 0xB0, 0, 0, **kwargs)  # type: ignore[arg-type]


@given(st.binary(max_size=300), st.integers(0, 0xFFFF))
def test_response_round_trips(data: bytes, status_word: int) -> None:
    response = ResponseAPDU(data, status_word)
    assert ResponseAPDU.from_bytes(response.to_bytes()) == response
    assert (response.sw1 << 8) | response.sw2 == status_word


@given(st.integers(0, 0xFFFF))
def test_tries_are_read_only_from_63cx(status_word: int) -> None:
    tries = verification_tries_left(status_word)
    if status_word >> 4 == 0x63C:
        assert tries == status_word & 0xF
    else:
        assert tries is None


@given(st.integers(0, 0xFFFF).filter(lambda sw: sw != 0x9000))
def test_every_failure_status_word_maps_to_a_typed_error(status_word: int) -> None:
    error = error_for_status(status_word, "READ_BINARY")
    if status_word == 0x6982:
        assert isinstance(error, SecurityStatusNotSatisfiedError)
    elif status_word in (0x6983, 0x6984):
        assert isinstance(error, PinBlockedError)
    else:
        assert isinstance(error, UnexpectedStatusWordError)
        assert error.status_word == status_word
        assert f"{status_word:04X}" in str(error)


class _ScriptedCard:
    """A card answering from a script: the status words the virtual card never sends.

    The virtual My Number Card speaks T=1 and never answers 61xx; readers and
    T=0 cards do, so the Card layer's chaining is tested against this script.
    """

    atr = bytes.fromhex("3BE000FF8131FE4514")

    def __init__(self, answers: list[bytes]) -> None:
        self.answers = list(answers)
        self.commands: list[bytes] = []

    def power_on(self) -> None: ...

    def power_off(self) -> None: ...

    def reset(self) -> None: ...

    def process_apdu(self, command: bytes) -> bytes:
        self.commands.append(command)
        return self.answers.pop(0)


@given(st.lists(st.binary(min_size=1, max_size=256), min_size=1, max_size=5))
def test_61xx_is_followed_by_get_response_until_done(parts: list[bytes]) -> None:
    answers = [b"\x61" + bytes((len(parts[0]) % 256,))]
    for index, part in enumerate(parts):
        last = index == len(parts) - 1
        following = b"\x90\x00" if last else b"\x61" + bytes((len(parts[index + 1]) % 256,))
        answers.append(part + following)
    scripted = _ScriptedCard(answers)
    card = Card(InProcessTransport(scripted))
    response = card.read_binary(0, 256)
    assert response.data == b"".join(parts)
    assert response.ok
    get_responses = scripted.commands[1:]
    assert len(get_responses) == len(parts)
    assert [command[:4] for command in get_responses] == [b"\x00\xc0\x00\x00"] * len(parts)
    assert [command[4] or 256 for command in get_responses] == [len(p) for p in parts]


@given(st.integers(1, 256))
def test_6cxx_resends_a_read_with_the_le_the_card_asks_for(correct_le: int) -> None:
    content = bytes(range(256))[:correct_le]
    scripted = _ScriptedCard([b"\x6c" + bytes((correct_le % 256,)), content + b"\x90\x00"])
    card = Card(InProcessTransport(scripted))
    response = card.read_binary(0, 256 if correct_le != 256 else 100)
    assert response.data == content
    assert CommandAPDU.from_bytes(scripted.commands[1]).le == correct_le


def test_6cxx_never_resends_verify() -> None:
    scripted = _ScriptedCard([b"\x6c\x10"])
    card = Card(InProcessTransport(scripted))
    response = card.verify(0x80, b"1234")
    assert response.status_word == 0x6C10
    assert len(scripted.commands) == 1


def test_a_response_without_status_word_is_a_transport_error() -> None:
    card = Card(InProcessTransport(_ScriptedCard([b"\x90"])))
    with pytest.raises(TransportError):
        card.select_ef(0x000A)


def test_trace_withholds_verify_lengths_and_counts_bytes() -> None:
    events: list[ApduTraceEvent] = []
    scripted = _ScriptedCard([b"\x63\xc3", b"\x90\x00", b"\x00" * 256 + b"\x90\x00"])
    card = Card(InProcessTransport(scripted), tracer=events.append)
    card.verify(0x80, None)
    card.verify(0x80, b"98765432")
    card.compute_digital_signature(0x80, 0x00, 0x80, b"\x11" * 51)
    assert [event.command for event in events] == [
        "VERIFY",
        "VERIFY",
        "COMPUTE_DIGITAL_SIGNATURE",
    ]
    assert events[1].command_length is None and events[1].data_length is None
    assert events[0].status_word == 0x63C3
    assert events[2].data_length == 51 and events[2].response_length == 256
    assert "98765432" not in repr(events)
    assert card.counter.round_trips == 3
    assert card.counter.bytes_sent == 4 + (5 + 8) + (5 + 51 + 1)
    assert card.counter.bytes_received == 2 + 2 + 258
