"""What the person reads: every card error and service code lands on an explanation with advice."""

from __future__ import annotations

import pytest
from commonid_kiosk.outcomes import explain_card_error, explain_service_code

from jpki.errors import (
    CardRemovedError,
    LastTryConfirmationRequired,
    NotMyNumberCardError,
    PinBlockedError,
    WrongPinError,
)


@pytest.mark.parametrize(
    ("error", "password", "code"),
    [
        (WrongPinError(2), False, "wrong_pin"),
        (WrongPinError(4), True, "wrong_password"),
        (PinBlockedError(), False, "pin_blocked"),
        (PinBlockedError(), True, "password_blocked"),
        (LastTryConfirmationRequired(), False, "last_try"),
        (CardRemovedError(), False, "card_removed"),
        (NotMyNumberCardError(), False, "not_my_number_card"),
    ],
)
def test_card_errors_are_explained(error: Exception, password: bool, code: str) -> None:
    explanation = explain_card_error(error, password=password)  # type: ignore[arg-type]
    assert explanation.code == code
    assert explanation.title_ja and explanation.advice_ja and explanation.advice_en


def test_wrong_pin_carries_the_tries_left() -> None:
    assert explain_card_error(WrongPinError(2)).tries_left == 2


@pytest.mark.parametrize(
    ("code", "shown"),
    [
        ("certificate_expired", "certificate_expired"),
        ("certificate_revoked", "certificate_revoked"),
        ("certificate_untrusted_root", "certificate_rejected"),
        ("challenge_replayed", "session_used"),
        ("session_expired", "session_expired"),
        ("verification_stale", "verification_stale"),
    ],
)
def test_service_codes_fold_onto_what_the_person_can_do(code: str, shown: str) -> None:
    assert explain_service_code(code).code == shown
