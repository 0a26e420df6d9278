"""Acting on CRL updates: certificates behind Common-ID records that got revoked.

Their credentials are revoked in the status list, and every provider linked to
the person gets a signed ``identity.certificate_revoked`` notification.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from commonid import auditing
from commonid.runtime import Runtime
from commonid.store import persons, status_lists, webhooks
from commonid.store.models import Certificate, Provider
from commonid.trust import StoredCertificateStatus, stored_certificate_status
from did.credentials import certificate_serial_sha256

CERTIFICATE_REVOKED_EVENT = "identity.certificate_revoked"


@dataclass(frozen=True)
class RevocationReport:
    problems: tuple[str, ...]
    revoked_certificates: int
    revoked_credentials: int
    notifications: int


def refresh_and_apply(runtime: Runtime, *, force: bool = True) -> RevocationReport:
    """Refresh the CRLs, then revoke what depends on newly revoked certificates."""
    problems = tuple(runtime.refresh_revocation(force=force))
    now = runtime.clock()
    revoked_certificates = revoked_credentials = notifications = 0
    events: list[tuple[str, dict[str, Any]]] = []
    with runtime.sessions.begin() as db:
        candidates = db.scalars(sa.select(Certificate).where(Certificate.revoked_at.is_(None)))
        for certificate in list(candidates):
            status = stored_certificate_status(
                runtime.trust_policy,
                issuer=certificate.issuer,
                serial_hex=certificate.serial,
                at=now,
            )
            if status is not StoredCertificateStatus.REVOKED:
                continue
            certificate.revoked_at = now
            revoked_certificates += 1
            serial_hash = certificate_serial_sha256(int(certificate.serial, 16))
            issued = status_lists.credentials_of_certificate(db, serial_hash)
            # Each credential's bit is on its own issuer key's list (or the legacy one).
            for list_id in sorted({credential.revocation_list_id for credential in issued}):
                row, bitstring = status_lists.load_for_update(db, list_id, now=now)
                for credential in issued:
                    if credential.revocation_list_id != list_id:
                        continue
                    bitstring.revoke(credential.revocation_index)
                    credential.revoked_at = now
                    revoked_credentials += 1
                    events.append(
                        (
                            "credential.revoked",
                            {
                                "credential_id": credential.id,
                                "person_id": credential.person_id,
                                "reason_code": "certificate_revoked",
                                "certificate_serial_hash": serial_hash,
                            },
                        )
                    )
                status_lists.save(row, bitstring, now=now)
            for consent in persons.consents_of_person(db, certificate.person_id):
                provider = db.get(Provider, consent.provider_id)
                delivery = webhooks.notify(
                    db,
                    provider,
                    event_type=CERTIFICATE_REVOKED_EVENT,
                    payload={"sub": consent.subject_id, "certificate": certificate.kind},
                    now=now,
                )
                if delivery is not None:
                    notifications += 1
        auditing.record(runtime, db, events)
    return RevocationReport(problems, revoked_certificates, revoked_credentials, notifications)
