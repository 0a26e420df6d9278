"""The virtual card over the real PC/SC stack: pyscard -> pcscd -> vpcd -> emulator.

No project reader code is involved: these tests speak raw APDUs through
pyscard, so they show that what the emulator does in process is what any
PC/SC client sees, including removals and a card process restarted on the
same card file.
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from smartcard.CardConnection import CardConnection
from smartcard.Exceptions import CardConnectionException
from smartcard.System import readers

from jpki.emulator.card import JPKI_AID, JPKI_ATR, VirtualMyNumberCard
from jpki.emulator.state import CardState
from jpki.emulator.vpcd import VpcdBridge
from tests.fixtures.card import AUTH_PIN, SIGN_PASSWORD
from tests.fixtures.pcsc import VPCD_PORT, wait_for_card_state

pytestmark = pytest.mark.pcsc


def connect(reader_name: str) -> CardConnection:
    reader = next(r for r in readers() if str(r) == reader_name)
    connection = reader.createConnection()
    connection.connect()
    return connection


def transmit(connection: CardConnection, command: bytes) -> tuple[bytes, int]:
    data, sw1, sw2 = connection.transmit(list(command))
    return bytes(data), (sw1 << 8) | sw2


def select(connection: CardConnection, p1: int, identifier: bytes) -> int:
    return transmit(connection, bytes([0x00, 0xA4, p1, 0x0C, len(identifier)]) + identifier)[1]


def verify(connection: CardConnection, pin_fid: bytes, pin: str | None) -> int:
    assert select(connection, 0x02, pin_fid) == 0x9000
    command = b"\x00\x20\x00\x80"
    if pin is not None:
        command += bytes([len(pin)]) + pin.encode("ascii")
    return transmit(connection, command)[1]


def read_certificate(connection: CardConnection, fid: bytes) -> bytes:
    assert select(connection, 0x02, fid) == 0x9000
    header, sw = transmit(connection, b"\x00\xb0\x00\x00\x04")
    assert sw == 0x9000
    total = int.from_bytes(header[2:4], "big") + 4
    certificate = bytearray()
    while len(certificate) < total:
        offset, wanted = len(certificate), min(256, total - len(certificate))
        command = bytes([0x00, 0xB0, offset >> 8, offset & 0xFF, wanted & 0xFF])
        chunk, sw = transmit(connection, command)
        assert sw == 0x9000
        certificate += chunk
    return bytes(certificate)


def test_certificates_read_in_chunks_through_pcscd(
    card_in_reader: VpcdBridge, pcsc_reader: str, card_state: CardState
) -> None:
    connection = connect(pcsc_reader)
    try:
        assert bytes(connection.getATR()) == JPKI_ATR
        assert select(connection, 0x04, JPKI_AID) == 0x9000
        assert read_certificate(connection, b"\x00\x0a") == card_state.auth_certificate
        assert transmit(connection, b"\x00\xa4\x02\x0c\x02\x00\x01")[1] == 0x9000
        assert transmit(connection, b"\x00\xb0\x00\x00\x04")[1] == 0x6982
        assert verify(connection, b"\x00\x1b", SIGN_PASSWORD) == 0x9000
        assert read_certificate(connection, b"\x00\x01") == card_state.sign_certificate
    finally:
        connection.disconnect()


def test_extended_length_read_through_pcscd(
    card_in_reader: VpcdBridge, pcsc_reader: str, card_state: CardState
) -> None:
    connection = connect(pcsc_reader)
    try:
        select(connection, 0x04, JPKI_AID)
        select(connection, 0x02, b"\x00\x0a")
        length = len(card_state.auth_certificate)
        data, sw = transmit(connection, b"\x00\xb0\x00\x00\x00" + length.to_bytes(2, "big"))
        assert (data, sw) == (card_state.auth_certificate, 0x9000)
    finally:
        connection.disconnect()


def test_removal_is_seen_by_pcsc_clients_and_clears_the_security_state(
    card_in_reader: VpcdBridge, pcsc_reader: str
) -> None:
    connection = connect(pcsc_reader)
    select(connection, 0x04, JPKI_AID)
    assert verify(connection, b"\x00\x1b", SIGN_PASSWORD) == 0x9000

    card_in_reader.remove()
    wait_for_card_state(pcsc_reader, present=False)
    with pytest.raises(CardConnectionException):
        transmit(connection, b"\x00\xa4\x02\x0c\x02\x00\x01")
    connection.disconnect()

    card_in_reader.insert()
    wait_for_card_state(pcsc_reader, present=True)
    connection = connect(pcsc_reader)
    try:
        select(connection, 0x04, JPKI_AID)
        select(connection, 0x02, b"\x00\x01")
        assert transmit(connection, b"\x00\xb0\x00\x00\x04")[1] == 0x6982
    finally:
        connection.disconnect()


class _PulledOutDuringReadBinary:
    """The card, pulled out of the reader while it processes a READ BINARY."""

    def __init__(self, card: VirtualMyNumberCard) -> None:
        self.card = card
        self.bridge: VpcdBridge | None = None
        self.removal_error: BaseException | None = None
        self.atr = card.atr
        self.power_on, self.power_off, self.reset = card.power_on, card.power_off, card.reset

    def process_apdu(self, command: bytes) -> bytes:
        response = self.card.process_apdu(command)
        if command[1] == 0xB0 and self.bridge is not None:
            try:
                self.bridge.remove()  # from vpcd's serving thread: must neither hang nor raise
            except BaseException as error:
                self.removal_error = error
        return response


def test_card_pulled_out_mid_command(virtual_card: VirtualMyNumberCard, pcsc_reader: str) -> None:
    card = _PulledOutDuringReadBinary(virtual_card)
    bridge = card.bridge = VpcdBridge(card, port=VPCD_PORT)
    bridge.insert()
    try:
        wait_for_card_state(pcsc_reader, present=True)
        connection = connect(pcsc_reader)
        assert select(connection, 0x04, JPKI_AID) == 0x9000
        assert select(connection, 0x02, b"\x00\x0a") == 0x9000
        with pytest.raises(CardConnectionException):
            transmit(connection, b"\x00\xb0\x00\x00\x00")
        wait_for_card_state(pcsc_reader, present=False)
        assert not bridge.inserted
        assert card.removal_error is None
        connection.disconnect()
    finally:
        bridge.remove()
        wait_for_card_state(pcsc_reader, present=False)


class EmulatorProcess:
    """``jpki-emulator`` as a child process, with its stdout lines in a queue."""

    def __init__(self, card_file: Path, *extra: str) -> None:
        # The console script declared in pyproject.toml, from this interpreter's venv.
        script = Path(sys.executable).parent / "jpki-emulator"
        command = [str(script), "--card", str(card_file)]
        self.process = subprocess.Popen(
            [*command, "--port", str(VPCD_PORT), *extra],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.transcript: list[str] = []
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line.rstrip("\n"))

    def expect(self, prefix: str, timeout: float = 15.0) -> str:
        while True:
            try:
                line = self.lines.get(timeout=timeout)
            except queue.Empty:
                raise AssertionError(
                    f"no line starting {prefix!r}; saw {self.transcript}"
                ) from None
            self.transcript.append(line)
            if line.startswith(prefix):
                return line

    def command(self, line: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()

    def stop(self, signum: int = signal.SIGTERM) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signum)
        return self.process.wait(timeout=15)


@pytest.fixture
def emulator_processes() -> Iterator[list[EmulatorProcess]]:
    started: list[EmulatorProcess] = []
    yield started
    for emulator in started:
        if emulator.process.poll() is None:
            emulator.process.kill()
            emulator.process.wait(timeout=10)


def test_emulator_process_insert_and_remove_by_signal_and_command(
    pcsc_reader: str, card_file: Path, emulator_processes: list[EmulatorProcess]
) -> None:
    emulator = EmulatorProcess(card_file, "--removed")
    emulator_processes.append(emulator)
    emulator.expect("card:")
    wait_for_card_state(pcsc_reader, present=False)

    emulator.process.send_signal(signal.SIGUSR2)
    emulator.expect("inserted")
    wait_for_card_state(pcsc_reader, present=True)
    connection = connect(pcsc_reader)
    assert select(connection, 0x04, JPKI_AID) == 0x9000
    assert verify(connection, b"\x00\x18", None) == 0x63C3

    emulator.process.send_signal(signal.SIGUSR1)
    emulator.expect("removed")
    wait_for_card_state(pcsc_reader, present=False)
    with pytest.raises(CardConnectionException):
        transmit(connection, b"\x00\xa4\x04\x0c\x0a" + JPKI_AID)
    connection.disconnect()

    emulator.command("insert")
    emulator.expect("inserted")
    wait_for_card_state(pcsc_reader, present=True)
    emulator.command("remove")
    emulator.expect("removed")
    wait_for_card_state(pcsc_reader, present=False)

    assert emulator.stop() == 0


def test_blocked_card_stays_blocked_when_the_emulator_restarts(
    pcsc_reader: str, card_file: Path, emulator_processes: list[EmulatorProcess]
) -> None:
    emulator = EmulatorProcess(card_file)
    emulator_processes.append(emulator)
    emulator.expect("inserted")
    wait_for_card_state(pcsc_reader, present=True)
    connection = connect(pcsc_reader)
    select(connection, 0x04, JPKI_AID)
    statuses = [verify(connection, b"\x00\x18", "0000") for _ in range(3)]
    assert statuses == [0x63C2, 0x63C1, 0x63C0]
    connection.disconnect()
    assert emulator.stop() == 0
    emulator.expect("removed")
    wait_for_card_state(pcsc_reader, present=False)
    assert CardState.load(card_file).auth_pin.tries_left == 0

    restarted = EmulatorProcess(card_file)
    emulator_processes.append(restarted)
    restarted.expect("inserted")
    wait_for_card_state(pcsc_reader, present=True)
    connection = connect(pcsc_reader)
    try:
        select(connection, 0x04, JPKI_AID)
        assert verify(connection, b"\x00\x18", None) == 0x63C0
        assert verify(connection, b"\x00\x18", AUTH_PIN) == 0x6984
    finally:
        connection.disconnect()
    assert restarted.stop() == 0
    wait_for_card_state(pcsc_reader, present=False)


def test_emulator_never_prints_pins_even_when_tracing(
    pcsc_reader: str, card_file: Path, emulator_processes: list[EmulatorProcess]
) -> None:
    emulator = EmulatorProcess(card_file, "--trace")
    emulator_processes.append(emulator)
    emulator.expect("inserted")
    wait_for_card_state(pcsc_reader, present=True)
    connection = connect(pcsc_reader)
    select(connection, 0x04, JPKI_AID)
    assert verify(connection, b"\x00\x1b", SIGN_PASSWORD) == 0x9000
    connection.disconnect()
    emulator.command("status")
    assert emulator.expect("status:") == (
        "status: inserted; auth PIN tries left 3/3; sign password tries left 5/5"
    )
    assert emulator.stop(signal.SIGINT) == 0
    assert emulator.process.stdout is not None
    emulator.expect("removed")
    output = "\n".join(emulator.transcript)
    assert "trace: 00 20 00 80 Lc=6 Le=None -> 9000" in output
    assert SIGN_PASSWORD not in output
    assert SIGN_PASSWORD.encode().hex().upper() not in output.upper()
    assert os.fspath(card_file) in output


def test_emulator_refuses_an_unreadable_card_file(tmp_path: Path) -> None:
    from jpki.emulator.cli import main

    broken = tmp_path / "card.json"
    broken.write_text('{"version": 99}')
    assert main(["--card", str(broken)]) == 2
    assert main(["--card", str(tmp_path / "missing.json")]) == 2
