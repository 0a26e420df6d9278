"""Validate a My Number Card certificate for a purpose, at an explicit time, under a policy.

`validate()` never raises for anything about the certificate: every outcome,
including garbage bytes, is a frozen `ValidationResult` with a stable
`ReasonCode`. It raises `ValidationUsageError` only when called wrongly (a
naive `at`, an unknown purpose, a policy of the wrong type).

Checks run in a fixed order, and the first failure decides the reason (see
docs/validation.md): parse, algorithms, CA-as-leaf, issuing anchor and
signature, validity, key usage, policy, critical extensions, the PKIX path
check by pyhanko-certvalidator, then revocation from the policy's CRL indexes
or OCSP clients (certvalidator's own revocation checking is off, so no
validation re-reads a CRL).
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import threading
import warnings
from collections import OrderedDict
from collections.abc import Coroutine, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.utils import CryptographyDeprecationWarning
from cryptography.x509.oid import ExtensionOID
from pyhanko_certvalidator import ValidationContext
from pyhanko_certvalidator.authority import CertTrustAnchor
from pyhanko_certvalidator.errors import (
    DisallowedAlgorithmError,
    ExpiredError,
    NotYetValidError,
    PathValidationError,
    ValidationError,
)
from pyhanko_certvalidator.path import ValidationPath
from pyhanko_certvalidator.policy_decl import (
    CertRevTrustPolicy,
    DisallowWeakAlgorithmsPolicy,
    PKIXValidationParams,
    RevocationCheckingPolicy,
    RevocationCheckingRule,
)
from pyhanko_certvalidator.validate import async_validate_path

from jpki import profile
from jpki.revocation import RevocationStatus
from jpki.revocation_policy import (
    RevocationConfig,
    RevocationEvidence,
    RevocationMode,
    RevocationOrder,
)
from jpki.trust import AnchorPurpose, TrustAnchor, production_anchors

__all__ = [
    "Purpose",
    "ReasonCode",
    "RevocationConfig",
    "RevocationEvidence",
    "RevocationMode",
    "RevocationOrder",
    "TrustAnchor",
    "TrustPolicy",
    "ValidationCache",
    "ValidationResult",
    "ValidationUsageError",
    "validate",
    "validate_anchor",
]

MIN_RSA_BITS = 2048
WEAK_HASHES = frozenset({"md5", "sha1", "sha224"})
_DER = Encoding.DER
_T = TypeVar("_T")


class Purpose(enum.StrEnum):
    AUTH = "auth"
    SIGN = "sign"


class ReasonCode(enum.StrEnum):
    """Stable codes; the service and the audit log store these strings."""

    VALID = "valid"
    MALFORMED = "malformed"
    WEAK_ALGORITHM = "weak_algorithm"
    CA_AS_LEAF = "ca_as_leaf"
    UNTRUSTED_ROOT = "untrusted_root"
    BAD_SIGNATURE = "bad_signature"
    WRONG_PURPOSE = "wrong_purpose"
    NOT_YET_VALID = "not_yet_valid"
    EXPIRED = "expired"
    KEY_USAGE_MISMATCH = "key_usage_mismatch"
    POLICY_MISMATCH = "policy_mismatch"
    UNSUPPORTED_CRITICAL_EXTENSION = "unsupported_critical_extension"
    PATH_INVALID = "path_invalid"
    REVOKED = "revoked"
    REVOCATION_UNAVAILABLE = "revocation_unavailable"
    REVOCATION_STALE = "revocation_stale"


class ValidationUsageError(ValueError):
    """validate() was called wrongly (naive time, unknown purpose): a programming error."""


@dataclass(frozen=True)
class ValidationResult:
    valid: bool
    reason: ReasonCode
    purpose: Purpose
    validated_at: datetime
    detail: str = ""  # for people and logs; never holds the certificate's personal data
    certificate_sha256: str | None = None
    serial: int | None = None
    path: tuple[str, ...] = ()  # SHA-256 fingerprints, leaf first, trust anchor last
    trust_anchor: str | None = None  # anchor name, e.g. "auth_ca_2023" or "test-auth"
    trust_anchor_sha256: str | None = None
    hierarchy: str | None = None  # "production" or "test"
    revocation: RevocationEvidence | None = None
    revocation_reason: x509.ReasonFlags | None = None
    revoked_at: datetime | None = None


# Extensions this validator processes; any other critical one makes the certificate invalid.
KNOWN_EXTENSIONS = frozenset(
    {
        ExtensionOID.BASIC_CONSTRAINTS,
        ExtensionOID.KEY_USAGE,
        ExtensionOID.EXTENDED_KEY_USAGE,
        ExtensionOID.CERTIFICATE_POLICIES,
        ExtensionOID.SUBJECT_ALTERNATIVE_NAME,
        ExtensionOID.ISSUER_ALTERNATIVE_NAME,
        ExtensionOID.AUTHORITY_KEY_IDENTIFIER,
        ExtensionOID.SUBJECT_KEY_IDENTIFIER,
        ExtensionOID.CRL_DISTRIBUTION_POINTS,
        ExtensionOID.AUTHORITY_INFORMATION_ACCESS,
    }
)

_NO_REVOCATION_IN_CERTVALIDATOR = CertRevTrustPolicy(
    RevocationCheckingPolicy(
        ee_certificate_rule=RevocationCheckingRule.NO_CHECK,
        intermediate_ca_cert_rule=RevocationCheckingRule.NO_CHECK,
    )
)
_ALGORITHM_POLICY = DisallowWeakAlgorithmsPolicy(
    weak_hash_algos=WEAK_HASHES, rsa_key_size_threshold=MIN_RSA_BITS
)


@dataclass(frozen=True)
class _PreparedAnchor:
    anchor: TrustAnchor
    sha256: str
    subject_key_id: bytes | None
    certvalidator_anchor: CertTrustAnchor


def _subject_key_id(certificate: x509.Certificate) -> bytes | None:
    try:
        return certificate.extensions.get_extension_for_class(
            x509.SubjectKeyIdentifier
        ).value.digest
    except x509.ExtensionNotFound:
        return None


def _prepare(anchor: TrustAnchor) -> _PreparedAnchor:
    der = anchor.certificate.public_bytes(encoding=_DER)
    return _PreparedAnchor(
        anchor=anchor,
        sha256=hashlib.sha256(der).hexdigest(),
        subject_key_id=_subject_key_id(anchor.certificate),
        certvalidator_anchor=CertTrustAnchor(asn1_x509.Certificate.load(der)),
    )


@dataclass(frozen=True)
class TrustPolicy:
    """Anchors, acceptable policy OIDs per purpose, revocation and clock skew. Build once.

    Use `TrustPolicy.production()` for real cards and
    `TrustPolicy.for_test_hierarchy(auth_ca, sign_ca)` for the test CA.
    """

    name: str
    anchors: tuple[TrustAnchor, ...]
    acceptable_policies: Mapping[Purpose, frozenset[str]]
    revocation: RevocationConfig = field(default_factory=RevocationConfig)
    clock_skew: timedelta = timedelta(minutes=5)
    _prepared: tuple[_PreparedAnchor, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.anchors:
            raise ValueError("a trust policy needs at least one anchor")
        object.__setattr__(self, "_prepared", tuple(_prepare(a) for a in self.anchors))

    @classmethod
    def production(
        cls,
        *,
        revocation: RevocationConfig | RevocationMode = RevocationMode.REQUIRE,
        clock_skew: timedelta = timedelta(minutes=5),
        acceptable_policies: Mapping[Purpose, Iterable[str]] | None = None,
    ) -> TrustPolicy:
        """The bundled J-LIS roots and the production certificate policies."""
        policies = acceptable_policies or {
            Purpose.AUTH: {profile.AUTH_POLICY_PRODUCTION},
            Purpose.SIGN: {profile.SIGN_POLICY_PRODUCTION},
        }
        return cls(
            name="production",
            anchors=production_anchors(),
            acceptable_policies={Purpose(k): frozenset(v) for k, v in policies.items()},
            revocation=_revocation(revocation),
            clock_skew=clock_skew,
        )

    @classmethod
    def for_test_hierarchy(
        cls,
        auth_ca: x509.Certificate,
        sign_ca: x509.Certificate,
        *,
        revocation: RevocationConfig | RevocationMode = RevocationMode.REQUIRE,
        clock_skew: timedelta = timedelta(minutes=5),
    ) -> TrustPolicy:
        """The test CA's two roots and the test certificate policies (never production ones)."""
        return cls(
            name="test",
            anchors=(
                TrustAnchor("test-auth", AnchorPurpose.AUTH, auth_ca, production=False),
                TrustAnchor("test-sign", AnchorPurpose.SIGN, sign_ca, production=False),
            ),
            acceptable_policies={
                Purpose.AUTH: frozenset({profile.AUTH_POLICY_TEST}),
                Purpose.SIGN: frozenset({profile.SIGN_POLICY_TEST}),
            },
            revocation=_revocation(revocation),
            clock_skew=clock_skew,
        )


