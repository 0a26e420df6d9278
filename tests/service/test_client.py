"""The provider SDK against the real app in process (httpx ASGI transport, no patching)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import anyio
import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from commonid.card_answer import CardAnswer
from commonid.client import AsyncProviderClient, CommonIdError, KioskClient, ProviderClient
from jpki.testca import IssuedPerson
from tests.fixtures.service import ServiceAccounts

from .flow_helpers import CardKeys, der


@contextmanager
def _sdk_clients(
    service_client: TestClient, service_accounts: ServiceAccounts
) -> Iterator[tuple[ProviderClient, KioskClient]]:
    """Provider A's and the kiosk's SDK clients on the app in process."""
    # TestClient is an httpx.Client over the app: reuse its transport for the SDK.
    transport = service_client._transport
    base = str(service_client.base_url)
    with (
        ProviderClient(base, service_accounts.provider_a_key, transport=transport) as provider,
        KioskClient(base, service_accounts.kiosk_credential, transport=transport) as kiosk,
    ):
        yield provider, kiosk


def test_sync_client_runs_a_flow_and_raises_problem_codes(
    service_client: TestClient, service_accounts: ServiceAccounts, demo_person: IssuedPerson
) -> None:
    card = CardKeys(demo_person)
    with _sdk_clients(service_client, service_accounts) as (provider, kiosk):
        session = provider.create_session(
            mode="auth", claims=["did"], purpose="ログイン", idempotency_key="k-1"
        )
        assert (
            provider.create_session(
                mode="auth", claims=["did"], purpose="ログイン", idempotency_key="k-1"
            ).id
            == session.id
        )
        assert provider.get_session(session.id).status == "pending"
        kiosk.consent(kiosk.session(session.user_code).id)
        signature = card.sign_auth(session.challenge.to_be_signed)
        kiosk.card_response(
            session.id, auth_certificate=der(demo_person.auth_certificate), auth_signature=signature
        )
        result = provider.wait_for_result(session.id, timeout=2)
        assert result.final and result.status == "verified" and result.did
        with pytest.raises(CommonIdError) as error:
            provider.get_identity("nosuchsub")  # well-shaped, unknown
        assert error.value.code == "identity_not_found" and error.value.status == 404
        with pytest.raises(CommonIdError) as denied:
            provider.create_session(mode="auth", claims=["name"], purpose="x")
        assert denied.value.code == "claims_need_identity_mode"


def test_async_client_long_polls_until_timeout(
    service_app: FastAPI, service_accounts: ServiceAccounts
) -> None:
    async def scenario() -> tuple[str, str]:
        transport = httpx.ASGITransport(app=service_app)
        async with AsyncProviderClient(
            "http://service.test", service_accounts.provider_a_key, transport=transport
        ) as provider:
            session = await provider.create_session(mode="auth", purpose="x")
            waited = await provider.get_session(session.id, wait=0.3)
            with pytest.raises(CommonIdError) as error:
                await provider.get_session("ses_missing")
            return waited.status, error.value.code

    assert anyio.run(scenario) == ("pending", "session_not_found")


def test_kiosk_client_sends_the_consent_with_the_card_response(
    service_client: TestClient, service_accounts: ServiceAccounts, demo_person: IssuedPerson
) -> None:
    card = CardKeys(demo_person)
    with _sdk_clients(service_client, service_accounts) as (provider, kiosk):
        session = provider.create_session(mode="auth", claims=["did"], purpose="ログイン")
        shown = kiosk.session(session.user_code)
        answer = CardAnswer(
            auth_certificate=der(demo_person.auth_certificate),
            auth_signature=card.sign_auth(shown.challenge.to_be_signed),
        )
        outcome = kiosk.submit_card_answer(shown.id, answer, consent=True)
        assert outcome["status"] == "verified"
        result = provider.get_session(session.id)
        assert result.status == "verified" and result.did
        identity = provider.get_identity(result.sub)
        assert [consent["claims"] for consent in identity["consents"]] == [["did"]]
