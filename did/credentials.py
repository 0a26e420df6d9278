"""JPKIIdentityCredential: issue (signed by the service's key, via didkit) and verify.

The credential says which claims were verified (only the consented ones), how
(which JPKI certificate purpose and issuing CA, the certificate serial as a
SHA-256 hash, when it was validated, what revocation data was used), in the
OpenID Connect for Identity Assurance ``verified_claims`` shape (trust framework
``jp_aml``, evidence ``electronic_signature``). W3C VC data model 1.1, because
didkit 0.3.3 bundles only that context; the custom terms live in an embedded
``@context`` object (didkit refuses undefined terms, so every term is defined).

Both didkit proof formats work: ``ldp`` (JSON-LD Ed25519Signature2018 proof) and
``jwt`` (a VC-JWT signed EdDSA).
"""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any

from did import _didkit
from did._time import parse_rfc3339, rfc3339
from did.keys import IssuerKeyring, IssuerTrust
from did.status import (
    CredentialStatusRefs,
    StatusCheck,
    StatusListResolver,
    StatusPurpose,
    check_status,
    status_entry,
)

CREDENTIAL_TYPE = "JPKIIdentityCredential"
TRUST_FRAMEWORK = "jp_aml"
EVIDENCE_TYPE = "electronic_signature"
# Key of the JPKI-specific claims (substitute-character flags) inside ``claims``.
JPKI_CLAIMS_KEY = "urn:commonid:jpki"
_VOCABULARY = "urn:commonid:vocab:v1#"
_DATE_TIME = "http://www.w3.org/2001/XMLSchema#dateTime"

COMMONID_CONTEXT: dict[str, Any] = {
    "@version": 1.1,
    "@protected": True,
    CREDENTIAL_TYPE: f"{_VOCABULARY}{CREDENTIAL_TYPE}",
    "JPKICertificateEvidence": f"{_VOCABULARY}JPKICertificateEvidence",
    # OIDC4IDA's JSON structure is kept verbatim (a JSON literal) rather than
    # mapped term by term: verifiers read it as the OIDC4IDA spec defines it.
    "verified_claims": {"@id": f"{_VOCABULARY}verified_claims", "@type": "@json"},
    "previousSubjectIds": {
        "@id": f"{_VOCABULARY}previousSubjectIds",
        "@type": "@id",
        "@container": "@set",
    },
    "certificatePurpose": f"{_VOCABULARY}certificatePurpose",
    "certificateIssuer": f"{_VOCABULARY}certificateIssuer",
    "certificateSerialSha256": f"{_VOCABULARY}certificateSerialSha256",
    "certificateNotAfter": {"@id": f"{_VOCABULARY}certificateNotAfter", "@type": _DATE_TIME},
    "validatedAt": {"@id": f"{_VOCABULARY}validatedAt", "@type": _DATE_TIME},
    "revocationCheck": {"@id": f"{_VOCABULARY}revocationCheck", "@type": "@json"},
    # VC 1.1 (and didkit) allow one credentialStatus: it is the revocation entry;
    # the suspension entry sits beside it under this term.
    "suspensionStatus": {"@id": f"{_VOCABULARY}suspensionStatus", "@type": "@id"},
}


class ProofFormat(StrEnum):
    LDP = "ldp"
    JWT = "jwt"


class Claim(StrEnum):
    """Claims a person can consent to release (OpenID Connect claim names)."""

    NAME = "name"
    BIRTHDATE = "birthdate"
    GENDER = "gender"
    ADDRESS = "address"


@dataclass(frozen=True)
class VerifiedClaims:
    """Attributes read from a validated certificate; None where not verified."""

    name: str | None = None
    birthdate: date | None = None
    gender: str | None = None  # OpenID Connect value: "female", "male", or other
    address: str | None = None  # formatted
    name_flags: str | None = None  # JPKI substitute-character flags, released with name
    address_flags: str | None = None  # ... released with address


@dataclass(frozen=True)
class RevocationEvidence:
    """Which revocation data said the certificate was good."""

    method: str  # "crl" or "ocsp"
    source: str  # CRL distribution point or OCSP responder URL
    this_update: datetime  # CRL thisUpdate / OCSP producedAt
    checked_at: datetime
    status: str = "good"


