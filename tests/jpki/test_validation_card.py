"""Certificates read from the emulated card through pcscd + vpcd validate as the card's purposes."""

from __future__ import annotations

import datetime as dt

import pytest

from jpki.card import CertificateKind, JPKICard, PinKind
from jpki.emulator.vpcd import VpcdBridge
from jpki.testca import Hierarchy
from jpki.transport import PcscTransport
from jpki.validation import ReasonCode, RevocationMode, TrustPolicy, validate
from tests.fixtures.card import SIGN_PASSWORD
from tests.jpki.validation_corpus import crl_indexes

pytestmark = pytest.mark.pcsc


def test_certificates_read_over_pcsc_validate_for_their_purpose_only(
    card_in_reader: VpcdBridge, pcsc_reader: str, test_hierarchy: Hierarchy, test_now: dt.datetime
) -> None:
    transport = PcscTransport.connect(pcsc_reader)
    try:
        card = JPKICard(transport)
        with card.session():
            card.select_jpki_ap()
            read = {
                kind: card.read_certificate(kind)
                for kind in (CertificateKind.AUTH, CertificateKind.AUTH_CA)
            }
            card.verify_pin(PinKind.SIGN, SIGN_PASSWORD)  # the sign certificate needs it
            read[CertificateKind.SIGN] = card.read_certificate(CertificateKind.SIGN)
    finally:
        transport.close()

    policy = TrustPolicy.for_test_hierarchy(
        test_hierarchy.auth_ca_certificate,
        test_hierarchy.sign_ca_certificate,
        revocation=crl_indexes(test_hierarchy, test_now),
    )
    auth = validate(read[CertificateKind.AUTH], "auth", at=test_now, policy=policy)
    sign = validate(read[CertificateKind.SIGN], "sign", at=test_now, policy=policy)
    assert auth.valid and auth.trust_anchor == "test-auth", auth
    assert sign.valid and sign.trust_anchor == "test-sign", sign
    swapped = validate(read[CertificateKind.AUTH], "sign", at=test_now, policy=policy)
    assert swapped.reason is ReasonCode.WRONG_PURPOSE
    ca_as_leaf = validate(read[CertificateKind.AUTH_CA], "auth", at=test_now, policy=policy)
    assert ca_as_leaf.reason is ReasonCode.CA_AS_LEAF
    production = TrustPolicy.production(revocation=RevocationMode.OFF)
    assert (
        validate(read[CertificateKind.AUTH], "auth", at=test_now, policy=production).reason
        is ReasonCode.UNTRUSTED_ROOT
    )
