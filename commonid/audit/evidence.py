"""Audit fields from a validation result: what a reviewer needs, nothing personal.

``validation_outcome_fields`` turns a jpki ValidationResult into the fields of
a ``validation.outcome`` event: the reason code, the trust anchor, the
certificate serial as SHA-256 (did.credentials.certificate_serial_sha256, the
same hash the issued credential records), the path fingerprints, and the
revocation evidence (source, thisUpdate/nextUpdate, SHA-256 of the CRL or OCSP
response). The serial itself, the subject and the attributes stay out.
"""

from __future__ import annotations

from typing import Any

from did.credentials import certificate_serial_sha256
from jpki.validation import ValidationResult


def validation_outcome_fields(
    result: ValidationResult, *, certificate_kind: str, session_id: str | None = None
) -> dict[str, Any]:
    """Keyword arguments for ``AuditLog.append("validation.outcome", **fields)``."""
    fields: dict[str, Any] = {
        "session_id": session_id,
        "certificate_kind": certificate_kind,
        "outcome": "valid" if result.valid else "invalid",
        "reason_code": str(result.reason),
        "trust_anchor": result.trust_anchor,
        "trust_anchor_fingerprint": result.trust_anchor_sha256,
        "certificate_serial_hash": (
            certificate_serial_sha256(result.serial) if result.serial is not None else None
        ),
        "path_fingerprints": list(result.path) or None,
        "validated_at": result.validated_at,
    }
    evidence = result.revocation
    if evidence is not None:
        fields.update(
            revocation_source=evidence.source,
            revocation_this_update=evidence.this_update,
            revocation_next_update=evidence.next_update,
            revocation_evidence_hash=evidence.sha256,
        )
    return fields
