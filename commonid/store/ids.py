"""Identifiers and credential hashes for stored records."""

from __future__ import annotations

import hashlib
import secrets

# Crockford-style alphabet without 0/O/1/I/L/U: user codes are read aloud and typed.
USER_CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTVWXYZ"
USER_CODE_LENGTH = 8

# What new_id() can produce: the prefix, "_", then base64url characters. Ids are
# stored in VARCHAR(40) columns, so nothing longer can be one of them. The API
# refuses any other shape at its edge (commonid.api.paths).
ID_MAX_LENGTH = 40


def id_pattern(prefix: str) -> str:
    """The regular expression of ids made by ``new_id(prefix)`` (anchored)."""
    return rf"^{prefix}_[A-Za-z0-9_-]{{1,{ID_MAX_LENGTH - len(prefix) - 1}}}$"


def new_id(prefix: str) -> str:
    """A random identifier with a type prefix (``ses_...``, ``prv_...``)."""
    return f"{prefix}_{secrets.token_urlsafe(16)}"


def new_secret(prefix: str) -> str:
    """A bearer credential: 256 random bits behind a recognisable prefix."""
    return f"{prefix}_{secrets.token_urlsafe(32)}"


def hash_credential(credential: str) -> str:
    """SHA-256 of a bearer credential.

    The credentials are 256-bit random strings, so a fast unsalted hash is
    enough (nothing to brute-force, unlike a password) and it lets the service
    find the caller with one indexed lookup per request.
    """
    return hashlib.sha256(credential.encode()).hexdigest()


def new_user_code() -> str:
    return "".join(secrets.choice(USER_CODE_ALPHABET) for _ in range(USER_CODE_LENGTH))
