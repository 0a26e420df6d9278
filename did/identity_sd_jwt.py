"""The JPKI identity as an SD-JWT VC: what is disclosable, what is in clear.

Selectively disclosable: ``name``, ``birthdate``, ``gender``, ``address`` (an
OpenID Connect address object with ``formatted``), and each key of
``age_equal_or_over`` (``"18"``, ``"20"``: computed at issuance, as in the EU
PID), so a verifier can learn "over 20" without the birth date. In clear: the
issuer, times, ``vct``, ``cnf`` (the holder's key), ``status`` and the
verification evidence (trust framework, method, time, the certificate's issuer).
Never a raw certificate, never a certificate serial number.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from did._time import rfc3339
from did.credentials import VerifiedClaims
from did.sd_jwt import IssuerSigningKey, issue

# The credential type (SD-JWT VC ``vct``): a stable URN, not a URL that moves with the host.
JPKI_IDENTITY_VCT = "urn:jp:commonid:vct:jpki-identity:1"
AGE_THRESHOLDS = (18, 20)
TRUST_FRAMEWORK = "jp_aml"
# How the attributes were verified: the card's signature certificate (公的個人認証).
VERIFICATION_METHOD = "jpki_signature_certificate"


def age_on(birthdate: date, day: date) -> int:
    return day.year - birthdate.year - ((day.month, day.day) < (birthdate.month, birthdate.day))


@dataclass(frozen=True)
class VerificationEvidence:
    """How one certificate was checked, as the credential states it (no serial)."""

    purpose: str  # "sign" (attributes) or "auth"
    issuer: str  # the issuing CA's distinguished name
    verified_at: datetime


@dataclass(frozen=True)
class IdentitySdJwtRequest:
    issuer: str  # the credential issuer identifier (an https URL)
    claims: VerifiedClaims
    evidence: Sequence[VerificationEvidence]
    holder_jwk: dict[str, Any]  # cnf.jwk: a wallet's EC key or the card's RSA key
    status: dict[str, Any]  # did.token_status.status_reference(...)
    issued_at: datetime
    expires_at: datetime  # at most the signature certificate's notAfter


def issue_identity_sd_jwt(request: IdentitySdJwtRequest, signer: IssuerSigningKey) -> str:
    if request.expires_at <= request.issued_at:
        raise ValueError("the credential would be expired when issued")
    claims = request.claims
    disclosable: dict[str, Any] = {}
    if claims.name is not None:
        disclosable["name"] = claims.name
    if claims.birthdate is not None:
        disclosable["birthdate"] = claims.birthdate.isoformat()
    if claims.gender is not None:
        disclosable["gender"] = claims.gender
    if claims.address is not None:
        disclosable["address"] = {"formatted": claims.address}
    nested: dict[str, dict[str, Any]] = {}
    if claims.birthdate is not None:
        age = age_on(claims.birthdate, request.issued_at.date())
        nested["age_equal_or_over"] = {str(n): age >= n for n in AGE_THRESHOLDS}
    issued = int(request.issued_at.timestamp())
    clear = {
        "iss": request.issuer,
        "iat": issued,
        "nbf": issued,
        "exp": int(request.expires_at.timestamp()),
        "vct": JPKI_IDENTITY_VCT,
        "cnf": {"jwk": request.holder_jwk},
        "status": request.status,
        "verification": {
            "trust_framework": TRUST_FRAMEWORK,
            "method": VERIFICATION_METHOD,
            "time": rfc3339(max(e.verified_at for e in request.evidence)),
            "evidence": [
                {
                    "type": "electronic_signature",
                    "signature_type": f"jpki_{e.purpose}",
                    "issuer": e.issuer,
                    "created_at": rfc3339(e.verified_at),
                }
                for e in request.evidence
            ],
        },
    }
    return issue(clear=clear, disclosable=disclosable, nested_disclosable=nested, signer=signer)
