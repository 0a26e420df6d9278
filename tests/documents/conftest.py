"""Documents signed by the virtual card in the vpcd reader, and a JPKI trust policy for them."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from commonid.documents.service import PreparedDocument, prepare_consent_document
from jpki.card import JPKICard
from jpki.emulator.card import VirtualMyNumberCard
from jpki.emulator.vpcd import VpcdBridge
from jpki.revocation import RevocationIndex
from jpki.testca import Hierarchy, IssuedPerson
from jpki.trace import ApduTraceEvent
from jpki.transport import PcscTransport
from jpki.validation import RevocationConfig, TrustPolicy
from tests.fixtures.card import CardMaterial
from tests.fixtures.pcsc import VPCD_PORT, wait_for_card_state

# Verification happens a day after the hierarchy's frozen "now" (certificates
# are issued then), with a CRL issued an hour before.
VERIFY_AT = dt.datetime(2026, 11, 2, 0, 0, 0, tzinfo=dt.UTC)
CRL_THIS_UPDATE = VERIFY_AT - dt.timedelta(hours=1)


def der(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.DER)


def sign_policy(hierarchy: Hierarchy) -> TrustPolicy:
    """The test roots, revocation required, the sign CA's CRL as of CRL_THIS_UPDATE loaded."""
    index = RevocationIndex(hierarchy.sign_ca_certificate)
    index.ingest(hierarchy.crl("sign", this_update=CRL_THIS_UPDATE), at=VERIFY_AT)
    auth_index = RevocationIndex(hierarchy.auth_ca_certificate)
    auth_index.ingest(hierarchy.crl("auth", this_update=CRL_THIS_UPDATE), at=VERIFY_AT)
    return TrustPolicy.for_test_hierarchy(
        hierarchy.auth_ca_certificate,
        hierarchy.sign_ca_certificate,
        revocation=RevocationConfig.from_crls([index, auth_index]),
    )


@pytest.fixture
def policy(test_hierarchy: Hierarchy) -> TrustPolicy:
    return sign_policy(test_hierarchy)


@pytest.fixture
def consent() -> PreparedDocument:
    return prepare_consent_document(
        session_id="ses_docs_test",
        provider_name="テスト決済株式会社",
        purpose="口座開設時の本人確認（犯罪収益移転防止法）",
        claims=("name", "birthdate", "address"),
        created_at=dt.datetime(2026, 11, 1, 3, 0, tzinfo=dt.UTC),
    )


class PinVerifyCounter:
    """Counts VERIFY commands that carry a PIN (the trace withholds their data length)."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, event: ApduTraceEvent) -> None:
        if event.ins == 0x20 and event.data_length is None:
            self.count += 1


@pytest.fixture
def verify_counter() -> PinVerifyCounter:
    return PinVerifyCounter()


@pytest.fixture
def pcsc_card(
    card_in_reader: VpcdBridge, pcsc_reader: str, verify_counter: PinVerifyCounter
) -> Iterator[JPKICard]:
    """The demo person's card, reached through pcscd."""
    transport = PcscTransport.connect(pcsc_reader)
    try:
        yield JPKICard(transport, tracer=verify_counter)
    finally:
        transport.close()


@pytest.fixture
def card_for_person(
    pcsc_reader: str, test_hierarchy: Hierarchy
) -> Iterator[Callable[[IssuedPerson], JPKICard]]:
    """Put a card issued to another person into the reader (one at a time)."""
    opened: list[tuple[VpcdBridge, PcscTransport]] = []

    def insert(person: IssuedPerson) -> JPKICard:
        material = CardMaterial(
            auth_private_key=person.auth_private_key,
            sign_private_key=person.sign_private_key,
            auth_certificate=der(person.auth_certificate),
            auth_ca_certificate=der(test_hierarchy.auth_ca_certificate),
            sign_certificate=der(person.sign_certificate),
            sign_ca_certificate=der(test_hierarchy.sign_ca_certificate),
        )
        bridge = VpcdBridge(VirtualMyNumberCard(material.new_card_state()), port=VPCD_PORT)
        bridge.insert()
        wait_for_card_state(pcsc_reader, present=True)
        transport = PcscTransport.connect(pcsc_reader)
        opened.append((bridge, transport))
        return JPKICard(transport)

    yield insert
    for bridge, transport in opened:
        transport.close()
        bridge.remove()
        wait_for_card_state(pcsc_reader, present=False)
