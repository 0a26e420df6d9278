"""What an audit entry may say: a fixed allow-list of fields per event type.

The log is public to reviewers and can never be edited, so a personal value
written into it could never be taken back. Every field therefore has a kind
whose pattern admits only pseudonymous ids, hashes, codes, claim names, counts
and times: a name, an address, a PIN, a certificate or a DID document has no
field to go into and does not fit any pattern. Errors name the field and the
rule, never the value (it may be exactly what must not be logged).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from typing import Any

# The claim names a provider can ask for (commonid.api.schemas.ClaimName): names only.
CLAIM_NAMES = frozenset({"name", "birthdate", "gender", "address", "did", "credential"})

_ID = re.compile(r"[A-Za-z][A-Za-z0-9_.:-]{0,99}")
_CODE = re.compile(r"[a-z][a-z0-9_.-]{0,59}")
_HASH = re.compile(r"[0-9a-f]{64}")
_MAX_COUNT = 2**53


class AuditFieldError(ValueError):
    """An event that the allow-list refuses; the message never holds the value."""


class Kind(Enum):
    ID = "id"  # pseudonymous identifier: starts with a letter (ses_..., prv_..., a CA name)
    CODE = "code"  # machine code: reason codes, statuses, modes, kinds
    HASH = "hash"  # SHA-256, lowercase hex
    HASHES = "hashes"  # a list of SHA-256 hex (certificate path fingerprints)
    CLAIMS = "claims"  # a list of claim names, never their values
    BOOL = "bool"
    COUNT = "count"  # non-negative integer
    MILLISECONDS = "milliseconds"  # non-negative duration
    TIME = "time"  # aware datetime, written as RFC 3339 UTC


@dataclass(frozen=True)
class EventType:
    name: str
    fields: Mapping[str, Kind]
    required: frozenset[str]


def _event(name: str, required: tuple[str, ...], **fields: Kind) -> EventType:
    return EventType(name, fields, frozenset(required))


_VALIDATION_FIELDS = {
    "session_id": Kind.ID,
    "certificate_kind": Kind.CODE,  # auth | sign
    "outcome": Kind.CODE,  # valid | invalid
    "reason_code": Kind.CODE,
    "trust_anchor": Kind.ID,
    "trust_anchor_fingerprint": Kind.HASH,
    "certificate_serial_hash": Kind.HASH,
    "path_fingerprints": Kind.HASHES,
    "revocation_source": Kind.CODE,  # crl | ocsp | none
    "revocation_this_update": Kind.TIME,
    "revocation_next_update": Kind.TIME,
    "revocation_evidence_hash": Kind.HASH,  # SHA-256 of the CRL / OCSP response used
    "validated_at": Kind.TIME,
}

EVENT_TYPES: dict[str, EventType] = {
    event.name: event
    for event in (
        _event(
            "session.created",
            ("session_id", "provider_id"),
            session_id=Kind.ID,
            provider_id=Kind.ID,
            mode=Kind.CODE,
            claims=Kind.CLAIMS,
            reuse=Kind.BOOL,
            document=Kind.CODE,
        ),
        _event(
            "session.consent_given",
            ("session_id",),
            session_id=Kind.ID,
            kiosk_id=Kind.ID,
            claims=Kind.CLAIMS,
        ),
        _event("session.consent_declined", ("session_id",), session_id=Kind.ID, kiosk_id=Kind.ID),
        _event("card_response.received", ("session_id",), session_id=Kind.ID, kiosk_id=Kind.ID),
        # What a kiosk saw of one visit (a session looked up until the screen is cleared):
        # times and counts only, nothing about the person or the card.
        _event(
            "kiosk.visit_ended",
            ("session_id", "kiosk_id", "outcome"),
            session_id=Kind.ID,
            kiosk_id=Kind.ID,
            outcome=Kind.CODE,  # the result screen's code, or cancelled | timed_out
            duration_ms=Kind.MILLISECONDS,  # look-up to result (or to cancellation)
            card_ms=Kind.MILLISECONDS,  # time spent talking to the card
            service_ms=Kind.MILLISECONDS,  # time spent waiting for the service
            pin_wrong=Kind.COUNT,
            password_wrong=Kind.COUNT,
            last_try_confirmed=Kind.COUNT,
            card_blocked=Kind.COUNT,
            card_removed=Kind.COUNT,
        ),
        _event(
            "card_response.rejected",
            ("session_id", "reason_code"),
            session_id=Kind.ID,
            kiosk_id=Kind.ID,
            reason_code=Kind.CODE,
        ),
        _event("validation.outcome", ("outcome",), **_VALIDATION_FIELDS),
        _event(
            "session.completed",
            ("session_id", "status"),
            session_id=Kind.ID,
            provider_id=Kind.ID,
            mode=Kind.CODE,
            status=Kind.CODE,
            reason_code=Kind.CODE,
            person_id=Kind.ID,
            latency_ms=Kind.MILLISECONDS,  # from the session's creation
            verification_ms=Kind.MILLISECONDS,  # the service's time for the card response
        ),
        _event(
            "claims.released",
            ("provider_id", "claims"),
            session_id=Kind.ID,
            provider_id=Kind.ID,
            subject_id=Kind.ID,
            person_id=Kind.ID,
            claims=Kind.CLAIMS,
            reuse=Kind.BOOL,
            verified_at=Kind.TIME,
        ),
        _event(
            "consent.withdrawn",
            ("provider_id",),
            provider_id=Kind.ID,
            subject_id=Kind.ID,
            person_id=Kind.ID,
        ),
        _event(
            "credential.issued",
            ("credential_id",),
            credential_id=Kind.ID,
            session_id=Kind.ID,
            provider_id=Kind.ID,
            person_id=Kind.ID,
            certificate_serial_hash=Kind.HASH,
            status_list_id=Kind.ID,
            status_index=Kind.COUNT,
        ),
        _event(
            "credential.revoked",
            ("credential_id", "reason_code"),
            credential_id=Kind.ID,
            person_id=Kind.ID,
            reason_code=Kind.CODE,
            certificate_serial_hash=Kind.HASH,
        ),
        # A card seen for the first time: joined to an existing record on evidence, or a
        # new record, with the reason (docs/compliance.md).
        _event(
            "identity.linked",
            ("person_id", "evidence"),
            session_id=Kind.ID,
            person_id=Kind.ID,
            evidence=Kind.CODE,  # certificate_linkage | basic_attributes_match
        ),
        _event(
            "identity.created",
            ("person_id", "reason"),
            session_id=Kind.ID,
            person_id=Kind.ID,
            reason=Kind.CODE,  # no_record_with_these_attributes | authentication_only
        ),
        # A certificate behind a record was revoked: what changed, and whether the
        # person must verify again (commonid.revocations).
        _event(
            "identity.changed",
            ("person_id", "change"),
            person_id=Kind.ID,
            change=Kind.CODE,  # card_renewed | attributes_changed | card_lost | certificate_revoked
            certificate_kind=Kind.CODE,  # auth | sign
            reverification_required=Kind.BOOL,
        ),
        # Wallet credentials (commonid.flows.wallet_issuance, docs/wallet.md): an offer
        # made at the end of a verification, SD-JWT VCs issued, their status changed.
        _event(
            "wallet.offer_created",
            ("offer_id", "session_id"),
            offer_id=Kind.ID,
            session_id=Kind.ID,
            person_id=Kind.ID,
            kiosk_id=Kind.ID,
        ),
        _event(
            "wallet.offer_refused",
            ("offer_id", "reason_code"),
            offer_id=Kind.ID,
            reason_code=Kind.CODE,
        ),
        _event(
            "wallet.credential_issued",
            ("credential_id", "offer_id", "holder_binding"),
            credential_id=Kind.ID,
            offer_id=Kind.ID,
            person_id=Kind.ID,
            holder_binding=Kind.CODE,  # wallet | card
            status_list_id=Kind.ID,
            status_index=Kind.COUNT,
            certificate_serial_hash=Kind.HASH,
        ),
        _event(
            "wallet.credential_status_changed",
            ("credential_id", "status"),
            credential_id=Kind.ID,
            person_id=Kind.ID,
            status=Kind.CODE,  # revoked | superseded | suspended | valid
            reason_code=Kind.CODE,
        ),
        # OpenID4VP (commonid.flows.presentations): a provider's request and its answer.
        _event(
            "presentation.requested",
            ("request_id", "provider_id"),
            request_id=Kind.ID,
            provider_id=Kind.ID,
            claims=Kind.CLAIMS,
            age_equal_or_over=Kind.BOOL,  # an age claim was asked for (which one is not kept)
        ),
        _event(
            "presentation.answered",
            ("request_id", "provider_id", "outcome"),
            request_id=Kind.ID,
            provider_id=Kind.ID,
            outcome=Kind.CODE,  # verified | refused
            reason_code=Kind.CODE,
            holder_binding=Kind.CODE,
        ),
        # Verification records (commonid.records): made, retention declared, purged.
        _event(
            "record.created",
            ("record_id", "provider_id", "record_hash"),
            record_id=Kind.ID,
            provider_id=Kind.ID,
            session_id=Kind.ID,
            kind=Kind.CODE,  # identity_verification | reuse
            record_hash=Kind.HASH,  # SHA-256 of the record's RFC 8785 form
        ),
        _event(
            "record.relationship_ended",
            ("provider_id", "records"),
            provider_id=Kind.ID,
            records=Kind.COUNT,
            retain_until=Kind.TIME,
        ),
        _event(
            "record.purged",
            ("record_id", "provider_id", "record_hash"),
            record_id=Kind.ID,
            provider_id=Kind.ID,
            record_hash=Kind.HASH,
        ),
        _event(
            "revocation.refreshed",
            ("trust_anchor",),
            trust_anchor=Kind.ID,
            revocation_source=Kind.CODE,
            revocation_this_update=Kind.TIME,
            revocation_next_update=Kind.TIME,
            revocation_evidence_hash=Kind.HASH,
            revoked_count=Kind.COUNT,
            crl_number=Kind.COUNT,
        ),
        _event(
            "webhook.delivered",
            ("delivery_id", "provider_id"),
            delivery_id=Kind.ID,
            provider_id=Kind.ID,
            event_type=Kind.CODE,
            attempts=Kind.COUNT,
            status_code=Kind.COUNT,
        ),
        _event(
            "webhook.failed",
            ("delivery_id", "provider_id"),
            delivery_id=Kind.ID,
            provider_id=Kind.ID,
            event_type=Kind.CODE,
            attempts=Kind.COUNT,
            status_code=Kind.COUNT,
            reason_code=Kind.CODE,
        ),
        _event(
            "document.signed",
            ("session_id", "document_id", "document_sha256"),
            session_id=Kind.ID,
            document_id=Kind.ID,
            document_sha256=Kind.HASH,
            unsigned_document_sha256=Kind.HASH,
            reason_code=Kind.CODE,
            trust_anchor=Kind.ID,
            trust_anchor_fingerprint=Kind.HASH,
            path_fingerprints=Kind.HASHES,
            certificate_serial_hash=Kind.HASH,
            revocation_source=Kind.CODE,
            revocation_evidence_hash=Kind.HASH,
            validated_at=Kind.TIME,
            timestamped_at=Kind.TIME,
        ),
        _event(
            "document.declined",
            ("session_id", "document_id"),
            session_id=Kind.ID,
            document_id=Kind.ID,
            kiosk_id=Kind.ID,
        ),
        _event(
            "document.rejected",
            ("session_id", "reason_code"),
            session_id=Kind.ID,
            kiosk_id=Kind.ID,
            reason_code=Kind.CODE,
            certificate_reason_code=Kind.CODE,
        ),
        _event(
            "admin.action",
            ("action",),
            action=Kind.CODE,
            actor=Kind.ID,
            target_type=Kind.CODE,
            target_id=Kind.ID,
        ),
        # The OpenID Provider (commonid.oidc): what each request became, by ids and codes.
        _event(
            "oidc.authorization_started",
            ("authorization_id", "client_id", "session_id"),
            authorization_id=Kind.ID,
            client_id=Kind.ID,
            session_id=Kind.ID,
            pushed=Kind.BOOL,
            acr_requested=Kind.ID,
        ),
        _event(
            "oidc.authorization_finished",
            ("authorization_id", "client_id", "outcome"),
            authorization_id=Kind.ID,
            client_id=Kind.ID,
            session_id=Kind.ID,
            outcome=Kind.CODE,  # code_issued | access_denied
            acr=Kind.ID,
        ),
        _event(
            "oidc.token_issued",
            ("authorization_id", "client_id"),
            authorization_id=Kind.ID,
            client_id=Kind.ID,
            dpop_bound=Kind.BOOL,
        ),
        _event(
            "oidc.claims_released",
            ("authorization_id", "client_id"),
            authorization_id=Kind.ID,
            client_id=Kind.ID,
            claims=Kind.CLAIMS,
        ),
        _event(
            "oidc.request_refused",
            ("endpoint", "error"),
            endpoint=Kind.CODE,  # authorize | par | token | userinfo
            error=Kind.CODE,  # the OAuth error code sent
            client_id=Kind.ID,  # when the client is a registered one
        ),
    )
}


def format_time(moment: datetime) -> str:
    """RFC 3339 UTC with microseconds: one spelling per instant, so hashes are stable."""
    if moment.tzinfo is None:
        raise AuditFieldError("times in the audit log must be timezone-aware")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _check(event: str, field: str, kind: Kind, value: Any) -> Any:
    def refuse(rule: str) -> AuditFieldError:
        return AuditFieldError(f"{event}: field {field!r} must be {rule}")

    if kind is Kind.ID:
        if not isinstance(value, str) or not _ID.fullmatch(value):
            raise refuse("a pseudonymous id (letter first, [A-Za-z0-9_.:-], at most 100)")
        return value
    if kind is Kind.CODE:
        if not isinstance(value, str) or not _CODE.fullmatch(value):
            raise refuse("a lowercase code ([a-z0-9_.-], at most 60)")
        return value
    if kind is Kind.HASH:
        if not isinstance(value, str) or not _HASH.fullmatch(value):
            raise refuse("a SHA-256 in lowercase hex")
        return value
    if kind is Kind.HASHES:
        if not isinstance(value, list | tuple) or len(value) > 16:
            raise refuse("a list of at most 16 SHA-256 hex values")
        return [_check(event, field, Kind.HASH, item) for item in value]
    if kind is Kind.CLAIMS:
        if not isinstance(value, list | tuple | set | frozenset) or not all(
            isinstance(item, str) and item in CLAIM_NAMES for item in value
        ):
            raise refuse(f"a list of claim names ({', '.join(sorted(CLAIM_NAMES))})")
        return sorted(set(value))
    if kind is Kind.BOOL:
        if not isinstance(value, bool):
            raise refuse("true or false")
        return value
    if kind is Kind.COUNT:
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < _MAX_COUNT:
            raise refuse("a non-negative integer")
        return value
    if kind is Kind.MILLISECONDS:
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < 1e9:
            raise refuse("a non-negative number of milliseconds")
        # Rounded to whole microseconds: floats are hashed as JCS numbers.
        return round(float(value), 3)
    if kind is Kind.TIME:
        if not isinstance(value, datetime):
            raise refuse("a timezone-aware datetime")
        return format_time(value)
    raise AssertionError(kind)  # pragma: no cover - every kind is handled above


def audit_fields(event_type: str, fields: Mapping[str, Any]) -> dict[str, Any]:
    """The event's fields as they will be logged, or AuditFieldError.

    Unknown event types and unknown fields are refused; ``None`` means absent.
    """
    event = EVENT_TYPES.get(event_type)
    if event is None:
        raise AuditFieldError(f"unknown audit event type {event_type!r}")
    present = {name: value for name, value in fields.items() if value is not None}
    unknown = sorted(set(present) - set(event.fields))
    if unknown:
        raise AuditFieldError(f"{event_type}: fields not on the allow-list: {', '.join(unknown)}")
    missing = sorted(event.required - set(present))
    if missing:
        raise AuditFieldError(f"{event_type}: missing required fields: {', '.join(missing)}")
    return {
        name: _check(event_type, name, event.fields[name], value) for name, value in present.items()
    }


def logged_fields_allowed(event_type: str, data: Mapping[str, Any]) -> bool:
    """Whether a logged entry's fields are all on its type's allow-list (for verification)."""
    event = EVENT_TYPES.get(event_type)
    return event is not None and set(data) <= set(event.fields)
