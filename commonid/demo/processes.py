"""The demo's processes: ports, signals, children with their logs, pcscd, the card.

The demo owns several processes (the service, the kiosk agent, the card
emulator, and pcscd if it had to start one). Two promises hold here:

- every stop signal (Ctrl-C, SIGTERM, SIGHUP) stops all of them exactly once,
  whatever the demo was doing, waiting for terminal input included;
- the terminal stays for the guide: children write to log files under the
  demo's data directory, and run in their own session so that Ctrl-C reaches
  only the demo, which stops them in order.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

import httpx

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
_STOP_TIMEOUT = 10.0


class DemoStopped(Exception):
    """Staff asked the demo to stop (a signal, or ``q``)."""


class DemoFailed(Exception):
    """The demo cannot go on; the message says why and what to do (one line or two)."""

    def __init__(self, message: str, *, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class StopSignals:
    """Turns the first stop signal into :class:`DemoStopped`; later ones are ignored.

    Inside :meth:`deferred` (starting a child and recording it), a signal is
    held until the block ends, so no child is ever started without being
    known to the code that stops them.
    """

    def __init__(self) -> None:
        self._deferring = 0
        self._pending: str | None = None

    def install(self) -> None:
        for signum in STOP_SIGNALS:
            signal.signal(signum, self._on_signal)

    @staticmethod
    def ignore() -> None:
        """From here on the demo is stopping: a second Ctrl-C must not cut the clean-up short."""
        for signum in STOP_SIGNALS:
            signal.signal(signum, signal.SIG_IGN)

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        self.ignore()
        name = signal.Signals(signum).name
        if self._deferring:
            self._pending = name
            return
        raise DemoStopped(name)

    @contextlib.contextmanager
    def deferred(self) -> Iterator[None]:
        self._deferring += 1
        try:
            yield
        finally:
            self._deferring -= 1
            if not self._deferring and self._pending is not None:
                raise DemoStopped(self._pending)


def _port_taken(port: int) -> bool:
    with socket.socket() as probe:
        # As uvicorn binds: a port left in TIME_WAIT by a previous run is free.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def check_ports(service_port: int, kiosk_port: int) -> None:
    """Refuse, before anything starts, ports that are taken; name the option to change them."""
    if service_port == kiosk_port:
        raise DemoFailed(
            f"the service and the kiosk agent cannot share port {service_port}: "
            "give them different ports with --service-port and --kiosk-port",
            exit_code=2,
        )
    wanted = {
        service_port: ("the service", "--service-port"),
        kiosk_port: ("the kiosk agent", "--kiosk-port"),
    }
    for port, (what, option) in wanted.items():
        if _port_taken(port):
            free = next(
                p for p in range(port + 1, port + 200) if p not in wanted and not _port_taken(p)
            )
            raise DemoFailed(
                f"port {port} on 127.0.0.1 is already in use, so {what} cannot listen there. "
                f"Stop the program holding it, or choose another port with {option} "
                f'(make demo ARGS="{option} {free}").',
                exit_code=2,
            )


def script(name: str) -> str:
    """A console script of this installation (beside the running Python), else from PATH."""
    beside = Path(sys.executable).with_name(name)
    return str(beside) if beside.exists() else name


class Children:
    """The processes the demo started, each writing to ``<log_dir>/<name>.log``."""

    def __init__(self, log_dir: Path, signals: StopSignals) -> None:
        self.log_dir = log_dir
        self._signals = signals
        self._running: list[tuple[str, subprocess.Popen[bytes]]] = []

    def log_path(self, name: str) -> Path:
        return self.log_dir / f"{name}.log"

    def start(
        self, name: str, argv: list[str], *, env: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        with self.log_path(name).open("ab") as log, self._signals.deferred():
            process = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                # Its own session: the terminal's Ctrl-C reaches the demo only, which
                # then stops the children in order (the card first, pcscd last).
                start_new_session=True,
            )
            self._running.append((name, process))
        return process

    def stop(self, process: subprocess.Popen[bytes]) -> None:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=_STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self._running = [(n, p) for n, p in self._running if p is not process]

    def stop_all(self) -> None:
        for _name, process in reversed(list(self._running)):
            self.stop(process)

    def failure(self, name: str, process: subprocess.Popen[bytes], what: str) -> DemoFailed:
        """A child that ended during start-up: say so, with the end of its log."""
        log = self.log_path(name)
        try:
            tail = log.read_text(errors="replace").splitlines()[-6:]
        except OSError:
            tail = []
        lines = [f"{what} stopped with status {process.returncode} while starting; its log: {log}"]
        lines += [f"  | {line}" for line in tail]
        return DemoFailed("\n".join(lines))

    def wait_http(
        self, name: str, process: subprocess.Popen[bytes], url: str, what: str, timeout: float = 60
    ) -> None:
        """Until ``url`` answers; a child that exits meanwhile is a failure with its log's tail."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise self.failure(name, process, what)
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(url, timeout=2).status_code < 500:
                    return
            time.sleep(0.2)
        raise DemoFailed(
            f"{what} did not answer at {url} within {timeout:.0f} s; its log: {self.log_path(name)}"
        )


def ensure_pcscd(children: Children) -> bool:
    """pcscd with the vpcd driver: the one running, or one started (and later stopped) here."""
    if subprocess.run(["pgrep", "-x", "pcscd"], capture_output=True).returncode == 0:
        return False
    children.start("pcscd", [shutil.which("pcscd") or "/usr/sbin/pcscd", "-f"])
    return True


class CardSlot:
    """The emulator process holding one demo person's card in the vpcd reader."""

    def __init__(self, children: Children, reader: str, vpcd_port: int) -> None:
        self._children = children
        self.reader = reader
        self._vpcd_port = vpcd_port
        self._process: subprocess.Popen[bytes] | None = None

    def insert(self, card_file: Path, *, timeout: float = 15) -> bool:
        """Put the card in ``card_file`` in the reader; True once PC/SC reports it there."""
        from jpki.errors import JPKIError
        from jpki.transport import wait_for_card

        self.remove()
        self._process = self._children.start(
            "card",
            [script("jpki-emulator"), "--card", str(card_file), "--port", str(self._vpcd_port)],
            env=os.environ | {"PYTHONUNBUFFERED": "1"},
        )
        try:
            wait_for_card(self.reader, timeout=timeout)
        except JPKIError:
            return False
        return True

    def remove(self) -> None:
        if self._process is not None:
            # The emulator takes the card out of the reader on SIGTERM.
            self._children.stop(self._process)
        self._process = None