def _revocation(value: RevocationConfig | RevocationMode) -> RevocationConfig:
    if isinstance(value, RevocationConfig):
        return value
    return RevocationConfig(mode=RevocationMode(value))


@dataclass(frozen=True)
class _CachedPath:
    policy: TrustPolicy  # the very policy object the path was checked under
    leaf: x509.Certificate
    anchor: _PreparedAnchor
    valid_from: datetime  # the moments `at` for which every cached check holds
    valid_until: datetime
    revocation_state: tuple[object, ...]


def _revocation_state(policy: TrustPolicy) -> tuple[object, ...]:
    """Which revocation data the policy holds now: the current CRL of each index.

    A refresh that installs another CRL (new CRL number, new bytes) changes it.
    """
    return tuple(
        (info.sha256, info.crl_number) if (info := index.current) is not None else None
        for index in policy.revocation.crl_indexes
    )


def _revocation_valid_until(policy: TrustPolicy) -> datetime | None:
    """The earliest nextUpdate among the policy's current CRLs."""
    next_updates = [
        info.next_update
        for index in policy.revocation.crl_indexes
        if (info := index.current) is not None and info.next_update is not None
    ]
    return min(next_updates) if next_updates else None


class ValidationCache:
    """Path checks of certificates that passed them, reused; revocation is never cached.

    `validate(..., cache=cache)` runs every check up to and including the PKIX
    path check once per (certificate SHA-256, purpose, trust policy), and then
    for each call only the revocation check against the policy's current
    revocation data. An entry is used only
    * under the same TrustPolicy object it was made under,
    * for moments within the validity (with the policy's clock skew) of both
      the certificate and its anchor, so an expired certificate is re-checked
      and refused,
    * while the policy holds the same CRLs (a refresh that installs a new CRL
      drops every entry) and before the earliest nextUpdate among them.
    Only certificates that passed the path checks are cached; anything refused
    is checked in full every time. Thread-safe; least recently used entries go
    first once `max_entries` is reached.
    """

    def __init__(self, max_entries: int = 10_000) -> None:
        self.max_entries = max_entries
        self._entries: OrderedDict[tuple[str, Purpose, int], _CachedPath] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def _get(
        self, sha256: str, purpose: Purpose, policy: TrustPolicy, at: datetime
    ) -> _CachedPath | None:
        key = (sha256, purpose, id(policy))
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                self.misses += 1
                return None
            if (
                entry.policy is not policy
                or not entry.valid_from <= at <= entry.valid_until
                or entry.revocation_state != _revocation_state(policy)
            ):
                del self._entries[key]
                self.misses += 1
                return None
            self._entries.move_to_end(key)
            self.hits += 1
            return entry

    def _put(self, check: _Validation) -> None:
        assert check.leaf is not None and check.anchor is not None
        policy, skew = check.policy, check.policy.clock_skew
        anchor_certificate = check.anchor.anchor.certificate
        valid_until = (
            min(check.leaf.not_valid_after_utc, anchor_certificate.not_valid_after_utc) + skew
        )
        revocation_until = _revocation_valid_until(policy)
        if revocation_until is not None:
            valid_until = min(valid_until, revocation_until + skew)
        entry = _CachedPath(
            policy=policy,
            leaf=check.leaf,
            anchor=check.anchor,
            valid_from=max(check.leaf.not_valid_before_utc, anchor_certificate.not_valid_before_utc)
            - skew,
            valid_until=valid_until,
            revocation_state=_revocation_state(policy),
        )
        key = (check.sha256, check.purpose, id(policy))
        with self._lock:
            self._entries[key] = entry
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)


