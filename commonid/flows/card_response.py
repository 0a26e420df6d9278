"""The card response: one submission from a kiosk, checked, stored, and turned into a result.

The hub of a verification: the card's certificates are validated, the person is
found or created and bound to the card's DID, the consented claims (or a
reuse of earlier ones) become the provider's sealed result, and the audit
entries are written, all in one transaction.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session as DbSession

from commonid import auditing, credentials, wallet_status
from commonid.api.schemas import (
    ATTRIBUTE_CLAIMS,
    CardResponse,
    ClaimName,
    Mode,
)
from commonid.card_check import (
    CardRejected,
    CheckedCard,
    CheckedCertificate,
    SubmittedCard,
    check_card,
    decode_base64,
)
from commonid.claims import (
    IDENTITY_METHOD,
    basic_info_key,
    released_claims,
    stored_attributes,
    verified_claims,
)
from commonid.flows import records
from commonid.flows.reuse import decide_reuse
from commonid.flows.sessions import result_binding, session_challenge, session_finished
from commonid.pairwise import pairwise_subject_id
from commonid.problems import Problem
from commonid.runtime import Runtime
from commonid.store import persons, sessions, status_lists
from commonid.store.database import take_writer_gate
from commonid.store.models import Certificate, Person
from commonid.store.persons import PersonRow
from commonid.store.rows import KioskRow, ProviderRow, SessionRow
from commonid.store.sessions import SessionStatus
from did.credentials import certificate_serial_sha256
from did.links import sign_did_link
from jpki.validation import ValidationResult

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CardOutcome:
    session_id: str
    status: SessionStatus
    reason_code: str | None = None


def _refusal_before_check(
    session: SessionRow, kiosk_id: str, now: datetime, *, consent_given: bool
) -> str | None:
    """Why this kiosk's card response for the session is refused before any check, if so."""
    status = sessions.effective_status(session, now)
    if status is SessionStatus.EXPIRED:
        return "session_expired"
    if consent_given:
        # The consent comes with this response: the session must still be waiting for one.
        if status is SessionStatus.PENDING:
            return None
        if status is SessionStatus.AWAITING_CARD:
            return "consent_already_recorded"
        return "challenge_replayed"  # answered already
    if status is SessionStatus.PENDING:
        return "consent_required"
    if session.kiosk_id != kiosk_id:
        # The consent was taken at another kiosk: that kiosk owns the session.
        return "session_not_found"
    if session.status != SessionStatus.AWAITING_CARD.value:
        return "challenge_replayed"
    return None


class _Replayed(Exception):
    """Internal: another response took the session's challenge first."""


class _Refused(Exception):
    """Internal: the response is refused before any check (the code says why).

    ``record``: whether the refusal is stored (rejected_responses and the audit log).
    A response to a session that does not exist is not: there is nothing to record
    it against, and a kiosk must not be able to fill the table and the log with
    made-up ids (it spends its rate-limit tokens instead)."""

    def __init__(self, code: str, *, record: bool = True) -> None:
        super().__init__(code)
        self.code = code
        self.record = record


def _complete(
    db: DbSession, session: SessionRow, status: SessionStatus, now: datetime, **outcome: Any
) -> None:
    """Take the session's one card response with its outcome (and a consent that came
    with it), or raise _Replayed."""
    if not sessions.complete_card_response(db, session, status=status, now=now, **outcome):
        raise _Replayed


@dataclass(frozen=True)
class KioskCredential:
    """A caller not yet authenticated: its credential's hash, looked up in the session's
    query, and what admits the kiosk found (or refuses it, or no kiosk)."""

    credential_hash: str
    admit: Callable[[KioskRow | None], KioskRow]


