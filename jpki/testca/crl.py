"""CRLs of the test CAs, encoded directly in DER so that a million entries take seconds.

cryptography's CertificateRevocationListBuilder builds one Python object per
entry and re-encodes them all: minutes for 1,000,000 entries. Here every entry is
a few pre-encoded byte strings joined together; only the TBSCertList is signed
with the CA key, and the result is an ordinary RFC 5280 v2 CRL.
"""

from __future__ import annotations

import datetime as dt
import random
import struct
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

SHA256_WITH_RSA = bytes.fromhex("300d06092a864886f70d01010b0500")
REASON_CODE_OID = bytes.fromhex("0603551d15")
# Serials of synthetic entries: four-byte positive INTEGERs, like the
# random-looking 32-bit serials of real JPKI certificates (e.g. 0x06D18006).
SYNTHETIC_SERIAL_RANGE = range(0x0100_0000, 0x8000_0000)
# A plausible mix for a national card scheme (moves and renewals dominate);
# not J-LIS figures, which are not public. None: no reasonCode (unspecified).
SYNTHETIC_REASON_WEIGHTS: dict[x509.ReasonFlags | None, int] = {
    None: 10,
    x509.ReasonFlags.key_compromise: 15,
    x509.ReasonFlags.affiliation_changed: 40,
    x509.ReasonFlags.superseded: 20,
    x509.ReasonFlags.cessation_of_operation: 15,
}
REASON_CODES = {
    x509.ReasonFlags.unspecified: 0,
    x509.ReasonFlags.key_compromise: 1,
    x509.ReasonFlags.ca_compromise: 2,
    x509.ReasonFlags.affiliation_changed: 3,
    x509.ReasonFlags.superseded: 4,
    x509.ReasonFlags.cessation_of_operation: 5,
    x509.ReasonFlags.certificate_hold: 6,
    x509.ReasonFlags.remove_from_crl: 8,
    x509.ReasonFlags.privilege_withdrawn: 9,
    x509.ReasonFlags.aa_compromise: 10,
}
DISTINCT_SYNTHETIC_TIMES = 4096
PROGRESS_STEP = 100_000

ProgressCallback = Callable[[int, int], None]


@dataclass(frozen=True)
class RevokedEntry:
    """One revoked certificate: serial, when, and why (None: no reasonCode extension)."""

    serial: int
    revoked_at: dt.datetime
    reason: x509.ReasonFlags | None = None


def der_length(length: int) -> bytes:
    if length < 0x80:
        return bytes([length])
    encoded = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(encoded)]) + encoded


def der_tlv(tag: int, content: bytes) -> bytes:
    return bytes([tag]) + der_length(len(content)) + content


def der_integer(value: int) -> bytes:
    size = value.bit_length() // 8 + 1  # room for a sign bit
    return der_tlv(0x02, value.to_bytes(size, "big", signed=True))


def der_time(moment: dt.datetime) -> bytes:
    """UTCTime up to 2049, GeneralizedTime after, as RFC 5280 requires."""
    moment = moment.astimezone(dt.UTC)
    if 1950 <= moment.year < 2050:
        return der_tlv(0x17, moment.strftime("%y%m%d%H%M%SZ").encode())
    return der_tlv(0x18, moment.strftime("%Y%m%d%H%M%SZ").encode())


def _reason_extensions(reason: x509.ReasonFlags | None) -> bytes:
    # RFC 5280: reasonCode "unspecified" SHOULD be absent, so it is.
    if reason is None or reason is x509.ReasonFlags.unspecified:
        return b""
    enumerated = der_tlv(0x0A, bytes([REASON_CODES[reason]]))
    extension = der_tlv(0x30, REASON_CODE_OID + der_tlv(0x04, enumerated))
    return der_tlv(0x30, extension)


def encode_entry(entry: RevokedEntry) -> bytes:
    """One revokedCertificates element."""
    body = der_integer(entry.serial) + der_time(entry.revoked_at) + _reason_extensions(entry.reason)
    return der_tlv(0x30, body)


