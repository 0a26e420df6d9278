"""`make demo` runs `commonid demo`: tested as staff use it, as a process on a terminal.

It must start everything without manual steps, keep the terminal for the
guide (logs go to files), let staff play both providers from that terminal,
stop everything exactly once on any signal, say plainly when a port is taken,
and keep its world across restarts only when asked.
"""

from __future__ import annotations

import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from commonid.card_answer import answer_challenge
from commonid.client import KioskClient
from jpki.card import JPKICard
from jpki.emulator.card import VirtualMyNumberCard
from jpki.emulator.state import CardState
from jpki.transport import InProcessTransport
from tests.fixtures.pcsc import VPCD_READER, wait_for_card_state

COMMONID = Path(sys.executable).with_name("commonid")
ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(1)
        return probe.connect_ex(("127.0.0.1", port)) == 0


class Demo:
    """`commonid demo` on a pipe standing in for the staff's terminal."""

    def __init__(self, data_dir: Path, *extra: str) -> None:
        self.data_dir = data_dir
        self.service_port = _free_port()
        self.kiosk_port = _free_port()
        self.process = subprocess.Popen(
            [
                str(COMMONID),
                "demo",
                "--data-dir",
                str(data_dir),
                "--service-port",
                str(self.service_port),
                "--kiosk-port",
                str(self.kiosk_port),
                *extra,
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[str] = []
        self._new: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))
            self._new.put(line.rstrip("\n"))

    def wait_for(self, pattern: str, timeout: float = 120) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            try:
                line = self._new.get(timeout=max(0.01, remaining))
            except queue.Empty:
                raise AssertionError(
                    f"no line matching {pattern!r} within {timeout} s; terminal so far:\n"
                    + "\n".join(self.lines[-40:])
                ) from None
            if found := re.search(pattern, line):
                return found

    def type(self, line: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()

    def finish(self, timeout: float = 60) -> tuple[int, str]:
        """The exit status and stderr (stdout keeps coming into ``lines``)."""
        returncode = self.process.wait(timeout=timeout)
        assert self.process.stderr is not None
        time.sleep(0.2)  # let the reader thread take the last lines
        return returncode, self.process.stderr.read()

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    @property
    def terminal(self) -> str:
        return "\n".join(self.lines)


@pytest.fixture
def demo_dir(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path / "demo"
    # Whatever a failed test left running must not keep the reader or the ports.
    subprocess.run(["pkill", "-f", str(tmp_path / "demo")], capture_output=True)


def _run_once(data_dir: Path, *extra: str) -> Demo:
    demo = Demo(data_dir, "--once", *extra)
    returncode, stderr = demo.finish(timeout=240)
    assert returncode == 0, stderr[-3000:]
    return demo


def _api_keys(terminal: str) -> list[str]:
    return re.findall(r"Demo Pay [AB]: (cid_pk_\S+)", terminal)


def _assert_all_stopped(demo: Demo) -> None:
    assert demo.terminal.count("Demo stopped.") == 1
    assert not _listening(demo.service_port), "the service still listens"
    assert not _listening(demo.kiosk_port), "the kiosk agent still listens"
    wait_for_card_state(VPCD_READER, present=False, timeout=10)
    leftover = subprocess.run(
        ["pgrep", "-f", str(demo.data_dir)], capture_output=True, text=True
    ).stdout
    assert not leftover.strip(), f"processes of the demo still run: {leftover}"


@pytest.mark.pcsc
@pytest.mark.slow
def test_demo_starts_service_card_and_kiosk(pcsc_reader: str, demo_dir: Path) -> None:
    demo = _run_once(demo_dir)
    output = demo.terminal
    # The reuse story needs person 2 verified through the real service at start-up.
    assert "Demo person 2 verified once at Demo Pay A" in output
    assert f"http://127.0.0.1:{demo.kiosk_port}/" in output
    assert len(_api_keys(output)) == 2  # both demo providers' API keys are printed
    # The card is announced once PC/SC reports it in the reader.
    assert f"Card in reader {pcsc_reader}: demo person 1, 山田\u3000太郎" in output
    # Every person has a card file; the revoked person's CRL entry is in the test CA.
    assert sorted(p.name for p in (demo_dir / "cards").iterdir()) == [
        "person1.card.json",
        "person2.card.json",
        "person3.card.json",
    ]
    card_text = (demo_dir / "cards" / "person1.card.json").read_text()
    assert "ABC123" not in card_text  # the card file keeps only hashes of PIN and password
    _assert_all_stopped(demo)


def _complete_at_the_kiosk(demo: Demo, user_code: str, card_key: str, *, identity: bool) -> None:
    """The person's side, done straight against the service with the kiosk's credential."""
    credential = (demo.data_dir / "kiosk.credential").read_text().strip()
    state = CardState.load(demo.data_dir / "cards" / f"person{card_key}.card.json")
    card = JPKICard(InProcessTransport(VirtualMyNumberCard(state)))
    pins = {"1": ("1234", "ABC123"), "2": ("5678", "HANAKO2024")}[card_key]
    with KioskClient(f"http://127.0.0.1:{demo.service_port}", credential) as kiosk:
        session = kiosk.session(user_code)
        kiosk.consent(session.id)
        answer = answer_challenge(
            card,
            session.challenge.to_be_signed,
            auth_pin=pins[0],
            sign_password=pins[1] if identity else None,
        )
        kiosk.submit_card_answer(session.id, answer)


def _verify_at_the_kiosk_agent(demo: Demo, user_code: str) -> dict:
    """Person 1 at the kiosk, through the kiosk agent (as its page drives it), with the
    card in the vpcd reader: the result screen then shows the wallet offer."""
    agent = f"http://127.0.0.1:{demo.kiosk_port}"

    def post(path: str, body: dict) -> dict:
        response = httpx.post(f"{agent}/api/session/{path}", json=body, timeout=60)
        assert response.status_code == 200, response.text
        return response.json()

    assert post("lookup", {"user_code": user_code})["step"] == "consent"
    assert post("consent", {"approved": True})["step"] == "insert_card"
    deadline = time.monotonic() + 30
    while post("card", {})["step"] != "pin":  # the page asks again when the reader reports
        assert time.monotonic() < deadline, "the agent never saw the card"
        time.sleep(0.5)
    assert post("pin", {"pin": "1234", "entry_id": "demo-entry-01"})["step"] == "password"
    return post("password", {"password": "ABC123", "entry_id": "demo-entry-02"})


def _the_phone_proves_over_20(demo: Demo) -> None:
    """The wallet path of the guide: verify at the kiosk, the phone takes the offer, then
    proves "over 20" to Demo Pay B without the birth date."""
    demo.type("w")
    demo.wait_for(r"Demo phone: the kiosk shows no wallet offer")
    demo.type("a")
    code = demo.wait_for(r"Demo Pay A: .*User code (\S+): type it at the kiosk").group(1)
    shown = _verify_at_the_kiosk_agent(demo, code)
    assert shown["result"]["code"] == "verified", shown
    offer = shown["result"]["wallet_offer"]
    demo.wait_for(rf"Demo Pay A: session {re.escape(code)} ended: verified")
    demo.type("w")
    saved = demo.wait_for(r"Demo phone: scanned the QR code, typed (\d{6}); 2 copies of (\S+)")
    assert saved.group(1) == offer["tx_code"]
    assert saved.group(2) == "urn:jp:commonid:vct:jpki-identity:1"
    demo.type("p")
    proved = demo.wait_for(r"Demo Pay B: presentation vpr_\S+ (\w+);.*")
    assert proved.group(1) == "verified", proved.group(0)
    assert "age_equal_or_over.20=True" in proved.group(0)
    assert "disclosed: age_equal_or_over.20 (no birth date)" in proved.group(0)
    assert "1990" not in proved.group(0)  # person 1's birth year


def _reviewer_gets_the_signed_report(demo: Demo) -> None:
    """The guide's reviewer pages: the three verifications so far (person 2 at start-up,
    then a and b) in the figures, and the PDF signed by the demo organisation's test CA.
    ``COMMONID_REVIEWER_SCREENSHOTS=docs/reviewer`` keeps it as the docs' sample."""
    import io

    from pyhanko.pdf_utils.reader import PdfFileReader

    credential = (demo.data_dir / "reviewer.credential").read_text().strip()
    assert f"reviewer credential:           {credential}" in demo.terminal
    with httpx.Client(base_url=f"http://127.0.0.1:{demo.service_port}", timeout=60) as web:
        assert web.post("/reviewer/login", data={"token": credential}).status_code == 303
        deadline = time.monotonic() + 40  # the demo signs a checkpoint every 10 seconds
        while True:
            page = web.get("/reviewer/", params={"lang": "en"}).text
            shown = re.search(r'"value">(\d+)</div><div class="label">completed sessions', page)
            if shown and int(shown.group(1)) >= 3:
                break
            assert time.monotonic() < deadline, "the verifications never reached the figures"
            time.sleep(1)
        report = web.get("/reviewer/report.pdf")
    assert report.status_code == 200, report.text
    (signature,) = PdfFileReader(io.BytesIO(report.content)).embedded_signatures
    assert "Common-ID demo organisation" in signature.signer_cert.issuer.human_friendly
    if keep := os.environ.get("COMMONID_REVIEWER_SCREENSHOTS"):
        (Path(keep) / "sample-report.pdf").write_bytes(report.content)


@pytest.mark.pcsc
@pytest.mark.slow
def test_staff_play_both_providers_from_the_demo_terminal(pcsc_reader: str, demo_dir: Path) -> None:
    demo = Demo(demo_dir)
    try:
        demo.wait_for(rf"Card in reader {pcsc_reader}: demo person 1")
        # The kiosk page is fetched: the agent logs the request to its file, not here.
        assert httpx.get(f"http://127.0.0.1:{demo.kiosk_port}/").status_code == 200

        demo.type("a")
        code = demo.wait_for(r"Demo Pay A: .*User code (\S+): type it at the kiosk").group(1)
        _complete_at_the_kiosk(demo, code, "1", identity=True)
        result = demo.wait_for(rf"Demo Pay A: session {re.escape(code)} ended: (\w+)")
        assert result.group(1) == "verified", demo.terminal
        assert "name=山田\u3000太郎" in result.string

        demo.type("2")
        demo.wait_for(rf"Card in reader {pcsc_reader}: demo person 2, 佐藤\u3000花子")
        demo.type("b")
        code = demo.wait_for(r"Demo Pay B: .*User code (\S+):").group(1)
        _complete_at_the_kiosk(demo, code, "2", identity=False)
        result = demo.wait_for(rf"Demo Pay B: session {re.escape(code)} ended: (\w+)")
        assert result.group(1) == "reuse_granted", demo.terminal
        assert "claims first verified" in result.string
        _reviewer_gets_the_signed_report(demo)

        demo.type("1")
        demo.wait_for(rf"Card in reader {pcsc_reader}: demo person 1")
        _the_phone_proves_over_20(demo)

        demo.type("r")
        demo.wait_for(rf"Reader {pcsc_reader} is empty")
        demo.type("x")
        demo.wait_for(r"r: take it out; a, b: a provider's session; w: .*; q: quit")
        demo.type("q")
        returncode, stderr = demo.finish()
    finally:
        demo.kill()
    assert returncode == 0, stderr
    # The terminal keeps the guide: no request log lines from the agent or the service.
    assert "HTTP/1.1" not in demo.terminal
    assert "INFO:" not in demo.terminal
    agent_log = (demo_dir / "logs" / "kiosk-agent.log").read_text()
    assert '"GET / HTTP/1.1" 200' in agent_log
    assert "Application startup complete" in (demo_dir / "logs" / "service.log").read_text()
    _assert_all_stopped(demo)


@pytest.mark.pcsc
@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_a_signal_stops_everything_once_while_the_demo_waits_for_input(
    pcsc_reader: str, demo_dir: Path, signum: signal.Signals
) -> None:
    demo = Demo(demo_dir)
    try:
        demo.wait_for(rf"Card in reader {pcsc_reader}: demo person 1")
        time.sleep(0.5)  # the demo now sits in its read of the terminal
        demo.process.send_signal(signum)
        time.sleep(0.05)
        demo.process.send_signal(signal.SIGINT)  # staff pressing Ctrl-C as well
        returncode, stderr = demo.finish(timeout=60)
    finally:
        demo.kill()
    assert returncode == 0
    assert "Traceback" not in stderr, stderr
    _assert_all_stopped(demo)


@pytest.mark.pcsc
@pytest.mark.slow
def test_ctrl_c_during_start_up_stops_what_has_started(pcsc_reader: str, demo_dir: Path) -> None:
    demo = Demo(demo_dir)
    try:
        demo.wait_for(r"Starting the kiosk agent")
        demo.process.send_signal(signal.SIGINT)
        returncode, stderr = demo.finish(timeout=60)
    finally:
        demo.kill()
    assert returncode == 0
    assert "Traceback" not in stderr, stderr
    assert "Common-ID demo is running" not in demo.terminal
    _assert_all_stopped(demo)


@pytest.mark.parametrize(
    ("taken", "option"), [("service", "--service-port"), ("kiosk", "--kiosk-port")]
)
def test_a_taken_port_is_named_with_the_option_to_change_it(
    tmp_path: Path, taken: str, option: str
) -> None:
    service_port, kiosk_port = _free_port(), _free_port()
    busy = service_port if taken == "service" else kiosk_port
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", busy))
        holder.listen()
        completed = subprocess.run(
            [
                str(COMMONID),
                "demo",
                "--data-dir",
                str(tmp_path / "demo"),
                "--service-port",
                str(service_port),
                "--kiosk-port",
                str(kiosk_port),
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert completed.returncode == 2
    assert "Traceback" not in completed.stderr
    message = completed.stderr.strip()
    assert f"port {busy} on 127.0.0.1 is already in use" in message
    assert option in message and 'make demo ARGS="' in message
    assert len(message.splitlines()) == 1
    assert not (tmp_path / "demo").exists()  # nothing was made or started


@pytest.mark.pcsc
@pytest.mark.slow
def test_keep_keeps_the_world_and_the_default_makes_a_fresh_one(
    pcsc_reader: str, demo_dir: Path
) -> None:
    first = _run_once(demo_dir, "--keep")  # nothing to keep yet: a world is made
    assert "no complete demo world" in first.terminal
    kept = _run_once(demo_dir, "--keep")
    assert "Keeping the demo world made" in kept.terminal
    assert "Creating a fresh test CA" not in kept.terminal
    assert _api_keys(kept.terminal) == _api_keys(first.terminal)
    fresh = _run_once(demo_dir)
    assert "Creating a fresh test CA" in fresh.terminal
    assert set(_api_keys(fresh.terminal)).isdisjoint(_api_keys(first.terminal))


def test_make_demo_passes_args_to_the_demo() -> None:
    dry_run = subprocess.run(
        ["make", "-n", "demo", "ARGS=--service-port 9000 --keep"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert dry_run.returncode == 0, dry_run.stderr
    assert "commonid demo --service-port 9000 --keep" in dry_run.stdout
