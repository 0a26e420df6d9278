"""A virtual My Number Card: the JPKI application as real cards behave.

This is a card, not a mock: it answers every command a client may send with
what a real card answers (including the status words of mistakes), keeps a
security state that is lost on reset, removal and AP change, counts PIN tries
down and blocks, and signs with the RSA keys of its :class:`CardState`.
Facts it implements are from the public behaviour of real cards (see
docs/emulator.md for the command table).
"""

from __future__ import annotations

import enum
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import rsa

from jpki.emulator.state import CardState, PinReference

# A contact ATR seen on real cards (OpenSC's JPKI driver lists it too): T=1,
# IFSC 254, no historical bytes.
JPKI_ATR = bytes.fromhex("3BE000FF8131FE4514")
# Through a contactless reader the card has no ATR of its own: the reader makes
# one up in the PC/SC part 3 form for ISO/IEC 14443 type B (3B 88 80 01, ATQB
# application data, protocol info, TCK), here with zeroed ATQB bytes as some
# readers report. Clients must recognise the card by selecting the JPKI AP.
CONTACTLESS_ATR = bytes.fromhex("3B888001000000000000000009")

JPKI_AID = bytes.fromhex("D392F000260100000001")
# The two other applications of the card. They exist on every card, so a
# SELECT finds them, but the emulator gives them no files: only the JPKI AP
# is in scope.
KENMEN_NYURYOKU_HOJO_AID = bytes.fromhex("D3921000310001010408")  # 券面事項入力補助AP
KENMEN_KAKUNIN_AID = bytes.fromhex("D3921000310001010402")  # 券面事項確認AP

TOKEN_INFO_LABEL = b"JPKIAPICCTOKEN2"
TOKEN_INFO_SIZE = 160
# Certificate EFs are allocated with room to spare; what follows the DER is filler.
CERTIFICATE_EF_SIZE = 2048
FILLER = 0xFF

CLA_ISO = 0x00
CLA_PROPRIETARY = 0x80
INS_SELECT = 0xA4
INS_READ_BINARY = 0xB0
INS_VERIFY = 0x20
INS_CHANGE_REFERENCE_DATA = 0x24
INS_COMPUTE_DIGITAL_SIGNATURE = 0x2A

SW_OK = b"\x90\x00"
SW_END_OF_FILE = b"\x62\x82"  # fewer bytes than Le: end of file reached
SW_WRONG_LENGTH = b"\x67\x00"
SW_SECURE_MESSAGING_NOT_SUPPORTED = b"\x68\x82"
SW_INCOMPATIBLE_FILE_STRUCTURE = b"\x69\x81"
SW_SECURITY_STATUS_NOT_SATISFIED = b"\x69\x82"
SW_AUTHENTICATION_METHOD_BLOCKED = b"\x69\x84"
SW_NO_CURRENT_EF = b"\x69\x86"
SW_WRONG_DATA = b"\x6a\x80"
SW_FILE_NOT_FOUND = b"\x6a\x82"
SW_WRONG_P1_P2 = b"\x6a\x86"
SW_WRONG_OFFSET = b"\x6b\x00"
SW_CORRECT_LENGTH_256 = b"\x6c\x00"
SW_INS_NOT_SUPPORTED = b"\x6d\x00"
SW_CLA_NOT_SUPPORTED = b"\x6e\x00"

_SHORT_MAX = 256
_EXTENDED_MAX = 65536
_RSA_BYTES = 256
_PKCS1_OVERHEAD = 11


class PinSlot(enum.Enum):
    """The two PINs of the JPKI AP, and whose key and file each one unlocks."""

    AUTH = "auth"
    SIGN = "sign"


class _FileKind(enum.Enum):
    TRANSPARENT = "transparent"
    PIN = "pin"
    KEY = "key"


