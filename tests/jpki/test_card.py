"""JPKICard against the virtual My Number Card, in process (fast; no reader).

The same flows over the real PC/SC stack are in test_reader_pcsc.py.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from jpki.card import CertificateKind, JPKICard, PinKind, der_length, sha256_digest_info
from jpki.emulator.card import VirtualMyNumberCard
from jpki.emulator.state import CardState
from jpki.errors import (
    CardRemovedError,
    CertificateAbsentError,
    LastTryConfirmationRequired,
    MalformedCertificateError,
    NotMyNumberCardError,
    PinBlockedError,
    PinFormatError,
    SecurityStatusNotSatisfiedError,
    SignatureMismatchError,
    TruncatedReadError,
    WrongPinError,
)
from jpki.trace import ApduTraceEvent
from jpki.transport import InProcessTransport
from tests.fixtures.card import AUTH_PIN, SIGN_PASSWORD


class _Recorder:
    """Collects trace events; optionally pulls the card out after the N-th exchange."""

    def __init__(self, transport: InProcessTransport | None = None) -> None:
        self.events: list[ApduTraceEvent] = []
        self.transport = transport
        self.remove_after = 0
        self.remove_when: Callable[[ApduTraceEvent], bool] | None = None

    def __call__(self, event: ApduTraceEvent) -> None:
        self.events.append(event)
        if self.transport is None:
            return
        if len(self.events) == self.remove_after or (
            self.remove_when is not None and self.remove_when(event)
        ):
            self.transport.remove()

    def names(self) -> list[str]:
        return [event.command for event in self.events]

    def pin_verifies(self) -> int:
        """VERIFY commands that carried a PIN (their lengths are withheld)."""
        return sum(1 for e in self.events if e.command == "VERIFY" and e.data_length is None)


def _card(virtual_card: VirtualMyNumberCard, **kwargs: object) -> tuple[JPKICard, _Recorder]:
    transport = InProcessTransport(virtual_card)
    recorder = _Recorder(transport)
    return JPKICard(transport, tracer=recorder, **kwargs), recorder  # type: ignore[arg-type]


def _rs256_verifies(certificate_der: bytes, signature: bytes, data: bytes) -> None:
    public_key = x509.load_der_x509_certificate(certificate_der).public_key()
    public_key.verify(signature, data, padding.PKCS1v15(), hashes.SHA256())  # type: ignore[union-attr, call-arg, arg-type]


@pytest.mark.parametrize("extended_length", [False, True])
def test_reads_the_three_free_certificates_whole(
    virtual_card: VirtualMyNumberCard, card_state: CardState, extended_length: bool
) -> None:
    card, recorder = _card(virtual_card, extended_length=extended_length)
    expected = {
        CertificateKind.AUTH: card_state.auth_certificate,
        CertificateKind.AUTH_CA: card_state.auth_ca_certificate,
        CertificateKind.SIGN_CA: card_state.sign_ca_certificate,
    }
    for kind, der in expected.items():
        read = card.read_certificate(kind)
        assert read == der
        x509.load_der_x509_certificate(read)
    reads = recorder.names().count("READ_BINARY")
    if extended_length:
        assert reads == 3
    else:
        assert reads == sum(-(-len(der) // 256) for der in expected.values())


def test_short_reads_never_ask_past_the_certificate(
    virtual_card: VirtualMyNumberCard, card_state: CardState
) -> None:
    card, recorder = _card(virtual_card)
    card.read_certificate(CertificateKind.AUTH)
    received = sum(e.response_length for e in recorder.events if e.command == "READ_BINARY")
    # 256-byte chunks, the last one trimmed to the certificate's end: no filler crosses.
    assert received == max(len(card_state.auth_certificate), 256)


def test_reading_the_sign_certificate_needs_the_password(virtual_card: VirtualMyNumberCard) -> None:
    card, _recorder = _card(virtual_card)
    with pytest.raises(SecurityStatusNotSatisfiedError) as raised:
        card.read_certificate(CertificateKind.SIGN)
    assert raised.value.message_ja
    card.verify_pin(PinKind.SIGN, SIGN_PASSWORD)
    assert x509.load_der_x509_certificate(card.read_certificate(CertificateKind.SIGN))


def test_tries_left_of_both_pins(virtual_card: VirtualMyNumberCard) -> None:
    card, _recorder = _card(virtual_card)
    assert card.pin_tries_left(PinKind.AUTH) == 3
    assert card.pin_tries_left(PinKind.SIGN) == 5


def test_wrong_pin_reports_tries_left(virtual_card: VirtualMyNumberCard) -> None:
    card, recorder = _card(virtual_card)
    with pytest.raises(WrongPinError) as raised:
        card.verify_pin(PinKind.AUTH, "9999")
    assert raised.value.tries_left == 2
    assert "2 tries left" in str(raised.value)
    assert "9999" not in str(raised.value) + raised.value.message_ja
    assert card.pin_tries_left(PinKind.AUTH) == 2
    assert recorder.pin_verifies() == 1  # not re-sent after the wrong PIN


def test_password_is_upper_cased(virtual_card: VirtualMyNumberCard) -> None:
    card, _recorder = _card(virtual_card)
    card.verify_pin(PinKind.SIGN, SIGN_PASSWORD.lower())
    assert card.read_certificate(CertificateKind.SIGN)


@pytest.mark.parametrize(
    ("kind", "pin"),
    [
        (PinKind.AUTH, "123"),
        (PinKind.AUTH, "12345"),
        (PinKind.AUTH, "12a4"),
        (PinKind.AUTH, "１２３４"),  # full-width digits: str.isdigit() would accept them
        (PinKind.SIGN, "ABC12"),
        (PinKind.SIGN, "A" * 17),
        (PinKind.SIGN, "ABC-123"),
        (PinKind.SIGN, "ıBC123"),  # dotless i upper-cases to an ASCII I
    ],
)
def test_pin_format_is_checked_before_anything_is_sent(
    virtual_card: VirtualMyNumberCard, kind: PinKind, pin: str
) -> None:
    card, recorder = _card(virtual_card)
    with pytest.raises(PinFormatError) as raised:
        card.verify_pin(kind, pin)
    with pytest.raises(PinFormatError):
        card.sign_challenge(kind, pin, b"challenge")
    assert recorder.events == []
    assert pin not in str(raised.value) and pin not in raised.value.message_ja


def test_last_try_needs_explicit_confirmation(virtual_card: VirtualMyNumberCard) -> None:
    card, recorder = _card(virtual_card)
    for _ in range(2):
        with pytest.raises(WrongPinError):
            card.verify_pin(PinKind.AUTH, "0000")
    assert recorder.pin_verifies() == 2
    with pytest.raises(LastTryConfirmationRequired):
        card.verify_pin(PinKind.AUTH, AUTH_PIN)
    with pytest.raises(LastTryConfirmationRequired):
        card.sign_challenge(PinKind.AUTH, AUTH_PIN, b"challenge")
    assert recorder.pin_verifies() == 2  # refused before the PIN went to the card
    assert card.pin_tries_left(PinKind.AUTH) == 1
    card.verify_pin(PinKind.AUTH, AUTH_PIN, confirm_last_try=True)
    assert card.pin_tries_left(PinKind.AUTH) == 3


def test_blocked_pin_is_reported_and_not_tried(virtual_card: VirtualMyNumberCard) -> None:
    card, recorder = _card(virtual_card)
    for _ in range(2):
        with pytest.raises(WrongPinError):
            card.verify_pin(PinKind.AUTH, "0000")
    with pytest.raises(PinBlockedError):
        card.verify_pin(PinKind.AUTH, "0000", confirm_last_try=True)
    assert card.pin_tries_left(PinKind.AUTH) == 0
    with pytest.raises(PinBlockedError):
        card.verify_pin(PinKind.AUTH, AUTH_PIN, confirm_last_try=True)
    assert recorder.pin_verifies() == 3
    # The other PIN is independent.
    assert card.pin_tries_left(PinKind.SIGN) == 5


def test_blocking_persists_in_the_card_file(card_state: CardState, tmp_path: Path) -> None:
    path = tmp_path / "card.json"
    card_state.save(path)
    card, _recorder = _card(VirtualMyNumberCard(CardState.load(path), path))
    for _ in range(3):
        with pytest.raises((WrongPinError, PinBlockedError)):
            card.verify_pin(PinKind.AUTH, "0000", confirm_last_try=True)
    restarted, _ = _card(VirtualMyNumberCard(CardState.load(path), path))
    assert restarted.pin_tries_left(PinKind.AUTH) == 0
    with pytest.raises(PinBlockedError):
        restarted.sign_challenge(PinKind.AUTH, AUTH_PIN, b"x", confirm_last_try=True)


def test_auth_challenge_signature_verifies(
    virtual_card: VirtualMyNumberCard, card_state: CardState
) -> None:
    card, recorder = _card(virtual_card)
    challenge = b"commonid/v1/card-challenge\n{}"
    result = card.sign_challenge(PinKind.AUTH, AUTH_PIN, challenge)
    assert result.certificate == card_state.auth_certificate
    _rs256_verifies(result.certificate, result.signature, challenge)
    sign_events = [e for e in recorder.events if e.command == "COMPUTE_DIGITAL_SIGNATURE"]
    assert [e.data_length for e in sign_events] == [51]
    assert recorder.pin_verifies() == 1


def test_identity_flow_signs_with_both_keys_in_one_session(
    virtual_card: VirtualMyNumberCard, card_state: CardState
) -> None:
    card, recorder = _card(virtual_card)
    challenge = b"same challenge for both keys"
    with card.session():
        auth = card.sign_challenge(PinKind.AUTH, AUTH_PIN, challenge)
        sign = card.sign_challenge(PinKind.SIGN, SIGN_PASSWORD, challenge)
    assert auth.certificate == card_state.auth_certificate
    assert sign.certificate == card_state.sign_certificate
    _rs256_verifies(auth.certificate, auth.signature, challenge)
    _rs256_verifies(sign.certificate, sign.signature, challenge)
    assert recorder.names().count("SELECT_FILE") == 1 + 3 + 3  # AP once; cert, PIN, key EFs


def test_signing_without_verify_is_refused(virtual_card: VirtualMyNumberCard) -> None:
    card, _recorder = _card(virtual_card)
    with pytest.raises(SecurityStatusNotSatisfiedError):
        card.sign_digest_info(PinKind.AUTH, sha256_digest_info(b"data"))


def test_sign_digest_info_accepts_only_a_sha256_digest_info(
    virtual_card: VirtualMyNumberCard,
) -> None:
    card, recorder = _card(virtual_card)
    with pytest.raises(ValueError, match="DigestInfo"):
        card.sign_digest_info(PinKind.AUTH, b"\x00" * 32)
    assert recorder.events == []


def test_card_removed_mid_read_raises_and_returns_nothing(
    virtual_card: VirtualMyNumberCard,
) -> None:
    card, recorder = _card(virtual_card)
    recorder.remove_after = 4  # SELECT AP, SELECT EF, two READ BINARY
    with pytest.raises(CardRemovedError):
        card.read_certificate(CertificateKind.AUTH)
    assert recorder.events[-1].error == "CardRemovedError"


def test_card_removed_after_verify_loses_the_pin_and_is_not_retried(
    virtual_card: VirtualMyNumberCard,
) -> None:
    card, recorder = _card(virtual_card)
    transport = recorder.transport
    assert transport is not None
    # Pulled out right after the card accepted the PIN, before the signature.
    recorder.remove_when = lambda e: e.command == "VERIFY" and e.status_word == 0x9000
    with pytest.raises(CardRemovedError):
        card.sign_challenge(PinKind.AUTH, AUTH_PIN, b"challenge")
    assert recorder.pin_verifies() == 1
    transport.insert()
    transport.reconnect()
    # Power was lost with the removal: the card wants the PIN again.
    with pytest.raises(SecurityStatusNotSatisfiedError):
        card.sign_digest_info(PinKind.AUTH, sha256_digest_info(b"challenge"))
    assert recorder.pin_verifies() == 1


def test_removal_during_the_pin_verify_does_not_resend_it(
    virtual_card: VirtualMyNumberCard,
) -> None:
    card, recorder = _card(virtual_card)
    recorder.remove_after = 3  # SELECT AP, SELECT PIN EF, empty VERIFY: the PIN VERIFY fails
    with pytest.raises(CardRemovedError):
        card.verify_pin(PinKind.AUTH, AUTH_PIN)
    verify_events = [e for e in recorder.events if e.command == "VERIFY"]
    assert len(verify_events) == 2 and verify_events[1].error == "CardRemovedError"


class _NotAMyNumberCard:
    """A card with no JPKI AP (e.g. a transit card): SELECT by AID finds nothing."""

    atr = bytes.fromhex("3BE000FF8131FE4514")

    def power_on(self) -> None: ...

    def power_off(self) -> None: ...

    def reset(self) -> None: ...

    def process_apdu(self, command: bytes) -> bytes:
        return b"\x6a\x82"


def test_a_card_without_the_jpki_ap_is_not_a_my_number_card() -> None:
    card = JPKICard(InProcessTransport(_NotAMyNumberCard()))
    with pytest.raises(NotMyNumberCardError) as raised:
        card.select_jpki_ap()
    assert "My Number Card" in str(raised.value)
    assert "マイナンバーカード" in raised.value.message_ja


class _ShortOnlyCard:
    """The virtual card behind an interface that refuses extended-length APDUs with 67 00."""

    def __init__(self, card: VirtualMyNumberCard) -> None:
        self.card = card
        self.atr = card.atr
        self.power_on, self.power_off, self.reset = card.power_on, card.power_off, card.reset

    def process_apdu(self, command: bytes) -> bytes:
        if len(command) > 5 and command[4] == 0 and command[1] == 0xB0:
            return b"\x67\x00"
        return self.card.process_apdu(command)


def test_extended_length_falls_back_to_short_when_refused(
    virtual_card: VirtualMyNumberCard, card_state: CardState
) -> None:
    transport = InProcessTransport(_ShortOnlyCard(virtual_card))
    recorder = _Recorder()
    card = JPKICard(transport, tracer=recorder, extended_length=True)
    assert card.read_certificate(CertificateKind.AUTH) == card_state.auth_certificate
    assert card.read_certificate(CertificateKind.AUTH_CA) == card_state.auth_ca_certificate
    refused = [e for e in recorder.events if e.status_word == 0x6700]
    assert len(refused) == 1  # tried once, then short APDUs for the rest of the session
    assert not card.uses_extended_length


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (b"\x30\x82\x05\x10", 0x510 + 4),
        (b"\x30\x81\x90", 0x90 + 3),
        (b"\x30\x10", 0x12),
        (b"\x30\x82\x05", None),
        (b"\x30", None),
    ],
)
def test_der_length_from_the_header(header: bytes, expected: int | None) -> None:
    assert der_length(header) == expected


@pytest.mark.parametrize("header", [b"\x31\x82\x05\x10", b"\x30\x80", b"\x30\x82\x00\x10"])
def test_der_length_refuses_what_is_not_a_der_certificate(header: bytes) -> None:
    with pytest.raises(MalformedCertificateError):
        der_length(header)


def _state_with(card_state: CardState, **changes: object) -> CardState:
    fields = {
        "auth_private_key": card_state.auth_private_key,
        "sign_private_key": card_state.sign_private_key,
        "auth_certificate": card_state.auth_certificate,
        "auth_ca_certificate": card_state.auth_ca_certificate,
        "sign_certificate": card_state.sign_certificate,
        "sign_ca_certificate": card_state.sign_ca_certificate,
        "auth_pin": AUTH_PIN,
        "sign_password": SIGN_PASSWORD,
    }
    fields.update(changes)
    return CardState.create(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize("extended_length", [False, True])
def test_flows_take_the_minimum_number_of_round_trips(
    virtual_card: VirtualMyNumberCard, card_state: CardState, extended_length: bool
) -> None:
    def reads(certificate: bytes) -> int:
        return 1 if extended_length else -(-len(certificate) // 256)

    card, _recorder = _card(virtual_card, extended_length=extended_length)
    card.sign_challenge(PinKind.AUTH, AUTH_PIN, b"auth only")
    # SELECT AP, SELECT EF, reads, SELECT PIN EF, VERIFY (tries), VERIFY, SELECT key EF, SIGN
    assert card.counter.round_trips == 7 + reads(card_state.auth_certificate)

    fresh, _ = _card(VirtualMyNumberCard(card_state), extended_length=extended_length)
    with fresh.session():
        fresh.sign_challenge(PinKind.AUTH, AUTH_PIN, b"identity")
        fresh.sign_challenge(PinKind.SIGN, SIGN_PASSWORD, b"identity")
    assert fresh.counter.round_trips == 13 + reads(card_state.auth_certificate) + reads(
        card_state.sign_certificate
    )


def test_a_key_that_does_not_match_its_certificate_is_caught(card_state: CardState) -> None:
    mismatched = _state_with(card_state, auth_private_key=card_state.sign_private_key)
    card, _recorder = _card(VirtualMyNumberCard(mismatched))
    with pytest.raises(SignatureMismatchError):
        card.sign_challenge(PinKind.AUTH, AUTH_PIN, b"challenge")


def test_an_empty_certificate_file_is_reported_as_absent(card_state: CardState) -> None:
    # Cards issued to young children carry no signature certificate.
    card, _recorder = _card(VirtualMyNumberCard(_state_with(card_state, sign_certificate=b"")))
    card.verify_pin(PinKind.SIGN, SIGN_PASSWORD)
    with pytest.raises(CertificateAbsentError):
        card.read_certificate(CertificateKind.SIGN)


class _ShortFileCard:
    """The virtual card whose auth certificate EF ends early: a damaged or half-written file."""

    def __init__(self, card: VirtualMyNumberCard, end: int) -> None:
        self.card, self.end = card, end
        self.atr = card.atr
        self.power_on, self.power_off, self.reset = card.power_on, card.power_off, card.reset

    def process_apdu(self, command: bytes) -> bytes:
        if command[1] == 0xB0:
            offset = (command[2] << 8) | command[3]
            if offset >= self.end:
                return b"\x6b\x00"
            answer = self.card.process_apdu(command)
            data = answer[:-2][: self.end - offset]
            return data + (b"\x62\x82" if offset + len(data) >= self.end else answer[-2:])
        return self.card.process_apdu(command)


@pytest.mark.parametrize("extended_length", [False, True])
@pytest.mark.parametrize("end", [300, 512])
def test_a_certificate_cut_short_is_never_returned(
    virtual_card: VirtualMyNumberCard, extended_length: bool, end: int
) -> None:
    transport = InProcessTransport(_ShortFileCard(virtual_card, end))
    card = JPKICard(transport, extended_length=extended_length)
    with pytest.raises(TruncatedReadError) as raised:
        card.read_certificate(CertificateKind.AUTH)
    assert raised.value.received == end
    assert raised.value.expected > end


def test_a_wrong_password_keeps_the_verified_auth_pin(
    virtual_card: VirtualMyNumberCard, card_state: CardState
) -> None:
    card, recorder = _card(virtual_card)
    card.verify_pin(PinKind.AUTH, AUTH_PIN)
    with pytest.raises(WrongPinError):
        card.verify_pin(PinKind.SIGN, "WRONG1")
    # No re-selection of the AP after a refusal: that would drop the verified PIN.
    signature = card.sign_digest_info(PinKind.AUTH, sha256_digest_info(b"after a typo"))
    _rs256_verifies(card_state.auth_certificate, signature, b"after a typo")
    assert recorder.names().count("SELECT_FILE") == 1 + 3  # AP, PIN EF, PIN EF, key EF
