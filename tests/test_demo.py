"""`make demo` runs `commonid demo`: it must start everything without manual steps."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.pcsc, pytest.mark.slow]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_demo_starts_service_card_and_kiosk(pcsc_reader: str, tmp_path: Path) -> None:
    data_dir = tmp_path / "demo"
    commonid = Path(sys.executable).with_name("commonid")
    completed = subprocess.run(
        [
            str(commonid),
            "demo",
            "--once",
            "--data-dir",
            str(data_dir),
            "--service-port",
            str(_free_port()),
            "--kiosk-port",
            str(kiosk_port := _free_port()),
        ],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    output = completed.stdout
    # The reuse story needs person 2 verified through the real service at start-up.
    assert "Demo person 2 verified once at Demo Pay A" in output
    assert f"http://127.0.0.1:{kiosk_port}/" in output
    assert output.count("cid_pk_") >= 2  # both demo providers' API keys are printed
    # Every person has a card file; the revoked person's CRL entry is in the test CA.
    assert sorted(p.name for p in (data_dir / "cards").iterdir()) == [
        "person1.card.json",
        "person2.card.json",
        "person3.card.json",
    ]
    card_text = (data_dir / "cards" / "person1.card.json").read_text()
    assert "ABC123" not in card_text  # the card file keeps only hashes of PIN and password
