"""Identity credentials the service issues, their status lists, and their verification."""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session as DbSession

from commonid.card_check import CheckedCertificate
from commonid.runtime import Runtime
from commonid.store import status_lists
from commonid.store.models import IssuedCredential
from did.credentials import (
    CertificateEvidence,
    Claim,
    CredentialReason,
    CredentialVerification,
    IdentityCredentialRequest,
    RevocationEvidence,
    VerifiedClaims,
    certificate_serial_sha256,
    issue_identity_credential,
    verify_identity_credential,
)
from did.status import CredentialStatusRefs, StatusRef, issue_status_list_credential


def certificate_evidence(checked: CheckedCertificate) -> CertificateEvidence:
    validation = checked.validation
    revocation = validation.revocation
    return CertificateEvidence(
        purpose=checked.purpose,
        issuer=checked.certificate.issuer.rfc4514_string(),
        serial_sha256=certificate_serial_sha256(checked.certificate.serial_number),
        not_after=checked.certificate.not_valid_after_utc,
        validated_at=validation.validated_at,
        revocation=RevocationEvidence(
            method=revocation.source if revocation else "none",
            source=f"sha256:{revocation.sha256}" if revocation else "not checked",
            this_update=revocation.this_update if revocation else validation.validated_at,
            checked_at=validation.validated_at,
        ),
    )


def verified_claims_from_store(attributes: dict[str, Any]) -> VerifiedClaims:
    from datetime import date

    birthdate = attributes.get("birthdate")
    return VerifiedClaims(
        name=attributes.get("name"),
        birthdate=date.fromisoformat(birthdate) if birthdate else None,
        gender=attributes.get("gender"),
        address=attributes.get("address"),
        name_flags=attributes.get("name_flags"),
        address_flags=attributes.get("address_flags"),
    )


def issue(
    runtime: Runtime,
    db: DbSession,
    *,
    person_id: str,
    provider_id: str,
    subject_did: str,
    attributes: dict[str, Any],
    consented: set[str],
    evidence: list[CertificateEvidence],
    source_serial: int,
    previous_dids: list[str],
    now: datetime,
) -> dict[str, Any]:
    """Issue a credential with only the consented claims; record it for revocation."""
    keyring = runtime.keyring  # one ring for the whole issuance (it may be rotated meanwhile)
    revocation_id, suspension_id = status_lists.list_ids_for(keyring.current.did)
    status_lists.ensure_lists(
        db, base_url=runtime.settings.public_url, now=now, issuer_did=keyring.current.did
    )
    revocation_row, revocation = status_lists.load_for_update(db, revocation_id, now=now)
    suspension_row, suspension = status_lists.load_for_update(db, suspension_id, now=now)
    refs = CredentialStatusRefs(
        revocation=StatusRef(revocation.url, revocation.allocate(), revocation.kind),
        suspension=StatusRef(suspension.url, suspension.allocate(), suspension.kind),
    )
    status_lists.save(revocation_row, revocation, now=now)
    status_lists.save(suspension_row, suspension, now=now)
    request = IdentityCredentialRequest(
        subject_did=subject_did,
        claims=verified_claims_from_store(attributes),
        consented_claims=frozenset(Claim(c) for c in consented if c in Claim._value2member_map_),
        certificates=tuple(evidence),
        status=refs,
        issued_at=now,
        previous_subject_dids=tuple(previous_dids),
    )
    issued = issue_identity_credential(request, keyring)
    db.add(
        IssuedCredential(
            id=issued.credential_id,
            person_id=person_id,
            provider_id=provider_id,
            revocation_list_id=revocation_id,
            revocation_index=refs.revocation.index,
            suspension_list_id=suspension_id,
            suspension_index=refs.suspension.index,
            certificate_serial_hash=certificate_serial_sha256(source_serial),
            issued_at=now,
        )
    )
    db.flush()
    return json.loads(issued.credential)


def status_list_credential(runtime: Runtime, db: DbSession, list_id: str) -> dict[str, Any] | None:
    bitstring = status_lists.get(db, list_id)
    if bitstring is None:
        return None
    keyring = runtime.keyring
    return issue_status_list_credential(
        bitstring,
        keyring,
        issued_at=runtime.clock(),
        signer=status_lists.signing_key(keyring, list_id),
    )


def revoke_issued(
    db: DbSession,
    issued: list[IssuedCredential],
    *,
    now: datetime,
    reason_code: str,
) -> list[tuple[str, dict[str, Any]]]:
    """Set each credential's revocation bit (on its own issuer key's list) and mark it;
    ``superseded`` (the card was renewed) is kept apart so verification can say so.
    Returns the audit events."""
    events: list[tuple[str, dict[str, Any]]] = []
    for list_id in sorted({credential.revocation_list_id for credential in issued}):
        row, bitstring = status_lists.load_for_update(db, list_id, now=now)
        for credential in issued:
            if credential.revocation_list_id != list_id:
                continue
            bitstring.revoke(credential.revocation_index)
            credential.revoked_at = now
            if reason_code == "superseded":
                credential.superseded_at = now
            events.append(
                (
                    "credential.revoked",
                    {
                        "credential_id": credential.id,
                        "person_id": credential.person_id,
                        "reason_code": reason_code,
                        "certificate_serial_hash": credential.certificate_serial_hash,
                    },
                )
            )
        status_lists.save(row, bitstring, now=now)
    return events


def verify(runtime: Runtime, credential: str | dict[str, Any]) -> CredentialVerification:
    """Verify one of our credentials; status lists are read from the store, not over HTTP."""
    prefix = status_lists.list_url(runtime.settings.public_url, "")

    def resolve(url: str) -> dict[str, Any]:
        if not url.startswith(prefix):
            raise LookupError(f"status list {url} is not this service's")
        with runtime.sessions() as db:
            found = status_list_credential(runtime, db, url.removeprefix(prefix))
        if found is None:
            raise LookupError(f"no status list at {url}")
        return found

    verification = verify_identity_credential(
        credential, runtime.keyring, at=runtime.clock(), status_resolver=resolve
    )
    if verification.reason is CredentialReason.REVOKED and verification.credential is not None:
        # Revoked because the card was renewed: the person can have a new one.
        with runtime.sessions() as db:
            if status_lists.is_superseded(db, str(verification.credential.get("id", ""))):
                return dataclasses.replace(verification, reason=CredentialReason.SUPERSEDED)
    return verification