def synthetic_entries_der(
    count: int,
    *,
    revoked_between: tuple[dt.datetime, dt.datetime],
    exclude: Iterable[int] = (),
    seed: int | None = None,
    progress: ProgressCallback | None = None,
) -> bytes:
    """`count` encoded entries with unique random serials, spread times and plausible reasons.

    Every synthetic serial is a four-byte INTEGER, so an entry is a pre-encoded
    head (SEQUENCE header + INTEGER header), four serial bytes and a pre-encoded
    tail (time + reason), picked from small tables.
    """
    rng = random.Random(seed)  # noqa: S311 - synthetic data, reproducible from a seed
    excluded = set(exclude)
    serials = rng.sample(SYNTHETIC_SERIAL_RANGE, count + len(excluded))
    if excluded:
        serials = [serial for serial in serials if serial not in excluded][:count]
    start, end = revoked_between
    span = max(int((end - start).total_seconds()), 1)
    times = [
        der_time(start + dt.timedelta(seconds=rng.randrange(span)))
        for _ in range(DISTINCT_SYNTHETIC_TIMES)
    ]
    reasons = list(SYNTHETIC_REASON_WEIGHTS)
    pieces: list[tuple[bytes, bytes]] = []
    for revoked_time in times:
        for reason in reasons:
            tail = revoked_time + _reason_extensions(reason)
            body_length = 6 + len(tail)  # 02 04 + four serial bytes
            pieces.append((b"\x30" + der_length(body_length) + b"\x02\x04", tail))
    choices = rng.choices(
        range(len(reasons)), weights=list(SYNTHETIC_REASON_WEIGHTS.values()), k=count
    )
    time_choices = rng.choices(range(len(times)), k=count)
    serial_bytes = struct.pack(f">{count}I", *serials)
    chunks: list[bytes] = []
    step = PROGRESS_STEP
    for first in range(0, count, step):
        last = min(first + step, count)
        chunk = []
        for index in range(first, last):
            head, tail = pieces[time_choices[index] * len(reasons) + choices[index]]
            chunk.append(head + serial_bytes[4 * index : 4 * index + 4] + tail)
        chunks.append(b"".join(chunk))
        if progress is not None:
            progress(last, count)
    return b"".join(chunks)


def _extensions(issuer_certificate: x509.Certificate, crl_number: int) -> bytes:
    try:
        ski = issuer_certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
        aki = x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski.value)
    except x509.ExtensionNotFound:
        aki = x509.AuthorityKeyIdentifier.from_issuer_public_key(
            issuer_certificate.public_key()  # type: ignore[arg-type]
        )
    aki_extension = der_tlv(
        0x30, der_tlv(0x06, bytes.fromhex("551d23")) + der_tlv(0x04, aki.public_bytes())
    )
    number_extension = der_tlv(
        0x30,
        der_tlv(0x06, bytes.fromhex("551d14"))
        + der_tlv(0x04, x509.CRLNumber(crl_number).public_bytes()),
    )
    return der_tlv(0xA0, der_tlv(0x30, aki_extension + number_extension))


def build_crl(
    *,
    issuer_certificate: x509.Certificate,
    issuer_key: rsa.RSAPrivateKey,
    crl_number: int,
    this_update: dt.datetime,
    next_update: dt.datetime,
    entries: Sequence[RevokedEntry] = (),
    encoded_entries: bytes = b"",
) -> bytes:
    """A signed v2 CRL (DER) with CRL number and authority key identifier.

    `entries` are encoded here; `encoded_entries` are already-encoded elements
    (from :func:`synthetic_entries_der`) appended after them.
    """
    revoked = b"".join(encode_entry(entry) for entry in entries) + encoded_entries
    tbs = (
        der_integer(1)  # v2
        + SHA256_WITH_RSA
        + issuer_certificate.subject.public_bytes()
        + der_time(this_update)
        + der_time(next_update)
        + (der_tlv(0x30, revoked) if revoked else b"")  # absent when empty (RFC 5280)
        + _extensions(issuer_certificate, crl_number)
    )
    tbs = der_tlv(0x30, tbs)
    signature = issuer_key.sign(tbs, padding.PKCS1v15(), hashes.SHA256())
    return der_tlv(0x30, tbs + SHA256_WITH_RSA + der_tlv(0x03, b"\x00" + signature))


def build_large_crl(
    *,
    issuer_certificate: x509.Certificate,
    issuer_key: rsa.RSAPrivateKey,
    count: int,
    crl_number: int,
    this_update: dt.datetime,
    next_update: dt.datetime,
    entries: Sequence[RevokedEntry] = (),
    exclude_serials: Iterable[int] = (),
    seed: int | None = None,
    progress: ProgressCallback | None = None,
) -> bytes:
    """A CRL with `count` entries: the real `entries` first, then synthetic ones.

    Synthetic serials avoid `exclude_serials` (certificates that must stay good)
    and the real entries; their revocation times fall in the five years before
    `this_update`.
    """
    if count < len(entries):
        raise ValueError(f"count {count} is smaller than the {len(entries)} real entries")
    synthetic = synthetic_entries_der(
        count - len(entries),
        revoked_between=(this_update - dt.timedelta(days=5 * 365), this_update),
        exclude={*exclude_serials, *(entry.serial for entry in entries)},
        seed=seed,
        progress=progress,
    )
    return build_crl(
        issuer_certificate=issuer_certificate,
        issuer_key=issuer_key,
        crl_number=crl_number,
        this_update=this_update,
        next_update=next_update,
        entries=entries,
        encoded_entries=synthetic,
    )


def crl_pem(der: bytes) -> bytes:
    """PEM form of a DER CRL (for files people open in a text editor)."""
    return x509.load_der_x509_crl(der).public_bytes(serialization.Encoding.PEM)