def process_card_response(
    runtime: Runtime,
    session_id: str,
    kiosk: KioskRow | KioskCredential,
    response: CardResponse,
) -> CardOutcome:
    """Check a card response and complete the session with it: accepted once.

    One transaction reads the session, checks the response (signatures,
    certificate paths), reads what the result needs, and then takes the
    session's single card response together with its outcome, accepted or
    rejected (one conditional UPDATE: a concurrent or later response finds it
    taken and is refused as a replay), with the audit entries. The reads and
    the check come before the first write, so on SQLite no other writer waits
    for them (the writer gate is taken at the first write). Nothing is
    committed before the end, so a worker that dies mid-check leaves the
    challenge unused rather than a session stuck half-way.

    ``kiosk`` may be a credential: the kiosk is then looked up and admitted in the
    session's own query (one round trip for both).
    """
    started = time.perf_counter()
    now = runtime.clock()
    # The id only: a rolled-back attempt expires the objects it loaded.
    caller_id = None if isinstance(kiosk, KioskCredential) else kiosk.id
    checked: CheckedCard | None = None
    rejected: CardRejected | None = None
    for attempt in range(2):
        try:
            with runtime.write_transaction() as db:
                if caller_id is None:
                    assert isinstance(kiosk, KioskCredential)
                    caller, found = sessions.kiosk_and_session(
                        db, kiosk.credential_hash, session_id
                    ) or (None, None)
                    caller_id = kiosk.admit(caller).id
                else:
                    found = sessions.session_and_provider(db, session_id)
                session, provider = found if found is not None else (None, None)
                if session is None:
                    raise _Refused("session_not_found", record=False)
                code = _refusal_before_check(
                    session, caller_id, now, consent_given=response.consent is not None
                )
                if code is not None:
                    raise _Refused(code)
                assert session is not None and provider is not None
                consent = _consent_with_card(session, caller_id, response, now)
                if checked is None and rejected is None:
                    try:
                        checked = check_card(
                            _submitted(response),
                            to_be_signed=session_challenge(runtime, session).to_be_signed(),
                            mode=session.mode,
                            policy=runtime.trust_policy,
                            at=now,
                            cache=runtime.validation_cache,
                        )
                    except CardRejected as error:
                        rejected = error
                # The service's own time for this response (what the verification_seconds
                # metric measures, less the commit), logged for the PoC report.
                spent_ms = (time.perf_counter() - started) * 1000
                if rejected is not None:
                    _reject_in(
                        runtime, db, session, provider, caller_id, rejected, consent, spent_ms
                    )
                    outcome = None
                else:
                    assert checked is not None
                    outcome, events = _apply_checked_card(
                        runtime, db, session, provider, checked, consent, now=now
                    )
                    session_finished(
                        runtime, db, session, events, provider=provider, verification_ms=spent_ms
                    )
            break
        except _Refused as refusal:
            if refusal.record:
                _record_rejection(runtime, session_id, caller_id, refusal.code)
            else:
                runtime.metrics.card_responses_rejected.labels(refusal.code).inc()
            raise Problem(refusal.code) from None
        except _Replayed:
            _record_rejection(runtime, session_id, caller_id, "challenge_replayed")
            raise Problem("challenge_replayed") from None
        except IntegrityError:
            # The same new card answered two sessions at once and the other one
            # created the record first: this attempt now finds it.
            if attempt or checked is None:
                raise
    if outcome is None:
        assert rejected is not None
        raise Problem(rejected.code, rejected.detail)
    runtime.metrics.verification_seconds.observe(time.perf_counter() - started)
    return outcome


def _consent_with_card(
    session: SessionRow, kiosk_id: str, response: CardResponse, now: datetime
) -> sessions.ConsentWithCard | None:
    """The consent sent with the card response, checked and shown on the loaded session
    (the response's UPDATE writes it), or None when the consent was recorded before."""
    if response.consent is None:
        return None
    requested = response.consent.claims
    consented = session.claims if requested is None else [claim.value for claim in requested]
    if set(consented) - set(session.claims):
        raise _Refused("consent_exceeds_request")
    consent = sessions.ConsentWithCard(kiosk_id=kiosk_id, claims=consented, at=now)
    consent.apply(session)
    return consent


def _consent_event(
    session: SessionRow, consent: sessions.ConsentWithCard | None
) -> list[tuple[str, dict[str, Any]]]:
    """The audit entry of a consent given with the card response (before its outcome)."""
    if consent is None:
        return []
    fields = {"session_id": session.id, "kiosk_id": consent.kiosk_id, "claims": consent.claims}
    return [("session.consent_given", fields)]


def _submitted(response: CardResponse) -> SubmittedCard:
    return SubmittedCard(
        auth_certificate=decode_base64("auth_certificate", response.auth_certificate),
        auth_signature=decode_base64("auth_signature", response.auth_signature),
        sign_certificate=(
            decode_base64("sign_certificate", response.sign_certificate)
            if response.sign_certificate
            else None
        ),
        sign_signature=(
            decode_base64("sign_signature", response.sign_signature)
            if response.sign_signature
            else None
        ),
    )


def _rejection_events(
    session_id: str, kiosk_id: str | None, code: str, validation: ValidationResult | None
) -> list[tuple[str, dict[str, Any]]]:
    events = [
        (
            "card_response.rejected",
            {"session_id": session_id, "kiosk_id": kiosk_id, "reason_code": code},
        )
    ]
    if validation is not None:
        events.insert(0, auditing.validation_outcome(session_id, validation))
    return events


