"""How a trust policy obtains revocation status: CRL indexes and OCSP clients, in an order.

`RevocationConfig` is part of a `TrustPolicy`. For one certificate it asks
OCSP first (when configured and the order says so) and falls back to the CRL
index of the issuing CA; the answer says which source gave it.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from cryptography import x509
from cryptography.hazmat.primitives import hashes

from jpki.ocsp_client import OcspCertStatus, OcspClient, OcspError
from jpki.revocation import RevocationIndex, RevocationStatus


class RevocationMode(enum.StrEnum):
    REQUIRE = "require"  # no fresh revocation data: not valid (the default)
    SOFT_FAIL = "soft-fail"  # no data: valid, and the result says none was used
    OFF = "off"  # revocation is not checked at all (tests of other checks only)


class RevocationOrder(enum.StrEnum):
    OCSP_THEN_CRL = "ocsp-then-crl"
    CRL_ONLY = "crl-only"
    OCSP_ONLY = "ocsp-only"  # e.g. a platform operator's OCSP, with no CRL to fall back on


@dataclass(frozen=True)
class RevocationEvidence:
    """What the revocation answer was based on, for the audit log."""

    source: str  # "crl" or "ocsp"
    issuer: str
    this_update: datetime
    next_update: datetime | None
    sha256: str  # of the CRL or of the OCSP response
    crl_number: int | None = None
    produced_at: datetime | None = None  # OCSP only
    responder: str | None = None  # OCSP only: "ca" or delegated responder fingerprint


@dataclass(frozen=True)
class RevocationOutcome:
    status: RevocationStatus
    evidence: RevocationEvidence | None
    revoked_at: datetime | None = None
    reason: x509.ReasonFlags | None = None
    detail: str = ""


def _fingerprint(certificate: x509.Certificate) -> str:
    return certificate.fingerprint(hashes.SHA256()).hex()


@dataclass(frozen=True)
class RevocationConfig:
    mode: RevocationMode = RevocationMode.REQUIRE
    order: RevocationOrder = RevocationOrder.OCSP_THEN_CRL
    crl_indexes: tuple[RevocationIndex, ...] = ()
    ocsp_clients: tuple[OcspClient, ...] = ()
    _crl_by_ca: dict[str, RevocationIndex] = field(init=False, repr=False, compare=False)
    _ocsp_by_ca: dict[str, OcspClient] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "_crl_by_ca", {_fingerprint(i.issuer_certificate): i for i in self.crl_indexes}
        )
        object.__setattr__(
            self, "_ocsp_by_ca", {_fingerprint(c.issuer_certificate): c for c in self.ocsp_clients}
        )

    @classmethod
    def off(cls) -> RevocationConfig:
        return cls(mode=RevocationMode.OFF)

    @classmethod
    def from_crls(
        cls, indexes: Iterable[RevocationIndex], mode: RevocationMode = RevocationMode.REQUIRE
    ) -> RevocationConfig:
        return cls(mode=mode, order=RevocationOrder.CRL_ONLY, crl_indexes=tuple(indexes))

    def check(
        self, certificate: x509.Certificate, issuer: x509.Certificate, *, at: datetime
    ) -> RevocationOutcome:
        """Status of `certificate` (issued by `issuer`) at `at`, from OCSP and/or the CRL."""
        ca = _fingerprint(issuer)
        problems = []
        uses_ocsp = self.order in (RevocationOrder.OCSP_THEN_CRL, RevocationOrder.OCSP_ONLY)
        if uses_ocsp and ca in self._ocsp_by_ca:
            client = self._ocsp_by_ca[ca]
            try:
                answer = client.query(certificate, at=at)
            except OcspError as error:
                problems.append(f"OCSP: {error}")
            else:
                if answer.status is not OcspCertStatus.UNKNOWN:
                    evidence = RevocationEvidence(
                        source="ocsp",
                        issuer=issuer.subject.rfc4514_string(),
                        this_update=answer.this_update,
                        next_update=answer.next_update,
                        sha256=answer.sha256,
                        produced_at=answer.produced_at,
                        responder=answer.responder,
                    )
                    if answer.status is OcspCertStatus.REVOKED and (
                        answer.revoked_at is None or answer.revoked_at <= at
                    ):
                        return RevocationOutcome(
                            RevocationStatus.REVOKED, evidence, answer.revoked_at, answer.reason
                        )
                    return RevocationOutcome(RevocationStatus.GOOD, evidence)
                problems.append("OCSP: responder does not know the certificate")
        if self.order is RevocationOrder.OCSP_ONLY:
            if ca not in self._ocsp_by_ca:
                problems.append("no OCSP responder configured for this CA")
            return RevocationOutcome(RevocationStatus.UNAVAILABLE, None, detail="; ".join(problems))
        index = self._crl_by_ca.get(ca)
        if index is None:
            problems.append("no CRL configured for this CA")
            return RevocationOutcome(RevocationStatus.UNAVAILABLE, None, detail="; ".join(problems))
        answer = index.check(certificate.serial_number, at=at)
        evidence = None
        if answer.crl is not None:
            evidence = RevocationEvidence(
                source="crl",
                issuer=answer.crl.issuer,
                this_update=answer.crl.this_update,
                next_update=answer.crl.next_update,
                sha256=answer.crl.sha256,
                crl_number=answer.crl.crl_number,
            )
        if answer.detail:
            problems.append(f"CRL: {answer.detail}")
        if answer.status is RevocationStatus.REVOKED and answer.entry is not None:
            return RevocationOutcome(
                answer.status, evidence, answer.entry.revoked_at, answer.entry.reason
            )
        return RevocationOutcome(answer.status, evidence, detail="; ".join(problems))
