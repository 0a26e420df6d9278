"""Credential status with the W3C Bitstring Status List (Recommendation, 2025), and the
StatusList2021 lists it superseded, still served for the credentials that point to them.

One list per issuer and purpose (revocation, suspension). Each credential gets a
randomly chosen index in both (random so a list's bits say nothing about issuance
order). A list is a plain value: the service persists ``to_bytes()`` wherever it
likes and serves the signed list credential that
:func:`issue_status_list_credential` makes from it.

Encoding (both): bit 0 is the left-most (most significant) bit of the first
byte; the list is the GZIP-compressed bitstring, base64url without padding
(the Bitstring Status List adds the multibase prefix ``u``); a list holds at
least 16 KiB = 131,072 entries (herd privacy).

The Bitstring Status List is written for the VC 2.0 data model; our credentials
stay VC 1.1 (the only base context didkit 0.3.3 bundles), so its terms are
defined in an embedded context mapping them to the Recommendation's vocabulary
IRIs (``https://www.w3.org/ns/credentials/status#...``).
"""

from __future__ import annotations

import base64
import gzip
import json
import secrets
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from did import _didkit
from did._time import parse_rfc3339, rfc3339
from did.keys import IssuerKey, IssuerKeyring, IssuerTrust

MINIMUM_ENTRIES = 16 * 1024 * 8
STATUS_LIST_VALIDITY = timedelta(hours=1)
_MAX_DECODED_BYTES = 16 * 1024 * 1024  # refuse GZIP bombs in lists fetched from elsewhere
VC_V1_CONTEXT = "https://www.w3.org/2018/credentials/v1"
STATUS_LIST_2021_CONTEXT = "https://w3id.org/vc/status-list/2021/v1"
_STATUS_VOCABULARY = "https://www.w3.org/ns/credentials/status#"
# The Recommendation's terms (as its VC 2.0 context defines them), embedded.
BITSTRING_STATUS_CONTEXT: dict[str, Any] = {
    "@version": 1.1,
    "@protected": True,
    "BitstringStatusListCredential": f"{_STATUS_VOCABULARY}BitstringStatusListCredential",
    "BitstringStatusList": {
        "@id": f"{_STATUS_VOCABULARY}BitstringStatusList",
        "@context": {
            "@protected": True,
            "encodedList": {
                "@id": f"{_STATUS_VOCABULARY}encodedList",
                "@type": "https://w3id.org/security#multibase",
            },
            "statusPurpose": f"{_STATUS_VOCABULARY}statusPurpose",
            "ttl": f"{_STATUS_VOCABULARY}ttl",
        },
    },
    "BitstringStatusListEntry": {
        "@id": f"{_STATUS_VOCABULARY}BitstringStatusListEntry",
        "@context": {
            "@protected": True,
            "statusListCredential": {
                "@id": f"{_STATUS_VOCABULARY}statusListCredential",
                "@type": "@id",
            },
            "statusListIndex": f"{_STATUS_VOCABULARY}statusListIndex",
            "statusPurpose": f"{_STATUS_VOCABULARY}statusPurpose",
        },
    },
}
_SERIAL_FORMAT = "commonid-status-list/v1"


class StatusListKind(StrEnum):
    """Which W3C format a list is served in (fixed for its life: credentials name it)."""

    BITSTRING = "bitstring"  # W3C Bitstring Status List: every new list
    STATUS_LIST_2021 = "statuslist2021"  # lists made before it, kept for their credentials

    @property
    def entry_type(self) -> str:
        return (
            "BitstringStatusListEntry"
            if self is StatusListKind.BITSTRING
            else "StatusList2021Entry"
        )

    @property
    def credential_type(self) -> str:
        return (
            "BitstringStatusListCredential"
            if self is StatusListKind.BITSTRING
            else "StatusList2021Credential"
        )

    @property
    def list_type(self) -> str:
        return "BitstringStatusList" if self is StatusListKind.BITSTRING else "StatusList2021"

    @property
    def context(self) -> list[Any]:
        if self is StatusListKind.BITSTRING:
            return [VC_V1_CONTEXT, BITSTRING_STATUS_CONTEXT]
        return [VC_V1_CONTEXT, STATUS_LIST_2021_CONTEXT]

    def encode(self, bits: bytes) -> str:
        encoded = encode_bitstring(bits)
        return "u" + encoded if self is StatusListKind.BITSTRING else encoded

    def decode(self, encoded: str) -> bytes:
        if self is StatusListKind.BITSTRING:
            if not encoded.startswith("u"):
                raise StatusListError("encodedList is not multibase base64url ('u')")
            encoded = encoded[1:]
        return decode_encoded_list(encoded)

    @classmethod
    def of_entry_type(cls, entry_type: object) -> StatusListKind | None:
        return next((kind for kind in cls if kind.entry_type == entry_type), None)