def _record_rejection(
    runtime: Runtime,
    session_id: str,
    kiosk_id: str | None,
    code: str,
    validation: ValidationResult | None = None,
) -> None:
    """A response refused without touching the session (its own transaction).

    The caller answers the refusal whatever happens here: a fault while recording it
    (the database, the audit log's allow-list) is logged as a fault, never turned
    into a 500 for a request that was rightly refused."""
    runtime.metrics.card_responses_rejected.labels(code).inc()
    try:
        with runtime.write_transaction() as db:
            sessions.record_rejected_response(
                db, session_id, kiosk_id=kiosk_id, code=code, now=runtime.clock()
            )
            auditing.record(runtime, db, _rejection_events(session_id, kiosk_id, code, validation))
    except Exception:
        log.exception("could not record a refused card response (%s)", code)


def _reject_in(
    runtime: Runtime,
    db: DbSession,
    session: SessionRow,
    provider: ProviderRow,
    kiosk_id: str,
    rejected: CardRejected,
    consent: sessions.ConsentWithCard | None,
    verification_ms: float,
) -> None:
    """A checked-and-failed response burns the session: the challenge was used."""
    now = runtime.clock()
    _complete(db, session, SessionStatus.REJECTED, now, reason_code=rejected.code, consent=consent)
    runtime.metrics.card_responses_rejected.labels(rejected.code).inc()
    sessions.record_rejected_response(
        db, session.id, kiosk_id=kiosk_id, code=rejected.code, now=now
    )
    session_finished(
        runtime,
        db,
        session,
        [
            *_consent_event(session, consent),
            *_rejection_events(session.id, kiosk_id, rejected.code, rejected.validation),
        ],
        provider=provider,
        verification_ms=verification_ms,
    )


def _certificate_facts(
    runtime: Runtime, checked: CheckedCertificate, kind: str
) -> persons.CertificateFacts:
    certificate = checked.certificate
    return persons.CertificateFacts(
        kind=kind,
        serial_hex=format(certificate.serial_number, "X"),
        issuer=certificate.issuer.rfc4514_string(),
        fingerprint_sha256=checked.fingerprint_sha256,
        not_after=certificate.not_valid_after_utc,
        raw_der=checked.der if runtime.settings.store_raw_certificates else None,
    )


def _basic_info_hash(runtime: Runtime, attributes: dict[str, Any]) -> str:
    return hmac.new(
        runtime.pairwise_secret,
        b"basic-info\x00" + basic_info_key(attributes).encode(),
        hashlib.sha256,
    ).hexdigest()


