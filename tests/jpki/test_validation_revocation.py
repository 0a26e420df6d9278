"""validate() with revocation data that is bad, stale or missing, per revocation mode."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from jpki.revocation import CrlSignatureError, RevocationIndex
from jpki.testca import Hierarchy, IssuedPerson
from jpki.testca.crl import build_crl
from jpki.validation import (
    ReasonCode,
    RevocationConfig,
    RevocationMode,
    TrustPolicy,
    validate,
)
from tests.jpki.validation_corpus import der

DAY = dt.timedelta(days=1)


def auth_index(
    hierarchy: Hierarchy, at: dt.datetime, *, key: rsa.RSAPrivateKey | None = None
) -> RevocationIndex:
    index = RevocationIndex(hierarchy.auth_ca_certificate)
    index.ingest(
        build_crl(
            issuer_certificate=hierarchy.auth_ca_certificate,
            issuer_key=key or hierarchy.ca_key("auth"),
            crl_number=1,
            this_update=at,
            next_update=at + DAY,
        ),
        at=at,
    )
    return index


def policy_with(hierarchy: Hierarchy, config: RevocationConfig) -> TrustPolicy:
    return TrustPolicy.for_test_hierarchy(
        hierarchy.auth_ca_certificate, hierarchy.sign_ca_certificate, revocation=config
    )


def test_crl_signed_by_the_wrong_key_gives_no_revocation_data(
    test_hierarchy: Hierarchy, demo_person: IssuedPerson, test_now
) -> None:
    wrong_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with pytest.raises(CrlSignatureError):
        auth_index(test_hierarchy, test_now, key=wrong_key)
    empty = RevocationIndex(test_hierarchy.auth_ca_certificate)
    policy = policy_with(test_hierarchy, RevocationConfig.from_crls([empty]))
    result = validate(der(demo_person.auth_certificate), "auth", at=test_now, policy=policy)
    assert result.reason is ReasonCode.REVOCATION_UNAVAILABLE
    assert result.revocation is None


def test_stale_crl_gives_revocation_stale_with_its_evidence(
    test_hierarchy: Hierarchy, demo_person: IssuedPerson, test_now
) -> None:
    index = auth_index(test_hierarchy, test_now - 3 * DAY)
    policy = policy_with(test_hierarchy, RevocationConfig.from_crls([index]))
    result = validate(der(demo_person.auth_certificate), "auth", at=test_now, policy=policy)
    assert result.reason is ReasonCode.REVOCATION_STALE
    assert result.revocation is not None
    assert result.revocation.next_update == test_now - 2 * DAY


def test_no_crl_for_the_issuing_ca_is_unavailable(
    test_hierarchy: Hierarchy, demo_person: IssuedPerson, test_now
) -> None:
    index = auth_index(test_hierarchy, test_now)
    policy = policy_with(test_hierarchy, RevocationConfig.from_crls([index]))
    assert validate(der(demo_person.auth_certificate), "auth", at=test_now, policy=policy).valid
    result = validate(der(demo_person.sign_certificate), "sign", at=test_now, policy=policy)
    assert result.reason is ReasonCode.REVOCATION_UNAVAILABLE


def test_soft_fail_accepts_without_data_and_says_so(
    test_hierarchy: Hierarchy, demo_person: IssuedPerson, test_now
) -> None:
    index = auth_index(test_hierarchy, test_now - 3 * DAY)
    policy = policy_with(
        test_hierarchy, RevocationConfig.from_crls([index], mode=RevocationMode.SOFT_FAIL)
    )
    result = validate(der(demo_person.auth_certificate), "auth", at=test_now, policy=policy)
    assert result.valid
    assert result.revocation is None
    assert "revocation not checked" in result.detail


def test_require_is_the_default(test_hierarchy: Hierarchy, demo_person, test_now) -> None:
    policy = TrustPolicy.for_test_hierarchy(
        test_hierarchy.auth_ca_certificate, test_hierarchy.sign_ca_certificate
    )
    result = validate(der(demo_person.auth_certificate), "auth", at=test_now, policy=policy)
    assert result.reason is ReasonCode.REVOCATION_UNAVAILABLE
