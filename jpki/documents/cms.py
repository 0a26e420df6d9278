"""Detached CMS (RFC 5652) signatures of any file, as the JPKI command-line clients make.

The output is a DER ContentInfo/SignedData without the content (a `.p7s`), with
the signer's certificate and its CA certificate, signed attributes
(content-type, message-digest, signing-time, signing-certificate-v2) and,
with a timestamp authority, a signature timestamp token (CAdES-T).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from datetime import datetime
from typing import BinaryIO

from asn1crypto import cms
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from pyhanko.sign.signers import Signer
from pyhanko.sign.timestamps.aiohttp_client import HTTPTimeStamper
from pyhanko.sign.validation.generic_cms import async_validate_detached_cms
from pyhanko_certvalidator import ValidationContext

__all__ = ["DetachedSignatureCheck", "sign_detached", "verify_detached"]


def sign_detached(
    content: bytes | BinaryIO, signer: Signer, *, timestamp_url: str | None = None
) -> bytes:
    """DER detached CMS signature of ``content`` (bytes or a binary file object)."""
    timestamper = HTTPTimeStamper(timestamp_url) if timestamp_url else None
    signed = asyncio.run(
        signer.async_sign_general_data(
            content, "sha256", detached=True, use_cades=True, timestamper=timestamper
        )
    )
    return signed.dump()


class DetachedSignatureCheck:
    """What pyHanko found about a detached CMS signature (trust is decided elsewhere)."""

    def __init__(
        self,
        *,
        intact: bool,
        signature_valid: bool,
        signing_certificate_der: bytes,
        signing_time: datetime | None,
        timestamp_time: datetime | None,
    ) -> None:
        self.intact = intact
        self.signature_valid = signature_valid
        self.signing_certificate_der = signing_certificate_der
        self.signing_time = signing_time
        self.timestamp_time = timestamp_time


def _context(trust_roots: Iterable[x509.Certificate]) -> ValidationContext:
    # Integrity only: trust in the signer is decided by jpki.validation, so no
    # fetching and no revocation here.
    roots = [asn1_x509.Certificate.load(r.public_bytes(Encoding.DER)) for r in trust_roots]
    return ValidationContext(trust_roots=roots, allow_fetching=False)


def verify_detached(
    content: bytes | BinaryIO,
    signature_der: bytes,
    *,
    trust_roots: Iterable[x509.Certificate] = (),
) -> DetachedSignatureCheck:
    """Check a detached signature's integrity against ``content``; ValueError if not CMS."""
    try:
        content_info = cms.ContentInfo.load(signature_der)
        if content_info["content_type"].native != "signed_data":
            raise ValueError("not a CMS SignedData")
        signed_data = content_info["content"]
        signed_data.native  # noqa: B018 - forces a full parse: garbage fails here
    except (ValueError, TypeError, KeyError) as error:
        raise ValueError(f"not a CMS signature: {error}") from error
    status = asyncio.run(
        async_validate_detached_cms(
            content, signed_data, signer_validation_context=_context(trust_roots)
        )
    )
    timestamp = status.timestamp_validity
    return DetachedSignatureCheck(
        intact=status.intact,
        signature_valid=status.valid,
        signing_certificate_der=status.signing_cert.dump(),
        signing_time=status.signer_reported_dt,
        timestamp_time=timestamp.timestamp if timestamp is not None else None,
    )
