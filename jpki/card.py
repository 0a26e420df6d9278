"""The JPKI application of the My Number Card: its layout as data, its operations.

``CertificateKind`` and ``PinKind`` hold the file identifiers, PIN formats and
try limits; :class:`JPKICard` reads like the domain (``read_certificate``,
``pin_tries_left``, ``verify_pin``, ``sign_challenge``) on top of the ISO 7816
:class:`jpki.apdu.Card`.

Safety rules enforced here, not left to callers: a PIN's format is checked
before anything is sent; a VERIFY is sent once per call and never again on
its own (not after a wrong PIN, not after a transport error); with one try
left a VERIFY needs ``confirm_last_try=True``.
"""

from __future__ import annotations

import contextlib
import enum
import hashlib
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from jpki.apdu import (
    SHORT_MAX_LE,
    SW_CLA_NOT_SUPPORTED,
    SW_END_OF_FILE_REACHED,
    SW_FILE_NOT_FOUND,
    SW_INS_NOT_SUPPORTED,
    SW_WRONG_LENGTH,
    SW_WRONG_OFFSET,
    SW_WRONG_P1P2,
    Card,
    check_status,
    error_for_status,
    verification_tries_left,
)
from jpki.errors import (
    CardRemovedError,
    CardResetError,
    CertificateAbsentError,
    LastTryConfirmationRequired,
    MalformedCertificateError,
    NoCardError,
    NotMyNumberCardError,
    PinBlockedError,
    PinFormatError,
    ReaderUnavailableError,
    SignatureMismatchError,
    TransportError,
    TruncatedReadError,
    WrongPinError,
)
from jpki.trace import ApduTracer, ExchangeCounter
from jpki.transport import Transport

JPKI_AID = bytes.fromhex("D392F000260100000001")

# DigestInfo DER prefix for SHA-256 (RFC 8017, section 9.2, note 1).
SHA256_DIGEST_INFO_PREFIX = bytes.fromhex("3031300d060960864801650304020105000420")

# P2 of VERIFY and of COMPUTE DIGITAL SIGNATURE: "the reference data / key of
# the currently selected EF" (the card's own convention, not an SFI).
_CURRENT_EF_REFERENCE = 0x80
_CLA_PROPRIETARY = 0x80

# Short READ BINARY: Le=00 asks for 256 bytes. The first read fetches the DER
# header too, so a certificate of L bytes takes ceil(L / 256) reads.
_SHORT_CHUNK = SHORT_MAX_LE
_EXTENDED_CHUNK = 65536  # Le=0000: everything up to the end of the EF
# Status words by which a card or reader says "not with extended length".
_EXTENDED_REFUSED = frozenset(
    {SW_WRONG_LENGTH, SW_WRONG_P1P2, SW_INS_NOT_SUPPORTED, SW_CLA_NOT_SUPPORTED, SW_WRONG_OFFSET}
)
_ABSENT_FIRST_BYTES = frozenset({0x00, 0xFF})  # an erased or never-written EF
_SELECTION_UNKNOWN = (
    CardRemovedError,
    CardResetError,
    NoCardError,
    ReaderUnavailableError,
    TransportError,
    NotMyNumberCardError,
)


class PinKind(enum.Enum):
    """The two PINs of the JPKI AP and the keys they unlock."""

    AUTH = ("auth", 0x0018, 0x0017, re.compile(r"[0-9]{4}"), "4 digits", "数字4桁", 3)
    SIGN = ("sign", 0x001B, 0x001A, re.compile(r"[A-Z0-9]{6,16}"),
            "6 to 16 letters A-Z or digits", "英大文字・数字6〜16桁", 5)  # fmt: skip

    def __init__(
        self,
        label: str,
        pin_fid: int,
        key_fid: int,
        pattern: re.Pattern[str],
        format_en: str,
        format_ja: str,
        max_tries: int,
    ) -> None:
        self.label = label
        self.pin_fid = pin_fid
        self.key_fid = key_fid
        self.pattern = pattern
        self.format_en = format_en
        self.format_ja = format_ja
        self.max_tries = max_tries

    @property
    def certificate(self) -> CertificateKind:
        """The end-entity certificate of the key this PIN unlocks."""
        return CertificateKind.AUTH if self is PinKind.AUTH else CertificateKind.SIGN

    def encode(self, pin: str) -> bytes:
        """The bytes VERIFY sends, or PinFormatError (which never quotes the PIN).

        The signature password is case-insensitive for people and upper-case on
        the card. Non-ASCII input is refused before upper-casing, because
        ``str.upper`` maps some non-ASCII letters (dotless i) to ASCII ones.
        """
        if not isinstance(pin, str) or not pin.isascii():
            raise self._format_error()
        normalized = pin.upper() if self is PinKind.SIGN else pin
        if not self.pattern.fullmatch(normalized):
            raise self._format_error()
        return normalized.encode("ascii")

    def _format_error(self) -> PinFormatError:
        if self is PinKind.AUTH:
            return PinFormatError(
                f"The authentication PIN must be {self.format_en}.",
                f"利用者証明用暗証番号は{self.format_ja}で入力してください。",
            )
        return PinFormatError(
            f"The signature password must be {self.format_en}.",
            f"署名用パスワードは{self.format_ja}で入力してください。",
        )


