"""What the service's flows write into the audit log (commonid.audit), as allow-listed fields.

Only pseudonymous ids, codes, hashes and times: which CA, which certificate
(by serial hash), which revocation data, when. Events are appended inside
the transaction of the change they record, last, so both commit together.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session as DbSession

from did.credentials import certificate_serial_sha256
from jpki.validation import ValidationResult

if TYPE_CHECKING:  # the runtime records through this module (revocation refreshes)
    from commonid.runtime import Runtime
    from commonid.trust import InstalledCrl


def record(runtime: Runtime, db: DbSession, events: list[tuple[str, dict[str, Any]]]) -> None:
    if runtime.audit is None or not events:
        return
    # One lock round and one multi-row INSERT for all of them, in this order.
    runtime.audit.append_many_in(db, events)


def admin_action(
    actor: str, action: str, target_type: str, target_id: str
) -> tuple[str, dict[str, Any]]:
    """An administrator's change (a provider or kiosk added, a key rotated...), by where
    it was made: ``admin_api`` or ``admin_cli``."""
    return (
        "admin.action",
        {"action": action, "actor": actor, "target_type": target_type, "target_id": target_id},
    )


def validation_outcome(session_id: str, result: ValidationResult) -> tuple[str, dict[str, Any]]:
    revocation = result.revocation
    return (
        "validation.outcome",
        {
            "session_id": session_id,
            "certificate_kind": result.purpose.value,
            "outcome": "valid" if result.valid else "invalid",
            "reason_code": result.reason.value,
            "trust_anchor": result.trust_anchor,
            "trust_anchor_fingerprint": result.trust_anchor_sha256,
            "certificate_serial_hash": (
                certificate_serial_sha256(result.serial) if result.serial is not None else None
            ),
            "path_fingerprints": list(result.path) or None,
            "revocation_source": revocation.source if revocation else "none",
            "revocation_this_update": revocation.this_update if revocation else None,
            "revocation_next_update": revocation.next_update if revocation else None,
            "revocation_evidence_hash": revocation.sha256 if revocation else None,
            "validated_at": result.validated_at,
        },
    )


def revocation_refreshed(installed: InstalledCrl) -> tuple[str, dict[str, Any]]:
    """A CRL the refresher installed: which CA, which list (number, hash), how fresh."""
    crl = installed.crl
    return (
        "revocation.refreshed",
        {
            "trust_anchor": installed.trust_anchor,
            "revocation_source": "crl",
            "crl_number": crl.crl_number,
            "revocation_this_update": crl.this_update,
            "revocation_next_update": crl.next_update,
            "revocation_evidence_hash": crl.sha256,
            "revoked_count": crl.entries,
        },
    )
