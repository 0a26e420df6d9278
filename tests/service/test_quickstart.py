"""The provider quick start the demo prints: a real process against a live service."""

from __future__ import annotations

import hashlib
import re
import subprocess
import sys
from pathlib import Path

from commonid.card_answer import answer_challenge
from commonid.client import KioskClient
from jpki.card import JPKICard
from jpki.documents import open_card_signer, sign_pdf
from jpki.emulator.card import VirtualMyNumberCard
from jpki.transport import InProcessTransport
from tests.fixtures.card import AUTH_PIN, SIGN_PASSWORD
from tests.fixtures.service import LiveService, ServiceAccounts


def test_quickstart_prints_the_user_code_then_the_result_and_saves_the_signed_consent(
    live_service: LiveService,
    service_accounts: ServiceAccounts,
    virtual_card: VirtualMyNumberCard,
    tmp_path: Path,
) -> None:
    quickstart = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "commonid.quickstart",
            "--service",
            live_service.base_url,
            "--api-key",
            service_accounts.provider_a_key,
            "--claims",
            "name,birthdate,gender,address",
            "--document",
            "consent",
            "--save-dir",
            str(tmp_path),
            "--timeout",
            "60",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert quickstart.stdout is not None
        first_line = quickstart.stdout.readline()
        user_code = re.match(r"User code: (\S+)", first_line)
        assert user_code, first_line

        # The person at the kiosk: consent, card answer, signed consent document.
        card = JPKICard(InProcessTransport(virtual_card))
        with KioskClient(live_service.base_url, service_accounts.kiosk_credential) as kiosk:
            shown = kiosk.session(user_code.group(1))
            kiosk.consent(shown.id)
            document = kiosk.document(shown.id)
            answer = answer_challenge(
                card, shown.challenge.to_be_signed, auth_pin=AUTH_PIN, sign_password=SIGN_PASSWORD
            )
            kiosk.submit_card_answer(shown.id, answer)
            with open_card_signer(card, SIGN_PASSWORD) as signer:
                kiosk.submit_document(shown.id, sign_pdf(document.pdf, signer))
        output, errors = quickstart.communicate(timeout=60)
    finally:
        quickstart.kill()
    assert quickstart.returncode == 0, errors
    assert "Status: verified" in output
    saved = re.search(r"Signed document saved: (\S+) \(SHA-256 ([0-9a-f]{64})\)", output)
    assert saved, output
    assert hashlib.sha256(Path(saved.group(1)).read_bytes()).hexdigest() == saved.group(2)
    # The verified claims the provider asked for are printed; the password never is.
    assert '"name"' in output and SIGN_PASSWORD not in output
