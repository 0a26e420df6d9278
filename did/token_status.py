"""IETF Token Status List (draft-ietf-oauth-status-list): the status of SD-JWT VCs.

A referenced token (an SD-JWT VC) carries ``status.status_list = {idx, uri}``;
the list is served at ``uri`` as a JWT of type ``statuslist+jwt`` whose
``status_list`` claim holds ``bits`` (here 2) and ``lst``: the statuses packed
least significant bits first (index 0 in the low bits of byte 0), compressed
with DEFLATE in the ZLIB format and base64url-encoded without padding.

Status values: 0 valid, 1 invalid (revoked), 2 suspended. Revocation is final;
suspension can be lifted. Indices are chosen at random so a list says nothing
about issuance order, and a list holds at least 131,072 entries (herd privacy).
"""

from __future__ import annotations

import base64
import json
import secrets
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import IntEnum, StrEnum
from typing import Any

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey

STATUS_LIST_TYP = "statuslist+jwt"
BITS = 2
MINIMUM_ENTRIES = 16 * 1024 * 8
# How long a served list token is good for: verifiers refuse an expired one, so a copy
# taken before a revocation cannot be replayed to hide it.
TOKEN_VALIDITY = timedelta(hours=1)
TOKEN_TTL_SECONDS = 300  # how long a verifier may cache it
_MAX_DECODED_BYTES = 16 * 1024 * 1024
_SERIAL_FORMAT = "commonid-token-status-list/v1"


class TokenStatus(IntEnum):
    VALID = 0
    INVALID = 1
    SUSPENDED = 2


class TokenStatusError(ValueError):
    """A status list operation that cannot be done (full list, unknown index, bad token)."""


class StatusLookup(StrEnum):
    """The outcome of looking a referenced token up in its status list token."""

    VALID = "valid"
    INVALID = "invalid"  # revoked
    SUSPENDED = "suspended"
    UNAVAILABLE = "unavailable"  # the list could not be fetched
    STALE = "stale"  # the list token had expired
    MALFORMED = "malformed"  # the reference or the list token is malformed or unsigned


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def decode_lst(lst: str) -> bytes:
    """The packed statuses of an ``lst`` (bounded, so a ZLIB bomb is refused)."""
    try:
        decompressor = zlib.decompressobj()
        packed = decompressor.decompress(_b64url_decode(lst), _MAX_DECODED_BYTES)
    except (ValueError, zlib.error) as error:
        raise TokenStatusError("lst is not base64url ZLIB") from error
    if decompressor.unconsumed_tail or not decompressor.eof:
        raise TokenStatusError("lst is truncated or expands beyond the size limit")
    return packed