@dataclass(frozen=True)
class CertificateEvidence:
    """How one JPKI certificate was checked (no raw certificate or serial)."""

    purpose: str  # "auth" or "sign"
    issuer: str  # issuing CA distinguished name (RFC 4514)
    serial_sha256: str  # see certificate_serial_sha256()
    not_after: datetime
    validated_at: datetime
    revocation: RevocationEvidence


@dataclass(frozen=True)
class IdentityCredentialRequest:
    """Everything an identity credential states, as plain values."""

    subject_did: str
    claims: VerifiedClaims
    consented_claims: frozenset[Claim]
    certificates: tuple[CertificateEvidence, ...]
    status: CredentialStatusRefs
    issued_at: datetime
    # Capped at the earliest certificate notAfter; None means exactly that.
    expires_at: datetime | None = None
    credential_id: str = field(default_factory=lambda: f"urn:uuid:{uuid.uuid4()}")
    # Earlier subject DIDs (older cards) of the same Common-ID record.
    previous_subject_dids: tuple[str, ...] = ()


@dataclass(frozen=True)
class IssuedCredential:
    credential_id: str
    proof_format: ProofFormat
    credential: str  # JSON text (ldp) or compact JWS (jwt)
    issuer: str
    expires_at: datetime


class CredentialReason(StrEnum):
    """Why a credential was accepted or rejected (stable, machine-readable)."""

    VALID = "valid"
    MALFORMED = "credential_malformed"
    UNTRUSTED_ISSUER = "credential_untrusted_issuer"
    INVALID_PROOF = "credential_invalid_proof"
    NOT_YET_VALID = "credential_not_yet_valid"
    EXPIRED = "credential_expired"
    REVOKED = "credential_revoked"
    # Revoked because the card it was bound to was renewed: ask for a new one.
    SUPERSEDED = "credential_superseded"
    SUSPENDED = "credential_suspended"
    STATUS_UNAVAILABLE = "credential_status_unavailable"
    STATUS_INVALID = "credential_status_invalid"


@dataclass(frozen=True)
class CredentialVerification:
    reason: CredentialReason
    credential: dict[str, Any] | None = None  # the VC (for jwt: the ``vc`` claim, completed)
    detail: str = ""

    @property
    def valid(self) -> bool:
        return self.reason is CredentialReason.VALID

    @property
    def subject_did(self) -> str | None:
        if self.credential is None:
            return None
        return self.credential.get("credentialSubject", {}).get("id")

    @property
    def verified_claims(self) -> dict[str, Any] | None:
        if self.credential is None:
            return None
        return self.credential.get("credentialSubject", {}).get("verified_claims")


