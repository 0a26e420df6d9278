"""validate() with a ValidationCache: same results, path checks reused, revocation never cached."""

from __future__ import annotations

import dataclasses
import datetime as dt

from cryptography import x509

from jpki.revocation import RevocationIndex
from jpki.testca import Hierarchy, IssuedPerson
from jpki.testca.crl import RevokedEntry, build_crl
from jpki.validation import (
    ReasonCode,
    RevocationConfig,
    TrustPolicy,
    ValidationCache,
    validate,
)
from tests.fixtures.jpki import make_person
from tests.jpki.validation_corpus import der

DAY = dt.timedelta(days=1)


def crl(hierarchy: Hierarchy, at: dt.datetime, number: int, revoked: list[int] = ()) -> bytes:
    return build_crl(
        issuer_certificate=hierarchy.auth_ca_certificate,
        issuer_key=hierarchy.ca_key("auth"),
        crl_number=number,
        this_update=at,
        next_update=at + DAY,
        entries=[
            RevokedEntry(serial, at - dt.timedelta(hours=1), x509.ReasonFlags.key_compromise)
            for serial in revoked
        ],
    )


def policy_and_index(hierarchy: Hierarchy, at: dt.datetime) -> tuple[TrustPolicy, RevocationIndex]:
    index = RevocationIndex(hierarchy.auth_ca_certificate)
    index.ingest(crl(hierarchy, at, 1), at=at)
    policy = TrustPolicy.for_test_hierarchy(
        hierarchy.auth_ca_certificate,
        hierarchy.sign_ca_certificate,
        revocation=RevocationConfig.from_crls([index]),
    )
    return policy, index


def same(left, right) -> bool:  # type: ignore[no-untyped-def]
    return dataclasses.asdict(left) == dataclasses.asdict(right)


def test_cached_result_equals_a_full_validation(
    test_hierarchy: Hierarchy, demo_person: IssuedPerson, test_now: dt.datetime
) -> None:
    policy, _ = policy_and_index(test_hierarchy, test_now)
    cache = ValidationCache()
    certificate = der(demo_person.auth_certificate)
    first = validate(certificate, "auth", at=test_now, policy=policy, cache=cache)
    later = test_now + dt.timedelta(minutes=1)
    second = validate(certificate, "auth", at=later, policy=policy, cache=cache)
    assert (cache.misses, cache.hits, len(cache)) == (1, 1, 1)
    assert first.reason is ReasonCode.VALID
    assert same(second, validate(certificate, "auth", at=later, policy=policy))
    assert second.validated_at == later


def test_revocation_is_checked_on_every_call(
    test_hierarchy: Hierarchy, test_now: dt.datetime
) -> None:
    person = make_person(test_hierarchy)
    policy, index = policy_and_index(test_hierarchy, test_now)
    cache = ValidationCache()
    certificate = der(person.auth_certificate)
    assert validate(certificate, "auth", at=test_now, policy=policy, cache=cache).valid
    later = test_now + dt.timedelta(minutes=5)
    index.ingest(crl(test_hierarchy, later, 2, [person.auth_certificate.serial_number]), at=later)
    result = validate(certificate, "auth", at=later, policy=policy, cache=cache)
    assert result.reason is ReasonCode.REVOKED
    assert result.revocation is not None and result.revocation.crl_number == 2
    assert same(result, validate(certificate, "auth", at=later, policy=policy))


def test_a_new_crl_drops_the_entry(
    test_hierarchy: Hierarchy, demo_person: IssuedPerson, test_now: dt.datetime
) -> None:
    policy, index = policy_and_index(test_hierarchy, test_now)
    cache = ValidationCache()
    certificate = der(demo_person.auth_certificate)
    validate(certificate, "auth", at=test_now, policy=policy, cache=cache)
    later = test_now + dt.timedelta(minutes=5)
    index.ingest(crl(test_hierarchy, later, 2), at=later)
    result = validate(certificate, "auth", at=later, policy=policy, cache=cache)
    assert (cache.misses, cache.hits) == (2, 0)  # checked in full again, then cached anew
    assert result.valid and result.revocation is not None and result.revocation.crl_number == 2
    validate(certificate, "auth", at=later, policy=policy, cache=cache)
    assert cache.hits == 1


def test_past_the_crl_next_update_the_path_is_checked_again_and_stale_reported(
    test_hierarchy: Hierarchy, demo_person: IssuedPerson, test_now: dt.datetime
) -> None:
    policy, _ = policy_and_index(test_hierarchy, test_now)
    cache = ValidationCache()
    certificate = der(demo_person.auth_certificate)
    validate(certificate, "auth", at=test_now, policy=policy, cache=cache)
    much_later = test_now + 2 * DAY
    result = validate(certificate, "auth", at=much_later, policy=policy, cache=cache)
    assert cache.hits == 0
    assert result.reason is ReasonCode.REVOCATION_STALE
    assert same(result, validate(certificate, "auth", at=much_later, policy=policy))


def test_an_expired_certificate_is_refused_although_it_was_cached(
    test_hierarchy: Hierarchy, test_now: dt.datetime
) -> None:
    person = make_person(test_hierarchy, not_after=test_now + dt.timedelta(hours=1))
    policy, _ = policy_and_index(test_hierarchy, test_now)  # the CRL stays current
    cache = ValidationCache()
    certificate = der(person.auth_certificate)
    assert validate(certificate, "auth", at=test_now, policy=policy, cache=cache).valid
    after_expiry = test_now + dt.timedelta(hours=2)
    result = validate(certificate, "auth", at=after_expiry, policy=policy, cache=cache)
    assert result.reason is ReasonCode.EXPIRED
    assert cache.hits == 0


def test_entries_are_per_policy_and_purpose_and_refusals_are_not_cached(
    test_hierarchy: Hierarchy, demo_person: IssuedPerson, test_now: dt.datetime
) -> None:
    policy, _ = policy_and_index(test_hierarchy, test_now)
    other_policy, _ = policy_and_index(test_hierarchy, test_now)
    cache = ValidationCache()
    certificate = der(demo_person.auth_certificate)
    validate(certificate, "auth", at=test_now, policy=policy, cache=cache)
    validate(certificate, "auth", at=test_now, policy=other_policy, cache=cache)
    assert (cache.hits, len(cache)) == (0, 2)
    for _ in range(2):
        wrong = validate(certificate, "sign", at=test_now, policy=policy, cache=cache)
        assert wrong.reason is ReasonCode.WRONG_PURPOSE
    assert (cache.hits, len(cache)) == (0, 2)


def test_least_recently_used_entries_go_first(
    test_hierarchy: Hierarchy, demo_person: IssuedPerson, test_now: dt.datetime
) -> None:
    policy, _ = policy_and_index(test_hierarchy, test_now)
    cache = ValidationCache(max_entries=1)
    other = make_person(test_hierarchy)
    validate(der(demo_person.auth_certificate), "auth", at=test_now, policy=policy, cache=cache)
    validate(der(other.auth_certificate), "auth", at=test_now, policy=policy, cache=cache)
    validate(der(demo_person.auth_certificate), "auth", at=test_now, policy=policy, cache=cache)
    assert (cache.hits, cache.misses, len(cache)) == (0, 3, 1)
