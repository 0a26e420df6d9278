"""Signed documents at rest: AES-256-GCM with the service's attribute keys.

A signed consent names the person (the signature certificate inside carries
name, birth date and address), so it is personal data and is stored only
encrypted. The associated data binds the ciphertext to its document and
session ids: a blob copied to another row does not decrypt.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from commonid.store.encryption import AttributeCipher, DecryptionError, Sealed, binding

__all__ = ["DocumentIntegrityError", "SealedDocument", "open_document", "seal_document"]


class DocumentIntegrityError(Exception):
    """A stored document did not decrypt, or decrypted to other bytes than were stored."""


@dataclass(frozen=True)
class SealedDocument:
    """What the store keeps for one signed document (the row the SERVICE's table holds)."""

    document_id: str
    session_id: str
    sha256: str  # of the signed PDF: also what the audit log records
    size: int
    key_id: str
    ciphertext: bytes  # nonce || ciphertext || tag

    def __repr__(self) -> str:
        return f"SealedDocument({self.document_id!r}, sha256={self.sha256[:12]}…)"


def _binding(document_id: str, session_id: str) -> bytes:
    return binding("signed-document", document_id, session_id)


def seal_document(
    cipher: AttributeCipher, *, document_id: str, session_id: str, content: bytes
) -> SealedDocument:
    sealed = cipher.seal(content, binding=_binding(document_id, session_id))
    return SealedDocument(
        document_id=document_id,
        session_id=session_id,
        sha256=hashlib.sha256(content).hexdigest(),
        size=len(content),
        key_id=sealed.key_id,
        ciphertext=sealed.blob,
    )


def open_document(cipher: AttributeCipher, stored: SealedDocument) -> bytes:
    """The signed PDF, checked against its recorded SHA-256."""
    try:
        content = cipher.open(
            Sealed(stored.key_id, stored.ciphertext),
            binding=_binding(stored.document_id, stored.session_id),
        )
    except DecryptionError as error:
        raise DocumentIntegrityError(str(error)) from error
    if hashlib.sha256(content).hexdigest() != stored.sha256:
        raise DocumentIntegrityError("stored document does not match its recorded hash")
    return content
