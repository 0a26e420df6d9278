"""Shared pieces for the did tests: an issuer key ring, status lists, a subject key."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

from did.credentials import (
    CertificateEvidence,
    Claim,
    IdentityCredentialRequest,
    RevocationEvidence,
    VerifiedClaims,
    certificate_serial_sha256,
)
from did.keys import IssuerKeyring, did_key_from_public_key
from did.presentation import SHA256_DIGEST_INFO_PREFIX
from did.status import (
    StatusList,
    StatusPurpose,
    allocate_credential_status,
    issue_status_list_credential,
)

STATUS_BASE = "https://commonid.test/status"
AUTH_CA = "CN=Test JPKI Auth CA,O=Common-ID Test,C=JP"
SIGN_CA = "CN=Test JPKI Sign CA,O=Common-ID Test,C=JP"


@pytest.fixture(scope="session")
def subject_key() -> rsa.RSAPrivateKey:
    """A software stand-in for a card's RSA-2048 authentication key."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="session")
def subject_did(subject_key: rsa.RSAPrivateKey) -> str:
    return did_key_from_public_key(subject_key.public_key())


def software_sign_digest_info(key: rsa.RSAPrivateKey) -> Callable[[bytes], bytes]:
    """Sign a SHA-256 DigestInfo the way the card does (PKCS#1 v1.5 over DigestInfo)."""

    def sign(digest_info: bytes) -> bytes:
        assert digest_info.startswith(SHA256_DIGEST_INFO_PREFIX)
        digest = digest_info[len(SHA256_DIGEST_INFO_PREFIX) :]
        return key.sign(digest, padding.PKCS1v15(), Prehashed(hashes.SHA256()))

    return sign


@pytest.fixture
def keyring(tmp_path: Path) -> IssuerKeyring:
    return IssuerKeyring.open(tmp_path / "keys" / "issuer.json")


@dataclass
class StatusRegistry:
    """The issuer's two lists and a resolver serving their signed credentials."""

    keyring: IssuerKeyring
    revocation: StatusList
    suspension: StatusList
    fetches: int = 0
    lists_issued_at: datetime | None = None  # None: sign the lists at the current time

    @property
    def lists(self) -> dict[str, StatusList]:
        return {self.revocation.url: self.revocation, self.suspension.url: self.suspension}

    def resolve(self, url: str) -> dict[str, Any]:
        self.fetches += 1
        return issue_status_list_credential(
            self.lists[url], self.keyring, issued_at=self.lists_issued_at
        )


@pytest.fixture
def status_registry(keyring: IssuerKeyring) -> StatusRegistry:
    return StatusRegistry(
        keyring,
        StatusList.new(f"{STATUS_BASE}/revocation/1", StatusPurpose.REVOCATION),
        StatusList.new(f"{STATUS_BASE}/suspension/1", StatusPurpose.SUSPENSION),
    )


@pytest.fixture
def now() -> datetime:
    # Real time: didkit checks a VC-JWT's nbf/exp against the wall clock.
    return datetime.now(UTC).replace(microsecond=0)


def evidence(
    purpose: str, *, serial: int, not_after: datetime, validated_at: datetime
) -> CertificateEvidence:
    return CertificateEvidence(
        purpose=purpose,
        issuer=SIGN_CA if purpose == "sign" else AUTH_CA,
        serial_sha256=certificate_serial_sha256(serial),
        not_after=not_after,
        validated_at=validated_at,
        revocation=RevocationEvidence(
            method="crl",
            source=f"http://crl.commonid.test/{purpose}.crl",
            this_update=validated_at - timedelta(hours=1),
            checked_at=validated_at,
        ),
    )


DEMO_CLAIMS = VerifiedClaims(
    name="山田 太郎",
    birthdate=date(1985, 4, 1),
    gender="male",
    address="東京都千代田区千代田1-1",
    name_flags="0",
    address_flags="0",
)


@pytest.fixture
def make_request(
    subject_did: str, status_registry: StatusRegistry, now: datetime
) -> Callable[..., IdentityCredentialRequest]:
    def make(
        *,
        consented: frozenset[Claim] = frozenset({Claim.NAME, Claim.BIRTHDATE}),
        not_after: datetime | None = None,
        expires_at: datetime | None = None,
        serial: int = 0x1234ABCD,
    ) -> IdentityCredentialRequest:
        certificate_not_after = not_after or now + timedelta(days=365)
        return IdentityCredentialRequest(
            subject_did=subject_did,
            claims=DEMO_CLAIMS,
            consented_claims=consented,
            certificates=(
                evidence("sign", serial=serial, not_after=certificate_not_after, validated_at=now),
            ),
            status=allocate_credential_status(
                status_registry.revocation, status_registry.suspension
            ),
            issued_at=now - timedelta(minutes=1),
            expires_at=expires_at,
        )

    return make
