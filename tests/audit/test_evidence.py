"""A real validation of the demo person's sign certificate, logged without personal data."""

from __future__ import annotations

import datetime as dt
import json

from cryptography.hazmat.primitives.serialization import Encoding

from commonid.audit.evidence import validation_outcome_fields
from commonid.audit.log import AuditLog
from did.credentials import certificate_serial_sha256
from jpki.profile import parse_certificate
from jpki.testca import Hierarchy, IssuedPerson
from jpki.validation import Purpose, TrustPolicy, validate
from tests.jpki.validation_corpus import crl_indexes


def test_validation_evidence_is_logged_as_hashes_and_codes(
    audit_log: AuditLog, test_hierarchy: Hierarchy, demo_person: IssuedPerson, test_now: dt.datetime
) -> None:
    policy = TrustPolicy.for_test_hierarchy(
        test_hierarchy.auth_ca_certificate,
        test_hierarchy.sign_ca_certificate,
        revocation=crl_indexes(test_hierarchy, test_now),
    )
    certificate = demo_person.sign_certificate
    result = validate(
        certificate.public_bytes(Encoding.DER), Purpose.SIGN, at=test_now, policy=policy
    )
    assert result.valid and result.revocation is not None

    index = audit_log.append(
        "validation.outcome",
        **validation_outcome_fields(result, certificate_kind="sign", session_id="ses_demo"),
    )
    logged = audit_log.entry(index)
    assert logged is not None
    data = json.loads(logged.entry)["data"]
    assert data["outcome"] == "valid" and data["reason_code"] == "valid"
    assert data["trust_anchor"] == result.trust_anchor
    assert data["certificate_serial_hash"] == certificate_serial_sha256(certificate.serial_number)
    assert data["revocation_source"] == result.revocation.source
    assert data["revocation_evidence_hash"] == result.revocation.sha256
    # Nothing of the person or the certificate itself is in the entry.
    text = logged.entry
    assert format(certificate.serial_number, "x") not in text.lower()
    for attribute in certificate.subject:
        assert str(attribute.value) not in text
    attributes = parse_certificate(certificate.public_bytes(Encoding.DER)).attributes
    assert attributes is not None
    for personal in (attributes.name, attributes.address, attributes.birth_date.isoformat()):
        assert personal and personal not in text
