"""The trust policy the service validates cards under, built once from settings.

``production``: the bundled J-LIS roots, with CRLs from configured sources.
``test``: the roots of a test hierarchy directory (jpki.testca), whose CRLs
the service reads from the hierarchy itself. Revocation data is refreshed
through the policy's CRL indexes; nothing here reads the clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from pathlib import Path

from cryptography import x509

from commonid.operator import operator_http_client, operator_ocsp_clients
from commonid.settings import Settings
from jpki.revocation import (
    CrlError,
    CrlInfo,
    CrlSource,
    FileCrlSource,
    HttpCrlSource,
    RevocationIndex,
    RevocationStatus,
)
from jpki.revocation_policy import RevocationConfig, RevocationMode, RevocationOrder
from jpki.validation import TrustPolicy


@dataclass(frozen=True)
class HierarchyCrlSource:
    """The current CRL of a test hierarchy's CA, as its CRL endpoint would serve it."""

    directory: Path
    purpose: str

    def fetch(self) -> bytes:
        from jpki.testca import Hierarchy

        return Hierarchy.load(self.directory).crl(self.purpose)

    def describe(self) -> str:
        return f"testca:{self.directory}#{self.purpose}"


OPERATOR_PREFIX = "operator:"


def _source(spec: str, settings: Settings) -> CrlSource:
    """``file:`` or a path, an ``http(s)://`` URL, or ``operator:<URL>``: the platform
    operator's daily CRL, fetched with the operator's client authentication."""
    if spec.startswith(OPERATOR_PREFIX):
        return HttpCrlSource(
            spec.removeprefix(OPERATOR_PREFIX), client=operator_http_client(settings)
        )
    if spec.startswith(("http://", "https://")):
        return HttpCrlSource(spec)
    return FileCrlSource(Path(spec.removeprefix("file:")))


def trust_policy_from_settings(settings: Settings) -> TrustPolicy:
    mode = RevocationMode(settings.revocation_mode)
    grace = timedelta(seconds=settings.crl_switchover_grace_seconds)
    if settings.trust_mode == "test":
        if settings.test_hierarchy_dir is None:
            raise ValueError("trust_mode 'test' needs test_hierarchy_dir")
        from jpki.testca import Hierarchy

        hierarchy = Hierarchy.load(settings.test_hierarchy_dir)
        indexes = tuple(
            RevocationIndex(
                hierarchy.ca_certificate(purpose),
                # crl_sources may name another source for a test CA (an operator's).
                source=_source(settings.crl_sources[f"test-{purpose}"], settings)
                if f"test-{purpose}" in settings.crl_sources
                else HierarchyCrlSource(settings.test_hierarchy_dir, purpose),
                switchover_grace=grace,
            )
            for purpose in ("auth", "sign")
        )
        return TrustPolicy.for_test_hierarchy(
            hierarchy.auth_ca_certificate,
            hierarchy.sign_ca_certificate,
            revocation=_revocation(
                settings,
                mode,
                indexes,
                [hierarchy.auth_ca_certificate, hierarchy.sign_ca_certificate],
            ),
        )
    production = TrustPolicy.production(revocation=RevocationMode.OFF)
    by_name = {anchor.name: anchor.certificate for anchor in production.anchors}
    indexes = tuple(
        RevocationIndex(by_name[name], source=_source(spec, settings), switchover_grace=grace)
        for name, spec in settings.crl_sources.items()
        if name in by_name
    )
    return TrustPolicy.production(
        revocation=_revocation(settings, mode, indexes, list(by_name.values()))
    )


def _revocation(
    settings: Settings,
    mode: RevocationMode,
    indexes: tuple[RevocationIndex, ...],
    cas: list[x509.Certificate],
) -> RevocationConfig:
    """The CRL sources, and the platform operator's OCSP when configured, in the order
    the settings give (commonid.operator)."""
    ocsp = operator_ocsp_clients(settings, cas)
    if not ocsp:
        return RevocationConfig.from_crls(indexes, mode)
    return RevocationConfig(
        mode=mode,
        order=RevocationOrder(settings.revocation_order),
        crl_indexes=indexes,
        ocsp_clients=ocsp,
    )


@dataclass(frozen=True)
class InstalledCrl:
    """A CRL a refresh installed (not the one already held): what the audit log records."""

    trust_anchor: str
    crl: CrlInfo


@dataclass(frozen=True)
class RevocationRefresh:
    installed: tuple[InstalledCrl, ...]
    problems: tuple[str, ...]


def refresh_revocation(
    policy: TrustPolicy, *, at: datetime, force: bool = False
) -> RevocationRefresh:
    """Fetch CRLs that are due (or all, with ``force``): the ones installed, the problems met."""
    installed: list[InstalledCrl] = []
    problems: list[str] = []
    for index in policy.revocation.crl_indexes:
        if index.source is None:
            continue
        if force or index.refresh_due(at=at):
            held = index.current
            try:
                crl = index.refresh(at=at)
            except CrlError as error:
                problems.append(f"{index.source.describe()}: {error}")
                continue
            if held is None or held.sha256 != crl.sha256:
                installed.append(InstalledCrl(_anchor_name(policy, index), crl))
    return RevocationRefresh(tuple(installed), tuple(problems))


def _anchor_name(policy: TrustPolicy, index: RevocationIndex) -> str:
    for anchor in policy.anchors:
        if anchor.certificate == index.issuer_certificate:
            return anchor.name
    return "unanchored"  # a CRL source for a CA outside the policy: still worth recording


def revocation_data_ages(policy: TrustPolicy, *, at: datetime) -> dict[str, float]:
    """Seconds since thisUpdate of each CA's current CRL (for the metrics)."""
    ages = {}
    for index in policy.revocation.crl_indexes:
        current = index.current
        if current is not None:
            ages[current.issuer] = (at - current.this_update).total_seconds()
    return ages


class StoredCertificateStatus(StrEnum):
    GOOD = "good"
    REVOKED = "revoked"
    UNKNOWN = "unknown"


def stored_certificate_status(
    policy: TrustPolicy, *, issuer: str, serial_hex: str, at: datetime
) -> StoredCertificateStatus:
    """Revocation status of a certificate the service kept only issuer and serial of."""
    return stored_certificate_revocation(policy, issuer=issuer, serial_hex=serial_hex, at=at)[0]


def stored_certificate_revocation(
    policy: TrustPolicy, *, issuer: str, serial_hex: str, at: datetime
) -> tuple[StoredCertificateStatus, x509.ReasonFlags | None]:
    """The status, and for a revoked certificate the CRL's reason (None: not given)."""
    if policy.revocation.mode is RevocationMode.OFF:
        return StoredCertificateStatus.GOOD, None
    for index in policy.revocation.crl_indexes:
        if index.issuer_certificate.subject.rfc4514_string() != issuer:
            continue
        answer = index.check(int(serial_hex, 16), at=at)
        if answer.status is RevocationStatus.REVOKED:
            reason = answer.entry.reason if answer.entry is not None else None
            return StoredCertificateStatus.REVOKED, reason
        if answer.status is RevocationStatus.GOOD:
            return StoredCertificateStatus.GOOD, None
    return StoredCertificateStatus.UNKNOWN, None
