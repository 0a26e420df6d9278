"""The kiosk's part with the card: sign a session's challenge with one or both JPKI keys.

The PIN and password are used for one VERIFY each and never leave this call.
"""

from __future__ import annotations

from dataclasses import dataclass

from jpki.card import JPKICard, PinKind


@dataclass(frozen=True)
class CardAnswer:
    auth_certificate: bytes
    auth_signature: bytes
    sign_certificate: bytes | None = None
    sign_signature: bytes | None = None


def answer_challenge(
    card: JPKICard, to_be_signed: bytes, *, auth_pin: str, sign_password: str | None = None
) -> CardAnswer:
    """Auth key always; the sign key too when a password is given (identity mode)."""
    auth = card.sign_challenge(PinKind.AUTH, auth_pin, to_be_signed)
    if sign_password is None:
        return CardAnswer(auth.certificate, auth.signature)
    sign = card.sign_challenge(PinKind.SIGN, sign_password, to_be_signed)
    return CardAnswer(auth.certificate, auth.signature, sign.certificate, sign.signature)