class StatusPurpose(StrEnum):
    REVOCATION = "revocation"
    SUSPENSION = "suspension"


class StatusListError(ValueError):
    """A status list operation that cannot be done (full list, unknown index, ...)."""


class StatusCheck(StrEnum):
    """The outcome of looking a credential up in its status list."""

    CLEAR = "clear"  # bit is 0: not revoked / not suspended
    SET = "set"  # bit is 1: revoked / suspended
    UNAVAILABLE = "unavailable"  # list could not be fetched
    STALE = "stale"  # the list credential is expired at the given time
    INVALID = "invalid"  # the entry or the list credential is malformed, unsigned, untrusted


def encode_bitstring(bits: bytes) -> str:
    """GZIP, then base64url without padding (StatusList2021 ``encodedList``)."""
    compressed = gzip.compress(bits, mtime=0)
    return base64.urlsafe_b64encode(compressed).rstrip(b"=").decode("ascii")


def decode_encoded_list(encoded: str) -> bytes:
    """The bitstring of an ``encodedList`` (bounded in size)."""
    try:
        compressed = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
        decompressor = zlib.decompressobj(wbits=31)  # 31: expect a GZIP header
        bits = decompressor.decompress(compressed, _MAX_DECODED_BYTES)
    except (ValueError, zlib.error) as error:
        raise StatusListError("encodedList is not base64url GZIP") from error
    if decompressor.unconsumed_tail:
        raise StatusListError("encodedList expands beyond the size limit")
    if not decompressor.eof:
        raise StatusListError("encodedList is a truncated GZIP stream")
    return bits


