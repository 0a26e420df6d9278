"""CRL-based revocation for JPKI at national scale.

A `RevocationIndex` holds the current verified CRL of one issuing CA. Real
JPKI CRLs list millions of serials (every renewal and address change revokes
a certificate), so a CRL is indexed once: a sorted array of 64-bit serial keys,
a parallel array of entry offsets into the CRL bytes, and a hash table from
key to its first position. A lookup is one hash probe (constant time, whatever
the CRL's size) plus decoding the one matching entry; nothing is parsed per
validation. The sorted arrays are what is persisted; the table is rebuilt
from them in a fraction of a second.

The index is refreshed from a configurable source (file or HTTP) before the
CRL's nextUpdate, keeps the previous good CRL when a new one is bad, and can
persist its arrays so that a restart with an unchanged CRL does not re-walk
it. Every answer says which CRL gave it. Time is always passed in (`at`).
"""

from __future__ import annotations

import base64
import binascii
import enum
import hashlib
import os
import sys
import threading
from array import array
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Protocol

import httpx
import structlog
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes

from jpki import crl_der
from jpki.crl_der import CrlFormatError
from jpki.signatures import SignatureCheckError, verify_with_certificate

__all__ = [
    "CrlAnswer",
    "CrlError",
    "CrlFetchError",
    "CrlFormatError",
    "CrlInfo",
    "CrlIssuerMismatchError",
    "CrlMalformedError",
    "CrlRollbackError",
    "CrlSignatureError",
    "CrlSource",
    "CrlStaleError",
    "CrlUnsupportedError",
    "FileCrlSource",
    "HttpCrlSource",
    "RevocationIndex",
    "RevocationStatus",
    "RevokedEntry",
    "VerifiedCrl",
]


class CrlError(Exception):
    """A CRL could not be used; the index keeps answering from the previous good one."""


class CrlSignatureError(CrlError):
    """The CRL signature does not verify with the issuing CA's key (or uses a weak algorithm)."""


class CrlIssuerMismatchError(CrlError):
    """The CRL names a different issuer than the CA this index is for."""


class CrlStaleError(CrlError):
    """The CRL is outside its thisUpdate..nextUpdate window at the given time."""


class CrlRollbackError(CrlError):
    """The CRL is older than the one already held (lower CRL number or thisUpdate)."""


class CrlUnsupportedError(CrlError):
    """The CRL uses a feature this index does not process (delta, indirect, partitioned)."""


class CrlFetchError(CrlError):
    """The CRL source could not be read."""


class CrlMalformedError(CrlError):
    """The CRL bytes are not a well-formed DER CRL."""


class RevocationStatus(enum.StrEnum):
    GOOD = "good"
    REVOKED = "revoked"
    STALE = "stale"  # the only CRL held is past nextUpdate (or not yet valid)
    UNAVAILABLE = "unavailable"  # no usable CRL


# RFC 5280 CRLReason codes (7 is unused).
_REASONS: dict[int, x509.ReasonFlags] = {
    0: x509.ReasonFlags.unspecified,
    1: x509.ReasonFlags.key_compromise,
    2: x509.ReasonFlags.ca_compromise,
    3: x509.ReasonFlags.affiliation_changed,
    4: x509.ReasonFlags.superseded,
    5: x509.ReasonFlags.cessation_of_operation,
    6: x509.ReasonFlags.certificate_hold,
    8: x509.ReasonFlags.remove_from_crl,
    9: x509.ReasonFlags.privilege_withdrawn,
    10: x509.ReasonFlags.aa_compromise,
}


@dataclass(frozen=True)
class CrlInfo:
    """Which CRL answered: enough for an audit entry to name it exactly."""

    issuer: str  # RFC 4514 string of the CRL issuer
    issuer_sha256: str  # fingerprint of the CA certificate that verified it
    crl_number: int | None
    this_update: datetime
    next_update: datetime | None
    sha256: str  # of the CRL DER
    entries: int


@dataclass(frozen=True, slots=True)
class RevokedEntry:
    serial: int
    revoked_at: datetime
    reason: x509.ReasonFlags
    invalidity_date: datetime | None