class CertificateKind(enum.Enum):
    """The four certificate EFs of the JPKI AP."""

    AUTH = (0x000A, None)
    AUTH_CA = (0x000B, None)
    SIGN = (0x0001, PinKind.SIGN)  # readable only after the signature password
    SIGN_CA = (0x0002, None)

    def __init__(self, fid: int, required_pin: PinKind | None) -> None:
        self.fid = fid
        self.required_pin = required_pin

    @property
    def is_pin_required(self) -> bool:
        return self.required_pin is not None


@dataclass(frozen=True, slots=True)
class ChallengeSignature:
    """A card's RSASSA-PKCS1-v1_5 / SHA-256 signature and the certificate it verifies under."""

    signature: bytes
    certificate: bytes  # DER


def sha256_digest_info(data: bytes) -> bytes:
    """DER DigestInfo of SHA-256(data): what the card pads and signs."""
    return SHA256_DIGEST_INFO_PREFIX + hashlib.sha256(data).digest()


def der_length(header: bytes) -> int | None:
    """Total length of the DER SEQUENCE starting ``header``, or None if more bytes are needed.

    Raises MalformedCertificateError when the bytes cannot start a certificate.
    """
    if len(header) < 2:
        return None
    if header[0] != 0x30:
        raise MalformedCertificateError()
    first = header[1]
    if first < 0x80:
        return 2 + first
    count = first & 0x7F
    if count == 0 or count > 3:  # indefinite length (not DER) or absurdly large
        raise MalformedCertificateError()
    if len(header) < 2 + count:
        return None
    length = int.from_bytes(header[2 : 2 + count], "big")
    if length < 0x80 or (count > 1 and header[2] == 0):  # not minimal: not DER
        raise MalformedCertificateError()
    return 2 + count + length


def minimum_read_round_trips(certificate_length: int, *, extended: bool) -> int:
    """READ BINARY commands needed for a certificate: the first read also brings the header."""
    if extended:
        return math.ceil(certificate_length / _EXTENDED_CHUNK)
    return math.ceil(certificate_length / _SHORT_CHUNK)