def _record_card(
    runtime: Runtime,
    db: DbSession,
    session: SessionRow,
    checked: CheckedCard,
    events: list[tuple[str, dict[str, Any]]],
    *,
    now: datetime,
) -> tuple[Person | PersonRow, dict[str, Any] | None]:
    """The card's person, with what the card proved recorded: its certificates and DID
    (created on first sight) and, in identity mode, the verified attributes (returned
    too, in their stored form). A card not seen before joins an existing record only on
    evidence, and ``events`` says which, or why a new record was made."""
    fingerprint = checked.auth.fingerprint_sha256
    binding = persons.binding_of_did(db, checked.subject_did, fingerprint=fingerprint)
    if binding is None and take_writer_gate(db):
        # A card not seen before: its person and certificates are created below. On
        # SQLite, queue as the writer first and look again, so two sessions answered
        # by the same new card at once cannot both create them. (On PostgreSQL the
        # unique certificate fingerprint fails the second; it retries and finds them.)
        binding = persons.binding_of_did(db, checked.subject_did, fingerprint=fingerprint)
    if (
        session.mode != Mode.IDENTITY.value
        and binding is not None
        and binding.certificate_person_id == binding.person.id
    ):
        # A card coming back in auth mode, its certificate already recorded for its
        # person: nothing about the person changes, and nothing is written.
        return binding.person, None
    person = db.get(Person, binding.person.id) if binding is not None else None
    evidence: str | None = None  # what joined a new card to an existing record, if anything
    if person is None and runtime.linkage is not None:
        # A renewed card: the operator's linkage record names the certificate it
        # replaced, and that certificate's record is this person's.
        person = _person_by_linkage(runtime, db, checked)
        if person is not None:
            evidence = "certificate_linkage"
            events.append(_linked(session, person.id, evidence))
    attributes: dict[str, Any] | None = None
    if session.mode == Mode.IDENTITY.value:
        attributes = stored_attributes(checked.attributes)
        basic_hash = _basic_info_hash(runtime, attributes)
        if person is None:
            # A new card (a renewal) joins a record only on evidence: this fresh identity
            # verification proves the same four basic attributes (基本4情報). Never on a
            # name alone; anything else makes a new record, and says why.
            person = persons.person_by_basic_info_hash(db, basic_hash)
            if person is not None:
                evidence = "basic_attributes_match"
                events.append(_linked(session, person.id, evidence))
            else:
                person = persons.new_person(db, now=now)
                events.append(_created(session, person.id, "no_record_with_these_attributes"))
        sign_row = persons.record_certificate(
            db, person, _certificate_facts(runtime, checked.sign, "sign"), now=now
        )
        persons.store_attributes(
            db, person, attributes, source=sign_row, verified_at=now, cipher=runtime.cipher
        )
        person.identity_verified_at = now
        person.identity_method = IDENTITY_METHOD
        person.reverification_reason = None  # verified again: the change is behind us
        person.sign_certificate_id = sign_row.id
        person.basic_info_hash = basic_hash
    elif person is None:
        person = persons.new_person(db, now=now)
        # Authentication alone proves no attributes: nothing to link a new card on.
        events.append(_created(session, person.id, "authentication_only"))
    auth_row = persons.record_certificate(
        db, person, _certificate_facts(runtime, checked.auth, "auth"), now=now
    )
    previous = [did for did in persons.dids_of(db, person.id) if did != checked.subject_did]
    persons.bind_did(db, person, checked.subject_did, auth_row, now=now)
    if evidence is not None and previous:
        # The new card's DID follows the earlier ones: the service says so, signed.
        statement = sign_did_link(
            runtime.keyring.current,
            current=checked.subject_did,
            previous=previous,
            evidence=evidence,
            at=now,
        )
        persons.set_link_statement(db, checked.subject_did, statement)
        # Credentials bound to the old card's key are superseded: the person can ask
        # for new ones, bound to this card (a provider's "credential" claim).
        events.extend(
            credentials.revoke_issued(
                db,
                status_lists.live_credentials_of_person(db, person.id),
                now=now,
                reason_code="superseded",
            )
        )
        # So are the wallet credentials of the old card (the person gets new ones).
        events.extend(
            wallet_status.revoke_live(db, now=now, reason_code="superseded", person_id=person.id)
        )
    return person, attributes


def _person_by_linkage(runtime: Runtime, db: DbSession, checked: CheckedCard) -> Person | None:
    assert runtime.linkage is not None
    for kind, card_certificate in (("sign", checked.sign), ("auth", checked.auth)):
        if card_certificate is None:
            continue
        certificate = card_certificate.certificate
        old_serial = runtime.linkage.previous_serial(kind, certificate.serial_number)
        if old_serial is None:
            continue
        person = persons.person_of_certificate(
            db,
            kind=kind,
            issuer=certificate.issuer.rfc4514_string(),
            serial_hex=format(old_serial, "X"),
        )
        if person is not None:
            return person
    return None


def _linked(session: SessionRow, person_id: str, evidence: str) -> tuple[str, dict[str, Any]]:
    return (
        "identity.linked",
        {"session_id": session.id, "person_id": person_id, "evidence": evidence},
    )


def _created(session: SessionRow, person_id: str, reason: str) -> tuple[str, dict[str, Any]]:
    fields = {"session_id": session.id, "person_id": person_id, "reason": reason}
    return ("identity.created", fields)


