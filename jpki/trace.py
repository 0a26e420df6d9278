"""Tracing of APDU exchanges, with secrets left out by construction.

A trace event never holds command or response bytes: only the command's name,
its header, the status word, lengths and the time it took. For VERIFY even the
command length is withheld when it carries a PIN (it would reveal the
PIN's length); for COMPUTE
DIGITAL SIGNATURE only the input length is kept.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

COMMAND_NAMES: dict[int, str] = {
    0xA4: "SELECT_FILE",
    0xB0: "READ_BINARY",
    0x20: "VERIFY",
    0x24: "CHANGE_REFERENCE_DATA",
    0x2A: "COMPUTE_DIGITAL_SIGNATURE",
    0xC0: "GET_RESPONSE",
    0xCA: "GET_DATA",
    0x84: "GET_CHALLENGE",
}

# Commands whose data field is a PIN: VERIFY (20) and CHANGE REFERENCE DATA (24).
_SECRET_INS = frozenset({0x20, 0x24})


def command_name(ins: int) -> str:
    return COMMAND_NAMES.get(ins, f"INS_{ins:02X}")


@dataclass(frozen=True, slots=True)
class ApduTraceEvent:
    """One command/response round trip, as much of it as may be logged."""

    sequence: int
    command: str
    cla: int
    ins: int
    p1: int
    p2: int
    # None: withheld, because the data field is a PIN (VERIFY, CHANGE REFERENCE
    # DATA with data). An empty VERIFY (asking for the tries left) shows 0.
    command_length: int | None
    data_length: int | None
    response_length: int  # response data bytes, status word excluded
    status_word: int | None  # None: the exchange failed (card removed, reader gone)
    elapsed_seconds: float
    error: str | None = None  # exception class name when the exchange failed

    def as_log_fields(self) -> dict[str, object]:
        fields: dict[str, object] = {
            "seq": self.sequence,
            "command": self.command,
            "header": f"{self.cla:02X}{self.ins:02X}{self.p1:02X}{self.p2:02X}",
            "sw": None if self.status_word is None else f"{self.status_word:04X}",
            "cmd_len": self.command_length,
            "data_len": self.data_length,
            "resp_len": self.response_length,
            "ms": round(self.elapsed_seconds * 1000, 3),
        }
        if self.error is not None:
            fields["error"] = self.error
        return fields


ApduTracer = Callable[[ApduTraceEvent], None]


def redacted_event(
    *,
    sequence: int,
    command: bytes,
    data_length: int,
    response_length: int,
    status_word: int | None,
    elapsed_seconds: float,
    error: str | None = None,
) -> ApduTraceEvent:
    """Build the event for a raw command without copying any of its data bytes."""
    cla, ins, p1, p2 = command[0], command[1], command[2], command[3]
    secret = ins in _SECRET_INS and data_length > 0
    return ApduTraceEvent(
        sequence=sequence,
        command=command_name(ins),
        cla=cla,
        ins=ins,
        p1=p1,
        p2=p2,
        command_length=None if secret else len(command),
        data_length=None if secret else data_length,
        response_length=response_length,
        status_word=status_word,
        elapsed_seconds=elapsed_seconds,
        error=error,
    )


@dataclass
class ExchangeCounter:
    """Round trips and bytes on the wire, counted by the Card layer (for benchmarks).

    Bytes include VERIFY's true length: only an aggregate leaves this object.
    """

    round_trips: int = 0
    bytes_sent: int = 0
    bytes_received: int = 0

    def add(self, sent: int, received: int) -> None:
        self.round_trips += 1
        self.bytes_sent += sent
        self.bytes_received += received

    @property
    def total_bytes(self) -> int:
        return self.bytes_sent + self.bytes_received

    def reset(self) -> None:
        self.round_trips = self.bytes_sent = self.bytes_received = 0


def logging_tracer(logger: logging.Logger | None = None, level: int = logging.DEBUG) -> ApduTracer:
    """A tracer that writes one log record per exchange (stdlib logging)."""
    target = logger or logging.getLogger("jpki.apdu")

    def trace(event: ApduTraceEvent) -> None:
        if target.isEnabledFor(level):
            fields = " ".join(f"{key}={value}" for key, value in event.as_log_fields().items())
            target.log(level, "apdu %s", fields)

    return trace


def structlog_tracer(logger: object | None = None) -> ApduTracer:
    """A tracer that emits one structlog event ``apdu`` per exchange."""
    import structlog

    bound = logger if logger is not None else structlog.get_logger("jpki.apdu")

    def trace(event: ApduTraceEvent) -> None:
        bound.debug("apdu", **event.as_log_fields())  # type: ignore[attr-defined]

    return trace