@dataclass(frozen=True, slots=True)
class CrlAnswer:
    status: RevocationStatus
    crl: CrlInfo | None
    entry: RevokedEntry | None = None
    detail: str = ""


class CrlSource(Protocol):
    """Where CRL bytes come from (a file J-LIS delivered, or the test CA's HTTP URL)."""

    def fetch(self) -> bytes: ...

    def describe(self) -> str: ...


@dataclass(frozen=True)
class FileCrlSource:
    path: Path

    def fetch(self) -> bytes:
        try:
            return Path(self.path).read_bytes()
        except OSError as error:
            raise CrlFetchError(f"cannot read CRL file {self.path}: {error}") from error

    def describe(self) -> str:
        return f"file:{self.path}"


class HttpCrlSource:
    """GET a CRL over HTTP; pass an httpx.Client (or a transport in tests)."""

    def __init__(
        self,
        url: str,
        *,
        client: httpx.Client | None = None,
        timeout: float = 30.0,
        max_bytes: int = 1 << 30,
    ) -> None:
        self.url = url
        self._client = client
        self._timeout = timeout
        self._max_bytes = max_bytes

    def fetch(self) -> bytes:
        try:
            if self._client is None:  # made on first use: building its TLS context is slow
                self._client = httpx.Client(timeout=self._timeout)
            with self._client.stream("GET", self.url) as response:
                if response.status_code != 200:
                    raise CrlFetchError(f"CRL URL answered HTTP {response.status_code}")
                chunks = []
                size = 0
                for chunk in response.iter_bytes():
                    size += len(chunk)
                    if size > self._max_bytes:
                        raise CrlFetchError("CRL larger than the configured limit")
                    chunks.append(chunk)
                return b"".join(chunks)
        except httpx.HTTPError as error:
            raise CrlFetchError(f"cannot fetch CRL from {self.url}: {error}") from error

    def describe(self) -> str:
        return self.url


def _require_aware(at: datetime) -> None:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("`at` must be timezone-aware")


def _name_matches(crl_issuer_der: bytes, subject: x509.Name) -> bool:
    subject_der = subject.public_bytes()
    if crl_issuer_der == subject_der:
        return True
    try:  # RFC 5280 7.1 name comparison (case and space folding), for re-encoded names
        return asn1_x509.Name.load(crl_issuer_der) == asn1_x509.Name.load(subject_der)
    except ValueError:
        return False


def verify_signature(
    issuer: x509.Certificate, algorithm: str, signature: bytes, signed: bytes | memoryview
) -> None:
    """Verify a CRL signature with the issuer's key; refuse weak algorithms."""
    try:
        verify_with_certificate(issuer, algorithm, signature, signed)
    except SignatureCheckError as error:
        raise CrlSignatureError(f"CRL {error}") from error


