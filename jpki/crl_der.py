"""A small, bounds-checked DER reader for X.509 CRLs (RFC 5280 section 5).

Why not a general ASN.1 library: a JPKI CRL holds millions of entries, and
building one Python object per entry costs seconds and hundreds of megabytes.
This reader splits the CRL into its signed part, signature and header fields,
and walks revokedCertificates once, keeping only a 64-bit serial key and the
entry's byte offset. An entry's date and reason are decoded when a lookup
hits it. Every length is checked against its enclosing element; anything that
does not fit raises CrlFormatError.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import NamedTuple

SERIAL_KEY_MASK = (1 << 64) - 1
OFFSET_BITS = 40  # entry offsets below 1 TiB; leaves 64 bits above for the serial key
OFFSET_MASK = (1 << OFFSET_BITS) - 1

TAG_BOOLEAN = 0x01
TAG_INTEGER = 0x02
TAG_BIT_STRING = 0x03
TAG_OCTET_STRING = 0x04
TAG_OID = 0x06
TAG_ENUMERATED = 0x0A
TAG_UTC_TIME = 0x17
TAG_GENERALIZED_TIME = 0x18
TAG_SEQUENCE = 0x30
TAG_EXTENSIONS = 0xA0  # [0] EXPLICIT Extensions in TBSCertList

# DER contents of the extension OIDs this reader understands.
OID_CRL_NUMBER = bytes.fromhex("551d14")  # 2.5.29.20
OID_REASON_CODE = bytes.fromhex("551d15")  # 2.5.29.21
OID_INVALIDITY_DATE = bytes.fromhex("551d18")  # 2.5.29.24
OID_DELTA_CRL_INDICATOR = bytes.fromhex("551d1b")  # 2.5.29.27
OID_ISSUING_DISTRIBUTION_POINT = bytes.fromhex("551d1c")  # 2.5.29.28
OID_CERTIFICATE_ISSUER = bytes.fromhex("551d1d")  # 2.5.29.29
OID_AUTHORITY_KEY_IDENTIFIER = bytes.fromhex("551d23")  # 2.5.29.35

_CRITICAL_TRUE = b"\x01\x01\xff"
# DER times are YYMMDDHHMMSSZ (13 bytes) or YYYYMMDDHHMMSSZ (15 bytes); digits checked on decode.
_TIME_SHAPES = frozenset({(TAG_UTC_TIME, 13), (TAG_GENERALIZED_TIME, 15)})


class CrlFormatError(ValueError):
    """The bytes are not a well-formed DER CRL (or use a form this reader refuses)."""


@dataclass(frozen=True)
class Extension:
    oid: bytes  # DER contents of the OID
    critical: bool
    value: bytes  # contents of the extnValue OCTET STRING


@dataclass(frozen=True)
class CrlStructure:
    """The parts of a CRL needed to verify and index it; entries stay in `der`."""

    tbs_start: int
    tbs_end: int
    signature_algorithm: str  # dotted OID
    signature_algorithm_der: bytes  # the whole AlgorithmIdentifier, to compare inner and outer
    inner_signature_algorithm_der: bytes
    signature: bytes
    issuer_der: bytes
    this_update: datetime
    next_update: datetime | None
    revoked_start: int  # contents of revokedCertificates; equal when absent
    revoked_end: int
    extensions: tuple[Extension, ...]


class EntryDetails(NamedTuple):  # a tuple: built on every revoked lookup, so kept cheap
    serial: int
    revocation_date: datetime
    reason_code: int | None  # CRLReason ENUMERATED value
    invalidity_date: datetime | None
    unknown_critical: bool  # a critical entry extension other than the ones above


def read_header(der: bytes, pos: int, end: int) -> tuple[int, int, int]:
    """Return (tag, content_start, content_end) of the element at `pos`, inside `end`."""
    if pos + 2 > end:
        raise CrlFormatError("element header runs past its container")
    tag = der[pos]
    if tag & 0x1F == 0x1F:
        raise CrlFormatError("high tag numbers are not used in CRLs")
    first = der[pos + 1]
    if first < 0x80:
        start = pos + 2
        length = first
    else:
        count = first & 0x7F
        if count == 0:
            raise CrlFormatError("indefinite length is not DER")
        if count > 5:
            raise CrlFormatError("length field too long")
        start = pos + 2 + count
        if start > end:
            raise CrlFormatError("length field runs past its container")
        length = int.from_bytes(der[pos + 2 : start], "big")
        if length < 0x80 or der[pos + 2] == 0:
            raise CrlFormatError("length not in minimal DER form")
    stop = start + length
    if stop > end:
        raise CrlFormatError("element runs past its container")
    return tag, start, stop


def _expect(der: bytes, pos: int, end: int, tag: int, what: str) -> tuple[int, int]:
    actual, start, stop = read_header(der, pos, end)
    if actual != tag:
        raise CrlFormatError(f"expected {what} (tag {tag:#04x}), found tag {actual:#04x}")
    return start, stop


def decode_oid(contents: bytes) -> str:
    if not contents or contents[-1] & 0x80:
        raise CrlFormatError("truncated object identifier")
    arcs: list[int] = []
    value = 0
    for byte in contents:
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            arcs.append(value)
            value = 0
    first = min(arcs[0] // 40, 2)
    return ".".join(str(arc) for arc in [first, arcs[0] - 40 * first, *arcs[1:]])


def decode_time(tag: int, contents: bytes) -> datetime:
    """UTCTime (YYMMDDHHMMSSZ) or GeneralizedTime (YYYYMMDDHHMMSSZ), UTC only as DER requires."""
    try:
        text = contents.decode("ascii")
    except UnicodeDecodeError as error:
        raise CrlFormatError("time is not ASCII") from error
    if tag == TAG_UTC_TIME and len(text) == 13 and text.endswith("Z") and text[:12].isdigit():
        year = int(text[:2])
        year += 1900 if year >= 50 else 2000  # RFC 5280 4.1.2.5.1
        rest = text[2:12]
    elif (
        tag == TAG_GENERALIZED_TIME
        and len(text) == 15
        and text.endswith("Z")
        and text[:14].isdigit()
    ):
        year = int(text[:4])
        rest = text[4:14]
    else:
        raise CrlFormatError("time is neither DER UTCTime nor GeneralizedTime")
    try:
        return datetime(
            year,
            int(rest[0:2]),
            int(rest[2:4]),
            int(rest[4:6]),
            int(rest[6:8]),
            int(rest[8:10]),
            tzinfo=UTC,
        )
    except ValueError as error:
        raise CrlFormatError("time has an impossible date") from error


def _read_time(der: bytes, pos: int, end: int) -> tuple[datetime, int]:
    tag, start, stop = read_header(der, pos, end)
    return decode_time(tag, der[start:stop]), stop


def parse_extensions(der: bytes, start: int, end: int) -> tuple[Extension, ...]:
    """Parse `Extensions ::= SEQUENCE OF Extension` whose SEQUENCE contents are [start, end)."""
    extensions = []
    pos = start
    while pos < end:
        ext_start, ext_end = _expect(der, pos, end, TAG_SEQUENCE, "Extension")
        oid_start, oid_end = _expect(der, ext_start, ext_end, TAG_OID, "extnID")
        cursor = oid_end
        critical = False
        tag, value_start, value_end = read_header(der, cursor, ext_end)
        if tag == TAG_BOOLEAN:
            if value_end - value_start != 1:
                raise CrlFormatError("bad BOOLEAN")
            critical = der[value_start] != 0
            tag, value_start, value_end = read_header(der, value_end, ext_end)
        if tag != TAG_OCTET_STRING or value_end != ext_end:
            raise CrlFormatError("bad extnValue")
        extensions.append(Extension(der[oid_start:oid_end], critical, der[value_start:value_end]))
        pos = ext_end
    return tuple(extensions)


def parse_crl(der: bytes) -> CrlStructure:
    """Split a DER CertificateList into its parts without walking the entries."""
    try:
        return _parse_crl(der)
    except IndexError as error:  # a defensive net: every index is bounds-checked above
        raise CrlFormatError("CRL truncated") from error


def _parse_crl(der: bytes) -> CrlStructure:
    total = len(der)
    outer_start, outer_end = _expect(der, 0, total, TAG_SEQUENCE, "CertificateList")
    if outer_end != total:
        raise CrlFormatError("trailing bytes after the CRL")
    tbs_start = outer_start
    tbs_contents_start, tbs_end = _expect(der, tbs_start, outer_end, TAG_SEQUENCE, "TBSCertList")

    alg_start, alg_end = _expect(der, tbs_end, outer_end, TAG_SEQUENCE, "signatureAlgorithm")
    oid_start, oid_end = _expect(der, alg_start, alg_end, TAG_OID, "algorithm")
    signature_algorithm = decode_oid(der[oid_start:oid_end])
    sig_start, sig_end = _expect(der, alg_end, outer_end, TAG_BIT_STRING, "signatureValue")
    if sig_end != outer_end:
        raise CrlFormatError("unexpected element after signatureValue")
    if sig_end - sig_start < 1 or der[sig_start] != 0:
        raise CrlFormatError("signature BIT STRING has unused bits")
    signature = der[sig_start + 1 : sig_end]

    pos = tbs_contents_start
    tag, start, stop = read_header(der, pos, tbs_end)
    if tag == TAG_INTEGER:
        if der[start:stop] != b"\x01":
            raise CrlFormatError("only v2 CRLs carry a version, and it must be 1")
        pos = stop
    inner_alg_start = pos
    _, inner_alg_end = _expect(der, pos, tbs_end, TAG_SEQUENCE, "signature")
    issuer_start = inner_alg_end
    _, issuer_end = _expect(der, issuer_start, tbs_end, TAG_SEQUENCE, "issuer")
    this_update, pos = _read_time(der, issuer_end, tbs_end)

    next_update = None
    revoked_start = revoked_end = pos
    extensions: tuple[Extension, ...] = ()
    if pos < tbs_end and der[pos] in (TAG_UTC_TIME, TAG_GENERALIZED_TIME):
        next_update, pos = _read_time(der, pos, tbs_end)
    if pos < tbs_end and der[pos] == TAG_SEQUENCE:
        revoked_start, revoked_end = _expect(der, pos, tbs_end, TAG_SEQUENCE, "revoked")
        pos = revoked_end
    if pos < tbs_end:
        wrapper_start, wrapper_end = _expect(der, pos, tbs_end, TAG_EXTENSIONS, "crlExtensions")
        seq_start, seq_end = _expect(der, wrapper_start, wrapper_end, TAG_SEQUENCE, "Extensions")
        if seq_end != wrapper_end:
            raise CrlFormatError("junk inside crlExtensions")
        extensions = parse_extensions(der, seq_start, seq_end)
        pos = wrapper_end
    if pos != tbs_end:
        raise CrlFormatError("unexpected element in TBSCertList")

    return CrlStructure(
        tbs_start=tbs_start,
        tbs_end=tbs_end,
        signature_algorithm=signature_algorithm,
        signature_algorithm_der=der[tbs_end:alg_end],
        inner_signature_algorithm_der=der[inner_alg_start:inner_alg_end],
        signature=signature,
        issuer_der=der[issuer_start:issuer_end],
        this_update=this_update,
        next_update=next_update,
        revoked_start=revoked_start,
        revoked_end=revoked_end,
        extensions=extensions,
    )


def serial_key(serial: int) -> int:
    """The 64-bit index key of a serial number: its low 64 bits (two's complement)."""
    return serial & SERIAL_KEY_MASK


def index_entries(der: bytes, start: int, end: int) -> tuple[list[int], list[int]]:
    """Walk revokedCertificates once.

    Returns (packed, flagged): `packed` holds `serial_key << 40 | entry_offset`
    per entry, unsorted; `flagged` the offsets of entries whose extensions
    contain a critical flag (checked in full by the caller). This loop is the
    hot path for million-entry CRLs: short-form and 1-2 byte lengths are
    decoded inline, anything longer goes through read_header.
    """
    packed: list[int] = []
    flagged: list[int] = []
    append = packed.append
    from_bytes = int.from_bytes
    find = der.find
    pos = start
    try:
        while pos < end:
            if der[pos] != TAG_SEQUENCE:
                raise CrlFormatError("revoked entry is not a SEQUENCE")
            first = der[pos + 1]
            if first < 0x80:
                content = pos + 2
                stop = content + first
            elif first == 0x81:
                content = pos + 3
                stop = content + der[pos + 2]
            else:
                _, content, stop = read_header(der, pos, end)
            if stop > end:
                raise CrlFormatError("revoked entry runs past revokedCertificates")
            serial_length = der[content + 1]
            if der[content] != TAG_INTEGER or not 0 < serial_length < 0x80:
                raise CrlFormatError("revoked entry has no serial INTEGER")
            serial_end = content + 2 + serial_length
            time_tag = der[serial_end]
            time_length = der[serial_end + 1]
            time_end = serial_end + 2 + time_length
            if time_end > stop or (time_tag, time_length) not in _TIME_SHAPES:
                raise CrlFormatError("revoked entry has no revocationDate")
            if time_end != stop:
                if der[time_end] != TAG_SEQUENCE:
                    raise CrlFormatError("revoked entry has junk after revocationDate")
                if find(_CRITICAL_TRUE, time_end, stop) != -1:
                    flagged.append(pos)
            append(
                (from_bytes(der[content + 2 : serial_end], "big", signed=True) & SERIAL_KEY_MASK)
                << OFFSET_BITS
                | pos
            )
            pos = stop
    except IndexError as error:
        raise CrlFormatError("revoked entry truncated") from error
    return packed, flagged


# The usual entry tail after the serial: UTCTime, then either nothing or exactly one
# non-critical reasonCode extension. Decoded without the general parser (lookup hot path).
_REASON_ONLY_EXTENSIONS = bytes.fromhex("300c300a0603551d1504030a01")


def parse_entry(der: bytes, offset: int, end: int) -> EntryDetails:
    """Decode the revoked entry at `offset` in full (serial, date, reason, criticality)."""
    try:
        fast = _parse_common_entry(der, offset, end)
        return fast if fast is not None else _parse_entry(der, offset, end)
    except IndexError as error:
        raise CrlFormatError("revoked entry truncated") from error


def _parse_common_entry(der: bytes, offset: int, end: int) -> EntryDetails | None:
    """The common shape only (short lengths, UTCTime, optional lone reasonCode); else None."""
    length = der[offset + 1]
    stop = offset + 2 + length
    if der[offset] != TAG_SEQUENCE or length >= 0x80 or stop > end or der[offset + 2] != 2:
        return None
    serial_length = der[offset + 3]
    time_at = offset + 4 + serial_length
    if serial_length >= 0x80 or der[time_at] != TAG_UTC_TIME or der[time_at + 1] != 13:
        return None
    digits = der[time_at + 2 : time_at + 14]
    if der[time_at + 14] != 0x5A or not digits.isdigit():  # "Z"
        return None
    packed = int(digits)  # YYMMDDHHMMSS: one conversion, then arithmetic
    year, packed = divmod(packed, 10**10)
    month, packed = divmod(packed, 10**8)
    day, packed = divmod(packed, 10**6)
    hour, packed = divmod(packed, 10**4)
    minute, second = divmod(packed, 100)
    try:
        revocation_date = datetime(
            year + (1900 if year >= 50 else 2000), month, day, hour, minute, second, tzinfo=UTC
        )
    except ValueError as error:
        raise CrlFormatError("time has an impossible date") from error
    tail = time_at + 15
    if tail == stop:
        reason_code = None
    elif stop - tail == 14 and der.startswith(_REASON_ONLY_EXTENSIONS, tail):
        reason_code = der[stop - 1]
    else:
        return None
    serial = int.from_bytes(der[offset + 4 : time_at], "big", signed=True)
    return EntryDetails(serial, revocation_date, reason_code, None, False)


def _parse_entry(der: bytes, offset: int, end: int) -> EntryDetails:
    content, stop = _expect(der, offset, end, TAG_SEQUENCE, "revoked entry")
    serial_start, serial_end = _expect(der, content, stop, TAG_INTEGER, "userCertificate")
    serial = int.from_bytes(der[serial_start:serial_end], "big", signed=True)
    revocation_date, pos = _read_time(der, serial_end, stop)
    reason_code = None
    invalidity_date = None
    unknown_critical = False
    if pos < stop:
        ext_start, ext_end = _expect(der, pos, stop, TAG_SEQUENCE, "crlEntryExtensions")
        if ext_end != stop:
            raise CrlFormatError("junk after crlEntryExtensions")
        for extension in parse_extensions(der, ext_start, ext_end):
            if extension.oid == OID_REASON_CODE:
                value = extension.value
                tag, start, value_end = read_header(value, 0, len(value))
                if tag != TAG_ENUMERATED or value_end - start != 1:
                    raise CrlFormatError("bad reasonCode")
                reason_code = value[start]
            elif extension.oid == OID_INVALIDITY_DATE:
                value = extension.value
                tag, start, value_end = read_header(value, 0, len(value))
                invalidity_date = decode_time(tag, value[start:value_end])
            elif extension.critical:
                # certificateIssuer (indirect CRLs) and anything unknown: not processable.
                unknown_critical = True
    return EntryDetails(serial, revocation_date, reason_code, invalidity_date, unknown_critical)


def encode_integer_contents(value: int) -> bytes:
    """Minimal two's-complement contents of a DER INTEGER."""
    magnitude = value if value >= 0 else ~value
    return value.to_bytes(magnitude.bit_length() // 8 + 1, "big", signed=True)