class JPKICard:
    """A My Number Card's JPKI application behind a transport.

    ``extended_length=True`` lets certificate reads use extended-length READ
    BINARY when the transport does not rule it out; the first refusal (status
    word or reader error) falls back to short APDUs for the rest of the session.
    """

    def __init__(
        self,
        transport: Transport,
        *,
        tracer: ApduTracer | None = None,
        extended_length: bool = False,
    ) -> None:
        self.transport = transport
        self.iso = Card(transport, tracer=tracer)
        self._use_extended = extended_length and transport.extended_length is not False
        # What this object selected. The AP stays selected between operations:
        # selecting it again would reset the card's security state (a verified
        # PIN). The current EF is trusted only inside one session (a PC/SC
        # transaction): between sessions another program may select another EF,
        # and a VERIFY must never reach a PIN EF this object did not just select.
        self._session_depth = 0
        self._ap_selected = False
        self._current_ef: int | None = None

    @property
    def counter(self) -> ExchangeCounter:
        """Round trips and bytes exchanged so far (for benchmarks)."""
        return self.iso.counter

    @property
    def uses_extended_length(self) -> bool:
        return self._use_extended

    # --- sessions and selection ------------------------------------------------------

    @contextlib.contextmanager
    def session(self) -> Iterator[JPKICard]:
        """Hold the card for a sequence of operations (one PC/SC transaction).

        Inside, the JPKI AP and the current EF are selected once and remembered,
        and no other program's APDU can come in between (so a VERIFY always
        goes to the PIN EF this card object selected).
        """
        if self._session_depth:
            self._session_depth += 1
            try:
                yield self
            finally:
                self._session_depth -= 1
            return
        with self.transport.transaction():
            self._session_depth = 1
            try:
                yield self
            finally:
                self._session_depth = 0
                self._current_ef = None

    def reset(self) -> None:
        """Warm-reset the card: every verified PIN is forgotten, the AP must be selected again."""
        self._forget_selection()
        self.transport.reset()

    def _forget_selection(self) -> None:
        self._ap_selected = False
        self._current_ef = None

    def select_jpki_ap(self) -> None:
        """Select the JPKI application; a card without it is not a My Number Card.

        This starts afresh: the card forgets any PIN verified before.
        """
        with self.session(), self._forgetting_on_error():
            self._forget_selection()
            self._select_ap()

    def _select_ap(self) -> None:
        if self._ap_selected:
            return
        self._current_ef = None
        response = self.iso.select_by_name(JPKI_AID)
        if not response.ok:
            # 6A82 (not found) is the expected answer; any refusal means the same here.
            raise NotMyNumberCardError()
        self._ap_selected = True

    def _select_ef(self, fid: int) -> None:
        self._select_ap()
        if self._current_ef == fid:
            return
        self._current_ef = None
        response = self.iso.select_ef(fid)
        if response.status_word == SW_FILE_NOT_FOUND:
            raise NotMyNumberCardError()
        check_status(response, "SELECT_FILE")
        self._current_ef = fid

    @contextlib.contextmanager
    def _forgetting_on_error(self) -> Iterator[None]:
        # After a lost exchange the card's selection is unknown (removed, reset,
        # another card put in). A refusing status word (wrong PIN, protected
        # file) leaves the selection as it was, and with it any verified PIN.
        try:
            yield
        except _SELECTION_UNKNOWN:
            self._forget_selection()
            raise

    # --- certificates ----------------------------------------------------------------

    def read_certificate(self, kind: CertificateKind) -> bytes:
        """The DER certificate in ``kind``'s EF: whole, or an exception, never a part."""
        with self.session(), self._forgetting_on_error():
            self._select_ef(kind.fid)
            return self._read_der()

    def _read_der(self) -> bytes:
        if self._use_extended:
            try:
                return self._read_chunks(_EXTENDED_CHUNK, extended=True)
            except _ExtendedLengthRefused:
                self._use_extended = False  # this reader or card: short APDUs from now on
        return self._read_chunks(_SHORT_CHUNK, extended=False)

    def _read_chunks(self, chunk: int, *, extended: bool) -> bytes:
        content = b""
        total: int | None = None
        while total is None or len(content) < total:
            wanted = chunk if total is None else min(chunk, total - len(content))
            try:
                response = self.iso.read_binary(len(content), wanted, extended=extended)
            except TransportError:
                if extended and not content:
                    raise _ExtendedLengthRefused() from None
                raise
            if response.status_word in (0x9000, SW_END_OF_FILE_REACHED):
                pass
            elif extended and not content and response.status_word in _EXTENDED_REFUSED:
                raise _ExtendedLengthRefused()
            elif response.status_word == SW_WRONG_OFFSET and total is not None:
                raise TruncatedReadError(total, len(content))
            else:
                raise error_for_status(response.status_word, "READ_BINARY")
            if not content and response.data[:1] and response.data[0] in _ABSENT_FIRST_BYTES:
                raise CertificateAbsentError()
            if not response.data:
                if total is None:
                    raise CertificateAbsentError()
                raise TruncatedReadError(total, len(content))
            content += response.data
            if total is None:
                total = der_length(content)
                if total is None and response.status_word == SW_END_OF_FILE_REACHED:
                    raise MalformedCertificateError()
            if (
                total is not None
                and len(content) < total
                and (response.status_word == SW_END_OF_FILE_REACHED)
            ):
                raise TruncatedReadError(total, len(content))
        assert total is not None
        # Bytes after the certificate are filler (FF) in the EF.
        return content[:total]

    # --- PINs ------------------------------------------------------------------------

    def pin_tries_left(self, kind: PinKind) -> int:
        """Remaining tries of a PIN (0: blocked), by an empty VERIFY: consumes no try."""
        with self.session(), self._forgetting_on_error():
            self._select_ef(kind.pin_fid)
            return self._tries_left(kind)

    def _tries_left(self, kind: PinKind) -> int:
        response = self.iso.verify(_CURRENT_EF_REFERENCE, None)
        tries = verification_tries_left(response.status_word)
        if tries is not None:
            return tries
        if response.ok:
            # Some cards answer 90 00 while the PIN is verified: a success resets the counter.
            return kind.max_tries
        error = error_for_status(response.status_word, "VERIFY")
        if isinstance(error, PinBlockedError):
            return 0
        raise error

    def verify_pin(self, kind: PinKind, pin: str, confirm_last_try: bool = False) -> None:
        """Verify a PIN once. Reads the tries left first; never sends the PIN twice.

        Raises PinFormatError (nothing sent), PinBlockedError, LastTryConfirmationRequired
        (one try left and no confirmation: nothing sent), WrongPinError(tries_left).
        """
        pin_bytes = kind.encode(pin)
        with self.session(), self._forgetting_on_error():
            self._select_ef(kind.pin_fid)
            tries = self._tries_left(kind)
            if tries == 0:
                raise PinBlockedError()
            if tries == 1 and not confirm_last_try:
                raise LastTryConfirmationRequired()
            # The one and only VERIFY with this PIN. Whatever happens to it
            # (wrong PIN, removal, transport error), it is not sent again.
            response = self.iso.verify(_CURRENT_EF_REFERENCE, pin_bytes)
            if response.ok:
                return
            tries_after = verification_tries_left(response.status_word)
            if tries_after == 0:
                raise PinBlockedError()
            if tries_after is not None:
                raise WrongPinError(tries_after)
            raise error_for_status(response.status_word, "VERIFY")

    # --- signatures ------------------------------------------------------------------

    def sign_digest_info(self, kind: PinKind, digest_info: bytes) -> bytes:
        """Have the card sign a SHA-256 DigestInfo with ``kind``'s key (PIN verified before)."""
        if len(digest_info) != 51 or not digest_info.startswith(SHA256_DIGEST_INFO_PREFIX):
            raise ValueError("the card signs a DER SHA-256 DigestInfo (51 bytes)")
        with self.session(), self._forgetting_on_error():
            self._select_ef(kind.key_fid)
            response = self.iso.compute_digital_signature(
                _CLA_PROPRIETARY, 0x00, _CURRENT_EF_REFERENCE, digest_info
            )
            check_status(response, "COMPUTE_DIGITAL_SIGNATURE")
            if not response.data:
                raise TransportError(
                    "The card returned an empty signature.", "カードが空の署名を返しました。"
                )
            return response.data

    def sign_challenge(
        self, kind: PinKind, pin: str, data: bytes, *, confirm_last_try: bool = False
    ) -> ChallengeSignature:
        """Sign ``data`` (RS256) with ``kind``'s key in one card session.

        Selects the AP, reads the certificate (after the PIN for the signature
        certificate, which is protected), checks the tries, verifies the PIN,
        signs SHA-256(data), and checks the signature against the certificate
        before returning it.
        """
        kind.encode(pin)  # PinFormatError before the first APDU
        with self.session(), self._forgetting_on_error():
            self._select_ap()
            certificate_kind = kind.certificate
            if certificate_kind.required_pin is None:
                certificate = self.read_certificate(certificate_kind)
                self.verify_pin(kind, pin, confirm_last_try)
            else:
                self.verify_pin(kind, pin, confirm_last_try)
                certificate = self.read_certificate(certificate_kind)
            signature = self.sign_digest_info(kind, sha256_digest_info(data))
        _check_signature(certificate, signature, data)
        return ChallengeSignature(signature=signature, certificate=certificate)


class _ExtendedLengthRefused(Exception):
    """Internal: the first extended READ BINARY was refused; fall back to short APDUs."""


def _check_signature(certificate_der: bytes, signature: bytes, data: bytes) -> None:
    try:
        public_key = x509.load_der_x509_certificate(certificate_der).public_key()
    except ValueError:
        raise MalformedCertificateError() from None
    if not isinstance(public_key, rsa.RSAPublicKey):
        raise SignatureMismatchError()
    try:
        public_key.verify(signature, data, padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        raise SignatureMismatchError() from None


__all__ = [
    "JPKI_AID",
    "CertificateKind",
    "ChallengeSignature",
    "JPKICard",
    "PinKind",
    "der_length",
    "minimum_read_round_trips",
    "sha256_digest_info",
]