class VerifiedCrl:
    """One CRL whose signature and issuer were checked, indexed for lookups. Immutable."""

    def __init__(
        self,
        der: bytes,
        structure: crl_der.CrlStructure,
        info: CrlInfo,
        keys: array,
        offsets: array,
        flagged: frozenset[int],
    ) -> None:
        self._der = der
        self._structure = structure
        self.info = info
        self._keys = keys
        self._offsets = offsets
        self._flagged = flagged
        # Key -> first position in the sorted arrays. Built in reverse so that, for a
        # key shared by several serials (serials longer than 64 bits), the first wins.
        count = len(keys)
        self._positions: dict[int, int] = dict(
            zip(reversed(keys), range(count - 1, -1, -1), strict=True)
        )

    @property
    def der(self) -> bytes:
        return self._der

    @classmethod
    def from_der(
        cls, der: bytes, issuer: x509.Certificate, *, index: tuple[array, array] | None = None
    ) -> VerifiedCrl:
        """Verify `der` as a complete CRL of `issuer` and index it.

        `index` (keys, offsets) skips the entry walk when restored from disk;
        the signature is checked either way (one hash over the bytes).
        """
        try:
            return cls._verify_and_index(bytes(der), issuer, index)
        except CrlFormatError as error:  # also from extensions and entries, after the outer parse
            raise CrlMalformedError(str(error)) from error

    @classmethod
    def _verify_and_index(
        cls, der: bytes, issuer: x509.Certificate, index: tuple[array, array] | None
    ) -> VerifiedCrl:
        structure = crl_der.parse_crl(der)
        if not _name_matches(structure.issuer_der, issuer.subject):
            raise CrlIssuerMismatchError("CRL issuer is not this CA")
        try:
            usage = issuer.extensions.get_extension_for_class(x509.KeyUsage).value
            if not usage.crl_sign:
                raise CrlSignatureError("issuing CA certificate may not sign CRLs")
        except x509.ExtensionNotFound:
            pass
        if structure.signature_algorithm_der != structure.inner_signature_algorithm_der:
            raise CrlSignatureError("inner and outer signature algorithms differ")
        verify_signature(
            issuer,
            structure.signature_algorithm,
            structure.signature,
            memoryview(der)[structure.tbs_start : structure.tbs_end],
        )
        crl_number = _check_crl_extensions(structure)

        if index is None:
            packed, flagged_offsets = crl_der.index_entries(
                der, structure.revoked_start, structure.revoked_end
            )
            packed.sort()
            keys = array("Q", [value >> crl_der.OFFSET_BITS for value in packed])
            offsets = array("Q", [value & crl_der.OFFSET_MASK for value in packed])
            del packed
            flagged = frozenset(flagged_offsets)
        else:
            keys, offsets = index
            flagged = frozenset()
        # An entry with a critical extension we cannot process makes the whole
        # CRL unusable (RFC 5280 5.3); only flagged entries need the full decode.
        for offset in flagged:
            if crl_der.parse_entry(der, offset, structure.revoked_end).unknown_critical:
                raise CrlUnsupportedError("CRL entry carries an unsupported critical extension")

        info = CrlInfo(
            issuer=issuer.subject.rfc4514_string(),
            issuer_sha256=issuer.fingerprint(hashes.SHA256()).hex(),
            crl_number=crl_number,
            this_update=structure.this_update,
            next_update=structure.next_update,
            sha256=hashlib.sha256(der).hexdigest(),
            entries=len(keys),
        )
        return cls(der, structure, info, keys, offsets, flagged)

    def lookup(self, serial: int) -> RevokedEntry | None:
        """The CRL entry for `serial`, or None; one hash probe, O(1) in the CRL's size."""
        key = serial & crl_der.SERIAL_KEY_MASK
        position = self._positions.get(key)
        if position is None:
            return None  # the common case: not revoked
        keys = self._keys
        count = len(keys)
        while position < count and keys[position] == key:
            details = crl_der.parse_entry(
                self._der, self._offsets[position], self._structure.revoked_end
            )
            if details.serial == serial:
                reason = (
                    x509.ReasonFlags.unspecified
                    if details.reason_code is None
                    else _REASONS.get(details.reason_code, x509.ReasonFlags.unspecified)
                )
                return RevokedEntry(
                    serial=serial,
                    revoked_at=details.revocation_date,
                    reason=reason,
                    invalidity_date=details.invalidity_date,
                )
            position += 1
        return None

    def freshness(
        self,
        at: datetime,
        skew: timedelta,
        *,
        ingesting: bool = False,
        grace: timedelta = timedelta(0),
    ) -> str | None:
        """None if the CRL may answer for moment `at`, else why not.

        A CRL issued after `at` still answers for `at` (entries carry their
        revocation date, so a later CRL tells more about the past); only when
        ingesting is a thisUpdate ahead of the clock a sign of a bad CRL or clock.
        """
        if ingesting and self.info.this_update > at + skew:
            return "CRL thisUpdate is in the future"
        if self.info.next_update is None:
            return "CRL has no nextUpdate, so its freshness is unknown"
        if at - skew - grace > self.info.next_update:
            return "CRL is past its nextUpdate" + (" and the switch-over window" if grace else "")
        return None

    def index_arrays(self) -> tuple[array, array]:
        return self._keys, self._offsets


