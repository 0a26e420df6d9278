"""The allow-list: audit entries take ids, hashes, codes and claim names, nothing personal."""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime

import pytest

from commonid.api.schemas import ClaimName
from commonid.audit.events import CLAIM_NAMES, AuditFieldError, audit_fields

SERIAL_HASH = hashlib.sha256(b"serial 1234").hexdigest()


def test_a_validation_outcome_keeps_its_evidence() -> None:
    fields = audit_fields(
        "validation.outcome",
        {
            "session_id": "ses_abc",
            "certificate_kind": "sign",
            "outcome": "invalid",
            "reason_code": "revoked",
            "trust_anchor": "sign_ca_test",
            "certificate_serial_hash": SERIAL_HASH,
            "path_fingerprints": [SERIAL_HASH, SERIAL_HASH],
            "revocation_source": "crl",
            "revocation_this_update": datetime(2026, 11, 25, 9, 0, tzinfo=UTC),
            "validated_at": datetime(2026, 11, 25, 9, 5, 1, 250, tzinfo=UTC),
            "revocation_next_update": None,
        },
    )
    assert fields["revocation_this_update"] == "2026-11-25T09:00:00.000000Z"
    assert fields["validated_at"] == "2026-11-25T09:05:01.000250Z"
    assert "revocation_next_update" not in fields


@pytest.mark.parametrize(
    ("event_type", "fields"),
    [
        # Fields with no place on the allow-list.
        ("card_response.received", {"session_id": "ses_a", "pin": "1234"}),
        ("card_response.received", {"session_id": "ses_a", "password": "ABC123"}),
        ("claims.released", {"provider_id": "prv_a", "claims": ["name"], "name": "山田太郎"}),
        ("validation.outcome", {"outcome": "valid", "certificate": "MIIB..."}),
        # Personal values pushed into allowed fields.
        ("session.completed", {"session_id": "山田太郎", "status": "verified"}),
        ("session.completed", {"session_id": "Taro Yamada", "status": "verified"}),
        ("session.completed", {"session_id": "1234", "status": "verified"}),
        ("admin.action", {"action": "delete", "target_id": "東京都千代田区"}),
        ("claims.released", {"provider_id": "prv_a", "claims": ["山田太郎"]}),
        ("claims.released", {"provider_id": "prv_a", "claims": {"name": "山田太郎"}}),
        (
            "validation.outcome",
            {"outcome": "valid", "trust_anchor": base64.b64encode(b"\x30\x82" * 200).decode()},
        ),
        ("validation.outcome", {"outcome": "valid", "certificate_serial_hash": "1A2B"}),
        ("validation.outcome", {"outcome": "Valid for 山田"}),
        ("validation.outcome", {"outcome": "valid", "validated_at": "2026-11-25 somewhere"}),
        ("validation.outcome", {"outcome": "valid", "validated_at": datetime(2026, 1, 1)}),
        ("credential.issued", {"credential_id": "did:key:z" + "A" * 400}),
        # Unknown types and missing identifiers.
        ("person.attributes", {"name": "x"}),
        ("session.created", {"provider_id": "prv_a"}),
    ],
)
def test_personal_data_and_unknown_fields_are_refused(event_type: str, fields: dict) -> None:
    with pytest.raises(AuditFieldError) as refused:
        audit_fields(event_type, fields)
    # The refusal names the rule, never the value it refused.
    for secret in ("1234", "ABC123", "山田", "Taro", "東京都", "MIIB", "MIKC", "somewhere"):
        assert secret not in str(refused.value)


def test_claim_names_are_the_apis_claim_names() -> None:
    assert {claim.value for claim in ClaimName} == CLAIM_NAMES


def test_claims_are_logged_sorted_without_repeats() -> None:
    fields = audit_fields(
        "claims.released", {"provider_id": "prv_a", "claims": ["name", "address", "name"]}
    )
    assert fields["claims"] == ["address", "name"]
