"""A pyHanko signer whose private-key operation is the card's COMPUTE DIGITAL SIGNATURE.

pyHanko builds the CMS structure (signed attributes, certificates) and hands
the bytes to be signed to `Signer.async_sign_raw`; here they are hashed with
SHA-256, wrapped in a DigestInfo and signed by the card's key. The key never
leaves the card, and the password is used exactly once, by `open_card_signer`,
before the signer exists: a signer object never holds it, so pyHanko cannot
cause a second VERIFY however many times it asks for a signature.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from asn1crypto import algos
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from pyhanko.sign.signers import Signer
from pyhanko_certvalidator.registry import SimpleCertificateStore

from jpki.card import CertificateKind, JPKICard, PinKind, sha256_digest_info
from jpki.errors import JPKIError, SignatureMismatchError

__all__ = ["CardSigner", "DigestAlgorithmError", "open_card_signer"]

_CA_OF = {PinKind.SIGN: CertificateKind.SIGN_CA, PinKind.AUTH: CertificateKind.AUTH_CA}
# pyHanko's names for the key usage a signer's certificate must show.
_KEY_USAGE_OF = {PinKind.SIGN: {"non_repudiation"}, PinKind.AUTH: {"digital_signature"}}


class DigestAlgorithmError(ValueError):
    """The card signs SHA-256 DigestInfos only; another digest was asked for."""


class CardSigner(Signer):
    """pyHanko `Signer` backed by one key of a card whose PIN is already verified.

    Obtain one from :func:`open_card_signer`; it is usable only inside that
    context (the card's PC/SC transaction and verified state).
    """

    def __init__(
        self, card: JPKICard, kind: PinKind, certificate_der: bytes, ca_certificate_der: bytes
    ) -> None:
        certificate = asn1_x509.Certificate.load(certificate_der)
        ca_certificate = asn1_x509.Certificate.load(ca_certificate_der)
        super().__init__(
            signing_cert=certificate,
            cert_registry=SimpleCertificateStore.from_certs([ca_certificate]),
            signature_mechanism=algos.SignedDigestAlgorithm({"algorithm": "sha256_rsa"}),
            # The issue asks for the signature certificate AND its CA certificate
            # in the signature: the CA is a self-signed root, kept on purpose.
            embed_roots=True,
        )
        public_key = x509.load_der_x509_certificate(certificate_der).public_key()
        if not isinstance(public_key, rsa.RSAPublicKey):
            raise SignatureMismatchError()
        self._public_key = public_key
        self._card = card
        self.kind = kind
        self.certificate_der = certificate_der
        self.ca_certificate_der = ca_certificate_der
        self.signatures_made = 0
        self._open = True

    @property
    def required_key_usage(self) -> set[str]:
        """What pyHanko should expect in this key's certificate (nonRepudiation for sign)."""
        return set(_KEY_USAGE_OF[self.kind])

    def close(self) -> None:
        self._open = False

    async def async_sign_raw(
        self, data: bytes, digest_algorithm: str, dry_run: bool = False
    ) -> bytes:
        if digest_algorithm.lower() != "sha256":
            raise DigestAlgorithmError(f"the card signs SHA-256 only, not {digest_algorithm}")
        if dry_run:
            # pyHanko's size estimate: a signature is exactly the modulus length.
            return bytes(self._public_key.key_size // 8)
        if not self._open:
            raise RuntimeError("the card signer was used outside open_card_signer()")
        signature = self._card.sign_digest_info(self.kind, sha256_digest_info(data))
        try:
            # A card that signs with another key than its certificate's would
            # produce documents nobody can verify: refuse them here.
            self._public_key.verify(signature, data, padding.PKCS1v15(), hashes.SHA256())
        except InvalidSignature:
            raise SignatureMismatchError() from None
        self.signatures_made += 1
        return signature


@contextlib.contextmanager
def open_card_signer(
    card: JPKICard,
    password: str,
    *,
    kind: PinKind = PinKind.SIGN,
    confirm_last_try: bool = False,
) -> Iterator[CardSigner]:
    """Verify the password once and yield a signer for ``kind``'s key, in one card session.

    Raises PinFormatError (nothing sent), WrongPinError(tries_left) after the one
    VERIFY, PinBlockedError, LastTryConfirmationRequired, or another JPKIError.
    On leaving, the JPKI AP is selected afresh so the card forgets the verified
    password: nothing else can sign with it afterwards.
    """
    kind.encode(password)  # format error before the first APDU
    with card.session():
        card.select_jpki_ap()  # a fresh security state for this signing run
        certificate_kind = kind.certificate
        if certificate_kind.is_pin_required:
            # The signature certificate is readable only after the password.
            card.verify_pin(kind, password, confirm_last_try)
            certificate = card.read_certificate(certificate_kind)
        else:
            certificate = card.read_certificate(certificate_kind)
            card.verify_pin(kind, password, confirm_last_try)
        ca_certificate = card.read_certificate(_CA_OF[kind])
        signer = CardSigner(card, kind, certificate, ca_certificate)
        try:
            yield signer
        finally:
            signer.close()
            with contextlib.suppress(JPKIError):
                card.select_jpki_ap()
