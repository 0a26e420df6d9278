"""Verify the signatures of a PDF: pyHanko for the document, jpki.validation for the signer.

pyHanko answers what only a PDF library can: is the signed byte range
unchanged (integrity), how much of the file the signature covers, and what
the incremental updates after it changed (diff analysis). Whether the signer's
certificate is a valid JPKI *signature* certificate (right CA, not revoked,
in validity) is decided by :func:`jpki.validation.validate` under the
caller's `TrustPolicy`, with the same reason codes as everywhere else; pyHanko's
own trust verdict is not used, so there is one trust policy in the project.

The certificate is validated at the explicit time ``at`` (a B-B signature
proves nothing about when it was made; a B-T timestamp is reported).
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import hashlib
import io
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from asn1crypto import cms
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.diff_analysis import ModificationLevel
from pyhanko.sign.validation.generic_cms import async_validate_detached_cms
from pyhanko.sign.validation.pdf_embedded import (
    EmbeddedPdfSignature,
    async_validate_pdf_signature,
)
from pyhanko.sign.validation.status import SignatureCoverageLevel
from pyhanko_certvalidator import ValidationContext
from pyhanko_certvalidator.policy_decl import (
    CertRevTrustPolicy,
    RevocationCheckingPolicy,
    RevocationCheckingRule,
)

from jpki import profile
from jpki.profile import BasicAttributes
from jpki.validation import Purpose, ReasonCode, TrustPolicy, ValidationResult, validate

__all__ = [
    "ACCEPTED_CHANGES",
    "DocumentReason",
    "DocumentVerification",
    "SignatureVerification",
    "averify_pdf",
    "verify_detached_cms",
    "verify_pdf",
]


class DocumentReason(enum.StrEnum):
    """Stable codes for a document's verdict (the certificate's own code is reported beside)."""

    VALID = "valid"
    NOT_A_PDF = "not_a_pdf"
    NO_SIGNATURE = "no_signature"
    MODIFIED = "modified"  # the signed bytes changed: the signature no longer matches
    SIGNATURE_INVALID = "signature_invalid"  # the signature value does not verify
    PARTIAL_COVERAGE = "partial_coverage"  # the signature leaves parts of its revision out
    CHANGED_AFTER_SIGNING = "changed_after_signing"  # later updates alter the content
    TIMESTAMP_INVALID = "timestamp_invalid"
    CERTIFICATE_INVALID = "certificate_invalid"  # see certificate_reason


# Updates after a signature that do not change what was signed: validation data
# (DSS, document timestamps) and filling form fields, which is how a further
# signature (a countersignature) is added. Annotations and content are not.
ACCEPTED_CHANGES = frozenset(
    {ModificationLevel.NONE, ModificationLevel.LTA_UPDATES, ModificationLevel.FORM_FILLING}
)
_COVERAGE_NAMES = {
    SignatureCoverageLevel.UNCLEAR: "unclear",
    SignatureCoverageLevel.CONTIGUOUS_BLOCK_FROM_START: "contiguous_block_from_start",
    SignatureCoverageLevel.ENTIRE_REVISION: "entire_revision",
    SignatureCoverageLevel.ENTIRE_FILE: "entire_file",
}
# pyHanko parses attacker-supplied bytes lazily, deep inside its validation, and
# a damaged file surfaces as whatever the failing layer raises (zlib.error,
# AttributeError on a half-read signature, asn1crypto's ValueError, ...). The
# verifier's contract is a verdict for any input, so everything but the
# interpreter's own exits counts as "this document is broken".
_HOSTILE_INPUT_ERRORS = (Exception,)

_NO_REVOCATION_IN_PYHANKO = CertRevTrustPolicy(
    RevocationCheckingPolicy(
        ee_certificate_rule=RevocationCheckingRule.NO_CHECK,
        intermediate_ca_cert_rule=RevocationCheckingRule.NO_CHECK,
    )
)


@dataclass(frozen=True)
class SignatureVerification:
    """One signature of a PDF. ``signer`` is filled only when the caller asked for it."""

    field_name: str
    reason: DocumentReason
    intact: bool
    signature_valid: bool
    coverage: str  # entire_file, entire_revision, contiguous_block_from_start, unclear
    modification_level: str | None  # none, lta_updates, form_filling, annotations, other
    signing_time: datetime | None  # claimed by the signer (not proof)
    timestamp_time: datetime | None  # from an RFC 3161 token (B-T)
    timestamp_trusted: bool | None  # None: no timestamp
    certificate: ValidationResult
    signer: BasicAttributes | None = None

    @property
    def valid(self) -> bool:
        return self.reason is DocumentReason.VALID

    @property
    def covers_whole_document(self) -> bool:
        return self.coverage == "entire_file"

    @property
    def changed_after_signing(self) -> bool:
        """True when any update follows the signature (harmless or not: see modification_level)."""
        return not self.covers_whole_document

    @property
    def certificate_reason(self) -> ReasonCode:
        return self.certificate.reason


@dataclass(frozen=True)
class DocumentVerification:
    document_sha256: str
    reason: DocumentReason
    signatures: tuple[SignatureVerification, ...]
    verified_at: datetime

    @property
    def valid(self) -> bool:
        return self.reason is DocumentReason.VALID


def verify_pdf(
    pdf: bytes,
    *,
    policy: TrustPolicy,
    at: datetime,
    timestamp_roots: Iterable[x509.Certificate] = (),
    include_signer_attributes: bool = False,
) -> DocumentVerification:
    """Verify every signature of ``pdf`` (synchronous; use `averify_pdf` inside an event loop)."""
    return asyncio.run(
        averify_pdf(
            pdf,
            policy=policy,
            at=at,
            timestamp_roots=timestamp_roots,
            include_signer_attributes=include_signer_attributes,
        )
    )


async def averify_pdf(
    pdf: bytes,
    *,
    policy: TrustPolicy,
    at: datetime,
    timestamp_roots: Iterable[x509.Certificate] = (),
    include_signer_attributes: bool = False,
) -> DocumentVerification:
    """Verify every signature of ``pdf``. Never raises for the document's content."""
    digest = hashlib.sha256(pdf).hexdigest()

    def verdict(
        reason: DocumentReason, signatures: tuple[SignatureVerification, ...] = ()
    ) -> DocumentVerification:
        return DocumentVerification(digest, reason, signatures, at)

    try:
        reader = PdfFileReader(io.BytesIO(pdf), strict=False)
    except _HOSTILE_INPUT_ERRORS:
        return verdict(DocumentReason.NOT_A_PDF)
    try:
        embedded = list(reader.embedded_signatures)
    except _HOSTILE_INPUT_ERRORS:
        # A PDF whose signature objects (or the CMS inside) cannot be read.
        return verdict(DocumentReason.SIGNATURE_INVALID)
    if not embedded:
        return verdict(DocumentReason.NO_SIGNATURE)
    # pyHanko gets every anchor of the policy so that it can build the path of
    # any JPKI certificate (an auth-key signature too); which purpose is right
    # is decided by validate() below, not by pyHanko.
    signer_context = _context([anchor.certificate for anchor in policy.anchors], at)
    timestamp_context = _context(list(timestamp_roots), at)
    signatures = []
    for signature in embedded:
        signatures.append(
            await _verify_one(
                signature,
                policy=policy,
                at=at,
                signer_context=signer_context,
                timestamp_context=timestamp_context,
                include_signer_attributes=include_signer_attributes,
            )
        )
    failing = next((s.reason for s in signatures if not s.valid), DocumentReason.VALID)
    return verdict(failing, tuple(signatures))


