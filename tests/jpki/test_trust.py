"""The bundled J-LIS roots load, match their published fingerprints, and look like JPKI roots."""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from jpki.trust import AnchorPurpose, TrustAnchorError, production_anchors
from jpki.validation import ReasonCode, validate_anchor

TRUST_DIR = Path(__file__).resolve().parents[2] / "jpki" / "trust"


def _fingerprints_from_readme() -> dict[str, str]:
    """Fingerprints as documented in jpki/trust/README.md (copied from J-LIS' publication)."""
    table = {}
    for line in (TRUST_DIR / "README.md").read_text(encoding="utf-8").splitlines():
        match = re.match(r"\|\s*(\w+\.pem)\s*\|.*\|\s*([0-9A-F:]{95})\s*\|$", line)
        if match:
            table[match.group(1)] = match.group(2).replace(":", "").lower()
    return table


def test_bundled_roots_match_documented_fingerprints() -> None:
    documented = _fingerprints_from_readme()
    assert len(documented) == 4
    for pem_file, fingerprint in documented.items():
        certificate = x509.load_pem_x509_certificate((TRUST_DIR / pem_file).read_bytes())
        der = certificate.public_bytes(serialization.Encoding.DER)
        assert hashlib.sha256(der).hexdigest() == fingerprint, pem_file
    loaded = {anchor.name + ".pem": anchor.sha256 for anchor in production_anchors()}
    assert loaded == documented


def test_bundled_roots_are_self_signed_rsa2048_cas_for_their_purpose() -> None:
    anchors = production_anchors()
    assert {a.purpose for a in anchors} == {AnchorPurpose.AUTH, AnchorPurpose.SIGN}
    for anchor in anchors:
        cert = anchor.certificate
        assert anchor.production
        assert cert.subject == cert.issuer
        cert.verify_directly_issued_by(cert)  # raises if the self-signature is wrong
        key = cert.public_key()
        assert isinstance(key, rsa.RSAPublicKey) and key.key_size == 2048
        assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
        ou = [
            a.value
            for a in cert.subject.get_attributes_for_oid(x509.NameOID.ORGANIZATIONAL_UNIT_NAME)
        ]
        expected = {
            AnchorPurpose.AUTH: "JPKI for user authentication",
            AnchorPurpose.SIGN: "JPKI for digital signature",
        }[anchor.purpose]
        assert expected in ou


def test_bundled_roots_validate_as_anchors_of_themselves() -> None:
    during_both_generations = datetime(2024, 6, 1, tzinfo=UTC)
    for anchor in production_anchors():
        result = validate_anchor(anchor, at=during_both_generations)
        assert result.valid, (anchor.name, result)
        assert result.path == (anchor.sha256,)
        assert result.trust_anchor == anchor.name
        assert result.hierarchy == "production"


def test_the_2015_roots_have_expired_and_the_2023_roots_have_not() -> None:
    at = datetime(2026, 11, 1, tzinfo=UTC)
    reasons = {
        anchor.name: validate_anchor(anchor, at=at).reason for anchor in production_anchors()
    }
    assert reasons == {
        "auth_ca_2015": ReasonCode.EXPIRED,
        "auth_ca_2023": ReasonCode.VALID,
        "sign_ca_2015": ReasonCode.EXPIRED,
        "sign_ca_2023": ReasonCode.VALID,
    }
    before = datetime(2023, 1, 1, tzinfo=UTC)
    assert validate_anchor(production_anchors()[1], at=before).reason is ReasonCode.NOT_YET_VALID


def test_a_swapped_anchor_file_is_refused(monkeypatch) -> None:
    import jpki.trust as trust

    wrong = dict(trust.PRODUCTION_FINGERPRINTS)
    purpose, _ = wrong["auth_ca_2023.pem"]
    wrong["auth_ca_2023.pem"] = (purpose, "00" * 32)
    monkeypatch.setattr(trust, "PRODUCTION_FINGERPRINTS", wrong)
    trust.production_anchors.cache_clear()
    try:
        with pytest.raises(TrustAnchorError):
            trust.production_anchors()
    finally:
        monkeypatch.undo()
        trust.production_anchors.cache_clear()
