"""What a verification record says, and its hash.

A record is one JSON document per completed identity verification or reuse,
with the items the Enforcement Ordinance's Article 20 asks for this method
(docs/compliance.md maps each field to its item). Its SHA-256 over the RFC 8785
canonical form goes into the audit log when it is made, so a provider (or a
reviewer) can show that an exported record is the one made at the time.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime, timedelta
from typing import Any

import rfc8785

from commonid.records.methods import JPKI_SIGNATURE, rules_in_force

RECORD_TYPE = "commonid.verification_record/1"
RETENTION_YEARS = 7
IDENTITY = "identity_verification"
REUSE = "reuse"
# The attributes Article 20 asks to record for an individual (gender is not one).
RECORDED_ATTRIBUTES = ("name", "birthdate", "address")


def _time(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def record_hash(content: dict[str, Any]) -> str:
    return hashlib.sha256(rfc8785.dumps(content)).hexdigest()


def retain_until(ended_on: date) -> datetime:
    """Seven years from the end of the business relationship (the day after the same
    date seven years on; 29 February becomes 1 March)."""
    try:
        anniversary = ended_on.replace(year=ended_on.year + RETENTION_YEARS)
    except ValueError:  # 29 February
        anniversary = date(ended_on.year + RETENTION_YEARS, 3, 1) - timedelta(days=1)
    return datetime.combine(anniversary + timedelta(days=1), datetime.min.time(), tzinfo=UTC)


def verification_section(
    *,
    verified_at: datetime,
    attributes: dict[str, Any],
    certificate: dict[str, Any],
    signed_data_sha256: str,
    revocation: dict[str, Any] | None,
) -> dict[str, Any]:
    """The identity verification itself: when, how, who the certificate says, what was
    signed, and the revocation evidence checked."""
    return {
        "verified_at": _time(verified_at),
        "method": {"code": JPKI_SIGNATURE, "rules": rules_in_force(verified_at.date())},
        "person": {name: attributes[name] for name in RECORDED_ATTRIBUTES if name in attributes},
        "certificate": certificate,
        "signed_data_sha256": signed_data_sha256,
        "revocation": revocation,
    }


def certificate_section(
    *, issuer: str, serial_hex: str, not_before: datetime, not_after: datetime, sha256: str
) -> dict[str, Any]:
    return {
        "issuer": issuer,
        "serial": serial_hex,
        "not_before": _time(not_before),
        "not_after": _time(not_after),
        "sha256": sha256,
    }


def revocation_section(evidence: Any, checked_at: datetime) -> dict[str, Any] | None:
    """From a jpki RevocationEvidence: CRL number and thisUpdate, or the OCSP response's
    producedAt, the hash of the CRL or response, and when it was checked."""
    if evidence is None:
        return None
    section: dict[str, Any] = {
        "source": evidence.source,
        "issuer": evidence.issuer,
        "this_update": _time(evidence.this_update),
        "next_update": _time(evidence.next_update) if evidence.next_update else None,
        "evidence_sha256": evidence.sha256,
        "checked_at": _time(checked_at),
    }
    if evidence.crl_number is not None:
        section["crl_number"] = evidence.crl_number
    if evidence.produced_at is not None:
        section["ocsp_produced_at"] = _time(evidence.produced_at)
    return section


def record_content(
    *,
    record_id: str,
    kind: str,
    session_id: str,
    provider: dict[str, Any],
    verifier: dict[str, Any],
    subject_id: str,
    recorded_at: datetime,
    verification: dict[str, Any] | None,
    source_record_id: str | None = None,
) -> dict[str, Any]:
    content: dict[str, Any] = {
        "type": RECORD_TYPE,
        "record_id": record_id,
        "kind": kind,
        "session_id": session_id,
        "provider": provider,
        "verifier": verifier,
        "subject_id": subject_id,
        "recorded_at": _time(recorded_at),
        "verification": verification,
    }
    if source_record_id is not None:
        content["source_record_id"] = source_record_id
    return content
