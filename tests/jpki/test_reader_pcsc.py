"""The reader module over the real PC/SC stack: pcscd + vpcd + the virtual My Number Card.

Every APDU here goes through pyscard, pcsc-lite and the vpcd driver to the
virtual card on its socket. Removals are real: the bridge closes the card's
connection to vpcd, as pulling a card out of a reader does.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from jpki.apdu import Card
from jpki.card import CertificateKind, JPKICard, PinKind, sha256_digest_info
from jpki.emulator.card import VirtualMyNumberCard
from jpki.emulator.state import CardState
from jpki.emulator.vpcd import VpcdBridge
from jpki.errors import (
    CardRemovedError,
    LastTryConfirmationRequired,
    NoCardError,
    PinBlockedError,
    ReaderUnavailableError,
    SecurityStatusNotSatisfiedError,
    WrongPinError,
)
from jpki.trace import ApduTraceEvent
from jpki.transport import PcscTransport, wait_for_card
from tests.fixtures.card import AUTH_PIN, SIGN_PASSWORD
from tests.fixtures.pcsc import VPCD_PORT, wait_for_card_state

pytestmark = pytest.mark.pcsc


class _Trace:
    """Records trace events; can pull the card out of the reader when one matches."""

    def __init__(self) -> None:
        self.events: list[ApduTraceEvent] = []
        self.remove_when: Callable[[ApduTraceEvent], bool] | None = None
        self.bridge: VpcdBridge | None = None

    def __call__(self, event: ApduTraceEvent) -> None:
        self.events.append(event)
        if self.bridge is not None and self.remove_when is not None and self.remove_when(event):
            self.remove_when = None
            self.bridge.remove()

    def pin_verifies(self) -> int:
        return sum(1 for e in self.events if e.command == "VERIFY" and e.data_length is None)


@pytest.fixture
def transport(card_in_reader: VpcdBridge, pcsc_reader: str) -> Iterator[PcscTransport]:
    connection = PcscTransport.connect(pcsc_reader)
    try:
        yield connection
    finally:
        connection.close()


@pytest.fixture
def trace(card_in_reader: VpcdBridge) -> _Trace:
    recorder = _Trace()
    recorder.bridge = card_in_reader
    return recorder


def _rs256_verifies(certificate_der: bytes, signature: bytes, data: bytes) -> None:
    public_key = x509.load_der_x509_certificate(certificate_der).public_key()
    public_key.verify(signature, data, padding.PKCS1v15(), hashes.SHA256())  # type: ignore[union-attr, call-arg, arg-type]


def test_wait_for_card_finds_the_card(card_in_reader: VpcdBridge, pcsc_reader: str) -> None:
    assert wait_for_card(pcsc_reader, timeout=5) == pcsc_reader
    assert wait_for_card(None, timeout=5).startswith("Virtual PCD")
    with PcscTransport.connect(None) as any_reader:  # the first reader holding a card
        assert any_reader.reader_name.startswith("Virtual PCD")
        JPKICard(any_reader).select_jpki_ap()


def test_wait_for_card_times_out_on_an_empty_reader(pcsc_reader: str) -> None:
    wait_for_card_state(pcsc_reader, present=False)
    with pytest.raises(NoCardError):
        wait_for_card(pcsc_reader, timeout=0.5)
    with pytest.raises(NoCardError):
        PcscTransport.connect(pcsc_reader)


def test_unknown_reader_is_unavailable(pcsc_reader: str) -> None:
    with pytest.raises(ReaderUnavailableError):
        wait_for_card("No Such Reader 00 00", timeout=0.3)
    with pytest.raises(ReaderUnavailableError):
        PcscTransport.connect("No Such Reader 00 00")


def test_full_auth_flow(transport: PcscTransport, trace: _Trace, card_state: CardState) -> None:
    card = JPKICard(transport, tracer=trace)
    assert transport.atr == bytes.fromhex("3BE000FF8131FE4514")
    card.select_jpki_ap()
    assert card.pin_tries_left(PinKind.AUTH) == 3
    challenge = b'commonid/v1/card-challenge\n{"nonce":"x"}'
    result = card.sign_challenge(PinKind.AUTH, AUTH_PIN, challenge)
    assert result.certificate == card_state.auth_certificate
    _rs256_verifies(result.certificate, result.signature, challenge)
    assert trace.pin_verifies() == 1
    assert all(e.status_word in (0x9000, 0x63C3) for e in trace.events)


@pytest.mark.parametrize("extended_length", [False, True])
def test_full_identity_flow(
    transport: PcscTransport, trace: _Trace, card_state: CardState, extended_length: bool
) -> None:
    # vpcd publishes no PC/SC part 10 properties: extended length is tried, not known.
    assert transport.extended_length is None
    card = JPKICard(transport, tracer=trace, extended_length=extended_length)
    challenge = b"one challenge, both keys of one card"
    with card.session():
        auth = card.sign_challenge(PinKind.AUTH, AUTH_PIN, challenge)
        sign = card.sign_challenge(PinKind.SIGN, SIGN_PASSWORD, challenge)
        auth_ca = card.read_certificate(CertificateKind.AUTH_CA)
        sign_ca = card.read_certificate(CertificateKind.SIGN_CA)
    assert (auth.certificate, sign.certificate) == (
        card_state.auth_certificate,
        card_state.sign_certificate,
    )
    assert (auth_ca, sign_ca) == (card_state.auth_ca_certificate, card_state.sign_ca_certificate)
    _rs256_verifies(auth.certificate, auth.signature, challenge)
    _rs256_verifies(sign.certificate, sign.signature, challenge)
    reads = [e for e in trace.events if e.command == "READ_BINARY"]
    if extended_length:
        assert len(reads) == 4 and card.uses_extended_length  # vpcd carries extended APDUs
    else:
        assert all(e.response_length <= 256 for e in reads)


def test_wrong_pin_reports_tries_left(transport: PcscTransport, trace: _Trace) -> None:
    card = JPKICard(transport, tracer=trace)
    with pytest.raises(WrongPinError) as raised:
        card.verify_pin(PinKind.SIGN, "WRONG1")
    assert raised.value.tries_left == 4
    assert card.pin_tries_left(PinKind.SIGN) == 4
    assert trace.pin_verifies() == 1


def test_reading_the_sign_certificate_without_the_password_fails_cleanly(
    transport: PcscTransport, trace: _Trace
) -> None:
    card = JPKICard(transport, tracer=trace)
    with pytest.raises(SecurityStatusNotSatisfiedError):
        card.read_certificate(CertificateKind.SIGN)
    assert trace.events[-1].status_word == 0x6982
    # Nothing broke: the session goes on.
    assert card.read_certificate(CertificateKind.AUTH)


def test_last_try_rule(transport: PcscTransport, trace: _Trace) -> None:
    card = JPKICard(transport, tracer=trace)
    for _ in range(2):
        with pytest.raises(WrongPinError):
            card.verify_pin(PinKind.AUTH, "0000")
    with pytest.raises(LastTryConfirmationRequired):
        card.sign_challenge(PinKind.AUTH, AUTH_PIN, b"challenge")
    assert trace.pin_verifies() == 2
    result = card.sign_challenge(PinKind.AUTH, AUTH_PIN, b"challenge", confirm_last_try=True)
    _rs256_verifies(result.certificate, result.signature, b"challenge")
    assert card.pin_tries_left(PinKind.AUTH) == 3


def test_card_removed_mid_read(transport: PcscTransport, trace: _Trace) -> None:
    card = JPKICard(transport, tracer=trace)
    reads = iter(range(100))
    trace.remove_when = lambda e: e.command == "READ_BINARY" and next(reads) == 1
    with pytest.raises(CardRemovedError):
        card.read_certificate(CertificateKind.AUTH)
    failed = trace.events[-1]
    assert failed.command == "READ_BINARY" and failed.error == "CardRemovedError"


def test_card_removed_mid_sign_does_not_resend_the_pin(
    transport: PcscTransport, trace: _Trace, card_in_reader: VpcdBridge, pcsc_reader: str
) -> None:
    card = JPKICard(transport, tracer=trace)

    def key_selected_after_the_pin(event: ApduTraceEvent) -> bool:
        verified = any(e.command == "VERIFY" and e.status_word == 0x9000 for e in trace.events)
        return verified and event.command == "SELECT_FILE"

    # Pulled out between selecting the key and the signature command.
    trace.remove_when = key_selected_after_the_pin
    with pytest.raises(CardRemovedError):
        card.sign_challenge(PinKind.AUTH, AUTH_PIN, b"challenge")
    assert trace.pin_verifies() == 1
    assert trace.events[-1].command == "COMPUTE_DIGITAL_SIGNATURE"
    assert trace.events[-1].error == "CardRemovedError"

    card_in_reader.insert()
    wait_for_card_state(pcsc_reader, present=True)
    transport.reconnect()
    # The card lost power: the PIN must be entered again, and nothing re-sent it.
    with pytest.raises(SecurityStatusNotSatisfiedError):
        card.sign_digest_info(PinKind.AUTH, sha256_digest_info(b"challenge"))
    assert trace.pin_verifies() == 1


def test_blocking_persists_across_card_restarts(
    pcsc_reader: str, card_state: CardState, tmp_path: Path
) -> None:
    path = tmp_path / "card.json"
    card_state.save(path)
    wait_for_card_state(pcsc_reader, present=False)
    with VpcdBridge(VirtualMyNumberCard(CardState.load(path), path), port=VPCD_PORT):
        wait_for_card_state(pcsc_reader, present=True)
        with PcscTransport.connect(pcsc_reader) as transport:
            card = JPKICard(transport)
            with pytest.raises(WrongPinError):
                card.verify_pin(PinKind.AUTH, "0000")
            with pytest.raises(WrongPinError):
                card.verify_pin(PinKind.AUTH, "0000")
            with pytest.raises(PinBlockedError):
                card.verify_pin(PinKind.AUTH, "0000", confirm_last_try=True)
    wait_for_card_state(pcsc_reader, present=False)
    # A new card object from the same file: the emulator process restarted.
    with VpcdBridge(VirtualMyNumberCard(CardState.load(path), path), port=VPCD_PORT):
        wait_for_card_state(pcsc_reader, present=True)
        with PcscTransport.connect(pcsc_reader) as transport:
            card = JPKICard(transport)
            assert card.pin_tries_left(PinKind.AUTH) == 0
            with pytest.raises(PinBlockedError):
                card.sign_challenge(PinKind.AUTH, AUTH_PIN, b"x", confirm_last_try=True)
            assert card.pin_tries_left(PinKind.SIGN) == 5
    wait_for_card_state(pcsc_reader, present=False)


def test_wait_for_card_sees_a_card_arriving(
    pcsc_reader: str, virtual_card: VirtualMyNumberCard
) -> None:
    wait_for_card_state(pcsc_reader, present=False)
    bridge = VpcdBridge(virtual_card, port=VPCD_PORT)
    timer = threading.Timer(0.7, bridge.insert)
    timer.start()
    try:
        started = time.monotonic()
        assert wait_for_card(pcsc_reader, timeout=10) == pcsc_reader
        assert time.monotonic() - started >= 0.5
    finally:
        timer.join()
        bridge.remove()
        wait_for_card_state(pcsc_reader, present=False)


def test_a_card_swapped_between_apdus_is_reported_as_removed(
    transport: PcscTransport, trace: _Trace, card_in_reader: VpcdBridge, pcsc_reader: str
) -> None:
    card = JPKICard(transport, tracer=trace)
    card.verify_pin(PinKind.AUTH, AUTH_PIN)
    card_in_reader.remove()
    wait_for_card_state(pcsc_reader, present=False)
    card_in_reader.insert()  # a card is in the reader again, but not the same session
    wait_for_card_state(pcsc_reader, present=True)
    with pytest.raises(CardRemovedError):
        card.sign_digest_info(PinKind.AUTH, sha256_digest_info(b"challenge"))


def test_closing_the_connection_forgets_the_password(
    card_in_reader: VpcdBridge, pcsc_reader: str
) -> None:
    with PcscTransport.connect(pcsc_reader) as first:
        card = JPKICard(first)
        card.verify_pin(PinKind.SIGN, SIGN_PASSWORD)
        assert card.read_certificate(CertificateKind.SIGN)
    # The kiosk relies on this: the next person's session starts with nothing
    # selected and nothing verified. Without the reset, the JPKI AP would still
    # be current and EF 0001 readable; the raw ISO layer shows it (JPKICard would
    # select the AP again, which by itself drops the security state).
    with PcscTransport.connect(pcsc_reader) as second:
        iso = Card(second)
        assert iso.select_ef(CertificateKind.SIGN.fid).status_word == 0x6A82


class _PulledOutDuring:
    """The virtual card, pulled out of the reader while it executes the ``nth`` command ``ins``."""

    def __init__(self, card: VirtualMyNumberCard, ins: int, nth: int = 1) -> None:
        self.card, self.ins, self.remaining = card, ins, nth
        self.atr = card.atr
        self.power_on, self.power_off, self.reset = card.power_on, card.power_off, card.reset
        self.bridge: VpcdBridge | None = None

    def process_apdu(self, command: bytes) -> bytes:
        answer = self.card.process_apdu(command)
        if command[1] == self.ins:
            self.remaining -= 1
            if self.remaining == 0 and self.bridge is not None:
                self.bridge.remove()  # the answer never leaves the card
        return answer


@pytest.mark.parametrize(
    ("ins", "nth", "command"),
    [(0xB0, 3, "READ_BINARY"), (0x2A, 1, "COMPUTE_DIGITAL_SIGNATURE")],
)
def test_card_pulled_out_while_executing_a_command(
    pcsc_reader: str, virtual_card: VirtualMyNumberCard, ins: int, nth: int, command: str
) -> None:
    wait_for_card_state(pcsc_reader, present=False)
    pulled = _PulledOutDuring(virtual_card, ins, nth)
    bridge = pulled.bridge = VpcdBridge(pulled, port=VPCD_PORT)
    bridge.insert()
    try:
        wait_for_card_state(pcsc_reader, present=True)
        trace = _Trace()
        with PcscTransport.connect(pcsc_reader) as transport:
            card = JPKICard(transport, tracer=trace)
            with pytest.raises(CardRemovedError):
                card.sign_challenge(PinKind.AUTH, AUTH_PIN, b"challenge")
        assert trace.events[-1].command == command
        assert trace.events[-1].error == "CardRemovedError"
        assert trace.pin_verifies() == (1 if command == "COMPUTE_DIGITAL_SIGNATURE" else 0)
    finally:
        bridge.remove()
        wait_for_card_state(pcsc_reader, present=False)