def bit_at(bits: bytes, index: int) -> bool:
    if not 0 <= index < len(bits) * 8:
        raise StatusListError(f"index {index} is outside the status list")
    return bool(bits[index // 8] & (0x80 >> (index % 8)))


@dataclass
class StatusList:
    """One status bitstring plus which of its indices are in use."""

    url: str  # where the list credential for this list is served
    purpose: StatusPurpose
    status_bits: bytearray
    allocated_bits: bytearray
    kind: StatusListKind = StatusListKind.BITSTRING

    @classmethod
    def new(
        cls,
        url: str,
        purpose: StatusPurpose,
        *,
        size: int = MINIMUM_ENTRIES,
        kind: StatusListKind = StatusListKind.BITSTRING,
    ) -> StatusList:
        if size < MINIMUM_ENTRIES or size % 8:
            raise StatusListError(f"a status list holds a multiple of 8, >= {MINIMUM_ENTRIES}")
        return cls(url, StatusPurpose(purpose), bytearray(size // 8), bytearray(size // 8), kind)

    @property
    def size(self) -> int:
        return len(self.status_bits) * 8

    def allocate(self) -> int:
        """A fresh, randomly chosen index for a new credential."""
        for _ in range(64):
            index = secrets.randbelow(self.size)
            if not bit_at(self.allocated_bits, index):
                break
        else:  # nearly full: take the first free one
            byte = next((i for i, b in enumerate(self.allocated_bits) if b != 0xFF), None)
            if byte is None:
                raise StatusListError(f"status list {self.url} is full")
            value = self.allocated_bits[byte]
            index = byte * 8 + next(bit for bit in range(8) if not value & (0x80 >> bit))
        _set_bit(self.allocated_bits, index, True)
        return index

    def is_set(self, index: int) -> bool:
        return bit_at(self.status_bits, index)

    def revoke(self, index: int) -> bool:
        """Set the bit of a revocation list; returns False if it was already revoked."""
        self._require(StatusPurpose.REVOCATION, index)
        return self._change(index, True)

    def suspend(self, index: int) -> bool:
        self._require(StatusPurpose.SUSPENSION, index)
        return self._change(index, True)

    def unsuspend(self, index: int) -> bool:
        # Revocation is final by design; only suspension can be lifted.
        self._require(StatusPurpose.SUSPENSION, index)
        return self._change(index, False)

    def encoded_list(self) -> str:
        return self.kind.encode(bytes(self.status_bits))

    def entry(self, index: int) -> dict[str, str]:
        """The status entry that points a credential at ``index`` of this list."""
        return status_entry(StatusRef(self.url, index, self.kind), self.purpose)

    def to_bytes(self) -> bytes:
        return json.dumps(
            {
                "format": _SERIAL_FORMAT,
                "url": self.url,
                "purpose": str(self.purpose),
                "kind": str(self.kind),
                "status": encode_bitstring(bytes(self.status_bits)),
                "allocated": encode_bitstring(bytes(self.allocated_bits)),
            }
        ).encode("utf-8")

    @classmethod
    def from_bytes(cls, data: bytes) -> StatusList:
        document = json.loads(data)
        if document.get("format") != _SERIAL_FORMAT:
            raise StatusListError("not a serialized Common-ID status list")
        status = bytearray(decode_encoded_list(document["status"]))
        allocated = bytearray(decode_encoded_list(document["allocated"]))
        if len(status) != len(allocated):
            raise StatusListError("status and allocation bitstrings differ in size")
        # Lists serialized before the kind was recorded are StatusList2021 lists.
        kind = StatusListKind(document.get("kind", StatusListKind.STATUS_LIST_2021))
        return cls(document["url"], StatusPurpose(document["purpose"]), status, allocated, kind)

    def _require(self, purpose: StatusPurpose, index: int) -> None:
        if self.purpose is not purpose:
            raise StatusListError(f"{self.url} is a {self.purpose} list, not {purpose}")
        if not bit_at(self.allocated_bits, index):
            raise StatusListError(f"index {index} of {self.url} was never allocated")

    def _change(self, index: int, value: bool) -> bool:
        changed = bit_at(self.status_bits, index) != value
        _set_bit(self.status_bits, index, value)
        return changed


def _set_bit(bits: bytearray, index: int, value: bool) -> None:
    mask = 0x80 >> (index % 8)
    if value:
        bits[index // 8] |= mask
    else:
        bits[index // 8] &= ~mask & 0xFF


# --- a credential's pair of status entries ----------------------------------


@dataclass(frozen=True)
class StatusRef:
    """One bit: which list (by URL) and which index."""

    list_url: str
    index: int
    kind: StatusListKind = StatusListKind.BITSTRING


@dataclass(frozen=True)
class CredentialStatusRefs:
    """Where a credential's revocation and suspension bits live."""

    revocation: StatusRef
    suspension: StatusRef


def allocate_credential_status(
    revocation_list: StatusList, suspension_list: StatusList
) -> CredentialStatusRefs:
    """Reserve a credential's bits in the issuer's revocation and suspension lists."""
    if revocation_list.purpose is not StatusPurpose.REVOCATION:
        raise StatusListError("first list must be the revocation list")
    if suspension_list.purpose is not StatusPurpose.SUSPENSION:
        raise StatusListError("second list must be the suspension list")
    return CredentialStatusRefs(
        revocation=StatusRef(revocation_list.url, revocation_list.allocate(), revocation_list.kind),
        suspension=StatusRef(suspension_list.url, suspension_list.allocate(), suspension_list.kind),
    )


def status_entry(ref: StatusRef, purpose: StatusPurpose) -> dict[str, str]:
    return {
        "id": f"{ref.list_url}#{ref.index}",
        "type": ref.kind.entry_type,
        "statusPurpose": str(purpose),
        "statusListIndex": str(ref.index),
        "statusListCredential": ref.list_url,
    }


@dataclass(frozen=True)
class CertificateRevocationOutcome:
    revoked_credential_ids: tuple[str, ...]  # newly revoked by this call
    changed_list_urls: frozenset[str]  # lists to persist and re-publish


def revoke_credentials_of_certificate(
    certificate_serial_sha256: str,
    credentials_by_certificate: Mapping[str, Mapping[str, CredentialStatusRefs]],
    status_lists: Mapping[str, StatusList],
) -> CertificateRevocationOutcome:
    """Revoking a JPKI certificate revokes every credential issued on it.

    ``credentials_by_certificate`` maps a certificate's serial hash to the
    credentials issued on it (credential id -> its status bits); ``status_lists``
    maps list URLs to the lists, which are changed in place.
    """
    revoked: list[str] = []
    changed: set[str] = set()
    issued = credentials_by_certificate.get(certificate_serial_sha256, {})
    for credential_id, refs in sorted(issued.items()):
        status_list = status_lists.get(refs.revocation.list_url)
        if status_list is None:
            raise StatusListError(f"no status list {refs.revocation.list_url}")
        if status_list.revoke(refs.revocation.index):
            revoked.append(credential_id)
            changed.add(status_list.url)
    return CertificateRevocationOutcome(tuple(revoked), frozenset(changed))


# --- the status list credential ---------------------------------------------


def issue_status_list_credential(
    status_list: StatusList,
    keyring: IssuerKeyring,
    *,
    issued_at: datetime | None = None,
    valid_for: timedelta = STATUS_LIST_VALIDITY,
    signer: IssuerKey | None = None,
) -> dict[str, Any]:
    """The signed list credential the service serves at ``status_list.url``,
    signed by ``signer`` (a key of the ring: the one whose credentials the list holds,
    so the list's issuer is theirs) or by the current key.

    It expires after ``valid_for``: verifiers refuse an expired list, so an old
    copy captured before a revocation cannot be replayed to hide it. The service
    re-signs the list at least that often (and on every change).
    """
    issuer = signer or keyring.current
    issued = issued_at or datetime.now(UTC)
    kind = status_list.kind
    credential = {
        "@context": kind.context,
        "id": status_list.url,
        "type": ["VerifiableCredential", kind.credential_type],
        "issuer": issuer.did,
        "issuanceDate": rfc3339(issued),
        "expirationDate": rfc3339(issued + valid_for),
        "credentialSubject": {
            "id": f"{status_list.url}#list",
            "type": kind.list_type,
            "statusPurpose": str(status_list.purpose),
            "encodedList": status_list.encoded_list(),
        },
    }
    options = {
        "proofPurpose": "assertionMethod",
        "verificationMethod": issuer.verification_method,
        "proofFormat": "ldp",
    }
    return json.loads(_didkit.issue_credential(credential, options, issuer.private_jwk))


StatusListResolver = Callable[[str], "dict[str, Any] | str"]


def check_status(
    entry: Mapping[str, Any],
    purpose: StatusPurpose,
    *,
    resolver: StatusListResolver,
    issuers: IssuerTrust,
    at: datetime,
) -> StatusCheck:
    """Look a status entry (Bitstring Status List or StatusList2021) up in its list
    credential, fetched with ``resolver``.

    The list credential must carry a valid proof by one of the trusted
    (current or retired) issuer keys, be for the same purpose, and not be
    expired at ``at`` (an expired list is STALE: it may predate a revocation).
    """
    try:
        kind = StatusListKind.of_entry_type(entry.get("type"))
        if kind is None or entry.get("statusPurpose") != purpose:
            return StatusCheck.INVALID
        index = int(entry["statusListIndex"])
        url = str(entry["statusListCredential"])
    except (KeyError, TypeError, ValueError):
        return StatusCheck.INVALID
    try:
        fetched = resolver(url)
    except Exception:  # any fetch failure means "status unknown", never "clear"
        return StatusCheck.UNAVAILABLE
    try:
        list_credential = json.loads(fetched) if isinstance(fetched, str) else dict(fetched)
        if not _is_trusted_list_credential(list_credential, url, purpose, issuers, kind):
            return StatusCheck.INVALID
    except (ValueError, TypeError, AttributeError):
        return StatusCheck.INVALID
    try:
        expires = parse_rfc3339(list_credential["expirationDate"])
    except (KeyError, TypeError, ValueError, AttributeError):
        return StatusCheck.INVALID
    # A list signed after ``at`` is accepted: it can only know of more revocations.
    if at >= expires:
        return StatusCheck.STALE
    try:
        bits = kind.decode(list_credential["credentialSubject"]["encodedList"])
        return StatusCheck.SET if bit_at(bits, index) else StatusCheck.CLEAR
    except (StatusListError, KeyError, TypeError):
        return StatusCheck.INVALID


def _is_trusted_list_credential(
    list_credential: dict[str, Any],
    url: str,
    purpose: StatusPurpose,
    issuers: IssuerTrust,
    kind: StatusListKind,
) -> bool:
    subject = list_credential.get("credentialSubject")
    if (
        not isinstance(subject, dict)
        or kind.credential_type not in list_credential.get("type", [])
        or list_credential.get("id") != url
        or subject.get("statusPurpose") != purpose
        or not issuers.trusts(str(list_credential.get("issuer")))
    ):
        return False
    report = _didkit.verify_credential(
        json.dumps(list_credential), {"proofPurpose": "assertionMethod", "proofFormat": "ldp"}
    )
    return report.ok
