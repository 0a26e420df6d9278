"""validate(): the negative corpus, each case asserting its exact reason code."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import NameOID

from jpki import profile
from jpki.revocation import RevocationIndex
from jpki.testca import Hierarchy, IssuedPerson
from jpki.testca.crl import RevokedEntry
from jpki.trust import AnchorPurpose, TrustAnchor, production_anchors
from jpki.validation import (
    Purpose,
    ReasonCode,
    RevocationConfig,
    RevocationMode,
    TrustPolicy,
    ValidationUsageError,
    validate,
)
from tests.jpki.validation_corpus import (
    USAGE_AUTH,
    USAGE_SIGN,
    ca_of,
    crl_indexes,
    der,
    flip_last_signature_byte,
    flip_subject_byte,
    make_leaf,
    make_root,
    resign_with_serial,
    resign_with_sha1,
    weak_key,
)


@pytest.fixture(scope="module")
def policy(test_hierarchy: Hierarchy, test_now: dt.datetime) -> TrustPolicy:
    return TrustPolicy.for_test_hierarchy(
        test_hierarchy.auth_ca_certificate,
        test_hierarchy.sign_ca_certificate,
        revocation=crl_indexes(test_hierarchy, test_now),
    )


@pytest.fixture(scope="module")
def no_revocation(test_hierarchy: Hierarchy) -> TrustPolicy:
    """For cases about other checks: revocation would otherwise be the first failure."""
    return TrustPolicy.for_test_hierarchy(
        test_hierarchy.auth_ca_certificate,
        test_hierarchy.sign_ca_certificate,
        revocation=RevocationMode.OFF,
    )


def test_demo_person_certificates_are_valid_with_evidence(
    demo_person: IssuedPerson, policy: TrustPolicy, test_now: dt.datetime
) -> None:
    for certificate, purpose in (
        (demo_person.auth_certificate, Purpose.AUTH),
        (demo_person.sign_certificate, Purpose.SIGN),
    ):
        result = validate(der(certificate), purpose, at=test_now, policy=policy)
        assert result.valid, result
        assert result.reason is ReasonCode.VALID
        assert result.serial == certificate.serial_number
        assert result.path[0] == certificate.fingerprint(hashes.SHA256()).hex()
        anchor = (
            demo_person.auth_ca_certificate
            if purpose is Purpose.AUTH
            else (demo_person.sign_ca_certificate)
        )
        assert result.path[-1] == anchor.fingerprint(hashes.SHA256()).hex()
        assert result.trust_anchor == f"test-{purpose}"
        assert result.hierarchy == "test"
        assert result.validated_at == test_now
        assert result.revocation is not None and result.revocation.source == "crl"
        assert result.revocation.crl_number == 1
        assert result.revocation.this_update <= test_now <= result.revocation.next_update


def test_result_is_frozen(demo_person: IssuedPerson, policy: TrustPolicy, test_now) -> None:
    result = validate(der(demo_person.auth_certificate), "auth", at=test_now, policy=policy)
    with pytest.raises(AttributeError):
        result.valid = False  # type: ignore[misc]


@pytest.mark.parametrize(
    ("offset", "reason"),
    [
        (dt.timedelta(days=-400), ReasonCode.NOT_YET_VALID),
        (dt.timedelta(days=400), ReasonCode.EXPIRED),
    ],
)
def test_validity_window(
    test_hierarchy: Hierarchy, no_revocation: TrustPolicy, test_now, offset, reason
) -> None:
    certificate = make_leaf(
        ca_of(test_hierarchy, "auth"),
        now=test_now,
        not_before=test_now - dt.timedelta(days=1),
        not_after=test_now + dt.timedelta(days=1),
    )
    assert validate(der(certificate), "auth", at=test_now, policy=no_revocation).valid
    result = validate(der(certificate), "auth", at=test_now + offset, policy=no_revocation)
    assert result.reason is reason


def test_clock_skew_tolerance_applies_at_the_edges(
    test_hierarchy: Hierarchy, no_revocation: TrustPolicy, test_now
) -> None:
    certificate = make_leaf(
        ca_of(test_hierarchy, "auth"), now=test_now, not_before=test_now + dt.timedelta(minutes=2)
    )
    assert validate(der(certificate), "auth", at=test_now, policy=no_revocation).valid
    strict = TrustPolicy.for_test_hierarchy(
        test_hierarchy.auth_ca_certificate,
        test_hierarchy.sign_ca_certificate,
        revocation=RevocationMode.OFF,
        clock_skew=dt.timedelta(0),
    )
    result = validate(der(certificate), "auth", at=test_now, policy=strict)
    assert result.reason is ReasonCode.NOT_YET_VALID


@pytest.mark.parametrize("reason", list(x509.ReasonFlags))
def test_revoked_with_each_reason(
    test_hierarchy: Hierarchy, test_now: dt.datetime, reason: x509.ReasonFlags
) -> None:
    certificate = make_leaf(ca_of(test_hierarchy, "auth"), now=test_now)
    revoked_at = test_now - dt.timedelta(hours=3)
    entry = RevokedEntry(certificate.serial_number, revoked_at, reason)
    policy = TrustPolicy.for_test_hierarchy(
        test_hierarchy.auth_ca_certificate,
        test_hierarchy.sign_ca_certificate,
        revocation=crl_indexes(test_hierarchy, test_now, [("auth", entry)]),
    )
    result = validate(der(certificate), "auth", at=test_now, policy=policy)
    assert result.reason is ReasonCode.REVOKED
    assert not result.valid
    assert result.revocation_reason is reason
    assert result.revoked_at == revoked_at
    assert result.revocation is not None and result.revocation.source == "crl"
    # Before the revocation date the same CRL says the certificate was good.
    earlier = validate(
        der(certificate), "auth", at=revoked_at - dt.timedelta(hours=1), policy=policy
    )
    assert earlier.valid, earlier


def test_person_revoked_by_the_test_ca_is_revoked(test_hierarchy: Hierarchy, test_now) -> None:
    from tests.fixtures.jpki import make_person

    person = make_person(test_hierarchy)
    test_hierarchy.revoke(
        person.sign_serial,
        purpose="sign",
        reason=x509.ReasonFlags.affiliation_changed,
        revoked_at=test_now - dt.timedelta(minutes=30),
    )
    index = RevocationIndex(test_hierarchy.sign_ca_certificate)
    index.ingest(test_hierarchy.crl("sign", this_update=test_now), at=test_now)
    policy = TrustPolicy.for_test_hierarchy(
        test_hierarchy.auth_ca_certificate,
        test_hierarchy.sign_ca_certificate,
        revocation=RevocationConfig.from_crls([index]),
    )
    result = validate(der(person.sign_certificate), "sign", at=test_now, policy=policy)
    assert result.reason is ReasonCode.REVOKED
    assert result.revocation_reason is x509.ReasonFlags.affiliation_changed


def test_ca_certificate_as_leaf(test_hierarchy: Hierarchy, no_revocation, test_now) -> None:
    for purpose in ("auth", "sign"):
        result = validate(
            der(test_hierarchy.ca_certificate(purpose)), purpose, at=test_now, policy=no_revocation
        )
        assert result.reason is ReasonCode.CA_AS_LEAF
    # A subordinate CA issued by the test root is refused the same way.
    sub_ca = make_leaf(ca_of(test_hierarchy, "auth"), now=test_now, ca=True)
    assert (
        validate(der(sub_ca), "auth", at=test_now, policy=no_revocation).reason
        is ReasonCode.CA_AS_LEAF
    )


def test_unknown_root(no_revocation: TrustPolicy, test_now) -> None:
    stranger = make_root(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Some Other CA")]), now=test_now
    )
    certificate = make_leaf(stranger, now=test_now)
    result = validate(der(certificate), "auth", at=test_now, policy=no_revocation)
    assert result.reason is ReasonCode.UNTRUSTED_ROOT
    assert result.trust_anchor is None


def test_self_signed_leaf(test_hierarchy: Hierarchy, no_revocation, test_now) -> None:
    certificate = make_leaf(ca_of(test_hierarchy, "auth"), now=test_now, self_signed=True)
    result = validate(der(certificate), "auth", at=test_now, policy=no_revocation)
    assert result.reason is ReasonCode.UNTRUSTED_ROOT


def test_test_ca_name_copy_with_another_key_is_untrusted(
    test_hierarchy: Hierarchy, no_revocation, test_now
) -> None:
    impostor = make_root(test_hierarchy.auth_ca_certificate.subject, now=test_now)
    certificate = make_leaf(impostor, now=test_now)
    result = validate(der(certificate), "auth", at=test_now, policy=no_revocation)
    assert result.reason is ReasonCode.UNTRUSTED_ROOT


@pytest.mark.parametrize("anchor", production_anchors(), ids=lambda a: a.name)
def test_production_looking_chain_under_a_copied_root_is_rejected(
    anchor: TrustAnchor, test_now: dt.datetime
) -> None:
    """Same subject names and profile as J-LIS, a different key: never valid in production."""
    copied_root = make_root(anchor.certificate.subject, now=test_now)
    purpose = Purpose(anchor.purpose.value)
    certificate = make_leaf(
        copied_root,
        now=test_now,
        usage=USAGE_AUTH if purpose is Purpose.AUTH else USAGE_SIGN,
        policies=[
            profile.AUTH_POLICY_PRODUCTION
            if purpose is Purpose.AUTH
            else profile.SIGN_POLICY_PRODUCTION
        ],
    )
    production = TrustPolicy.production(revocation=RevocationMode.OFF)
    result = validate(der(certificate), purpose, at=test_now, policy=production)
    assert result.reason is ReasonCode.UNTRUSTED_ROOT
    # The certificate itself is fine: trusting the copied root (and only that) accepts it.
    trusting_the_copy = TrustPolicy(
        name="copy",
        anchors=(TrustAnchor("copy", anchor.purpose, copied_root.certificate, production=False),),
        acceptable_policies=production.acceptable_policies,
        revocation=RevocationConfig.off(),
    )
    assert validate(der(certificate), purpose, at=test_now, policy=trusting_the_copy).valid


def test_test_certificates_never_validate_in_production(
    demo_person: IssuedPerson, test_now
) -> None:
    production = TrustPolicy.production(revocation=RevocationMode.OFF)
    for certificate, purpose in (
        (demo_person.auth_certificate, "auth"),
        (demo_person.sign_certificate, "sign"),
    ):
        result = validate(der(certificate), purpose, at=test_now, policy=production)
        assert result.reason is ReasonCode.UNTRUSTED_ROOT


def test_wrong_purpose_both_ways(demo_person: IssuedPerson, policy, test_now) -> None:
    auth_as_sign = validate(der(demo_person.auth_certificate), "sign", at=test_now, policy=policy)
    sign_as_auth = validate(der(demo_person.sign_certificate), "auth", at=test_now, policy=policy)
    assert auth_as_sign.reason is ReasonCode.WRONG_PURPOSE
    assert sign_as_auth.reason is ReasonCode.WRONG_PURPOSE


@pytest.mark.parametrize(
    ("purpose", "policies"),
    [
        ("auth", []),
        ("sign", []),
        ("auth", [profile.AUTH_POLICY_PRODUCTION]),
        ("sign", [profile.SIGN_POLICY_PRODUCTION]),
        ("sign", [profile.AUTH_POLICY_TEST]),
        ("auth", ["1.2.3.4.5"]),
    ],
)
def test_missing_or_wrong_policy(
    test_hierarchy: Hierarchy, no_revocation, test_now, purpose, policies
) -> None:
    certificate = make_leaf(
        ca_of(test_hierarchy, purpose),
        now=test_now,
        usage=USAGE_AUTH if purpose == "auth" else USAGE_SIGN,
        policies=policies,
    )
    result = validate(der(certificate), purpose, at=test_now, policy=no_revocation)
    assert result.reason is ReasonCode.POLICY_MISMATCH


@pytest.mark.parametrize(
    ("purpose", "usage"),
    [
        ("auth", USAGE_SIGN),  # nonRepudiation on an auth certificate
        ("sign", USAGE_AUTH),  # a sign certificate without nonRepudiation
        ("auth", {"key_encipherment": True}),
        ("sign", {"content_commitment": True}),
    ],
)
def test_wrong_key_usage(
    test_hierarchy: Hierarchy, no_revocation, test_now, purpose, usage
) -> None:
    certificate = make_leaf(
        ca_of(test_hierarchy, purpose),
        now=test_now,
        usage=usage,
        policies=[profile.AUTH_POLICY_TEST if purpose == "auth" else profile.SIGN_POLICY_TEST],
    )
    result = validate(der(certificate), purpose, at=test_now, policy=no_revocation)
    assert result.reason is ReasonCode.KEY_USAGE_MISMATCH


def test_tampered_signature_and_tampered_content(
    demo_person: IssuedPerson, no_revocation, test_now
) -> None:
    good = der(demo_person.auth_certificate)
    for tampered in (
        flip_last_signature_byte(good),
        flip_subject_byte(demo_person.auth_certificate),
    ):
        assert tampered != good
        result = validate(tampered, "auth", at=test_now, policy=no_revocation)
        assert result.reason is ReasonCode.BAD_SIGNATURE


@pytest.mark.parametrize(
    "data",
    [b"", b"\x00", b"garbage", b"\x30\x82\xff\xff", b"\x30\x03\x02\x01\x01", bytes(range(256))],
)
def test_garbage_der_is_malformed(data: bytes, policy, test_now) -> None:
    result = validate(data, "auth", at=test_now, policy=policy)
    assert result.reason is ReasonCode.MALFORMED
    assert not result.valid


def test_truncated_der_is_malformed(demo_person: IssuedPerson, policy, test_now) -> None:
    good = der(demo_person.sign_certificate)
    for length in (1, 4, 100, len(good) // 2, len(good) - 1):
        result = validate(good[:length], "sign", at=test_now, policy=policy)
        assert result.reason is ReasonCode.MALFORMED, length
    assert validate(good + b"\x00", "sign", at=test_now, policy=policy).reason is (
        ReasonCode.MALFORMED
    )


@pytest.mark.parametrize("serial", [0, -5])
def test_non_positive_serial_is_malformed(
    test_hierarchy: Hierarchy, no_revocation, test_now, serial
) -> None:
    issuer = ca_of(test_hierarchy, "auth")
    certificate = resign_with_serial(make_leaf(issuer, now=test_now), issuer.key, serial)
    result = validate(certificate, "auth", at=test_now, policy=no_revocation)
    assert result.reason is ReasonCode.MALFORMED


def test_weak_algorithms_refused(test_hierarchy: Hierarchy, no_revocation, test_now) -> None:
    issuer = ca_of(test_hierarchy, "auth")
    sha1 = resign_with_sha1(make_leaf(issuer, now=test_now), issuer.key)
    short_key = der(make_leaf(issuer, now=test_now, key=weak_key()))
    for certificate in (sha1, short_key):
        result = validate(certificate, "auth", at=test_now, policy=no_revocation)
        assert result.reason is ReasonCode.WEAK_ALGORITHM


def test_unknown_critical_extension(test_hierarchy: Hierarchy, no_revocation, test_now) -> None:
    unknown = x509.UnrecognizedExtension(x509.ObjectIdentifier("1.2.3.4.5.6"), b"\x05\x00")
    certificate = make_leaf(
        ca_of(test_hierarchy, "auth"), now=test_now, extra_extensions=[(unknown, True)]
    )
    result = validate(der(certificate), "auth", at=test_now, policy=no_revocation)
    assert result.reason is ReasonCode.UNSUPPORTED_CRITICAL_EXTENSION
    harmless = make_leaf(
        ca_of(test_hierarchy, "auth"), now=test_now, extra_extensions=[(unknown, False)]
    )
    assert validate(der(harmless), "auth", at=test_now, policy=no_revocation).valid


def test_usage_errors_are_the_only_exceptions(demo_person, policy, test_now) -> None:
    certificate = der(demo_person.auth_certificate)
    with pytest.raises(ValidationUsageError):
        validate(certificate, "auth", at=test_now.replace(tzinfo=None), policy=policy)
    with pytest.raises(ValidationUsageError):
        validate(certificate, "login", at=test_now, policy=policy)
    with pytest.raises(ValidationUsageError):
        validate(certificate, "auth", at=test_now, policy=object())  # type: ignore[arg-type]


def test_production_policy_knows_the_bundled_anchors() -> None:
    production = TrustPolicy.production()
    assert {a.purpose for a in production.anchors} == {AnchorPurpose.AUTH, AnchorPurpose.SIGN}
    assert all(a.production for a in production.anchors)
    assert production.revocation.mode is RevocationMode.REQUIRE
    assert production.acceptable_policies[Purpose.SIGN] == {profile.SIGN_POLICY_PRODUCTION}
