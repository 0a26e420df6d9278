"""The card steps of one kiosk session, over one connection to the card.

One connection is one card session: it opens when the person puts the card
down and closes (resetting the card, so a verified PIN is forgotten) when the
kiosk session ends. A card taken out in between breaks the connection, so both
signatures of an identity verification always come from the card that stayed
in the reader. Each PIN or password entry is used for exactly one VERIFY
(inside ``jpki``) and wiped when the step returns.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

from commonid_kiosk.secret_entry import SecretEntry
from jpki.card import JPKICard, PinKind
from jpki.documents import open_card_signer, sign_pdf
from jpki.transport import PcscTransport, Transport


@dataclass(frozen=True)
class CardStatus:
    """What the kiosk shows before asking for a PIN."""

    auth_tries_left: int
    sign_tries_left: int | None  # only read when the session needs the sign certificate


@dataclass(frozen=True)
class SignedByKey:
    certificate: bytes  # DER
    signature: bytes


@dataclass(frozen=True)
class CardAnswer:
    """What goes to the service: certificates and signatures over the challenge. No PIN."""

    auth_certificate: bytes
    auth_signature: bytes
    sign_certificate: bytes | None = None
    sign_signature: bytes | None = None


class CardSession:
    """The card in the kiosk's reader, held for one person's session."""

    def __init__(self, transport: Transport) -> None:
        self._transport = transport
        self._card = JPKICard(transport)

    @classmethod
    def open(cls, reader: str | None) -> CardSession:
        """Connect to the card in ``reader`` (or the first reader holding one)."""
        return cls(PcscTransport.connect(reader))

    def status(self, *, with_sign: bool) -> CardStatus:
        """Select the JPKI application (NotMyNumberCardError if absent), read the tries left."""
        with self._card.session():
            self._card.select_jpki_ap()
            auth = self._card.pin_tries_left(PinKind.AUTH)
            sign = self._card.pin_tries_left(PinKind.SIGN) if with_sign else None
        return CardStatus(auth_tries_left=auth, sign_tries_left=sign)

    def tries_left(self, kind: PinKind) -> int:
        return self._card.pin_tries_left(kind)

    def sign(
        self, kind: PinKind, entry: SecretEntry, to_be_signed: bytes, *, confirm_last_try: bool
    ) -> SignedByKey:
        """Verify ``entry`` once and sign ``to_be_signed`` with ``kind``'s key; wipe the entry."""
        try:
            with entry.revealed() as secret:
                signed = self._card.sign_challenge(
                    kind, secret, to_be_signed, confirm_last_try=confirm_last_try
                )
        finally:
            entry.wipe()
        return SignedByKey(certificate=signed.certificate, signature=signed.signature)

    def sign_document(
        self,
        entry: SecretEntry,
        pdf: bytes,
        *,
        confirm_last_try: bool,
        timestamp_url: str | None = None,
    ) -> bytes:
        """Verify the signature password once and sign ``pdf`` (PAdES; B-T with a TSA).

        The entry is wiped as soon as the VERIFY is done, before pyHanko builds
        the signature; leaving the signer selects the AP again, so the card
        forgets the verified password. Blocking (PC/SC, pyHanko's own event
        loop): call it from a worker thread.
        """
        with contextlib.ExitStack() as signing:
            try:
                with entry.revealed() as password:
                    signer = signing.enter_context(
                        open_card_signer(self._card, password, confirm_last_try=confirm_last_try)
                    )
            finally:
                entry.wipe()
            return sign_pdf(pdf, signer, timestamp_url=timestamp_url)

    def close(self) -> None:
        """Disconnect, resetting the card: nothing stays verified for the next person."""
        self._transport.close()
