"""``jpki-emulator``: put a virtual My Number Card into the vpcd reader.

    jpki-emulator --card card.json [--host 127.0.0.1] [--port 35963] [--removed] [--trace]
                  [--atr contact|contactless|HEX]

The card file is the card's memory (see ``commonid card new``); try counters
are written back to it as they change. While the process runs, the card can
be pulled out and put back, as a person would do with a real card:

- signals: SIGUSR1 removes the card, SIGUSR2 inserts it;
- lines on stdin: ``remove``, ``insert``, ``status``, ``quit``.

Each change is printed on stdout (``inserted``, ``removed``) so scripts and
tests can wait for it. SIGTERM and SIGINT remove the card and exit cleanly.
Nothing the card receives is printed except, with ``--trace``, command
headers, lengths and status words: never PINs or data.
"""

from __future__ import annotations

import argparse
import collections
import signal
import sys
import threading
import time
from pathlib import Path
from types import FrameType

from jpki.emulator.card import CONTACTLESS_ATR, JPKI_ATR, CommandApdu, VirtualMyNumberCard
from jpki.emulator.state import CardState
from jpki.emulator.vpcd import DEFAULT_HOST, DEFAULT_PORT, VirtualCard, VpcdBridge

_POLL_SECONDS = 0.05


def _say(message: str) -> None:
    print(message, flush=True)


class TracingCard:
    """Wraps a card and prints one line per APDU: header, lengths, status word. No data."""

    def __init__(self, card: VirtualCard) -> None:
        self._card = card

    @property
    def atr(self) -> bytes:
        return self._card.atr

    def power_on(self) -> None:
        _say("trace: power on")
        self._card.power_on()

    def power_off(self) -> None:
        _say("trace: power off")
        self._card.power_off()

    def reset(self) -> None:
        _say("trace: reset")
        self._card.reset()

    def process_apdu(self, command: bytes) -> bytes:
        started = time.perf_counter()
        response = self._card.process_apdu(command)
        elapsed_ms = (time.perf_counter() - started) * 1000
        try:
            apdu = CommandApdu.parse(command)
            header = f"{apdu.cla:02X} {apdu.ins:02X} {apdu.p1:02X} {apdu.p2:02X}"
            lengths = f"Lc={len(apdu.data)} Le={apdu.ne}"
        except Exception:
            header, lengths = "malformed", f"{len(command)} bytes"
        _say(
            f"trace: {header} {lengths} -> {response[-2:].hex().upper()} "
            f"({len(response) - 2} bytes, {elapsed_ms:.1f} ms)"
        )
        return response


class EmulatorControl:
    """Turns commands (from signals or stdin) into insertions and removals of the card."""

    def __init__(self, bridge: VpcdBridge, card: VirtualMyNumberCard) -> None:
        self.bridge = bridge
        self.card = card
        # deque.append is atomic: signal handlers and the stdin thread only append.
        self.pending: collections.deque[str] = collections.deque()
        self._was_inserted = False

    def insert(self) -> None:
        if self.bridge.inserted:
            _say("inserted (already)")
            return
        try:
            self.bridge.insert(timeout=5)
        except OSError as error:
            _say(f"error: cannot reach vpcd at {self.bridge.host}:{self.bridge.port}: {error}")
            return
        self._was_inserted = True
        _say(f"inserted (vpcd {self.bridge.host}:{self.bridge.port})")

    def remove(self) -> None:
        if not self.bridge.inserted and not self._was_inserted:
            _say("removed (already)")
            return
        self.bridge.remove()
        self._was_inserted = False
        _say("removed")

    def status(self) -> None:
        state = self.card.state
        where = "inserted" if self.bridge.inserted else "removed"
        _say(
            f"status: {where}; auth PIN tries left {state.auth_pin.tries_left}/"
            f"{state.auth_pin.max_tries}; sign password tries left "
            f"{state.sign_password.tries_left}/{state.sign_password.max_tries}"
        )

    def run(self) -> None:
        """Handle commands until ``quit``; then take the card out."""
        while True:
            if self._was_inserted and not self.bridge.inserted:
                # vpcd closed the link (pcscd stopped or restarted): the card is out.
                self._was_inserted = False
                _say("removed (vpcd closed the connection)")
            while self.pending:
                command = self.pending.popleft()
                if command == "quit":
                    if self.bridge.inserted:
                        self.remove()
                    return
                action = {"insert": self.insert, "remove": self.remove, "status": self.status}
                handler = action.get(command)
                if handler is None:
                    _say(f"error: unknown command {command!r} (insert, remove, status, quit)")
                else:
                    handler()
            time.sleep(_POLL_SECONDS)


def _read_commands_from_stdin(pending: collections.deque[str]) -> None:
    for line in sys.stdin:
        command = line.strip().lower()
        if command:
            pending.append(command)
    # End of input is not a command: a process started without a terminal keeps running.


def _install_signal_handlers(pending: collections.deque[str]) -> None:
    def on_signal(signum: int, _frame: FrameType | None) -> None:
        pending.append(
            {signal.SIGUSR1: "remove", signal.SIGUSR2: "insert"}.get(signal.Signals(signum), "quit")
        )

    for signum in (signal.SIGUSR1, signal.SIGUSR2, signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, on_signal)


def _atr(text: str) -> bytes:
    named = {"contact": JPKI_ATR, "contactless": CONTACTLESS_ATR}
    if text in named:
        return named[text]
    try:
        atr = bytes.fromhex(text)
    except ValueError:
        raise argparse.ArgumentTypeError("contact, contactless or hex bytes") from None
    if not 2 <= len(atr) <= 33 or atr[0] not in (0x3B, 0x3F):
        raise argparse.ArgumentTypeError("an ATR is 2 to 33 bytes starting with 3B or 3F")
    return atr


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="jpki-emulator",
        description="Put a virtual My Number Card into the vpcd PC/SC reader.",
    )
    parser.add_argument("--card", type=Path, required=True, help="card file (JSON)")
    parser.add_argument("--host", default=DEFAULT_HOST, help="vpcd host (default %(default)s)")
    parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help="vpcd port (default %(default)s)"
    )
    parser.add_argument(
        "--removed", action="store_true", help="start with the card out of the reader"
    )
    parser.add_argument(
        "--atr",
        type=_atr,
        default=JPKI_ATR,
        help="the ATR the reader reports: contact (the card's own, default), contactless "
        "(one a contactless reader makes up), or hex bytes",
    )
    parser.add_argument(
        "--trace", action="store_true", help="print command headers and status words (no data)"
    )
    args = parser.parse_args(argv)

    try:
        state = CardState.load(args.card)
    except (OSError, ValueError, KeyError) as error:
        print(f"jpki-emulator: cannot load card file {args.card}: {error}", file=sys.stderr)
        return 2
    card = VirtualMyNumberCard(state, state_path=args.card, atr=args.atr)
    bridge = VpcdBridge(TracingCard(card) if args.trace else card, args.host, args.port)
    control = EmulatorControl(bridge, card)
    _install_signal_handlers(control.pending)
    threading.Thread(
        target=_read_commands_from_stdin, args=(control.pending,), name="stdin", daemon=True
    ).start()
    _say(f"card: {args.card}")
    if not args.removed:
        control.insert()
        if not bridge.inserted:
            return 1
    control.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