@dataclass(frozen=True)
class _ElementaryFile:
    fid: int
    kind: _FileKind
    slot: PinSlot | None = None  # PIN of a PIN EF, or PIN guarding a key / protected EF
    protected: bool = False  # READ BINARY needs the slot's PIN verified


# The JPKI AP's files by FID (the layout of every card).
_JPKI_FILES: dict[int, _ElementaryFile] = {
    0x000A: _ElementaryFile(0x000A, _FileKind.TRANSPARENT),  # auth certificate
    0x000B: _ElementaryFile(0x000B, _FileKind.TRANSPARENT),  # auth CA certificate
    0x0001: _ElementaryFile(0x0001, _FileKind.TRANSPARENT, PinSlot.SIGN, protected=True),
    0x0002: _ElementaryFile(0x0002, _FileKind.TRANSPARENT),  # sign CA certificate
    0x0006: _ElementaryFile(0x0006, _FileKind.TRANSPARENT),  # token info
    0x0018: _ElementaryFile(0x0018, _FileKind.PIN, PinSlot.AUTH),
    0x001B: _ElementaryFile(0x001B, _FileKind.PIN, PinSlot.SIGN),
    0x0017: _ElementaryFile(0x0017, _FileKind.KEY, PinSlot.AUTH),
    0x001A: _ElementaryFile(0x001A, _FileKind.KEY, PinSlot.SIGN),
}


class _Application(enum.Enum):
    NONE = "none"  # after power-on: the MF is current, and it holds nothing the card shows
    JPKI = "jpki"
    KENMEN_NYURYOKU_HOJO = "kenmen-nyuryoku-hojo"
    KENMEN_KAKUNIN = "kenmen-kakunin"


_APPLICATIONS_BY_AID = {
    JPKI_AID: _Application.JPKI,
    KENMEN_NYURYOKU_HOJO_AID: _Application.KENMEN_NYURYOKU_HOJO,
    KENMEN_KAKUNIN_AID: _Application.KENMEN_KAKUNIN,
}


class _MalformedApdu(Exception):
    """The bytes are not a well-formed ISO 7816-4 command (answered 67 00)."""


@dataclass(frozen=True)
class CommandApdu:
    """A decoded command APDU. ``ne`` is None when the command has no Le field."""

    cla: int
    ins: int
    p1: int
    p2: int
    data: bytes
    ne: int | None
    extended: bool

    @classmethod
    def parse(cls, raw: bytes) -> CommandApdu:
        """Decode the four ISO 7816-4 cases, short and extended."""
        if len(raw) < 4:
            raise _MalformedApdu("shorter than a header")
        cla, ins, p1, p2 = raw[0], raw[1], raw[2], raw[3]
        body = raw[4:]
        if not body:
            return cls(cla, ins, p1, p2, b"", None, False)
        if len(body) == 1:  # case 2 short
            return cls(cla, ins, p1, p2, b"", body[0] or _SHORT_MAX, False)
        if body[0] != 0:  # short Lc
            lc = body[0]
            if len(body) == 1 + lc:
                return cls(cla, ins, p1, p2, bytes(body[1:]), None, False)
            if len(body) == 2 + lc:
                return cls(cla, ins, p1, p2, bytes(body[1 : 1 + lc]), body[-1] or _SHORT_MAX, False)
            raise _MalformedApdu("Lc does not match the data")
        # Extended length: a zero byte, then two-byte Lc or Le.
        if len(body) == 3:  # case 2 extended
            le = int.from_bytes(body[1:3], "big")
            return cls(cla, ins, p1, p2, b"", le or _EXTENDED_MAX, True)
        lc = int.from_bytes(body[1:3], "big")
        if lc == 0:
            raise _MalformedApdu("extended Lc of zero")
        if len(body) == 3 + lc:
            return cls(cla, ins, p1, p2, bytes(body[3:]), None, True)
        if len(body) == 5 + lc:
            le = int.from_bytes(body[-2:], "big")
            return cls(cla, ins, p1, p2, bytes(body[3 : 3 + lc]), le or _EXTENDED_MAX, True)
        raise _MalformedApdu("extended Lc does not match the data")


