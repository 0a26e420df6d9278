"""A presentation signed by the emulated card through pcscd + vpcd, verified offline."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from did.credentials import (
    CredentialReason,
    IdentityCredentialRequest,
    issue_identity_credential,
    verify_identity_credential,
)
from did.keys import did_key_from_certificate
from did.presentation import (
    InMemoryNonceStore,
    PresentationReason,
    create_presentation,
    verify_presentation,
)
from jpki.card import CertificateKind, JPKICard, PinKind
from jpki.emulator.vpcd import VpcdBridge
from jpki.transport import PcscTransport
from tests.fixtures.card import AUTH_PIN

from .conftest import StatusRegistry

pytestmark = pytest.mark.pcsc

AUDIENCE = "did:web:provider-b.test"


def test_card_signed_presentation_round_trip_over_pcsc(
    card_in_reader: VpcdBridge,
    pcsc_reader: str,
    make_request: Callable[..., IdentityCredentialRequest],
    status_registry: StatusRegistry,
) -> None:
    nonce = "bS1yZWFsLXZlcmlmaWVyLW5vbmNlLTMyLWJ5dGVzLWxvbmc"
    transport = PcscTransport.connect(pcsc_reader)
    try:
        card = JPKICard(transport)
        with card.session():
            card.select_jpki_ap()
            subject_did = did_key_from_certificate(card.read_certificate(CertificateKind.AUTH))
            # The service issued a credential to the DID of this card's auth key.
            request = make_request()
            request = IdentityCredentialRequest(**{**request.__dict__, "subject_did": subject_did})
            credential = issue_identity_credential(request, status_registry.keyring)
            card.verify_pin(PinKind.AUTH, AUTH_PIN)
            token = create_presentation(
                subject_did=subject_did,
                audience=AUDIENCE,
                nonce=nonce,
                sign_digest_info=lambda digest_info: card.sign_digest_info(
                    PinKind.AUTH, digest_info
                ),
                issued_at=datetime.now(UTC),
                credential=credential.credential,
            )
    finally:
        transport.close()

    # The provider's side: no card, no service, only the token and the issuer keys.
    now = datetime.now(UTC)
    store = InMemoryNonceStore()
    result = verify_presentation(token, audience=AUDIENCE, nonce=nonce, at=now, nonce_store=store)
    assert result.reason is PresentationReason.VALID, result.detail
    assert result.subject_did == subject_did
    presented = verify_identity_credential(
        result.credential, status_registry.keyring, at=now, status_resolver=status_registry.resolve
    )
    assert presented.reason is CredentialReason.VALID
    assert presented.subject_did == result.subject_did
    replay = verify_presentation(token, audience=AUDIENCE, nonce=nonce, at=now, nonce_store=store)
    assert replay.reason is PresentationReason.REPLAYED
