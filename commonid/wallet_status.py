"""The status of wallet credentials (SD-JWT VCs) in their token status lists.

A revoked signature certificate revokes every wallet credential issued on it
(superseded when the card was renewed); an administrator can suspend one (a
reported fraud under investigation, say) and reinstate it. Revocation is final.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session as DbSession

from commonid.problems import Problem
from commonid.store import wallet
from commonid.store.models import WalletCredential
from did.token_status import TokenStatus


def _event(
    credential: WalletCredential, status: str, reason_code: str
) -> tuple[str, dict[str, Any]]:
    return (
        "wallet.credential_status_changed",
        {
            "credential_id": credential.id,
            "person_id": credential.person_id,
            "status": status,
            "reason_code": reason_code,
        },
    )


def revoke(
    db: DbSession, issued: list[WalletCredential], *, now: datetime, reason_code: str
) -> list[tuple[str, dict[str, Any]]]:
    """Revoke (``superseded``: the card was renewed) and return the audit events."""
    changed = wallet.set_statuses(db, issued, TokenStatus.INVALID, now=now)
    for credential in changed:
        credential.revoked_at = now
        if reason_code == "superseded":
            credential.superseded_at = now
    status = "superseded" if reason_code == "superseded" else "revoked"
    return [_event(credential, status, reason_code) for credential in changed]


def revoke_live(
    db: DbSession,
    *,
    now: datetime,
    reason_code: str,
    person_id: str | None = None,
    serial_hash: str | None = None,
) -> list[tuple[str, dict[str, Any]]]:
    """Revoke the live wallet credentials of a person, or issued on a certificate."""
    live = wallet.live_wallet_credentials(db, person_id=person_id, serial_hash=serial_hash)
    return revoke(db, live, now=now, reason_code=reason_code)


def set_suspended(
    db: DbSession, credential_id: str, *, suspended: bool, now: datetime
) -> tuple[str, tuple[str, dict[str, Any]]]:
    """Suspend or reinstate one credential; returns its status and the audit event."""
    credential = db.get(WalletCredential, credential_id)
    if credential is None:
        raise Problem("wallet_credential_not_found")
    if credential.revoked_at is not None:
        raise Problem("wallet_credential_revoked")
    target = TokenStatus.SUSPENDED if suspended else TokenStatus.VALID
    wallet.set_statuses(db, [credential], target, now=now)
    credential.suspended_at = now if suspended else None
    status = "suspended" if suspended else "valid"
    return status, _event(credential, status, "admin_action")
