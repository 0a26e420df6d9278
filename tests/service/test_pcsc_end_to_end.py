"""End to end over real HTTP, with the emulated card in the vpcd reader behind pcscd.

Provider A verifies an identity (PIN and password, both keys sign the
challenge); provider B then reuses it with the PIN only. Both providers use
the SDK; the kiosk side uses the kiosk client and the card through PC/SC.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from commonid.card_answer import answer_challenge
from commonid.client import CommonIdError, KioskClient, ProviderClient
from jpki.card import JPKICard
from jpki.documents import open_card_signer, sign_pdf, verify_pdf
from jpki.emulator.vpcd import VpcdBridge
from jpki.transport import PcscTransport
from tests.fixtures.card import AUTH_PIN, SIGN_PASSWORD
from tests.fixtures.service import LiveService, ServiceAccounts

pytestmark = pytest.mark.pcsc


def test_identity_then_reuse_with_pin_only_over_pcsc(
    live_service: LiveService,
    service_accounts: ServiceAccounts,
    card_in_reader: VpcdBridge,
    pcsc_reader: str,
) -> None:
    url = live_service.base_url
    provider_a = ProviderClient(url, service_accounts.provider_a_key)
    provider_b = ProviderClient(url, service_accounts.provider_b_key)
    kiosk = KioskClient(url, service_accounts.kiosk_credential)
    transport = PcscTransport.connect(pcsc_reader)
    try:
        card = JPKICard(transport)

        session = provider_a.create_session(
            mode="identity", claims=["name", "birthdate", "address", "did"], purpose="口座開設"
        )
        shown = kiosk.session(session.user_code)
        assert shown.provider_name == "Provider A"
        assert shown.challenge.to_be_signed == session.challenge.to_be_signed
        kiosk.consent(shown.id)
        answer = answer_challenge(
            card, shown.challenge.to_be_signed, auth_pin=AUTH_PIN, sign_password=SIGN_PASSWORD
        )
        outcome = kiosk.submit_card_answer(shown.id, answer)
        assert outcome["status"] == "verified"
        verified = provider_a.wait_for_result(session.id, timeout=5)
        assert verified.status == "verified"
        assert verified.verified_claims is not None
        assert verified.verified_claims["claims"]["name"] == "山田\u3000太郎"
        assert verified.verified_claims["claims"]["address"]["formatted"].startswith("東京都")

        # The same answer again is a replay, refused with its code through the SDK.
        with pytest.raises(CommonIdError) as replay:
            kiosk.submit_card_answer(shown.id, answer)
        assert replay.value.code == "challenge_replayed" and replay.value.status == 409

        reuse = provider_b.create_session(
            mode="auth", reuse=True, claims=["name", "birthdate", "did"], purpose="送金"
        )
        reuse_shown = kiosk.session(reuse.user_code)
        pin_only = answer_challenge(card, reuse_shown.challenge.to_be_signed, auth_pin=AUTH_PIN)
        assert pin_only.sign_signature is None
        # The quick path: the consent travels with the card response, one request.
        kiosk.card_response(
            reuse_shown.id,
            auth_certificate=pin_only.auth_certificate,
            auth_signature=pin_only.auth_signature,
            consent=["name", "birthdate", "did"],
        )
        reused = provider_b.wait_for_result(reuse.id, timeout=5)
        assert reused.status == "reuse_granted"
        assert reused.verified_claims["claims"]["birthdate"] == "1990-04-01"
        assert reused.did == verified.did
        assert reused.sub != verified.sub
        assert reused.reuse is not None
    finally:
        transport.close()
        provider_a.close()
        provider_b.close()


def test_consent_document_signed_by_the_card_over_pcsc(
    live_service: LiveService,
    service_accounts: ServiceAccounts,
    card_in_reader: VpcdBridge,
    pcsc_reader: str,
) -> None:
    """Provider asks for a signed consent; the card in the vpcd reader signs it over PC/SC."""
    url = live_service.base_url
    provider = ProviderClient(url, service_accounts.provider_a_key)
    kiosk = KioskClient(url, service_accounts.kiosk_credential)
    transport = PcscTransport.connect(pcsc_reader)
    try:
        card = JPKICard(transport)
        session = provider.create_session(
            mode="identity",
            claims=["name", "birthdate", "gender", "address"],
            purpose="口座開設",
            document="consent",
        )
        shown = kiosk.session(session.user_code)
        assert shown.document == "consent"
        kiosk.consent(shown.id)
        document = kiosk.document(shown.id)
        assert document.provider_name == "Provider A" and document.claims == [
            "name",
            "birthdate",
            "gender",
            "address",
        ]
        answer = answer_challenge(
            card, shown.challenge.to_be_signed, auth_pin=AUTH_PIN, sign_password=SIGN_PASSWORD
        )
        kiosk.submit_card_answer(shown.id, answer)
        waiting = provider.get_session(session.id)
        assert waiting.status == "verified" and not waiting.final

        with open_card_signer(card, SIGN_PASSWORD) as signer:
            signed = sign_pdf(document.pdf, signer)
        kiosk.submit_document(shown.id, signed)

        result = provider.wait_for_result(session.id, timeout=5)
        assert result.final and result.document == result.document | {"status": "signed"}
        (listed,) = result.documents
        downloaded = provider.download_document(session.id, listed["id"])
        assert downloaded.content == signed and downloaded.sha256 == listed["sha256"]
        # Anyone can check it later under the J-LIS-profile roots: one valid signature.
        verification = verify_pdf(
            downloaded.content, policy=live_service.runtime.trust_policy, at=datetime.now(UTC)
        )
        assert verification.valid and verification.signatures[0].covers_whole_document

        with pytest.raises(CommonIdError) as twice:
            kiosk.submit_document(shown.id, signed)
        assert twice.value.code == "document_already_signed"
    finally:
        transport.close()
        provider.close()
