"""`commonid verify-session`: the terminal walk-through with the card in the PC/SC reader."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from commonid.cli import app
from commonid.client import ProviderClient
from jpki.emulator.vpcd import VpcdBridge
from tests.fixtures.card import AUTH_PIN, SIGN_PASSWORD
from tests.fixtures.service import LiveService, ServiceAccounts

pytestmark = pytest.mark.pcsc


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_walk_through_verifies_identity_with_pin_and_password(
    live_service: LiveService,
    service_accounts: ServiceAccounts,
    card_in_reader: VpcdBridge,
    pcsc_reader: str,
) -> None:
    with ProviderClient(live_service.base_url, service_accounts.provider_a_key) as provider:
        session = provider.create_session(mode="identity", claims=["name"], purpose="口座開設")
        result = CliRunner().invoke(
            app,
            [
                "verify-session",
                session.user_code,
                "--service-url",
                live_service.base_url,
                "--kiosk-credential",
                service_accounts.kiosk_credential,
                "--reader",
                pcsc_reader,
            ],
            input=f"y\n{AUTH_PIN}\n{SIGN_PASSWORD}\n",
        )
        assert result.exit_code == 0, result.output
        assert "Provider A asks for: name" in result.output
        assert AUTH_PIN not in result.output and SIGN_PASSWORD not in result.output
        outcome = provider.get_session(session.id)
    assert outcome.status == "verified"
    assert outcome.verified_claims["claims"]["name"] == "山田\u3000太郎"