def verify_detached_cms(
    content: bytes,
    signature: bytes,
    *,
    policy: TrustPolicy,
    at: datetime,
    timestamp_roots: Iterable[x509.Certificate] = (),
    include_signer_attributes: bool = False,
) -> DocumentVerification:
    """Verify a detached CMS signature (``.p7s``) of ``content``, with the same verdicts.

    A detached signature covers the whole content or nothing, so coverage is
    ``entire_file`` and there are no later changes; a changed content is
    ``modified``. ``document_sha256`` is the content's hash.
    """
    digest = hashlib.sha256(content).hexdigest()
    try:
        content_info = cms.ContentInfo.load(signature)
        if content_info["content_type"].native != "signed_data":
            raise ValueError("not a CMS SignedData")
        signed_data = content_info["content"]
        certificate_der = _signer_certificate(signed_data)
    except _HOSTILE_INPUT_ERRORS as error:
        broken = _broken("cms", DocumentReason.SIGNATURE_INVALID, f"{error}", at)
        return DocumentVerification(digest, broken.reason, (broken,), at)
    certificate = validate(certificate_der, Purpose.SIGN, at=at, policy=policy)
    try:
        status = asyncio.run(
            async_validate_detached_cms(
                content,
                signed_data,
                signer_validation_context=_context([a.certificate for a in policy.anchors], at),
                ts_validation_context=_context(list(timestamp_roots), at),
            )
        )
    except _HOSTILE_INPUT_ERRORS:
        broken = dataclasses.replace(
            _broken("cms", DocumentReason.SIGNATURE_INVALID, "", at), certificate=certificate
        )
        return DocumentVerification(digest, broken.reason, (broken,), at)
    timestamp = status.timestamp_validity
    if not status.intact:
        reason = DocumentReason.MODIFIED
    elif not status.valid:
        reason = DocumentReason.SIGNATURE_INVALID
    elif timestamp is not None and not (timestamp.intact and timestamp.valid):
        reason = DocumentReason.TIMESTAMP_INVALID
    elif not certificate.valid:
        reason = DocumentReason.CERTIFICATE_INVALID
    else:
        reason = DocumentReason.VALID
    result = SignatureVerification(
        field_name="cms",
        reason=reason,
        intact=bool(status.intact),
        signature_valid=bool(status.valid),
        coverage="entire_file",
        modification_level="none",
        signing_time=status.signer_reported_dt,
        timestamp_time=timestamp.timestamp if timestamp is not None else None,
        timestamp_trusted=None if timestamp is None else bool(timestamp.trusted),
        certificate=certificate,
        signer=_attributes(certificate_der) if include_signer_attributes else None,
    )
    return DocumentVerification(digest, reason, (result,), at)


