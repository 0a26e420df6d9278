"""JPKICard's reading of every status word a card may answer (hypothesis).

The virtual card answers only what a real JPKI card answers; these properties
cover the rest of the space with a card that answers VERIFY from a script.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from jpki.card import JPKICard, PinKind
from jpki.errors import (
    JPKIError,
    PinBlockedError,
    SecurityStatusNotSatisfiedError,
    UnexpectedStatusWordError,
    WrongPinError,
)
from jpki.transport import InProcessTransport

status_words = st.integers(0x0000, 0xFFFF).filter(lambda sw: sw >> 8 not in (0x61, 0x6C))


class _VerifyScriptCard:
    """SELECT succeeds; the empty VERIFY and the PIN VERIFY answer the given status words."""

    atr = bytes.fromhex("3BE000FF8131FE4514")

    def __init__(self, tries_answer: int, verify_answer: int) -> None:
        self.tries_answer = tries_answer.to_bytes(2, "big")
        self.verify_answer = verify_answer.to_bytes(2, "big")
        self.pin_verifies = 0

    def power_on(self) -> None: ...

    def power_off(self) -> None: ...

    def reset(self) -> None: ...

    def process_apdu(self, command: bytes) -> bytes:
        if command[1] == 0xA4:
            return b"\x90\x00"
        if command[1] == 0x20 and len(command) == 4:
            return self.tries_answer
        if command[1] == 0x20:
            self.pin_verifies += 1
            return self.verify_answer
        return b"\x6d\x00"


@given(status_words)
def test_tries_left_from_any_status_word(status_word: int) -> None:
    card = JPKICard(InProcessTransport(_VerifyScriptCard(status_word, 0x9000)))
    try:
        tries = card.pin_tries_left(PinKind.SIGN)
    except JPKIError as error:
        assert status_word >> 4 != 0x63C and status_word not in (0x9000, 0x6983, 0x6984)
        if status_word == 0x6982:
            assert isinstance(error, SecurityStatusNotSatisfiedError)
        else:
            assert isinstance(error, UnexpectedStatusWordError)
        return
    if status_word >> 4 == 0x63C:
        assert tries == status_word & 0xF
    elif status_word == 0x9000:
        assert tries == PinKind.SIGN.max_tries
    else:
        assert status_word in (0x6983, 0x6984) and tries == 0


@given(status_words)
def test_a_pin_is_sent_once_whatever_the_card_answers(status_word: int) -> None:
    script = _VerifyScriptCard(0x63C3, status_word)
    card = JPKICard(InProcessTransport(script))
    try:
        card.verify_pin(PinKind.AUTH, "1234")
    except WrongPinError as error:
        assert status_word >> 4 == 0x63C and error.tries_left == status_word & 0xF > 0
    except PinBlockedError:
        assert status_word in (0x63C0, 0x6983, 0x6984)
    except SecurityStatusNotSatisfiedError:
        assert status_word == 0x6982
    except UnexpectedStatusWordError as error:
        assert error.status_word == status_word
    else:
        assert status_word == 0x9000
    assert script.pin_verifies == 1


@given(st.integers(0, 15))
def test_no_pin_is_sent_unless_two_tries_remain_or_the_last_is_confirmed(tries: int) -> None:
    script = _VerifyScriptCard(0x63C0 | tries, 0x9000)
    card = JPKICard(InProcessTransport(script))
    try:
        card.verify_pin(PinKind.AUTH, "1234")
    except JPKIError:
        assert tries <= 1 and script.pin_verifies == 0
    else:
        assert tries >= 2 and script.pin_verifies == 1