def _apply_checked_card(
    runtime: Runtime,
    db: DbSession,
    session: SessionRow,
    provider: ProviderRow,
    checked: CheckedCard,
    consent: sessions.ConsentWithCard | None,
    *,
    now: datetime,
) -> tuple[CardOutcome, list[tuple[str, dict[str, Any]]]]:
    """Store what the card proved and the provider's result; returns the audit events too."""
    events = _consent_event(session, consent)
    events.append(auditing.validation_outcome(session.id, checked.auth.validation))
    if checked.sign is not None:
        events.append(auditing.validation_outcome(session.id, checked.sign.validation))
    person, attributes = _record_card(runtime, db, session, checked, events, now=now)

    consented = set(session.consent_claims or [])
    status = SessionStatus.VERIFIED
    reason: str | None = None
    result: dict[str, Any] = {}
    reuse_info: dict[str, Any] | None = None
    wants_attributes = bool(consented & {claim.value for claim in ATTRIBUTE_CLAIMS})
    if session.reuse and wants_attributes:
        decision = decide_reuse(runtime, db, person, provider, now=now)
        status, reason, reuse_info = decision.status, decision.reason, decision.info
        if decision.attributes is not None:
            attributes = decision.attributes
    subject_id = pairwise_subject_id(
        runtime.pairwise_secret, provider_id=provider.id, person_id=person.id
    )
    if status is not SessionStatus.REVERIFICATION_REQUIRED:
        result["sub"] = subject_id
        if attributes is not None and wants_attributes:
            source = db.get(Certificate, person.sign_certificate_id)
            assert source is not None and person.identity_verified_at is not None
            result["verified_claims"] = verified_claims(
                released_claims(attributes, consented),
                verified_at=person.identity_verified_at,
                certificate_issuer=source.issuer,
                certificate_serial_hex=source.serial,
            )
        if ClaimName.DID.value in consented:
            result["did"] = checked.subject_did
        if reuse_info is not None:
            result["reuse"] = reuse_info
        if ClaimName.CREDENTIAL.value in consented:
            result["credential"], issued_event = _issue_credential(
                runtime, db, person, provider, checked, attributes or {}, consented, now=now
            )
            events.append(issued_event)
            issued_event[1]["session_id"] = session.id
        persons.grant_consent(
            db,
            person_id=person.id,
            provider_id=provider.id,
            subject_id=subject_id,
            session_id=session.id,
            claims=sorted(consented),
            now=now,
        )
        events.append(
            (
                "claims.released",
                {
                    "session_id": session.id,
                    "provider_id": provider.id,
                    "person_id": person.id,
                    "claims": sorted(consented),
                    "reuse": status is SessionStatus.REUSE_GRANTED,
                    "verified_at": person.identity_verified_at,
                },
            )
        )
        recorded = records.record_completion(
            runtime,
            db,
            session=session,
            provider=provider,
            kiosk_id=consent.kiosk_id if consent is not None else session.kiosk_id,
            person_id=person.id,
            subject_id=subject_id,
            checked=checked,
            attributes=attributes,
            consented=consented,
            reused=status is SessionStatus.REUSE_GRANTED,
            now=now,
        )
        if recorded is not None:
            events.append(recorded)
    sealed = runtime.cipher.seal(
        json.dumps(result, ensure_ascii=False).encode(), binding=result_binding(session.id)
    )
    # The session is taken only now, after the reads above: for a returning card this
    # is the transaction's first write, where SQLite's writer gate is taken, so the
    # reads are not done while every other writer waits. (A card seen for the first
    # time took the gate at its second lookup, and wrote its person and certificates.)
    _complete(
        db,
        session,
        status,
        now,
        person_id=person.id,
        reason_code=reason,
        result_key_id=sealed.key_id,
        result_encrypted=sealed.blob,
        consent=consent,
    )
    return CardOutcome(session.id, status, reason), events


def _issue_credential(
    runtime: Runtime,
    db: DbSession,
    person: Person | PersonRow,
    provider: ProviderRow,
    checked: CheckedCard,
    attributes: dict[str, Any],
    consented: set[str],
    *,
    now: datetime,
) -> tuple[dict[str, Any], tuple[str, dict[str, Any]]]:
    evidence = [credentials.certificate_evidence(checked.auth)]
    if checked.sign is not None:
        evidence.append(credentials.certificate_evidence(checked.sign))
        source_serial = checked.sign.certificate.serial_number
    elif attributes and person.sign_certificate_id is not None:
        source = db.get(Certificate, person.sign_certificate_id)
        assert source is not None
        source_serial = int(source.serial, 16)
    else:
        source_serial = checked.auth.certificate.serial_number
    credential = credentials.issue(
        runtime,
        db,
        person_id=person.id,
        provider_id=provider.id,
        subject_did=checked.subject_did,
        attributes=attributes,
        consented=consented,
        evidence=evidence,
        source_serial=source_serial,
        previous_dids=[did for did in persons.dids_of(db, person.id) if did != checked.subject_did],
        now=now,
    )
    event = {
        "credential_id": credential["id"],
        "provider_id": provider.id,
        "person_id": person.id,
        "certificate_serial_hash": certificate_serial_sha256(source_serial),
        "status_list_id": credential["credentialStatus"]["statusListCredential"].rsplit("/", 1)[1],
        "status_index": int(credential["credentialStatus"]["statusListIndex"]),
    }
    return credential, ("credential.issued", event)