class _Reject(Exception):
    """Internal: stops the check sequence with a reason."""

    def __init__(self, reason: ReasonCode, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def validate(
    certificate: bytes | x509.Certificate,
    purpose: Purpose | str,
    *,
    at: datetime,
    policy: TrustPolicy,
    cache: ValidationCache | None = None,
) -> ValidationResult:
    """Validate `certificate` (DER) for `purpose` at `at` under `policy`. Never raises for input.

    With a `cache`, the checks before revocation are reused for a certificate
    that passed them under this policy (see ValidationCache); revocation is
    checked on every call. The result is the same as without the cache.
    """
    if not isinstance(at, datetime) or at.tzinfo is None or at.utcoffset() is None:
        raise ValidationUsageError("`at` must be a timezone-aware datetime")
    try:
        purpose = Purpose(purpose)
    except ValueError as error:
        raise ValidationUsageError(f"unknown purpose {purpose!r}") from error
    if not isinstance(policy, TrustPolicy):
        raise ValidationUsageError("`policy` must be a TrustPolicy")
    if isinstance(certificate, x509.Certificate):
        certificate = certificate.public_bytes(_DER)
    if not isinstance(certificate, bytes | bytearray | memoryview):
        raise ValidationUsageError("`certificate` must be DER bytes")
    check = _Validation(bytes(certificate), purpose, at, policy)
    if cache is None:
        return check.run()
    cached = cache._get(check.sha256, purpose, policy, at)
    if cached is None:
        return check.run(cache)
    check.leaf, check.anchor = cached.leaf, cached.anchor
    return check._check_revocation(cached.leaf, cached.anchor)


def validate_anchor(anchor: TrustAnchor, *, at: datetime) -> ValidationResult:
    """Validate a trust anchor as the anchor of itself (a start-up sanity check).

    Checks its self-signature, CA profile (basicConstraints CA, keyCertSign and
    cRLSign), algorithms and validity at `at`, and runs certvalidator on the
    path that consists of the anchor alone.
    """
    if not isinstance(at, datetime) or at.tzinfo is None or at.utcoffset() is None:
        raise ValidationUsageError("`at` must be a timezone-aware datetime")
    prepared = _prepare(anchor)
    policy = TrustPolicy(
        name="anchor",
        anchors=(anchor,),
        acceptable_policies={},
        revocation=RevocationConfig.off(),
        clock_skew=timedelta(0),
    )
    check = _Validation(
        anchor.certificate.public_bytes(_DER), Purpose(anchor.purpose.value), at, policy
    )
    check.leaf = anchor.certificate
    try:
        check._check_algorithms(anchor.certificate)
        _check_anchor_profile(anchor.certificate)
        check.anchor = prepared
        check._check_validity(anchor.certificate)
        context = ValidationContext(
            trust_roots=[prepared.certvalidator_anchor],
            moment=at,
            revinfo_policy=_NO_REVOCATION_IN_CERTVALIDATOR,
            algorithm_usage_policy=_ALGORITHM_POLICY,
        )
        path = ValidationPath(
            prepared.certvalidator_anchor, [], prepared.certvalidator_anchor.certificate
        )
        _run_to_completion(async_validate_path(context, path))
    except _Reject as reject:
        return check.result(reject.reason, reject.detail)
    except (PathValidationError, ValidationError) as error:
        return check.result(ReasonCode.PATH_INVALID, str(error))
    result = check.result(ReasonCode.VALID)
    return dataclasses.replace(result, path=(prepared.sha256,))


def _check_anchor_profile(certificate: x509.Certificate) -> None:
    try:
        certificate.verify_directly_issued_by(certificate)
    except (InvalidSignature, ValueError, TypeError, UnsupportedAlgorithm) as error:
        raise _Reject(ReasonCode.BAD_SIGNATURE, "self-signature does not verify") from error
    try:
        constraints = certificate.extensions.get_extension_for_class(x509.BasicConstraints)
        usage = certificate.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound as error:
        raise _Reject(ReasonCode.PATH_INVALID, "anchor lacks basicConstraints/keyUsage") from error
    if not constraints.value.ca or not constraints.critical:
        raise _Reject(ReasonCode.PATH_INVALID, "anchor is not a CA (critical basicConstraints)")
    if not (usage.key_cert_sign and usage.crl_sign):
        raise _Reject(ReasonCode.KEY_USAGE_MISMATCH, "anchor may not sign certificates and CRLs")


class _Validation:
    def __init__(self, der: bytes, purpose: Purpose, at: datetime, policy: TrustPolicy) -> None:
        self.der = der
        self.purpose = purpose
        self.at = at
        self.policy = policy
        self.leaf: x509.Certificate | None = None
        self.anchor: _PreparedAnchor | None = None
        self.sha256 = hashlib.sha256(der).hexdigest()

    def result(self, reason: ReasonCode, detail: str = "", **extra: object) -> ValidationResult:
        anchor = self.anchor
        return ValidationResult(
            valid=reason is ReasonCode.VALID,
            reason=reason,
            purpose=self.purpose,
            validated_at=self.at,
            detail=detail,
            certificate_sha256=self.sha256,
            serial=self.leaf.serial_number if self.leaf is not None else None,
            path=(self.sha256, anchor.sha256) if anchor else (self.sha256,),
            trust_anchor=anchor.anchor.name if anchor else None,
            trust_anchor_sha256=anchor.sha256 if anchor else None,
            hierarchy=("production" if anchor.anchor.production else "test") if anchor else None,
            **extra,  # type: ignore[arg-type]
        )

    def run(self, cache: ValidationCache | None = None) -> ValidationResult:
        try:
            self.leaf = self._parse()
            self._check_algorithms(self.leaf)
            self._check_not_a_ca(self.leaf)
            self.anchor = self._find_anchor(self.leaf)
            self._check_validity(self.leaf)
            self._check_key_usage(self.leaf)
            self._check_policies(self.leaf)
            self._check_critical_extensions(self.leaf)
            self._check_path_with_certvalidator()
            if cache is not None:
                cache._put(self)
            return self._check_revocation(self.leaf, self.anchor)
        except _Reject as reject:
            return self.result(reject.reason, reject.detail)

    def _parse(self) -> x509.Certificate:
        try:
            with warnings.catch_warnings():
                # cryptography warns on non-positive serials before it starts refusing them
                # (RFC 5280 4.1.2.2); they are refused below already.
                warnings.simplefilter("ignore", CryptographyDeprecationWarning)
                leaf = x509.load_der_x509_certificate(self.der)
                serial = leaf.serial_number
            # Parse every extension now: a malformed one must be reported as such, not later.
            leaf.extensions  # noqa: B018
            leaf.public_key()
            leaf.subject  # noqa: B018
            leaf.issuer  # noqa: B018
            # An undefined version number (not 0-2) parses, but reading it raises.
            version = leaf.version
        except (
            ValueError,
            TypeError,
            UnsupportedAlgorithm,
            x509.DuplicateExtension,
            x509.InvalidVersion,
        ) as error:
            raise _Reject(ReasonCode.MALFORMED, f"not a parsable certificate: {error}") from error
        if serial <= 0:
            raise _Reject(ReasonCode.MALFORMED, "serial number is not positive")
        if version is not x509.Version.v3:
            raise _Reject(ReasonCode.MALFORMED, "JPKI certificates are X.509 v3")
        return leaf

    def _check_algorithms(self, leaf: x509.Certificate) -> None:
        try:
            digest = leaf.signature_hash_algorithm
        except UnsupportedAlgorithm as error:
            raise _Reject(ReasonCode.WEAK_ALGORITHM, "unsupported signature algorithm") from error
        if digest is None or digest.name in WEAK_HASHES:
            name = digest.name if digest else "none"
            raise _Reject(ReasonCode.WEAK_ALGORITHM, f"signature hash {name} is refused")
        key = leaf.public_key()
        if isinstance(key, rsa.RSAPublicKey):
            if key.key_size < MIN_RSA_BITS:
                raise _Reject(
                    ReasonCode.WEAK_ALGORITHM, f"RSA key of {key.key_size} bits is too short"
                )
        elif not isinstance(
            key, ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey | ed448.Ed448PublicKey
        ):
            raise _Reject(ReasonCode.WEAK_ALGORITHM, "public key type is refused")

    def _check_not_a_ca(self, leaf: x509.Certificate) -> None:
        extensions = leaf.extensions
        try:
            if extensions.get_extension_for_class(x509.BasicConstraints).value.ca:
                raise _Reject(ReasonCode.CA_AS_LEAF, "a CA certificate is not a card certificate")
        except x509.ExtensionNotFound:
            pass
        try:
            usage = extensions.get_extension_for_class(x509.KeyUsage).value
            if usage.key_cert_sign or usage.crl_sign:
                raise _Reject(ReasonCode.CA_AS_LEAF, "certificate may sign certificates or CRLs")
        except x509.ExtensionNotFound:
            pass

    def _find_anchor(self, leaf: x509.Certificate) -> _PreparedAnchor:
        """The anchor that issued `leaf`, for this purpose; or the reason there is none.

        BAD_SIGNATURE only when the leaf names an anchor by issuer and key id and
        still fails its signature check; a certificate whose issuer merely copies
        an anchor's name under another key is UNTRUSTED_ROOT.
        """
        try:
            authority_key_id = leaf.extensions.get_extension_for_class(
                x509.AuthorityKeyIdentifier
            ).value.key_identifier
        except x509.ExtensionNotFound:
            authority_key_id = None
        wanted = AnchorPurpose(self.purpose.value)
        claimed_but_failed = False
        issued_by_other_purpose: _PreparedAnchor | None = None
        for prepared in self.policy._prepared:
            anchor_certificate = prepared.anchor.certificate
            if leaf.issuer != anchor_certificate.subject:
                continue
            key_named = (
                authority_key_id is not None
                and prepared.subject_key_id is not None
                and authority_key_id == prepared.subject_key_id
            )
            if (
                authority_key_id is not None
                and prepared.subject_key_id is not None
                and not key_named
            ):
                continue  # another generation of this CA name, or an impostor key
            try:
                leaf.verify_directly_issued_by(anchor_certificate)
            except (InvalidSignature, ValueError, TypeError, UnsupportedAlgorithm):
                claimed_but_failed = claimed_but_failed or key_named
                continue
            if prepared.anchor.purpose is wanted:
                return prepared
            issued_by_other_purpose = prepared
        if issued_by_other_purpose is not None:
            self.anchor = issued_by_other_purpose
            raise _Reject(
                ReasonCode.WRONG_PURPOSE,
                f"issued by the {issued_by_other_purpose.anchor.purpose} CA, "
                f"not valid for {self.purpose}",
            )
        if claimed_but_failed:
            raise _Reject(ReasonCode.BAD_SIGNATURE, "signature does not verify with the CA key")
        if leaf.issuer == leaf.subject:
            raise _Reject(ReasonCode.UNTRUSTED_ROOT, "self-signed certificate is not an anchor")
        raise _Reject(ReasonCode.UNTRUSTED_ROOT, f"not issued by a {self.policy.name} anchor")

    def _check_validity(self, leaf: x509.Certificate) -> None:
        skew = self.policy.clock_skew
        if self.at + skew < leaf.not_valid_before_utc:
            raise _Reject(ReasonCode.NOT_YET_VALID, f"valid from {leaf.not_valid_before_utc}")
        if self.at - skew > leaf.not_valid_after_utc:
            raise _Reject(ReasonCode.EXPIRED, f"expired at {leaf.not_valid_after_utc}")

    def _check_key_usage(self, leaf: x509.Certificate) -> None:
        """auth: digitalSignature only; sign: digitalSignature + nonRepudiation (JPKI profile)."""
        try:
            usage = leaf.extensions.get_extension_for_class(x509.KeyUsage).value
        except x509.ExtensionNotFound as error:
            raise _Reject(ReasonCode.KEY_USAGE_MISMATCH, "no keyUsage extension") from error
        if not usage.digital_signature:
            raise _Reject(ReasonCode.KEY_USAGE_MISMATCH, "keyUsage lacks digitalSignature")
        if self.purpose is Purpose.SIGN and not usage.content_commitment:
            raise _Reject(ReasonCode.KEY_USAGE_MISMATCH, "sign certificate lacks nonRepudiation")
        if self.purpose is Purpose.AUTH and usage.content_commitment:
            raise _Reject(
                ReasonCode.KEY_USAGE_MISMATCH, "auth certificate must not have nonRepudiation"
            )

    def _check_policies(self, leaf: x509.Certificate) -> None:
        try:
            policies = leaf.extensions.get_extension_for_class(x509.CertificatePolicies).value
        except x509.ExtensionNotFound as error:
            raise _Reject(ReasonCode.POLICY_MISMATCH, "no certificatePolicies extension") from error
        present = {information.policy_identifier.dotted_string for information in policies}
        if not present & self.policy.acceptable_policies.get(self.purpose, frozenset()):
            raise _Reject(
                ReasonCode.POLICY_MISMATCH,
                f"policies {sorted(present)} not acceptable for {self.purpose}",
            )

    def _check_critical_extensions(self, leaf: x509.Certificate) -> None:
        for extension in leaf.extensions:
            if extension.critical and extension.oid not in KNOWN_EXTENSIONS:
                raise _Reject(
                    ReasonCode.UNSUPPORTED_CRITICAL_EXTENSION,
                    f"unsupported critical extension {extension.oid.dotted_string}",
                )

    def _check_path_with_certvalidator(self) -> None:
        """RFC 5280 path validation by pyhanko-certvalidator (revocation off: ours follows)."""
        assert self.anchor is not None
        acceptable = self.policy.acceptable_policies.get(self.purpose, frozenset())
        try:
            context = ValidationContext(
                trust_roots=[self.anchor.certvalidator_anchor],
                moment=self.at,
                revinfo_policy=_NO_REVOCATION_IN_CERTVALIDATOR,
                algorithm_usage_policy=_ALGORITHM_POLICY,
                time_tolerance=self.policy.clock_skew,
            )
            leaf = asn1_x509.Certificate.load(self.der)
            _reuse_anchor_name_preparation(leaf, self.anchor.certvalidator_anchor.certificate)
            path = ValidationPath(self.anchor.certvalidator_anchor, [], leaf)
            parameters = PKIXValidationParams(
                user_initial_policy_set=acceptable, initial_explicit_policy=True
            )
            _run_to_completion(async_validate_path(context, path, parameters))
        except ExpiredError as error:
            raise _Reject(ReasonCode.EXPIRED, str(error)) from error
        except NotYetValidError as error:
            raise _Reject(ReasonCode.NOT_YET_VALID, str(error)) from error
        except DisallowedAlgorithmError as error:
            raise _Reject(ReasonCode.WEAK_ALGORITHM, str(error)) from error
        except (PathValidationError, ValidationError) as error:
            raise _Reject(ReasonCode.PATH_INVALID, str(error)) from error
        except (ValueError, TypeError, KeyError) as error:  # asn1crypto parse errors
            raise _Reject(ReasonCode.MALFORMED, f"certificate cannot be parsed: {error}") from error

    def _check_revocation(
        self, leaf: x509.Certificate, anchor: _PreparedAnchor
    ) -> ValidationResult:
        config = self.policy.revocation
        if config.mode is RevocationMode.OFF:
            return self.result(ReasonCode.VALID, "revocation not checked (mode off)")
        outcome = config.check(leaf, anchor.anchor.certificate, at=self.at)
        if outcome.status is RevocationStatus.REVOKED:
            return self.result(
                ReasonCode.REVOKED,
                f"revoked ({outcome.reason.value if outcome.reason else 'unspecified'})",
                revocation=outcome.evidence,
                revocation_reason=outcome.reason,
                revoked_at=outcome.revoked_at,
            )
        if outcome.status is RevocationStatus.GOOD:
            return self.result(ReasonCode.VALID, revocation=outcome.evidence)
        if config.mode is RevocationMode.SOFT_FAIL:
            return self.result(
                ReasonCode.VALID, f"revocation not checked: {outcome.detail}", revocation=None
            )
        reason = (
            ReasonCode.REVOCATION_STALE
            if outcome.status is RevocationStatus.STALE
            else ReasonCode.REVOCATION_UNAVAILABLE
        )
        return self.result(reason, outcome.detail, revocation=outcome.evidence)


def _reuse_anchor_name_preparation(
    leaf: asn1_x509.Certificate, anchor: asn1_x509.Certificate
) -> None:
    """Let the leaf's issuer name reuse the anchor's RFC 4518-prepared name values.

    certvalidator compares issuer and subject names by RFC 5280 7.1 rules, and
    asn1crypto prepares (normalizes) every value of a freshly parsed name:
    about half of a validation's time. When the leaf's issuer is byte-identical
    to the anchor's subject, the prepared values are identical by definition,
    so they are copied from the anchor's cached ones (asn1crypto's `_prepped`).
    """
    issuer, subject = leaf.issuer, anchor.subject
    if issuer.dump() != subject.dump():
        return
    for leaf_rdn, anchor_rdn in zip(issuer.chosen, subject.chosen, strict=True):
        for leaf_value, anchor_value in zip(leaf_rdn, anchor_rdn, strict=True):
            leaf_value._prepped = anchor_value.prepped_value


def _run_to_completion(coroutine: Coroutine[Any, Any, _T]) -> _T:
    """Drive a coroutine that never awaits I/O (certvalidator with fetching and revocation off).

    Runs synchronously, so validate() works inside and outside an event loop; if
    the coroutine ever suspends, that is a configuration error and is reported.
    """
    try:
        coroutine.send(None)
    except StopIteration as finished:
        return finished.value
    coroutine.close()
    raise _Reject(ReasonCode.PATH_INVALID, "path validation tried to wait for I/O")
