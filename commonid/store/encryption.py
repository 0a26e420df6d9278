"""AES-256-GCM for personal data at rest, with key ids so keys can rotate.

The associated data binds each ciphertext to where it belongs (record id and
attribute name): a ciphertext copied into another row or column fails to decrypt.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

NONCE_BYTES = 12


class DecryptionError(Exception):
    """A ciphertext did not decrypt: wrong key, wrong binding or tampered data."""


@dataclass(frozen=True)
class Sealed:
    key_id: str
    blob: bytes  # nonce || ciphertext || tag


class AttributeCipher:
    """Encrypts with the current key; decrypts with whichever key id a row names."""

    def __init__(self, keys: dict[str, bytes], current_key_id: str) -> None:
        if current_key_id not in keys:
            raise ValueError(f"current attribute key id {current_key_id!r} is not configured")
        for key_id, key in keys.items():
            if len(key) != 32:
                raise ValueError(f"attribute key {key_id!r} must be 32 bytes (AES-256)")
        self._keys = {key_id: AESGCM(key) for key_id, key in keys.items()}
        self.current_key_id = current_key_id

    def seal(self, plaintext: bytes, *, binding: bytes) -> Sealed:
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._keys[self.current_key_id].encrypt(nonce, plaintext, binding)
        return Sealed(self.current_key_id, nonce + sealed)

    def open(self, sealed: Sealed, *, binding: bytes) -> bytes:
        aead = self._keys.get(sealed.key_id)
        if aead is None:
            raise DecryptionError(f"attribute key {sealed.key_id!r} is no longer configured")
        try:
            return aead.decrypt(sealed.blob[:NONCE_BYTES], sealed.blob[NONCE_BYTES:], binding)
        except InvalidTag as error:
            raise DecryptionError("ciphertext does not match its key or binding") from error


def binding(*parts: str) -> bytes:
    """Associated data from the row's identity; NUL-separated so parts cannot run together."""
    return "\x00".join(parts).encode()