def _signer_certificate(signed_data: cms.SignedData) -> bytes:
    """The certificate the (single) SignerInfo names, by issuer and serial number."""
    (signer_info,) = signed_data["signer_infos"]
    sid = signer_info["sid"]
    if sid.name != "issuer_and_serial_number":
        raise ValueError("signer identified by key id: not a JPKI client's signature")
    wanted = sid.chosen
    for choice in signed_data["certificates"]:
        if choice.name != "certificate":
            continue
        certificate = choice.chosen
        if (
            certificate.serial_number == wanted["serial_number"].native
            and certificate.issuer == wanted["issuer"]
        ):
            return certificate.dump()
    raise ValueError("the signer's certificate is not in the signature")


def _attributes(certificate_der: bytes) -> BasicAttributes | None:
    try:
        return profile.parse_certificate(certificate_der).attributes
    except profile.MalformedCertificateError:
        return None


def _context(roots: list[x509.Certificate], at: datetime) -> ValidationContext:
    return ValidationContext(
        trust_roots=[asn1_x509.Certificate.load(r.public_bytes(Encoding.DER)) for r in roots],
        moment=at,
        allow_fetching=False,
        revinfo_policy=_NO_REVOCATION_IN_PYHANKO,
    )


async def _verify_one(
    signature: EmbeddedPdfSignature,
    *,
    policy: TrustPolicy,
    at: datetime,
    signer_context: ValidationContext,
    timestamp_context: ValidationContext,
    include_signer_attributes: bool,
) -> SignatureVerification:
    field_name = str(signature.field_name)
    try:
        certificate_der = signature.signer_cert.dump()
    except _HOSTILE_INPUT_ERRORS as error:
        return _broken(field_name, DocumentReason.SIGNATURE_INVALID, f"{error}", at)
    certificate = validate(certificate_der, Purpose.SIGN, at=at, policy=policy)
    try:
        status = await async_validate_pdf_signature(
            signature,
            signer_validation_context=signer_context,
            ts_validation_context=timestamp_context,
        )
    except _HOSTILE_INPUT_ERRORS:
        return SignatureVerification(
            field_name=field_name,
            reason=DocumentReason.SIGNATURE_INVALID,
            intact=False,
            signature_valid=False,
            coverage="unclear",
            modification_level=None,
            signing_time=None,
            timestamp_time=None,
            timestamp_trusted=None,
            certificate=certificate,
        )
    level = status.modification_level
    timestamp = status.timestamp_validity
    timestamp_trusted = None if timestamp is None else bool(timestamp.trusted)
    if not status.intact:
        reason = DocumentReason.MODIFIED
    elif not status.valid:
        reason = DocumentReason.SIGNATURE_INVALID
    elif status.coverage not in (
        SignatureCoverageLevel.ENTIRE_FILE,
        SignatureCoverageLevel.ENTIRE_REVISION,
    ):
        reason = DocumentReason.PARTIAL_COVERAGE
    elif level is None or level not in ACCEPTED_CHANGES:
        reason = DocumentReason.CHANGED_AFTER_SIGNING
    elif timestamp is not None and not (timestamp.intact and timestamp.valid):
        reason = DocumentReason.TIMESTAMP_INVALID
    elif not certificate.valid:
        reason = DocumentReason.CERTIFICATE_INVALID
    else:
        reason = DocumentReason.VALID
    signer = _attributes(certificate_der) if include_signer_attributes else None
    return SignatureVerification(
        field_name=field_name,
        reason=reason,
        intact=bool(status.intact),
        signature_valid=bool(status.valid),
        coverage=_COVERAGE_NAMES.get(status.coverage, "unclear"),
        modification_level=level.name.lower() if level is not None else None,
        signing_time=status.signer_reported_dt,
        timestamp_time=timestamp.timestamp if timestamp is not None else None,
        timestamp_trusted=timestamp_trusted,
        certificate=certificate,
        signer=signer,
    )


def _broken(
    field_name: str, reason: DocumentReason, detail: str, at: datetime
) -> SignatureVerification:
    return SignatureVerification(
        field_name=field_name,
        reason=reason,
        intact=False,
        signature_valid=False,
        coverage="unclear",
        modification_level=None,
        signing_time=None,
        timestamp_time=None,
        timestamp_trusted=None,
        certificate=ValidationResult(
            valid=False,
            reason=ReasonCode.MALFORMED,
            purpose=Purpose.SIGN,
            validated_at=at,
            detail=detail,
        ),
    )