def certificate_serial_sha256(serial_number: int) -> str:
    """Hex SHA-256 of a certificate serial (big-endian, minimal length)."""
    length = max(1, (serial_number.bit_length() + 7) // 8)
    return hashlib.sha256(serial_number.to_bytes(length, "big")).hexdigest()


# --- issuing ----------------------------------------------------------------


def build_identity_credential(request: IdentityCredentialRequest, issuer: str) -> dict[str, Any]:
    """The unsigned credential (exposed so tests and docs can see its shape)."""
    if not request.certificates:
        raise ValueError("an identity credential needs at least one certificate's evidence")
    expires_at = _expiry(request)
    if expires_at <= request.issued_at:
        raise ValueError("the certificate expires before the credential would be issued")
    validated_at = max(evidence.validated_at for evidence in request.certificates)
    subject: dict[str, Any] = {
        "id": request.subject_did,
        "verified_claims": {
            "verification": {
                "trust_framework": TRUST_FRAMEWORK,
                "time": rfc3339(validated_at),
                "evidence": [_ida_evidence(evidence) for evidence in request.certificates],
            },
            "claims": _released_claims(request.claims, request.consented_claims),
        },
    }
    if request.previous_subject_dids:
        subject["previousSubjectIds"] = list(request.previous_subject_dids)
    return {
        "@context": [*request.status.revocation.kind.context, COMMONID_CONTEXT],
        "id": request.credential_id,
        "type": ["VerifiableCredential", CREDENTIAL_TYPE],
        "issuer": issuer,
        "issuanceDate": rfc3339(request.issued_at),
        "expirationDate": rfc3339(expires_at),
        "credentialSubject": subject,
        "evidence": [_vc_evidence(evidence) for evidence in request.certificates],
        "credentialStatus": status_entry(request.status.revocation, StatusPurpose.REVOCATION),
        "suspensionStatus": status_entry(request.status.suspension, StatusPurpose.SUSPENSION),
    }


def issue_identity_credential(
    request: IdentityCredentialRequest,
    keyring: IssuerKeyring,
    *,
    proof_format: ProofFormat = ProofFormat.LDP,
) -> IssuedCredential:
    """Sign an identity credential with the keyring's current key."""
    issuer = keyring.current
    credential = build_identity_credential(request, issuer.did)
    options = {
        "proofPurpose": "assertionMethod",
        "verificationMethod": issuer.verification_method,
        "proofFormat": str(ProofFormat(proof_format)),
    }
    signed = _didkit.issue_credential(credential, options, issuer.private_jwk)
    return IssuedCredential(
        credential_id=request.credential_id,
        proof_format=ProofFormat(proof_format),
        credential=signed,
        issuer=issuer.did,
        expires_at=parse_rfc3339(credential["expirationDate"]),
    )


def _expiry(request: IdentityCredentialRequest) -> datetime:
    earliest_not_after = min(evidence.not_after for evidence in request.certificates)
    if request.expires_at is None:
        return earliest_not_after
    return min(request.expires_at, earliest_not_after)


def _released_claims(claims: VerifiedClaims, consented: frozenset[Claim]) -> dict[str, Any]:
    released: dict[str, Any] = {}
    jpki: dict[str, str] = {}
    if Claim.NAME in consented and claims.name is not None:
        released["name"] = claims.name
        if claims.name_flags is not None:
            jpki["name_flags"] = claims.name_flags
    if Claim.BIRTHDATE in consented and claims.birthdate is not None:
        released["birthdate"] = claims.birthdate.isoformat()
    if Claim.GENDER in consented and claims.gender is not None:
        released["gender"] = claims.gender
    if Claim.ADDRESS in consented and claims.address is not None:
        released["address"] = {"formatted": claims.address}
        if claims.address_flags is not None:
            jpki["address_flags"] = claims.address_flags
    if jpki:
        released[JPKI_CLAIMS_KEY] = jpki
    return released


def _ida_evidence(evidence: CertificateEvidence) -> dict[str, Any]:
    return {
        "type": EVIDENCE_TYPE,
        "signature_type": f"jpki_{evidence.purpose}",
        "issuer": evidence.issuer,
        "serial_number_sha256": evidence.serial_sha256,
        "created_at": rfc3339(evidence.validated_at),
    }


def _vc_evidence(evidence: CertificateEvidence) -> dict[str, Any]:
    revocation = evidence.revocation
    return {
        "type": ["JPKICertificateEvidence"],
        "certificatePurpose": evidence.purpose,
        "certificateIssuer": evidence.issuer,
        "certificateSerialSha256": evidence.serial_sha256,
        "certificateNotAfter": rfc3339(evidence.not_after),
        "validatedAt": rfc3339(evidence.validated_at),
        "revocationCheck": {
            "method": revocation.method,
            "source": revocation.source,
            "status": revocation.status,
            "thisUpdate": rfc3339(revocation.this_update),
            "checkedAt": rfc3339(revocation.checked_at),
        },
    }


# --- verifying --------------------------------------------------------------


def verify_identity_credential(
    credential: str | Mapping[str, Any],
    issuers: IssuerTrust,
    *,
    at: datetime,
    status_resolver: StatusListResolver,
) -> CredentialVerification:
    """Check issuer, validity period at ``at``, proof, then revocation and suspension.

    ``issuers`` is the service's key ring, or a provider's :class:`TrustedIssuers`.
    ``credential`` is what :func:`issue_identity_credential` produced: JSON text
    or a dict (ldp), or a compact JWT. ``status_resolver`` returns the status list
    credential for a URL (the service's own store, or an HTTP fetch).
    """
    try:
        proof_format, text, document = _parse(credential)
        issuer = str(document["issuer"])
        issued_at = parse_rfc3339(document["issuanceDate"])
        expires_at = parse_rfc3339(document["expirationDate"])
        _check_shape(document, proof_format)
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        return CredentialVerification(CredentialReason.MALFORMED, detail=str(error))
    except RecursionError:
        return CredentialVerification(CredentialReason.MALFORMED, detail="nested too deeply")
    except (OverflowError, OSError) as error:  # a JWT exp beyond any datetime (1e20)
        return CredentialVerification(CredentialReason.MALFORMED, detail=str(error))

    if not issuers.trusts(issuer):
        return CredentialVerification(CredentialReason.UNTRUSTED_ISSUER, document, issuer)
    # The period is checked before the proof: didkit compares a JWT's exp with the
    # wall clock, while this check uses the explicit ``at``.
    if at < issued_at:
        return CredentialVerification(CredentialReason.NOT_YET_VALID, document)
    if at >= expires_at:
        return CredentialVerification(CredentialReason.EXPIRED, document)
    try:
        report = _didkit.verify_credential(
            text, {"proofPurpose": "assertionMethod", "proofFormat": str(proof_format)}
        )
    except (_didkit.DIDKitError, ValueError) as error:  # didkit refuses what it cannot read
        return CredentialVerification(CredentialReason.MALFORMED, document, str(error))
    if not report.ok:
        return CredentialVerification(
            CredentialReason.INVALID_PROOF, document, "; ".join(report.errors)
        )
    for key, purpose, set_reason in (
        ("credentialStatus", StatusPurpose.REVOCATION, CredentialReason.REVOKED),
        ("suspensionStatus", StatusPurpose.SUSPENSION, CredentialReason.SUSPENDED),
    ):
        entry = document.get(key)
        if not isinstance(entry, Mapping):
            return CredentialVerification(CredentialReason.STATUS_INVALID, document, key)
        outcome = check_status(entry, purpose, resolver=status_resolver, issuers=issuers, at=at)
        if outcome is StatusCheck.SET:
            return CredentialVerification(set_reason, document)
        if outcome in (StatusCheck.UNAVAILABLE, StatusCheck.STALE):
            detail = f"{key}: {outcome}"
            return CredentialVerification(CredentialReason.STATUS_UNAVAILABLE, document, detail)
        if outcome is StatusCheck.INVALID:
            return CredentialVerification(CredentialReason.STATUS_INVALID, document, key)
    return CredentialVerification(CredentialReason.VALID, document)


# An identity credential is a few kB; this bounds the work a caller can ask for.
MAX_CREDENTIAL_BYTES = 64 * 1024


def _check_shape(document: dict[str, Any], proof_format: ProofFormat) -> None:
    """What the checks below rely on, refused here as malformed rather than met later as
    an exception: ``type`` a list (a string would pass a substring test), the subject and
    an ldp proof objects, the status entries objects."""
    types = document["type"]
    if not isinstance(types, list) or CREDENTIAL_TYPE not in types:
        raise ValueError("type is not a list naming JPKIIdentityCredential")
    subject = document["credentialSubject"]
    if not isinstance(subject, Mapping) or not isinstance(subject.get("id"), str):
        raise ValueError("credentialSubject is not an object with an id")
    if proof_format is ProofFormat.LDP and not isinstance(document.get("proof"), Mapping):
        raise ValueError("proof is not an object")
    for key in ("credentialStatus", "suspensionStatus"):
        if key in document and not isinstance(document[key], Mapping):
            raise ValueError(f"{key} is not an object")


def _parse(credential: str | Mapping[str, Any]) -> tuple[ProofFormat, str, dict[str, Any]]:
    """(format, text for didkit, the credential as a dict)."""
    if isinstance(credential, Mapping):
        text = json.dumps(credential)
        if len(text) > MAX_CREDENTIAL_BYTES:
            raise ValueError(f"over {MAX_CREDENTIAL_BYTES} bytes")
        return ProofFormat.LDP, text, dict(credential)
    if not isinstance(credential, str):
        raise TypeError("a credential is JSON text, an object or a compact JWT")
    if len(credential) > MAX_CREDENTIAL_BYTES:
        raise ValueError(f"over {MAX_CREDENTIAL_BYTES} bytes")
    text = credential.strip()
    if text.startswith("{"):
        document = json.loads(text)
        if not isinstance(document, dict):
            raise ValueError("a JSON credential must be an object")
        return ProofFormat.LDP, text, document
    parts = text.split(".")
    if len(parts) != 3:
        raise ValueError("neither a JSON credential nor a compact JWT")
    payload = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    document = dict(payload["vc"])
    # VC-JWT moves these into registered claims (VC data model 1.1, section 6.3.1).
    document["issuer"] = payload["iss"]
    if "exp" in payload:
        document["expirationDate"] = rfc3339(datetime.fromtimestamp(payload["exp"], UTC))
    if "jti" in payload:
        document.setdefault("id", payload["jti"])
    return ProofFormat.JWT, text, document