def _check_crl_extensions(structure: crl_der.CrlStructure) -> int | None:
    crl_number = None
    for extension in structure.extensions:
        if extension.oid == crl_der.OID_CRL_NUMBER:
            tag, start, end = crl_der.read_header(extension.value, 0, len(extension.value))
            if tag != crl_der.TAG_INTEGER:
                raise CrlMalformedError("bad cRLNumber")
            crl_number = int.from_bytes(extension.value[start:end], "big", signed=True)
        elif extension.oid == crl_der.OID_DELTA_CRL_INDICATOR:
            raise CrlUnsupportedError("delta CRLs are not supported; supply complete CRLs")
        elif extension.oid == crl_der.OID_ISSUING_DISTRIBUTION_POINT:
            _check_issuing_distribution_point(extension.value)
        elif extension.oid == crl_der.OID_AUTHORITY_KEY_IDENTIFIER:
            continue
        elif extension.critical:
            raise CrlUnsupportedError("CRL carries an unsupported critical extension")
    return crl_number


def _check_issuing_distribution_point(value: bytes) -> None:
    """Refuse scoped CRLs: only-CA, some-reasons, indirect or attribute-only CRLs."""
    _, start, end = crl_der.read_header(value, 0, len(value))
    pos = start
    while pos < end:
        tag, content, stop = crl_der.read_header(value, pos, end)
        is_true = stop - content == 1 and value[content] != 0
        if tag == 0x83 or (tag in (0x82, 0x84, 0x85) and is_true):
            raise CrlUnsupportedError("partitioned or indirect CRLs are not supported")
        pos = stop
    return


# Index cache file, format 2: header, keys, offsets, then SHA-256 over all of it.
# The header holds the magic (with the format version), the CRL's SHA-256, its
# number and the entry count. Format 1 had no digest: a truncated or zeroed file
# restored as an index with fewer entries, so revoked serials read as good. Any
# file that is not exactly format 2 and intact is ignored and the index is rebuilt
# from the (signature-checked) CRL.
_INDEX_FAMILY = b"JPKICRLIDX\x00"
_INDEX_MAGIC = _INDEX_FAMILY + b"\x02"
_INDEX_HEADER = len(_INDEX_MAGIC) + 32 + 20 + 8
_INDEX_DIGEST = 32

_log = structlog.get_logger("jpki.revocation")


class _CacheRejected(Exception):
    """The persisted index file cannot be trusted (why is the message)."""


def _encode_index(crl: CrlInfo, keys: array, offsets: array) -> bytes:
    if sys.byteorder != "little":
        keys, offsets = array("Q", keys), array("Q", offsets)
        keys.byteswap()
        offsets.byteswap()
    content = b"".join(
        (
            _INDEX_MAGIC,
            bytes.fromhex(crl.sha256),
            (crl.crl_number or 0).to_bytes(20, "big", signed=True),
            len(keys).to_bytes(8, "little"),
            keys.tobytes(),
            offsets.tobytes(),
        )
    )
    return content + hashlib.sha256(content).digest()


def _decode_index(raw: bytes, crl_sha256: bytes) -> tuple[array, array]:
    """The (keys, offsets) of an intact format-2 index file for the CRL `crl_sha256`."""
    if not raw.startswith(_INDEX_FAMILY):
        if len(raw) < len(_INDEX_MAGIC):
            raise _CacheRejected("index file is truncated")
        raise _CacheRejected("not a CRL index file")
    if not raw.startswith(_INDEX_MAGIC):
        raise _CacheRejected("index file of another format version")
    if len(raw) < _INDEX_HEADER + _INDEX_DIGEST:
        raise _CacheRejected("index file is truncated")
    view = memoryview(raw)  # slices without copying: the arrays are tens of MB
    content, digest = view[:-_INDEX_DIGEST], view[-_INDEX_DIGEST:]
    count = int.from_bytes(content[_INDEX_HEADER - 8 : _INDEX_HEADER], "little")
    if len(content) != _INDEX_HEADER + 16 * count:
        raise _CacheRejected("index file length does not match its entry count")
    if hashlib.sha256(content).digest() != digest:
        raise _CacheRejected("index file digest does not match its contents")
    head = len(_INDEX_MAGIC)
    if content[head : head + 32] != crl_sha256:
        raise _CacheRejected("index file is for another CRL")
    body = content[_INDEX_HEADER:]
    keys, offsets = array("Q"), array("Q")
    keys.frombytes(body[: 8 * count])
    offsets.frombytes(body[8 * count :])
    if sys.byteorder != "little":
        keys.byteswap()
        offsets.byteswap()
    return keys, offsets


