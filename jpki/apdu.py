"""ISO/IEC 7816-4: APDU values, their encoding, and the ``Card`` that exchanges them.

This layer knows ISO 7816 (SELECT, READ BINARY, VERIFY, PERFORM SECURITY
OPERATION, status words, GET RESPONSE) and nothing about JPKI: which file is
which certificate lives in :mod:`jpki.card`. Bytes reach the card through a
:class:`jpki.transport.Transport`.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from jpki.errors import (
    JPKIError,
    PinBlockedError,
    SecurityStatusNotSatisfiedError,
    TransportError,
    UnexpectedStatusWordError,
)
from jpki.trace import ApduTracer, ExchangeCounter, command_name, redacted_event

if TYPE_CHECKING:
    from jpki.transport import Transport

log = logging.getLogger(__name__)

SHORT_MAX_DATA = 255
SHORT_MAX_LE = 256  # encoded as 00
EXTENDED_MAX_DATA = 65535
EXTENDED_MAX_LE = 65536  # encoded as 00 00

INS_SELECT = 0xA4
INS_READ_BINARY = 0xB0
INS_VERIFY = 0x20
INS_PERFORM_SECURITY_OPERATION = 0x2A
INS_GET_RESPONSE = 0xC0
INS_GET_DATA = 0xCA

SW_OK = 0x9000
SW_END_OF_FILE_REACHED = 0x6282  # warning: fewer bytes than Le, data is valid
SW_WRONG_LENGTH = 0x6700
SW_SECURITY_STATUS_NOT_SATISFIED = 0x6982
SW_AUTHENTICATION_METHOD_BLOCKED = 0x6983
SW_REFERENCE_DATA_NOT_USABLE = 0x6984
SW_FILE_NOT_FOUND = 0x6A82
SW_WRONG_P1P2 = 0x6A86
SW_WRONG_OFFSET = 0x6B00
SW_INS_NOT_SUPPORTED = 0x6D00
SW_CLA_NOT_SUPPORTED = 0x6E00

# Only commands without side effects may be sent again with a corrected Le
# (status 6Cxx). VERIFY and COMPUTE DIGITAL SIGNATURE are never sent twice.
_RESENDABLE_INS = frozenset({INS_SELECT, INS_READ_BINARY, INS_GET_RESPONSE, INS_GET_DATA})
_MAX_GET_RESPONSE_ROUNDS = 256


@dataclass(frozen=True, slots=True)
class CommandAPDU:
    """A command APDU. ``le`` is the number of bytes expected (None: no Le field).

    ``extended`` selects the extended-length encoding (3-byte Lc / 2- or 3-byte
    Le); a command with neither data nor Le has no length fields and is never
    extended.
    """

    cla: int
    ins: int
    p1: int
    p2: int
    data: bytes = b""
    le: int | None = None
    extended: bool = False

    def __post_init__(self) -> None:
        for name in ("cla", "ins", "p1", "p2"):
            value = getattr(self, name)
            if not 0 <= value <= 0xFF:
                raise ValueError(f"{name} must be a byte, got {value}")
        max_data = EXTENDED_MAX_DATA if self.extended else SHORT_MAX_DATA
        max_le = EXTENDED_MAX_LE if self.extended else SHORT_MAX_LE
        if len(self.data) > max_data:
            raise ValueError(f"data of {len(self.data)} bytes does not fit (max {max_data})")
        if self.le is not None and not 1 <= self.le <= max_le:
            raise ValueError(f"Le must be 1..{max_le}, got {self.le}")
        if self.extended and not self.data and self.le is None:
            raise ValueError("a command without data and Le has no extended form")

    @property
    def name(self) -> str:
        return command_name(self.ins)

    def to_bytes(self) -> bytes:
        header = bytes((self.cla, self.ins, self.p1, self.p2))
        if self.extended:
            body = b"\x00"  # the extended-length marker
            if self.data:
                body += len(self.data).to_bytes(2, "big") + self.data
            if self.le is not None:
                body += (self.le % EXTENDED_MAX_LE).to_bytes(2, "big")
            return header + body
        body = b""
        if self.data:
            body += bytes((len(self.data),)) + self.data
        if self.le is not None:
            body += bytes((self.le % SHORT_MAX_LE,))
        return header + body

    @classmethod
    def from_bytes(cls, raw: bytes) -> CommandAPDU:
        """Decode any of the seven ISO 7816-4 cases; raise ValueError on malformed bytes."""
        if len(raw) < 4:
            raise ValueError("a command APDU has at least 4 bytes")
        cla, ins, p1, p2 = raw[:4]
        body = raw[4:]
        if not body:  # case 1
            return cls(cla, ins, p1, p2)
        if len(body) == 1:  # case 2S
            return cls(cla, ins, p1, p2, le=body[0] or SHORT_MAX_LE)
        if body[0] != 0:  # short cases 3S / 4S
            lc = body[0]
            if len(body) == 1 + lc:
                return cls(cla, ins, p1, p2, data=bytes(body[1:]))
            if len(body) == 2 + lc:
                return cls(cla, ins, p1, p2, data=bytes(body[1 : 1 + lc]), le=body[-1] or 256)
            raise ValueError("Lc does not match the length of a short APDU")
        # Extended: a 00 byte, then either Le (2 bytes) or Lc (2 bytes) + data [+ Le].
        if len(body) == 3:  # case 2E
            le = int.from_bytes(body[1:3], "big") or EXTENDED_MAX_LE
            return cls(cla, ins, p1, p2, le=le, extended=True)
        if len(body) < 3:
            raise ValueError("truncated extended length field")
        lc = int.from_bytes(body[1:3], "big")
        if lc == 0:
            raise ValueError("extended Lc of zero")
        data = bytes(body[3 : 3 + lc])
        rest = body[3 + lc :]
        if len(data) != lc:
            raise ValueError("extended Lc does not match the data")
        if not rest:  # case 3E
            return cls(cla, ins, p1, p2, data=data, extended=True)
        if len(rest) == 2:  # case 4E
            le = int.from_bytes(rest, "big") or EXTENDED_MAX_LE
            return cls(cla, ins, p1, p2, data=data, le=le, extended=True)
        raise ValueError("trailing bytes after an extended APDU")


@dataclass(frozen=True, slots=True)
class ResponseAPDU:
    """A response APDU: data and the status word SW1 SW2."""

    data: bytes
    status_word: int

    @property
    def sw1(self) -> int:
        return self.status_word >> 8

    @property
    def sw2(self) -> int:
        return self.status_word & 0xFF

    @property
    def ok(self) -> bool:
        return self.status_word == SW_OK

    def to_bytes(self) -> bytes:
        return self.data + self.status_word.to_bytes(2, "big")

    @classmethod
    def from_bytes(cls, raw: bytes) -> ResponseAPDU:
        if len(raw) < 2:
            raise ValueError("a response APDU has at least the 2-byte status word")
        return cls(bytes(raw[:-2]), int.from_bytes(raw[-2:], "big"))


def verification_tries_left(status_word: int) -> int | None:
    """The retry counter from a ``63 Cx`` status word, or None for any other word."""
    if status_word & 0xFFF0 == 0x63C0:
        return status_word & 0x0F
    return None


def error_for_status(status_word: int, command: str) -> JPKIError:
    """The typed exception for a status word that is not a success."""
    if status_word == SW_SECURITY_STATUS_NOT_SATISFIED:
        return SecurityStatusNotSatisfiedError()
    if status_word in (SW_AUTHENTICATION_METHOD_BLOCKED, SW_REFERENCE_DATA_NOT_USABLE):
        return PinBlockedError()
    return UnexpectedStatusWordError(command, status_word)


def check_status(response: ResponseAPDU, command: str, *, accept: tuple[int, ...] = ()) -> None:
    """Raise the typed exception unless the status word is 90 00 or in ``accept``."""
    if response.status_word != SW_OK and response.status_word not in accept:
        raise error_for_status(response.status_word, command)


@dataclass
class Card:
    """An ISO 7816-4 card behind a transport: one APDU helper for the whole module.

    Every physical exchange (including GET RESPONSE and a re-send after 6Cxx)
    goes to ``tracer`` as a redacted event and into ``counter``.
    """

    transport: Transport
    tracer: ApduTracer | None = None
    counter: ExchangeCounter = field(default_factory=ExchangeCounter)
    _sequence: int = 0

    def _exchange(self, raw_command: bytes, data_length: int) -> ResponseAPDU:
        self._sequence += 1
        started = time.perf_counter()
        try:
            raw_response = self.transport.transmit(raw_command)
        except JPKIError as error:
            self._trace(raw_command, data_length, 0, None, started, type(error).__name__)
            raise
        try:
            response = ResponseAPDU.from_bytes(raw_response)
        except ValueError:
            self._trace(raw_command, data_length, 0, None, started, "TransportError")
            raise TransportError() from None
        self.counter.add(len(raw_command), len(raw_response))
        self._trace(
            raw_command, data_length, len(response.data), response.status_word, started, None
        )
        return response

    def _trace(
        self,
        raw_command: bytes,
        data_length: int,
        response_length: int,
        status_word: int | None,
        started: float,
        error: str | None,
    ) -> None:
        if self.tracer is None:
            return
        event = redacted_event(
            sequence=self._sequence,
            command=raw_command,
            data_length=data_length,
            response_length=response_length,
            status_word=status_word,
            elapsed_seconds=time.perf_counter() - started,
            error=error,
        )
        try:
            self.tracer(event)
        except Exception:
            # A broken tracer must not lose a card answer (e.g. a VERIFY result).
            log.exception("APDU tracer failed")

    def transmit(self, command: CommandAPDU) -> ResponseAPDU:
        """Send one command; fetch chained data on 61xx and fix Le on 6Cxx when safe."""
        response = self._exchange(command.to_bytes(), len(command.data))
        if response.sw1 == 0x6C and command.ins in _RESENDABLE_INS and command.le is not None:
            corrected = CommandAPDU(
                command.cla,
                command.ins,
                command.p1,
                command.p2,
                command.data,
                le=response.sw2 or SHORT_MAX_LE,
                extended=command.extended and bool(command.data),
            )
            response = self._exchange(corrected.to_bytes(), len(corrected.data))
        data = response.data
        rounds = 0
        while response.sw1 == 0x61 and rounds < _MAX_GET_RESPONSE_ROUNDS:
            rounds += 1
            get_response = CommandAPDU(0x00, INS_GET_RESPONSE, 0, 0, le=response.sw2 or 256)
            response = self._exchange(get_response.to_bytes(), 0)
            data += response.data
        return ResponseAPDU(data, response.status_word)

    # --- the ISO commands JPKI needs -------------------------------------------------

    def select_by_name(self, aid: bytes) -> ResponseAPDU:
        """SELECT a DF by its AID (P1=04), asking for no FCI (P2=0C)."""
        return self.transmit(CommandAPDU(0x00, INS_SELECT, 0x04, 0x0C, aid))

    def select_ef(self, fid: int) -> ResponseAPDU:
        """SELECT an EF under the current DF by its file identifier (P1=02, P2=0C)."""
        return self.transmit(CommandAPDU(0x00, INS_SELECT, 0x02, 0x0C, fid.to_bytes(2, "big")))

    def read_binary(self, offset: int, length: int, *, extended: bool = False) -> ResponseAPDU:
        """READ BINARY ``length`` bytes (256 / 65536 = "as many as there are") at ``offset``."""
        if not 0 <= offset <= 0x7FFF:
            # P1 bit 8 set would mean "short EF identifier", not an offset.
            raise ValueError(f"offset {offset} is beyond the 15 bits P1-P2 can carry")
        return self.transmit(
            CommandAPDU(
                0x00, INS_READ_BINARY, offset >> 8, offset & 0xFF, le=length, extended=extended
            )
        )

    def verify(self, reference: int, secret: bytes | None) -> ResponseAPDU:
        """VERIFY against reference data ``reference`` (P2); no data asks for the tries left.

        The answer is returned as it is: the caller interprets 63Cx, and never
        calls this again on its own.
        """
        return self.transmit(CommandAPDU(0x00, INS_VERIFY, 0x00, reference, secret or b""))

    def compute_digital_signature(
        self, cla: int, p1: int, p2: int, data: bytes, *, le: int = SHORT_MAX_LE
    ) -> ResponseAPDU:
        """COMPUTE DIGITAL SIGNATURE (INS 2A) with the key selected before."""
        return self.transmit(
            CommandAPDU(cla, INS_PERFORM_SECURITY_OPERATION, p1, p2, data, le=le, extended=le > 256)
        )
