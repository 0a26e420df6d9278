"""Card binding for the reference holder: the My Number Card's authentication key signs
proofs of possession and key binding JWTs (RS256) after one PIN verification."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from cryptography import x509
from joserfc.jwk import RSAKey

from jpki.card import CertificateKind, JPKICard, PinKind


class JpkiCardBinding:
    """Use inside :meth:`open`: the card session is open and the PIN verified once."""

    def __init__(self, card: JPKICard, auth_certificate_der: bytes) -> None:
        self._card = card
        self._public = x509.load_der_x509_certificate(auth_certificate_der).public_key()

    @classmethod
    @contextmanager
    def open(cls, card: JPKICard, pin: str) -> Iterator[JpkiCardBinding]:
        """Select the JPKI application, read the authentication certificate and verify
        the PIN once (a refused PIN raises; it is never sent again on its own)."""
        with card.session():
            card.select_jpki_ap()
            certificate = card.read_certificate(CertificateKind.AUTH)
            card.verify_pin(PinKind.AUTH, pin)
            yield cls(card, certificate)

    def public_jwk(self) -> dict[str, Any]:
        return RSAKey.import_key(self._public).as_dict(private=False)

    def sign_digest_info(self, digest_info: bytes) -> bytes:
        return self._card.sign_digest_info(PinKind.AUTH, digest_info)
