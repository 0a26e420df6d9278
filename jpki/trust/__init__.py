"""The bundled production trust anchors: the J-LIS JPKI root certificates.

The PEM files ship inside the package (never read from outside it at run
time). Each file's SHA-256 fingerprint is pinned here, so a file swapped in
the installed tree is refused instead of silently trusted.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from functools import cache
from importlib import resources

from cryptography import x509
from cryptography.hazmat.primitives import hashes


class AnchorPurpose(enum.StrEnum):
    """Which JPKI certificate family a root CA issues."""

    AUTH = "auth"
    SIGN = "sign"


class TrustAnchorError(Exception):
    """A bundled trust anchor file is missing or does not match its pinned fingerprint."""


@dataclass(frozen=True)
class TrustAnchor:
    """One root CA certificate trusted for one purpose."""

    name: str
    purpose: AnchorPurpose
    certificate: x509.Certificate
    production: bool

    @property
    def sha256(self) -> str:
        return self.certificate.fingerprint(hashes.SHA256()).hex()


# file name -> (purpose, pinned SHA-256); the values are those in README.md.
PRODUCTION_FINGERPRINTS: dict[str, tuple[AnchorPurpose, str]] = {
    "auth_ca_2015.pem": (
        AnchorPurpose.AUTH,
        "4dcfc4ca0aaf9fb2a3081b3f0c991c320b3acc008667a341eeaec5af1d58ca7d",
    ),
    "auth_ca_2023.pem": (
        AnchorPurpose.AUTH,
        "64114f29620c24ed2631d46476a040e7ee740d956089c00b036a6a8118c322b5",
    ),
    "sign_ca_2015.pem": (
        AnchorPurpose.SIGN,
        "19645405a1fe14377434bd55957628ac4038557c542403a2243f21c706fc9355",
    ),
    "sign_ca_2023.pem": (
        AnchorPurpose.SIGN,
        "d227f6cde11d35c5252178f106f843d24651944975413b539fa2fb68dbfa365f",
    ),
}


@cache
def production_anchors() -> tuple[TrustAnchor, ...]:
    """Load the four bundled J-LIS roots, refusing any whose fingerprint differs."""
    anchors = []
    package = resources.files(__name__)
    for file_name, (purpose, pinned) in sorted(PRODUCTION_FINGERPRINTS.items()):
        try:
            pem = package.joinpath(file_name).read_bytes()
        except OSError as error:
            raise TrustAnchorError(f"bundled trust anchor {file_name} is missing") from error
        certificate = x509.load_pem_x509_certificate(pem)
        actual = certificate.fingerprint(hashes.SHA256()).hex()
        if actual != pinned:
            raise TrustAnchorError(
                f"bundled trust anchor {file_name} has fingerprint {actual}, expected {pinned}"
            )
        anchors.append(
            TrustAnchor(
                name=file_name.removesuffix(".pem"),
                purpose=purpose,
                certificate=certificate,
                production=True,
            )
        )
    return tuple(anchors)