class RevocationIndex:
    """The current CRL of one issuing CA, refreshed and persisted.

    Thread-safe for lookups: the current CRL is replaced by a single reference
    swap; refreshes are serialized by a lock.
    """

    def __init__(
        self,
        issuer_certificate: x509.Certificate,
        *,
        source: CrlSource | None = None,
        cache_dir: Path | None = None,
        clock_skew: timedelta = timedelta(minutes=5),
        refresh_margin: timedelta = timedelta(hours=1),
        switchover_grace: timedelta = timedelta(0),
    ) -> None:
        self.issuer_certificate = issuer_certificate
        self.source = source
        self.clock_skew = clock_skew
        # A platform operator's daily CRL has a switch-over window: for a while after
        # nextUpdate, yesterday's list may still be what it serves. Within this grace a
        # list past its nextUpdate is still installed and still answers (0: not at all).
        self.switchover_grace = switchover_grace
        self.refresh_margin = refresh_margin
        self._cache_dir = Path(cache_dir) if cache_dir is not None else None
        self._current: VerifiedCrl | None = None
        self._lock = threading.Lock()
        self.last_error: CrlError | None = None
        self.restored_from_cache = False
        self.persist_error: OSError | None = None
        if self._cache_dir is not None:
            self._restore()

    @property
    def current(self) -> CrlInfo | None:
        crl = self._current
        return crl.info if crl is not None else None

    def ingest(self, der: bytes, *, at: datetime) -> CrlInfo:
        """Verify and install `der` as the current CRL.

        Raises a CrlError subclass (and keeps the previous CRL) when the new one
        is malformed, wrongly signed, for another issuer, not fresh at `at`, or
        older than the one held.
        """
        _require_aware(at)
        with self._lock:
            try:
                return self._ingest_locked(der, at)
            except CrlError as error:
                self.last_error = error
                raise

    def _ingest_locked(self, der: bytes, at: datetime) -> CrlInfo:
        der = _der_from_pem(der)
        held = self._current
        if held is not None and hashlib.sha256(der).hexdigest() == held.info.sha256:
            return held.info  # unchanged: nothing to parse
        candidate = VerifiedCrl.from_der(der, self.issuer_certificate)
        problem = candidate.freshness(
            at, self.clock_skew, ingesting=True, grace=self.switchover_grace
        )
        if problem is not None:
            raise CrlStaleError(problem)
        if held is not None:
            newer_number = (
                candidate.info.crl_number is None
                or held.info.crl_number is None
                or candidate.info.crl_number > held.info.crl_number
            )
            if not newer_number or candidate.info.this_update < held.info.this_update:
                raise CrlRollbackError("CRL is not newer than the one already held")
        self._current = candidate
        self.last_error = None
        self._persist(candidate)
        return candidate.info

    def refresh_due(self, *, at: datetime) -> bool:
        """True when there is no CRL or its nextUpdate is within `refresh_margin` of `at`."""
        _require_aware(at)
        crl = self._current
        if crl is None or crl.info.next_update is None:
            return True
        return at >= crl.info.next_update - self.refresh_margin

    def refresh(self, *, at: datetime) -> CrlInfo:
        """Fetch from the source and ingest; on failure raise and keep the previous CRL."""
        if self.source is None:
            raise CrlFetchError("no CRL source configured")
        try:
            der = self.source.fetch()
        except CrlError as error:
            self.last_error = error
            raise
        return self.ingest(der, at=at)

    def refresh_if_due(self, *, at: datetime) -> CrlInfo | None:
        """Refresh when due; errors land in `last_error`, never raised (for a scheduler)."""
        if not self.refresh_due(at=at):
            return None
        try:
            return self.refresh(at=at)
        except CrlError:
            return None

    def check(self, serial: int, *, at: datetime) -> CrlAnswer:
        """Revocation status of `serial` at `at` according to the current CRL."""
        _require_aware(at)
        crl = self._current
        if crl is None:
            detail = str(self.last_error) if self.last_error else "no CRL loaded"
            return CrlAnswer(RevocationStatus.UNAVAILABLE, None, detail=detail)
        latest = at + self.clock_skew
        next_update = crl.info.next_update
        if next_update is None or at - self.clock_skew - self.switchover_grace > next_update:
            problem = (
                crl.freshness(at, self.clock_skew, grace=self.switchover_grace)
                or "CRL is not fresh"
            )
            return CrlAnswer(RevocationStatus.STALE, crl.info, detail=problem)
        try:
            entry = crl.lookup(serial)
        except CrlFormatError as error:  # only a damaged persisted index can lead here
            return CrlAnswer(RevocationStatus.UNAVAILABLE, crl.info, detail=str(error))
        if entry is None:
            return CrlAnswer(RevocationStatus.GOOD, crl.info)
        if entry.revoked_at > latest:
            # Revoked after the moment asked about: the certificate was good then.
            return CrlAnswer(RevocationStatus.GOOD, crl.info)
        return CrlAnswer(RevocationStatus.REVOKED, crl.info, entry)

    # Persistence: <cache_dir>/<CA fingerprint>.crl (the DER) and .idx (sorted arrays).
    def _paths(self) -> tuple[Path, Path]:
        assert self._cache_dir is not None
        stem = self.issuer_certificate.fingerprint(hashes.SHA256()).hex()[:32]
        return self._cache_dir / f"{stem}.crl", self._cache_dir / f"{stem}.idx"

    def _persist(self, crl: VerifiedCrl) -> None:
        """Best effort: a cache that cannot be written costs a re-parse at restart, nothing more."""
        if self._cache_dir is None:
            return
        try:
            self._write_cache(crl)
            self.persist_error = None
        except OSError as error:
            self.persist_error = error

    def _write_cache(self, crl: VerifiedCrl) -> None:
        assert self._cache_dir is not None
        self._cache_dir.mkdir(parents=True, exist_ok=True)
        crl_path, idx_path = self._paths()
        _atomic_write(crl_path, crl.der)
        _atomic_write(idx_path, _encode_index(crl.info, *crl.index_arrays()))

    def _restore(self) -> None:
        """Load the persisted CRL; its index only if the index file is intact.

        The CRL's signature is always checked. A damaged, old-format or foreign
        index file is logged and ignored: the entries are walked again from the
        CRL (slower, never fewer entries) and the cache is rewritten.
        """
        crl_path, idx_path = self._paths()
        try:
            der = crl_path.read_bytes()
        except OSError:
            return
        index = None
        try:
            index = _decode_index(idx_path.read_bytes(), hashlib.sha256(der).digest())
        except (OSError, _CacheRejected) as problem:
            reason = problem.strerror if isinstance(problem, OSError) else str(problem)
            _log.warning(
                "revocation_cache_rejected",
                ca=self.issuer_certificate.fingerprint(hashes.SHA256()).hex()[:32],
                file=idx_path.name,
                reason=reason,
                action="rebuilding the index from the cached CRL",
            )
        try:
            crl = VerifiedCrl.from_der(der, self.issuer_certificate, index=index)
        except CrlError as error:
            self.last_error = error
            _log.error(
                "revocation_cache_unusable",
                ca=self.issuer_certificate.fingerprint(hashes.SHA256()).hex()[:32],
                file=crl_path.name,
                reason=str(error),
                action="no CRL until the next refresh: revocation is unavailable",
            )
            return
        self._current = crl
        self.restored_from_cache = index is not None
        if index is None:
            self._persist(crl)


_PEM_HEADER = b"-----BEGIN X509 CRL-----"
_PEM_FOOTER = b"-----END X509 CRL-----"


def _der_from_pem(data: bytes) -> bytes:
    """Accept a PEM CRL too (some distributions ship them so); anything else passes through."""
    stripped = data.lstrip()
    if not stripped.startswith(_PEM_HEADER):
        return data
    end = stripped.find(_PEM_FOOTER)
    if end < 0:
        raise CrlMalformedError("PEM CRL without its END line")
    try:
        return base64.b64decode(b"".join(stripped[len(_PEM_HEADER) : end].split()), validate=True)
    except binascii.Error as error:
        raise CrlMalformedError("PEM CRL body is not base64") from error


def _atomic_write(path: Path, data: bytes) -> None:
    temporary = path.with_suffix(path.suffix + ".tmp")
    with open(temporary, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
