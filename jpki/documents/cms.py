"""Detached CMS (RFC 5652) signatures of any file, as the JPKI command-line clients make.

The output is a DER ContentInfo/SignedData without the content (a `.p7s`), with
the signer's certificate and its CA certificate, signed attributes
(content-type, message-digest, signing-time, signing-certificate-v2) and,
with a timestamp authority, a signature timestamp token (CAdES-T).
Verification is `jpki.documents.verification.verify_detached_cms`.
"""

from __future__ import annotations

import asyncio
from typing import BinaryIO

from pyhanko.sign.signers import Signer
from pyhanko.sign.timestamps.aiohttp_client import HTTPTimeStamper

__all__ = ["sign_detached"]


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