def status_at(packed: bytes, index: int, bits: int = BITS) -> int:
    per_byte = 8 // bits
    if not 0 <= index < len(packed) * per_byte:
        raise TokenStatusError(f"index {index} is outside the status list")
    shift = (index % per_byte) * bits
    return (packed[index // per_byte] >> shift) & ((1 << bits) - 1)


@dataclass
class TokenStatusList:
    """One list: the packed 2-bit statuses and which indices are in use."""

    uri: str
    statuses: bytearray  # 4 entries a byte
    allocated: bytearray  # 8 entries a byte

    @classmethod
    def new(cls, uri: str, *, size: int = MINIMUM_ENTRIES) -> TokenStatusList:
        if size < MINIMUM_ENTRIES or size % 8:
            raise TokenStatusError(f"a list holds a multiple of 8, >= {MINIMUM_ENTRIES}")
        return cls(uri, bytearray(size * BITS // 8), bytearray(size // 8))

    @property
    def size(self) -> int:
        return len(self.allocated) * 8

    def allocate(self) -> int:
        """A fresh, randomly chosen index."""
        for _ in range(64):
            index = secrets.randbelow(self.size)
            if not self._allocated(index):
                break
        else:  # nearly full: the first free one
            index = next((i for i in range(self.size) if not self._allocated(i)), -1)
            if index < 0:
                raise TokenStatusError(f"status list {self.uri} is full")
        self.allocated[index // 8] |= 1 << (index % 8)
        return index

    def status(self, index: int) -> TokenStatus:
        return TokenStatus(status_at(bytes(self.statuses), index))

    def set_status(self, index: int, status: TokenStatus) -> bool:
        """Change an allocated index's status; False if it already had it. Revocation is
        final: a revoked index stays revoked."""
        if not self._allocated(index):
            raise TokenStatusError(f"index {index} of {self.uri} was never allocated")
        current = self.status(index)
        if current is TokenStatus.INVALID or current is status:
            return False
        shift = (index % 4) * BITS
        byte = self.statuses[index // 4] & ~(0b11 << shift) & 0xFF
        self.statuses[index // 4] = byte | (int(status) << shift)
        return True

    def lst(self) -> str:
        return _b64url(zlib.compress(bytes(self.statuses), 9))

    def to_bytes(self) -> bytes:
        return json.dumps(
            {
                "format": _SERIAL_FORMAT,
                "uri": self.uri,
                "lst": self.lst(),
                "allocated": _b64url(zlib.compress(bytes(self.allocated), 9)),
            }
        ).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> TokenStatusList:
        document = json.loads(data)
        if document.get("format") != _SERIAL_FORMAT:
            raise TokenStatusError("not a serialized Common-ID token status list")
        statuses = bytearray(decode_lst(document["lst"]))
        allocated = bytearray(decode_lst(document["allocated"]))
        if len(statuses) != len(allocated) * BITS:
            raise TokenStatusError("status and allocation arrays differ in size")
        return cls(document["uri"], statuses, allocated)

    def _allocated(self, index: int) -> bool:
        return bool(self.allocated[index // 8] & (1 << (index % 8)))


def status_reference(uri: str, index: int) -> dict[str, Any]:
    """The ``status`` claim of a referenced token."""
    return {"status_list": {"idx": index, "uri": uri}}


def status_list_token(
    status_list: TokenStatusList, key: ECKey, *, kid: str, issued_at: datetime
) -> str:
    """The signed status list token served at ``status_list.uri``."""
    issued = int(issued_at.timestamp())
    claims = {
        "sub": status_list.uri,
        "iat": issued,
        "exp": issued + int(TOKEN_VALIDITY.total_seconds()),
        "ttl": TOKEN_TTL_SECONDS,
        "status_list": {"bits": BITS, "lst": status_list.lst()},
    }
    return jwt.encode({"alg": "ES256", "typ": STATUS_LIST_TYP, "kid": kid}, claims, key)


IssuerKeyLookup = Callable[[Mapping[str, Any]], "ECKey | None"]


def check_token_status(
    reference: Any,
    *,
    fetch: Callable[[str], str],
    issuer_key: IssuerKeyLookup,
    at: datetime,
) -> StatusLookup:
    """Look a referenced token's ``status`` claim up in the list token at its ``uri``,
    fetched with ``fetch`` and signed by a key ``issuer_key`` finds from its header."""
    try:
        entry = reference["status_list"]
        index = int(entry["idx"])
        uri = str(entry["uri"])
        if isinstance(entry["idx"], bool) or index < 0:
            return StatusLookup.MALFORMED
    except (KeyError, TypeError, ValueError):
        return StatusLookup.MALFORMED
    try:
        token = fetch(uri)
    except Exception:  # any fetch failure means "status unknown", never "valid"
        return StatusLookup.UNAVAILABLE
    try:
        header = json.loads(_b64url_decode(token.split(".")[0]))
        key = issuer_key(header) if header.get("typ") == STATUS_LIST_TYP else None
        if key is None:
            return StatusLookup.MALFORMED
        decoded = jwt.decode(token, key, algorithms=["ES256"])
        claims = decoded.claims
        if claims.get("sub") != uri:
            return StatusLookup.MALFORMED
        if at.timestamp() >= float(claims["exp"]):
            return StatusLookup.STALE
        status_list = claims["status_list"]
        if status_list["bits"] not in (1, 2, 4, 8):
            return StatusLookup.MALFORMED
        value = status_at(decode_lst(status_list["lst"]), index, status_list["bits"])
    except (JoseError, TokenStatusError, KeyError, TypeError, ValueError, IndexError):
        return StatusLookup.MALFORMED
    if value == TokenStatus.VALID:
        return StatusLookup.VALID
    if value == TokenStatus.SUSPENDED:
        return StatusLookup.SUSPENDED
    return StatusLookup.INVALID
