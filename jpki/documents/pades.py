"""PAdES baseline signatures of PDF documents (B-B; B-T with a timestamp authority).

The signature is an incremental update: the signed PDF starts with the bytes
of the unsigned one, so whoever generated the document can check that the
person signed exactly that document.
"""

from __future__ import annotations

import io

from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.sign.fields import SigSeedSubFilter
from pyhanko.sign.signers import PdfSignatureMetadata, PdfSigner, Signer
from pyhanko.sign.timestamps.aiohttp_client import HTTPTimeStamper

from jpki.documents.card_signer import CardSigner

__all__ = ["DEFAULT_FIELD_NAME", "sign_pdf"]

DEFAULT_FIELD_NAME = "JPKISignature"


def sign_pdf(
    pdf: bytes,
    signer: Signer,
    *,
    field_name: str = DEFAULT_FIELD_NAME,
    reason: str | None = None,
    location: str | None = None,
    timestamp_url: str | None = None,
) -> bytes:
    """Sign ``pdf`` with ``signer``: PAdES B-B, or B-T when ``timestamp_url`` names an RFC 3161 TSA.

    The CMS carries the signer's certificate and its CA certificate. Raises
    the card's JPKIError if the card fails mid-signature (nothing is returned then).
    """
    key_usage = signer.required_key_usage if isinstance(signer, CardSigner) else {"non_repudiation"}
    metadata = PdfSignatureMetadata(
        field_name=field_name,
        md_algorithm="sha256",
        subfilter=SigSeedSubFilter.PADES,
        reason=reason,
        location=location,
        signer_key_usage=key_usage,
    )
    timestamper = HTTPTimeStamper(timestamp_url) if timestamp_url else None
    writer = IncrementalPdfFileWriter(io.BytesIO(pdf), strict=True)
    output = io.BytesIO()
    PdfSigner(metadata, signer, timestamper=timestamper).sign_pdf(writer, output=output)
    return output.getvalue()
