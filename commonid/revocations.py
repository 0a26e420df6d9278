"""Acting on CRL updates: certificates behind Common-ID records that got revoked.

Their credentials are revoked in the status list; a revoked signature certificate
behind the verified attributes puts the record in ``reverification_required`` with
the change the CRL's reason tells (renewal, a change of address or name, loss); and
every provider linked to the person gets a signed ``identity.changed`` notification
(subject id and the change, never an attribute).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from cryptography import x509

from commonid import auditing, credentials, wallet_status
from commonid.runtime import Runtime
from commonid.store import persons, status_lists, webhooks
from commonid.store.models import Certificate, Person, Provider
from commonid.trust import StoredCertificateStatus, stored_certificate_revocation
from did.credentials import certificate_serial_sha256

IDENTITY_CHANGED_EVENT = "identity.changed"

# The CRL reasons J-LIS uses, as the change a provider is told of.
CHANGES = {
    x509.ReasonFlags.superseded: "card_renewed",
    x509.ReasonFlags.affiliation_changed: "attributes_changed",
    x509.ReasonFlags.key_compromise: "card_lost",
}


def change_of(reason: x509.ReasonFlags | None) -> str:
    return CHANGES.get(reason, "certificate_revoked")  # type: ignore[arg-type]


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
            status, reason = stored_certificate_revocation(
                runtime.trust_policy,
                issuer=certificate.issuer,
                serial_hex=certificate.serial,
                at=now,
            )
            if status is not StoredCertificateStatus.REVOKED:
                continue
            change = change_of(reason)
            person = db.get(Person, certificate.person_id)
            behind_attributes = person is not None and person.sign_certificate_id == certificate.id
            if behind_attributes:
                assert person is not None
                person.reverification_reason = change
            events.append(
                (
                    "identity.changed",
                    {
                        "person_id": certificate.person_id,
                        "change": change,
                        "certificate_kind": certificate.kind,
                        "reverification_required": behind_attributes,
                    },
                )
            )
            certificate.revoked_at = now
            revoked_certificates += 1
            serial_hash = certificate_serial_sha256(int(certificate.serial, 16))
            issued = status_lists.credentials_of_certificate(db, serial_hash)
            # Each credential's bit is on its own issuer key's list (or the legacy one).
            revoked = credentials.revoke_issued(
                db,
                issued,
                now=now,
                reason_code="superseded" if change == "card_renewed" else "certificate_revoked",
            )
            revoked_credentials += len(revoked)
            events.extend(revoked)
            # The wallet credentials issued on it: their token status list says invalid.
            events.extend(
                wallet_status.revoke_live(
                    db,
                    serial_hash=serial_hash,
                    now=now,
                    reason_code="superseded" if change == "card_renewed" else "certificate_revoked",
                )
            )
            for consent in persons.consents_of_person(db, certificate.person_id):
                provider = db.get(Provider, consent.provider_id)
                delivery = webhooks.notify(
                    db,
                    provider,
                    event_type=IDENTITY_CHANGED_EVENT,
                    payload={
                        "sub": consent.subject_id,
                        "change": change,
                        "certificate": certificate.kind,
                        "status": "reverification_required" if behind_attributes else "verified",
                    },
                    now=now,
                )
                if delivery is not None:
                    notifications += 1
        auditing.record(runtime, db, events)
    return RevocationReport(problems, revoked_certificates, revoked_credentials, notifications)
