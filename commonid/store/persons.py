"""Common-ID records: persons, their certificates, DIDs, attributes and consents."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session as DbSession

from commonid.store.encryption import AttributeCipher, Sealed, binding
from commonid.store.ids import new_id
from commonid.store.models import Attribute, BoundDid, Certificate, Consent, Person


@dataclass(frozen=True)
class CertificateFacts:
    """What the store keeps about a certificate: identifiers, never the holder's data."""

    kind: str  # "auth" | "sign"
    serial_hex: str
    issuer: str
    fingerprint_sha256: str
    not_after: datetime
    raw_der: bytes | None = None


def new_person(db: DbSession, *, now: datetime) -> Person:
    person = Person(id=new_id("per"), created_at=now)
    db.add(person)
    db.flush()
    return person


@dataclass(frozen=True, slots=True)
class PersonRow:
    """What the flows read of a person (commonid.store.rows says why a row)."""

    id: str
    identity_verified_at: datetime | None
    identity_method: str | None
    sign_certificate_id: str | None


@dataclass(frozen=True, slots=True)
class DidBinding:
    """A bound DID, its person, and whether a given certificate is already theirs."""

    person: PersonRow
    # The person the looked-up certificate (by fingerprint) is recorded for, if recorded.
    certificate_person_id: str | None


_PERSONS = Person.__table__
_DIDS = BoundDid.__table__
_CERTIFICATES = Certificate.__table__
# The certificate is joined on its fingerprint alone (unique): at most one row matches.
_BINDING_OF_DID = (
    sa.select(
        _PERSONS.c.id,
        _PERSONS.c.identity_verified_at,
        _PERSONS.c.identity_method,
        _PERSONS.c.sign_certificate_id,
        _CERTIFICATES.c.person_id,
    )
    .select_from(_DIDS)
    .join(_PERSONS, _PERSONS.c.id == _DIDS.c.person_id)
    .outerjoin(_CERTIFICATES, _CERTIFICATES.c.fingerprint_sha256 == sa.bindparam("fingerprint"))
    .where(_DIDS.c.did == sa.bindparam("did"))
)


def binding_of_did(db: DbSession, did: str, *, fingerprint: str = "") -> DidBinding | None:
    """The DID's person, and who the certificate with this SHA-256 fingerprint is
    recorded for: one Core query (a card coming back is looked up by every response)."""
    row = db.connection().execute(_BINDING_OF_DID, {"did": did, "fingerprint": fingerprint}).first()
    if row is None:
        return None
    return DidBinding(PersonRow(*row[:4]), certificate_person_id=row[4])


def person_of_certificate(
    db: DbSession, *, kind: str, issuer: str, serial_hex: str
) -> Person | None:
    """Whose record holds this certificate (by issuer and serial, as stored)."""
    return db.scalar(
        sa.select(Person)
        .join(Certificate, Certificate.person_id == Person.id)
        .where(
            Certificate.kind == kind,
            Certificate.issuer == issuer,
            Certificate.serial == serial_hex,
        )
        .limit(1)
    )


def person_by_basic_info_hash(db: DbSession, basic_info_hash: str) -> Person | None:
    return db.scalar(
        sa.select(Person)
        .where(Person.basic_info_hash == basic_info_hash)
        .order_by(Person.created_at)
        .limit(1)
    )


_CERTIFICATE_BY_FINGERPRINT = sa.select(Certificate).where(
    Certificate.fingerprint_sha256 == sa.bindparam("fingerprint")
)


def record_certificate(
    db: DbSession, person: Person, facts: CertificateFacts, *, now: datetime
) -> Certificate:
    """The stored row for this certificate, created on first sight."""
    existing = db.scalar(_CERTIFICATE_BY_FINGERPRINT, {"fingerprint": facts.fingerprint_sha256})
    if existing is not None:
        if existing.person_id != person.id:
            existing.person_id = person.id
        return existing
    certificate = Certificate(
        id=new_id("crt"),
        person_id=person.id,
        kind=facts.kind,
        serial=facts.serial_hex,
        issuer=facts.issuer,
        fingerprint_sha256=facts.fingerprint_sha256,
        not_after=facts.not_after,
        raw_der=facts.raw_der,
        first_seen_at=now,
    )
    db.add(certificate)
    db.flush()
    return certificate


