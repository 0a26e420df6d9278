"""Transports, the error hierarchy, and what tracing lets out."""

from __future__ import annotations

import inspect
import logging

import pytest
import structlog

import jpki.errors as errors
from jpki.card import CertificateKind, JPKICard, PinKind
from jpki.emulator.card import VirtualMyNumberCard
from jpki.errors import CardRemovedError, JPKIError, NoCardError, TransportError
from jpki.trace import logging_tracer, structlog_tracer
from jpki.transport import (
    InProcessTransport,
    Transport,
    extended_length_from_tlv_properties,
    feature_control_code,
)
from tests.fixtures.card import AUTH_PIN, SIGN_PASSWORD


def test_in_process_transport_is_a_transport(virtual_card: VirtualMyNumberCard) -> None:
    assert isinstance(InProcessTransport(virtual_card), Transport)


def test_removal_interrupts_until_reconnected(virtual_card: VirtualMyNumberCard) -> None:
    transport = InProcessTransport(virtual_card)
    select_ap = bytes.fromhex("00A4040C0AD392F000260100000001")
    assert transport.transmit(select_ap) == b"\x90\x00"
    transport.remove()
    with pytest.raises(CardRemovedError):
        transport.transmit(select_ap)
    with pytest.raises(NoCardError):
        transport.reconnect()
    transport.insert()
    with pytest.raises(CardRemovedError):  # the old session is gone, as with PC/SC
        transport.transmit(select_ap)
    transport.reconnect()
    assert transport.transmit(select_ap) == b"\x90\x00"
    transport.close()
    with pytest.raises(TransportError):
        transport.transmit(select_ap)


def test_reset_forgets_the_verified_pin(virtual_card: VirtualMyNumberCard) -> None:
    card = JPKICard(InProcessTransport(virtual_card))
    card.verify_pin(PinKind.SIGN, SIGN_PASSWORD)
    assert card.read_certificate(CertificateKind.SIGN)
    card.reset()
    with pytest.raises(errors.SecurityStatusNotSatisfiedError):
        card.read_certificate(CertificateKind.SIGN)


def _error_classes() -> list[type[JPKIError]]:
    return [
        cls
        for _name, cls in inspect.getmembers(errors, inspect.isclass)
        if issubclass(cls, JPKIError) and cls is not JPKIError
    ]


def _instance(cls: type[JPKIError]) -> JPKIError:
    if cls is errors.WrongPinError:
        return cls(2)  # type: ignore[call-arg]
    if cls is errors.TruncatedReadError:
        return cls(1300, 512)  # type: ignore[call-arg]
    if cls is errors.UnexpectedStatusWordError:
        return cls("READ_BINARY", 0x6A86)  # type: ignore[call-arg]
    return cls()


def test_every_error_has_its_own_message_in_english_and_japanese() -> None:
    classes = _error_classes()
    required = {
        "CardRemovedError",
        "ReaderUnavailableError",
        "NotMyNumberCardError",
        "PinBlockedError",
        "WrongPinError",
        "PinFormatError",
        "LastTryConfirmationRequired",
        "SecurityStatusNotSatisfiedError",
        "TruncatedReadError",
        "UnexpectedStatusWordError",
    }
    assert required <= {cls.__name__ for cls in classes}
    instances = [_instance(cls) for cls in classes]
    english = [error.message_en for error in instances]
    japanese = [error.message_ja for error in instances]
    assert len(set(english)) == len(english)
    assert len(set(japanese)) == len(japanese)
    for error in instances:
        assert str(error) == error.message_en
        assert error.message_en.isascii()
        assert not error.message_ja.isascii()


def test_tracing_to_logs_never_shows_a_pin(
    virtual_card: VirtualMyNumberCard, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="jpki.apdu")
    card = JPKICard(InProcessTransport(virtual_card), tracer=logging_tracer())
    password = "PW" + SIGN_PASSWORD  # 8 characters: its length must not show either
    with pytest.raises(errors.WrongPinError):
        card.verify_pin(PinKind.SIGN, password)
    card.sign_challenge(PinKind.AUTH, AUTH_PIN, b"to be signed")
    lines = [record.getMessage() for record in caplog.records]
    text = "\n".join(lines)
    assert "command=VERIFY" in text and "command=COMPUTE_DIGITAL_SIGNATURE" in text
    for secret in (password, password.encode().hex(), AUTH_PIN, AUTH_PIN.encode().hex()):
        assert secret.lower() not in text.lower()
    pin_verifies = [line for line in lines if "command=VERIFY" in line and "data_len=None" in line]
    assert len(pin_verifies) == 2 and all("cmd_len=None" in line for line in pin_verifies)
    (sign_line,) = [line for line in lines if "COMPUTE_DIGITAL_SIGNATURE" in line]
    assert "data_len=51" in sign_line and "resp_len=256" in sign_line


def test_structlog_tracer_emits_one_event_per_exchange(virtual_card: VirtualMyNumberCard) -> None:
    with structlog.testing.capture_logs() as captured:
        card = JPKICard(InProcessTransport(virtual_card), tracer=structlog_tracer())
        card.read_certificate(CertificateKind.AUTH_CA)
    assert captured and all(entry["event"] == "apdu" for entry in captured)
    assert captured[0]["command"] == "SELECT_FILE" and captured[0]["sw"] == "9000"
    assert card.counter.round_trips == len(captured)


def test_reader_features_give_the_tlv_properties_control_code() -> None:
    # GET_FEATURE_REQUEST of a CCID reader: VERIFY_PIN_DIRECT (06) and GET_TLV_PROPERTIES (12).
    features = bytes.fromhex("060442333206" + "120442333212")
    assert feature_control_code(features, 0x12) == 0x42333212
    assert feature_control_code(features, 0x0A) is None


@pytest.mark.parametrize(
    ("properties", "expected"),
    [
        # wLcdLayout (01, 2 bytes), then dwMaxAPDUDataSize (0A, 4 bytes, little-endian)
        ("01020000" + "0a0400000100", True),
        ("01020000" + "0a0400000000", False),  # short APDUs only
        ("01020000", None),
    ],
)
def test_reader_properties_tell_whether_extended_apdus_pass(
    properties: str, expected: bool | None
) -> None:
    assert extended_length_from_tlv_properties(bytes.fromhex(properties)) is expected
