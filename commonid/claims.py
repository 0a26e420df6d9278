"""Identity claims in OpenID Connect for Identity Assurance ``verified_claims`` shape."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from commonid.challenge import rfc3339
from jpki.profile import BasicAttributes, Gender

TRUST_FRAMEWORK = "jp_aml"
EVIDENCE_TYPE = "electronic_signature"
JPKI_CLAIMS_KEY = "urn:commonid:jpki"  # same key as did.credentials uses
IDENTITY_METHOD = "jpki_sign_certificate"
_GENDERS = {Gender.MALE: "male", Gender.FEMALE: "female", Gender.NOT_KNOWN: "unknown"}


def stored_attributes(attributes: BasicAttributes) -> dict[str, Any]:
    """The attributes as the store keeps them (each encrypted separately)."""
    stored: dict[str, Any] = {
        "name": attributes.name,
        "birthdate": attributes.birth_date.isoformat() if attributes.birth_date else None,
        "gender": _GENDERS.get(attributes.gender) if attributes.gender else None,
        "address": attributes.address,
        "name_flags": attributes.name_flags,
        "address_flags": attributes.address_flags,
    }
    return {name: value for name, value in stored.items() if value is not None}


def released_claims(attributes: dict[str, Any], consented: set[str]) -> dict[str, Any]:
    claims: dict[str, Any] = {}
    jpki: dict[str, str] = {}
    if "name" in consented and "name" in attributes:
        claims["name"] = attributes["name"]
        if "name_flags" in attributes:
            jpki["name_flags"] = attributes["name_flags"]
    if "birthdate" in consented and "birthdate" in attributes:
        claims["birthdate"] = attributes["birthdate"]
    if "gender" in consented and "gender" in attributes:
        claims["gender"] = attributes["gender"]
    if "address" in consented and "address" in attributes:
        claims["address"] = {"formatted": attributes["address"]}
        if "address_flags" in attributes:
            jpki["address_flags"] = attributes["address_flags"]
    if jpki:
        claims[JPKI_CLAIMS_KEY] = jpki
    return claims


def verified_claims(
    claims: dict[str, Any],
    *,
    verified_at: datetime,
    certificate_issuer: str,
    certificate_serial_hex: str,
) -> dict[str, Any]:
    return {
        "verification": {
            "trust_framework": TRUST_FRAMEWORK,
            "time": rfc3339(verified_at),
            "evidence": [
                {
                    "type": EVIDENCE_TYPE,
                    "signature_type": "jpki_sign",
                    "issuer": certificate_issuer,
                    "serial_number": certificate_serial_hex,
                    "created_at": rfc3339(verified_at),
                }
            ],
        },
        "claims": claims,
    }


def basic_info_key(attributes: dict[str, Any]) -> str:
    """The 基本4情報 joined unambiguously, for the keyed matching hash."""
    return "\x00".join(
        str(attributes.get(name, "")) for name in ("name", "birthdate", "gender", "address")
    )