def bind_did(
    db: DbSession, person: Person, did: str, auth_certificate: Certificate, *, now: datetime
) -> None:
    bound = db.get(BoundDid, did)
    if bound is None:
        db.add(
            BoundDid(
                did=did, person_id=person.id, auth_certificate_id=auth_certificate.id, bound_at=now
            )
        )
    elif bound.person_id != person.id:
        bound.person_id = person.id
    else:
        return  # already bound to this person: nothing to write
    db.flush()


def set_link_statement(db: DbSession, did: str, statement: str) -> None:
    bound = db.get(BoundDid, did)
    if bound is not None:
        bound.link_statement = statement


def link_statements(db: DbSession, person_id: str) -> list[str]:
    """The service's statements linking this person's later DIDs to earlier ones, oldest first."""
    return list(
        db.scalars(
            sa.select(BoundDid.link_statement)
            .where(BoundDid.person_id == person_id, BoundDid.link_statement.is_not(None))
            .order_by(BoundDid.bound_at)
        )
    )


def dids_of(db: DbSession, person_id: str) -> list[str]:
    return list(
        db.scalars(
            sa.select(BoundDid.did)
            .where(BoundDid.person_id == person_id)
            .order_by(BoundDid.bound_at)
        )
    )


def _attribute_binding(person_id: str, name: str) -> bytes:
    return binding("person", person_id, "attribute", name)


def store_attributes(
    db: DbSession,
    person: Person,
    attributes: dict[str, Any],
    *,
    source: Certificate,
    verified_at: datetime,
    cipher: AttributeCipher,
) -> None:
    """Replace the person's attributes with freshly verified ones, encrypted."""
    existing = {
        row.name: row
        for row in db.scalars(sa.select(Attribute).where(Attribute.person_id == person.id))
    }
    for name, value in attributes.items():
        sealed = cipher.seal(
            json.dumps(value, ensure_ascii=False).encode(),
            binding=_attribute_binding(person.id, name),
        )
        row = existing.get(name)
        if row is None:
            row = Attribute(person_id=person.id, name=name)
            db.add(row)
        row.key_id = sealed.key_id
        row.ciphertext = sealed.blob
        row.verified_at = verified_at
        row.source_certificate_id = source.id
    db.flush()


def load_attributes(db: DbSession, person_id: str, cipher: AttributeCipher) -> dict[str, Any]:
    rows = db.scalars(sa.select(Attribute).where(Attribute.person_id == person_id))
    return {
        row.name: json.loads(
            cipher.open(
                Sealed(row.key_id, row.ciphertext), binding=_attribute_binding(person_id, row.name)
            )
        )
        for row in rows
    }


_INSERT_CONSENT = sa.insert(Consent.__table__)


def grant_consent(
    db: DbSession,
    *,
    person_id: str,
    provider_id: str,
    subject_id: str,
    session_id: str,
    claims: list[str],
    now: datetime,
) -> None:
    """The provider's link to the person (one Core INSERT: every flow writes one)."""
    db.connection().execute(
        _INSERT_CONSENT,
        {
            "person_id": person_id,
            "provider_id": provider_id,
            "subject_id": subject_id,
            "session_id": session_id,
            "claims": claims,
            "granted_at": now,
            "withdrawn_at": None,
        },
    )


def active_consents(db: DbSession, *, provider_id: str, subject_id: str) -> list[Consent]:
    return list(
        db.scalars(
            sa.select(Consent)
            .where(
                Consent.provider_id == provider_id,
                Consent.subject_id == subject_id,
                Consent.withdrawn_at.is_(None),
            )
            .order_by(Consent.granted_at)
        )
    )


def withdraw_consents(db: DbSession, *, provider_id: str, subject_id: str, now: datetime) -> int:
    result = db.execute(
        sa.update(Consent)
        .where(
            Consent.provider_id == provider_id,
            Consent.subject_id == subject_id,
            Consent.withdrawn_at.is_(None),
        )
        .values(withdrawn_at=now)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount


def consents_of_person(db: DbSession, person_id: str) -> list[Consent]:
    """One active consent per (provider, subject id) linked to the person."""
    rows = db.scalars(
        sa.select(Consent)
        .where(Consent.person_id == person_id, Consent.withdrawn_at.is_(None))
        .order_by(Consent.granted_at)
    )
    unique: dict[tuple[str, str], Consent] = {}
    for row in rows:
        unique.setdefault((row.provider_id, row.subject_id), row)
    return list(unique.values())
