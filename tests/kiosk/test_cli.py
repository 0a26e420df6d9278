"""`commonid-kiosk`: the one command that starts the agent."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from commonid_kiosk.cli import main


def test_refuses_to_listen_beyond_loopback(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--host", "0.0.0.0"]) == 2
    assert "loopback" in capsys.readouterr().err


def test_needs_a_kiosk_credential(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("COMMONID_KIOSK_CREDENTIAL", raising=False)
    assert main(["--port", "1"]) == 2
    assert "COMMONID_KIOSK_CREDENTIAL" in capsys.readouterr().err


@pytest.mark.pcsc
def test_lists_the_readers(pcsc_reader: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--list-readers"]) == 0
    assert pcsc_reader in capsys.readouterr().out.splitlines()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.pcsc
def test_starts_the_agent_and_serves_the_page(pcsc_reader: str, tmp_path: Path) -> None:
    credential_file = tmp_path / "kiosk-credential"
    credential_file.write_text("cid_kiosk_example\n")
    port = _free_port()
    environment = {k: v for k, v in os.environ.items() if not k.startswith("COMMONID_KIOSK_")}
    agent = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "commonid_kiosk.cli",
            "--kiosk-credential-file",
            str(credential_file),
            "--reader",
            pcsc_reader,
            "--port",
            str(port),
            "--inactivity-timeout",
            "30",
        ],
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert agent.stdout is not None
        assert agent.stdout.readline().strip() == f"Kiosk page: http://127.0.0.1:{port}/"
        deadline = time.monotonic() + 15
        while True:
            try:
                page = httpx.get(f"http://127.0.0.1:{port}/", timeout=2)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "the agent did not answer"
                time.sleep(0.1)
        assert page.status_code == 200
        assert "受付番号を入力してください" in page.text
        config = httpx.get(f"http://127.0.0.1:{port}/api/config", timeout=2).json()
        assert config == {"inactivity_timeout_seconds": 30.0, "reader": pcsc_reader}
        readers = httpx.get(f"http://127.0.0.1:{port}/api/readers", timeout=2).json()
        assert readers["reader"] == pcsc_reader
    finally:
        agent.terminate()
        agent.wait(timeout=15)
