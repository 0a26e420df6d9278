"""Identities as a provider sees them: by pairwise subject id, until consent is withdrawn."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session as DbSession

from commonid import auditing
from commonid.api.schemas import (
    ATTRIBUTE_CLAIMS,
)
from commonid.claims import (
    released_claims,
    verified_claims,
)
from commonid.flows import records
from commonid.problems import Problem
from commonid.runtime import Runtime
from commonid.store import persons, sessions
from commonid.store.models import Certificate, Person
from commonid.store.rows import ProviderRow


def identity_view(
    runtime: Runtime, db: DbSession, provider: ProviderRow, sub: str
) -> dict[str, Any]:
    consents = persons.active_consents(db, provider_id=provider.id, subject_id=sub)
    if not consents:
        raise Problem("identity_not_found")
    person_id = consents[-1].person_id
    allowed: set[str] = set()
    for consent in consents:
        allowed.update(consent.claims)
    body: dict[str, Any] = {
        "sub": sub,
        "consents": [
            {"session_id": c.session_id, "claims": c.claims, "granted_at": c.granted_at}
            for c in consents
        ],
        "verified_claims": None,
        "status": "verified",
        "reverification_reason": None,
        "history": records.attribute_history(runtime.cipher, db, provider.id, sub),
        # The DIDs are the provider's only with consent to "did"; so are their links.
        "did_links": persons.link_statements(db, person_id) if "did" in allowed else [],
    }
    person = db.get(Person, person_id)
    if person is not None and person.reverification_reason is not None:
        # The certificate behind the attributes was revoked: they are history now.
        body["status"] = "reverification_required"
        body["reverification_reason"] = person.reverification_reason
        return body
    if (
        person is not None
        and person.identity_verified_at is not None
        and person.sign_certificate_id is not None
        and allowed & {claim.value for claim in ATTRIBUTE_CLAIMS}
    ):
        source = db.get(Certificate, person.sign_certificate_id)
        assert source is not None
        attributes = persons.load_attributes(db, person.id, runtime.cipher)
        body["verified_claims"] = verified_claims(
            released_claims(attributes, allowed),
            verified_at=person.identity_verified_at,
            certificate_issuer=source.issuer,
            certificate_serial_hex=source.serial,
        )
    return body


def withdraw_identity(runtime: Runtime, db: DbSession, provider: ProviderRow, sub: str) -> None:
    """Consent withdrawal: the provider's link goes, and so do its stored session results."""
    consents = persons.active_consents(db, provider_id=provider.id, subject_id=sub)
    if not consents:
        raise Problem("identity_not_found")
    person_ids = {consent.person_id for consent in consents}
    persons.withdraw_consents(db, provider_id=provider.id, subject_id=sub, now=runtime.clock())
    sessions.forget_results(db, provider_id=provider.id, person_ids=person_ids)
    auditing.record(
        runtime,
        db,
        [
            ("consent.withdrawn", {"provider_id": provider.id, "person_id": person_id})
            for person_id in sorted(person_ids)
        ],
    )