def _tries_left_status(tries_left: int) -> bytes:
    return bytes((0x63, 0xC0 | min(tries_left, 15)))


def _pkcs1_type1_pad(digest_info: bytes, length: int) -> bytes:
    """EMSA-PKCS1-v1_5 block: 00 01 FF..FF 00 || DigestInfo (the card pads, the client hashes)."""
    padding = b"\xff" * (length - len(digest_info) - 3)
    return b"\x00\x01" + padding + b"\x00" + digest_info


class VirtualMyNumberCard:
    """The JPKI AP of a My Number Card, answering APDUs (a ``VirtualCard`` for vpcd).

    With ``state_path``, every change to the card's memory (a try counter, a
    new PIN) is written to that file before the answer leaves the card, as a
    card writes EEPROM: pulling the card out right after a wrong PIN cannot
    give the try back.
    """

    def __init__(
        self, state: CardState, state_path: Path | None = None, *, atr: bytes = JPKI_ATR
    ) -> None:
        self.state = state
        self._atr = atr
        self.state_path = Path(state_path) if state_path is not None else None
        self._lock = threading.RLock()
        self._application = _Application.NONE
        self._current_file: _ElementaryFile | None = None
        self._verified: set[PinSlot] = set()
        self._handlers: dict[tuple[int, int], Callable[[CommandApdu], bytes]] = {
            (CLA_ISO, INS_SELECT): self._select,
            (CLA_ISO, INS_READ_BINARY): self._read_binary,
            (CLA_ISO, INS_VERIFY): self._verify,
            (CLA_ISO, INS_CHANGE_REFERENCE_DATA): self._change_reference_data,
            (CLA_PROPRIETARY, INS_COMPUTE_DIGITAL_SIGNATURE): self._compute_digital_signature,
        }

    @property
    def atr(self) -> bytes:
        return self._atr

    # --- power and reset: all volatile state is lost --------------------------------

    def power_on(self) -> None:
        self._forget_session()

    def power_off(self) -> None:
        self._forget_session()

    def reset(self) -> None:
        self._forget_session()

    def _forget_session(self) -> None:
        with self._lock:
            self._application = _Application.NONE
            self._current_file = None
            self._verified.clear()

    # --- command dispatch -----------------------------------------------------------

    def process_apdu(self, command: bytes) -> bytes:
        """Answer one command APDU with response data + SW1 SW2."""
        with self._lock:
            try:
                apdu = CommandApdu.parse(bytes(command))
            except _MalformedApdu:
                return SW_WRONG_LENGTH
            return self._dispatch(apdu)

    def _dispatch(self, apdu: CommandApdu) -> bytes:
        if apdu.cla not in (CLA_ISO, CLA_PROPRIETARY):
            if apdu.cla & 0xF0 == 0 and apdu.cla & 0x0C:
                return SW_SECURE_MESSAGING_NOT_SUPPORTED
            return SW_CLA_NOT_SUPPORTED
        handler = self._handlers.get((apdu.cla, apdu.ins))
        if handler is not None:
            return handler(apdu)
        if any(ins == apdu.ins for _cla, ins in self._handlers):
            return SW_CLA_NOT_SUPPORTED  # a known command in the wrong class
        return SW_INS_NOT_SUPPORTED

    # --- SELECT ---------------------------------------------------------------------

    def _select(self, apdu: CommandApdu) -> bytes:
        # The card returns no FCI: only P2=0C is accepted. Selection by path
        # (P1=08/09) and of the MF (P1=00) are not supported.
        if apdu.p2 != 0x0C or apdu.p1 not in (0x02, 0x04):
            return SW_WRONG_P1_P2
        if not apdu.data:
            return SW_WRONG_LENGTH
        if apdu.p1 == 0x04:
            application = _APPLICATIONS_BY_AID.get(apdu.data)
            if application is None:
                return SW_FILE_NOT_FOUND
            # A new AP (or the same one again) starts a new security context.
            self._application = application
            self._current_file = None
            self._verified.clear()
            return SW_OK
        if len(apdu.data) != 2:
            return SW_WRONG_LENGTH
        if self._application is not _Application.JPKI:
            return SW_FILE_NOT_FOUND
        elementary_file = _JPKI_FILES.get(int.from_bytes(apdu.data, "big"))
        if elementary_file is None:
            return SW_FILE_NOT_FOUND
        self._current_file = elementary_file
        return SW_OK

    # --- READ BINARY ----------------------------------------------------------------

    def _file_content(self, elementary_file: _ElementaryFile) -> bytes:
        """The EF's bytes as stored: the DER certificate, then filler up to the EF size."""
        state = self.state
        if elementary_file.fid == 0x0006:
            label = TOKEN_INFO_LABEL.ljust(32, b" ")
            return label.ljust(TOKEN_INFO_SIZE, b"\x00")
        der = {
            0x000A: state.auth_certificate,
            0x000B: state.auth_ca_certificate,
            0x0001: state.sign_certificate,
            0x0002: state.sign_ca_certificate,
        }[elementary_file.fid]
        size = max(CERTIFICATE_EF_SIZE, -(-len(der) // 256) * 256)
        return der + bytes([FILLER]) * (size - len(der))

    def _read_binary(self, apdu: CommandApdu) -> bytes:
        if apdu.data or apdu.ne is None:
            return SW_WRONG_LENGTH
        if apdu.p1 & 0x80:
            # Short-EF addressing is reported by a single source only: not offered.
            return SW_WRONG_P1_P2
        elementary_file = self._current_file
        if elementary_file is None:
            return SW_NO_CURRENT_EF
        if elementary_file.kind is not _FileKind.TRANSPARENT:
            return SW_INCOMPATIBLE_FILE_STRUCTURE
        if elementary_file.protected and elementary_file.slot not in self._verified:
            return SW_SECURITY_STATUS_NOT_SATISFIED
        content = self._file_content(elementary_file)
        offset = (apdu.p1 << 8) | apdu.p2
        if offset >= len(content):
            return SW_WRONG_OFFSET
        chunk = content[offset : offset + apdu.ne]
        # Le=00 (short) or 0000 (extended) asks for "as much as there is";
        # an explicit Le that runs past the end gets the rest and a warning.
        asked_for_maximum = apdu.ne in (_SHORT_MAX, _EXTENDED_MAX)
        if len(chunk) < apdu.ne and not asked_for_maximum:
            return chunk + SW_END_OF_FILE
        return chunk + SW_OK

    # --- VERIFY and CHANGE REFERENCE DATA -------------------------------------------

    def _pin_reference(self, slot: PinSlot) -> PinReference:
        return self.state.auth_pin if slot is PinSlot.AUTH else self.state.sign_password

    def _current_pin_slot(self) -> tuple[PinSlot | None, bytes | None]:
        """The PIN whose EF is selected, or the status word saying why there is none."""
        elementary_file = self._current_file
        if elementary_file is None:
            return None, SW_NO_CURRENT_EF
        if elementary_file.kind is not _FileKind.PIN:
            return None, SW_INCOMPATIBLE_FILE_STRUCTURE
        return elementary_file.slot, None

    def _verify(self, apdu: CommandApdu) -> bytes:
        if apdu.p1 != 0x00 or apdu.p2 != 0x80:
            return SW_WRONG_P1_P2
        if apdu.ne is not None:
            return SW_WRONG_LENGTH
        slot, refusal = self._current_pin_slot()
        if slot is None:
            return refusal or SW_NO_CURRENT_EF
        reference = self._pin_reference(slot)
        if not apdu.data:
            # Asking for the counter: 63Cx even when the PIN is already verified.
            return _tries_left_status(reference.tries_left)
        if reference.blocked:
            return SW_AUTHENTICATION_METHOD_BLOCKED
        if len(apdu.data) > 16:
            return SW_WRONG_LENGTH
        if reference.matches(apdu.data):
            if reference.tries_left != reference.max_tries:
                reference.tries_left = reference.max_tries
                self._persist()
            self._verified.add(slot)
            return SW_OK
        self._verified.discard(slot)
        reference.tries_left -= 1
        self._persist()
        return _tries_left_status(reference.tries_left)

    def _change_reference_data(self, apdu: CommandApdu) -> bytes:
        # P1=01: the command carries only the new PIN; the old one was verified just before.
        if apdu.p1 != 0x01 or apdu.p2 != 0x80:
            return SW_WRONG_P1_P2
        if apdu.ne is not None or not apdu.data:
            return SW_WRONG_LENGTH
        slot, refusal = self._current_pin_slot()
        if slot is None:
            return refusal or SW_NO_CURRENT_EF
        reference = self._pin_reference(slot)
        if reference.blocked:
            return SW_AUTHENTICATION_METHOD_BLOCKED
        if slot not in self._verified:
            return SW_SECURITY_STATUS_NOT_SATISFIED
        if not _new_pin_acceptable(slot, apdu.data):
            return SW_WRONG_DATA
        replacement = PinReference.create(apdu.data, max_tries=reference.max_tries)
        if slot is PinSlot.AUTH:
            self.state.auth_pin = replacement
        else:
            self.state.sign_password = replacement
        self._persist()
        return SW_OK

    # --- COMPUTE DIGITAL SIGNATURE --------------------------------------------------

    def _compute_digital_signature(self, apdu: CommandApdu) -> bytes:
        if apdu.p1 != 0x00 or apdu.p2 != 0x80:
            return SW_WRONG_P1_P2
        if not apdu.data or len(apdu.data) > _RSA_BYTES - _PKCS1_OVERHEAD or apdu.ne is None:
            return SW_WRONG_LENGTH
        if apdu.ne < _RSA_BYTES:
            return SW_CORRECT_LENGTH_256
        elementary_file = self._current_file
        if elementary_file is None:
            return SW_NO_CURRENT_EF
        if elementary_file.kind is not _FileKind.KEY:
            return SW_INCOMPATIBLE_FILE_STRUCTURE
        if elementary_file.slot not in self._verified:
            return SW_SECURITY_STATUS_NOT_SATISFIED
        key = (
            self.state.auth_private_key
            if elementary_file.slot is PinSlot.AUTH
            else self.state.sign_private_key
        )
        return _rsa_private_operation(key, _pkcs1_type1_pad(apdu.data, _RSA_BYTES)) + SW_OK

    def _persist(self) -> None:
        if self.state_path is not None:
            self.state.save(self.state_path)


def _new_pin_acceptable(slot: PinSlot, candidate: bytes) -> bool:
    if slot is PinSlot.AUTH:
        return len(candidate) == 4 and candidate.isdigit()
    return 6 <= len(candidate) <= 16 and all(
        0x30 <= byte <= 0x39 or 0x41 <= byte <= 0x5A for byte in candidate
    )


def _rsa_private_operation(key: rsa.RSAPrivateKey, block: bytes) -> bytes:
    """s = m^d mod n (with CRT), as the card's RSA engine computes it on the padded block."""
    numbers = key.private_numbers()
    public = numbers.public_numbers
    message = int.from_bytes(block, "big")
    if message >= public.n:
        raise ValueError("padded block is not smaller than the modulus")
    m1 = pow(message, numbers.dmp1, numbers.p)
    m2 = pow(message, numbers.dmq1, numbers.q)
    h = (numbers.iqmp * (m1 - m2)) % numbers.p
    signature = m2 + h * numbers.q
    return signature.to_bytes((public.n.bit_length() + 7) // 8, "big")
