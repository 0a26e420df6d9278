"""RevocationIndex: verified CRL ingest, lookups, freshness, fallback, refresh and persistence."""

from __future__ import annotations

import datetime as dt
import hashlib
import random
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding

from jpki.revocation import (
    CrlError,
    CrlFetchError,
    CrlIssuerMismatchError,
    CrlMalformedError,
    CrlRollbackError,
    CrlSignatureError,
    CrlStaleError,
    CrlUnsupportedError,
    FileCrlSource,
    HttpCrlSource,
    RevocationIndex,
    RevocationStatus,
)
from jpki.testca import Hierarchy
from jpki.testca.crl import RevokedEntry, build_crl, build_large_crl

DAY = dt.timedelta(days=1)


def signed_crl(
    hierarchy: Hierarchy,
    *,
    number: int,
    this_update: dt.datetime,
    entries=(),
    purpose: str = "auth",
    key: rsa.RSAPrivateKey | None = None,
    next_update: dt.datetime | None = None,
) -> bytes:
    return build_crl(
        issuer_certificate=hierarchy.ca_certificate(purpose),
        issuer_key=key or hierarchy.ca_key(purpose),
        crl_number=number,
        this_update=this_update,
        next_update=next_update or this_update + DAY,
        entries=list(entries),
    )


def crypto_builder_crl(
    hierarchy: Hierarchy, now: dt.datetime, *, extension=None, entry_extension=None
) -> bytes:
    """A small CRL made by cryptography's builder, for features the fast encoder does not emit."""
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(hierarchy.auth_ca_certificate.subject)
        .last_update(now)
        .next_update(now + DAY)
        .add_extension(x509.CRLNumber(9), critical=False)
    )
    revoked = x509.RevokedCertificateBuilder().serial_number(4242).revocation_date(now)
    if entry_extension is not None:
        revoked = revoked.add_extension(*entry_extension)
    builder = builder.add_revoked_certificate(revoked.build())
    if extension is not None:
        builder = builder.add_extension(*extension)
    return builder.sign(hierarchy.ca_key("auth"), hashes.SHA256()).public_bytes(Encoding.DER)


@pytest.fixture
def index(test_hierarchy: Hierarchy) -> RevocationIndex:
    return RevocationIndex(test_hierarchy.auth_ca_certificate)


def test_lookup_answers_revoked_with_reason_date_and_which_crl(
    test_hierarchy: Hierarchy, index: RevocationIndex, test_now
) -> None:
    revoked_at = test_now - dt.timedelta(hours=5)
    entries = [
        RevokedEntry(1000 + code, revoked_at, reason)
        for code, reason in enumerate(x509.ReasonFlags)
    ]
    der = signed_crl(test_hierarchy, number=3, this_update=test_now, entries=entries)
    info = index.ingest(der, at=test_now)
    assert info.crl_number == 3
    assert info.sha256 == hashlib.sha256(der).hexdigest()
    assert info.entries == len(entries)
    assert info.this_update == test_now and info.next_update == test_now + DAY
    for entry in entries:
        answer = index.check(entry.serial, at=test_now)
        assert answer.status is RevocationStatus.REVOKED
        assert answer.entry is not None
        assert answer.entry.reason is entry.reason
        assert answer.entry.revoked_at == revoked_at
        assert answer.crl == info
    assert index.check(999, at=test_now).status is RevocationStatus.GOOD
    # Revoked later than the moment asked about: good at that moment.
    assert index.check(1000, at=revoked_at - dt.timedelta(hours=1)).status is RevocationStatus.GOOD


def test_index_agrees_with_cryptography_on_a_large_crl(test_hierarchy: Hierarchy, test_now) -> None:
    """Differential check against cryptography's own lookup (the naive baseline)."""
    der = build_large_crl(
        issuer_certificate=test_hierarchy.auth_ca_certificate,
        issuer_key=test_hierarchy.ca_key("auth"),
        count=20_000,
        crl_number=1,
        this_update=test_now,
        next_update=test_now + DAY,
        entries=[RevokedEntry(2**100 + 1, test_now - DAY, x509.ReasonFlags.key_compromise)],
        seed=7,
    )
    index = RevocationIndex(test_hierarchy.auth_ca_certificate)
    index.ingest(der, at=test_now)
    reference = x509.load_der_x509_crl(der)
    revoked = [entry.serial_number for entry in reference]
    rng = random.Random(1)
    probes = rng.sample(revoked, 300) + [rng.randrange(2**32) for _ in range(300)] + [2**100 + 1]
    for serial in probes:
        expected = reference.get_revoked_certificate_by_serial_number(serial)
        answer = index.check(serial, at=test_now)
        if expected is None:
            assert answer.status is RevocationStatus.GOOD, serial
        else:
            assert answer.status is RevocationStatus.REVOKED, serial
            assert answer.entry.revoked_at == expected.revocation_date_utc
    assert index.check(2**100 + 1, at=test_now).entry.reason is x509.ReasonFlags.key_compromise
    # Same low 64 bits, different serial: must not be confused with the entry.
    assert index.check(2**101 + 1, at=test_now).status is RevocationStatus.GOOD


def test_crl_signed_by_the_wrong_key_is_refused_and_the_previous_kept(
    test_hierarchy: Hierarchy, index: RevocationIndex, test_now
) -> None:
    good = signed_crl(test_hierarchy, number=1, this_update=test_now)
    index.ingest(good, at=test_now)
    wrong_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = signed_crl(
        test_hierarchy,
        number=2,
        this_update=test_now + dt.timedelta(hours=1),
        key=wrong_key,
        entries=[RevokedEntry(77, test_now, x509.ReasonFlags.key_compromise)],
    )
    with pytest.raises(CrlSignatureError):
        index.ingest(forged, at=test_now + dt.timedelta(hours=1))
    assert index.current is not None and index.current.crl_number == 1
    assert isinstance(index.last_error, CrlSignatureError)
    assert index.check(77, at=test_now).status is RevocationStatus.GOOD


def test_crl_of_another_ca_is_refused(test_hierarchy: Hierarchy, index, test_now) -> None:
    sign_crl = signed_crl(test_hierarchy, number=1, this_update=test_now, purpose="sign")
    with pytest.raises(CrlIssuerMismatchError):
        index.ingest(sign_crl, at=test_now)
    assert index.check(1, at=test_now).status is RevocationStatus.UNAVAILABLE


def test_stale_crl(test_hierarchy: Hierarchy, index: RevocationIndex, test_now) -> None:
    index.ingest(signed_crl(test_hierarchy, number=1, this_update=test_now), at=test_now)
    later = test_now + 2 * DAY
    assert index.check(1, at=later).status is RevocationStatus.STALE
    with pytest.raises(CrlStaleError):
        index.ingest(signed_crl(test_hierarchy, number=2, this_update=test_now), at=later)
    with pytest.raises(CrlStaleError):  # issued in the future
        index.ingest(signed_crl(test_hierarchy, number=3, this_update=later), at=test_now)


def test_older_crl_is_refused(test_hierarchy: Hierarchy, index, test_now) -> None:
    index.ingest(signed_crl(test_hierarchy, number=5, this_update=test_now), at=test_now)
    with pytest.raises(CrlRollbackError):
        index.ingest(
            signed_crl(test_hierarchy, number=4, this_update=test_now - dt.timedelta(hours=1)),
            at=test_now,
        )
    assert index.current.crl_number == 5


def test_unprocessable_crls_are_refused(test_hierarchy: Hierarchy, index, test_now) -> None:
    delta = crypto_builder_crl(
        test_hierarchy, test_now, extension=(x509.DeltaCRLIndicator(8), True)
    )
    with pytest.raises(CrlUnsupportedError):
        index.ingest(delta, at=test_now)
    unknown = x509.UnrecognizedExtension(x509.ObjectIdentifier("1.2.3.4.99"), b"\x05\x00")
    critical_entry = crypto_builder_crl(test_hierarchy, test_now, entry_extension=(unknown, True))
    with pytest.raises(CrlUnsupportedError):
        index.ingest(critical_entry, at=test_now)
    harmless = crypto_builder_crl(test_hierarchy, test_now, entry_extension=(unknown, False))
    index.ingest(harmless, at=test_now)
    assert index.check(4242, at=test_now).status is RevocationStatus.REVOKED


@pytest.mark.parametrize("cut", [0, 1, 10, 200, -300, -1])
def test_truncated_or_garbage_crl(test_hierarchy: Hierarchy, index, test_now, cut) -> None:
    der = signed_crl(
        test_hierarchy,
        number=1,
        this_update=test_now,
        entries=[RevokedEntry(5, test_now, x509.ReasonFlags.superseded)],
    )
    with pytest.raises(CrlMalformedError):
        index.ingest(der[:cut], at=test_now)
    with pytest.raises(CrlError):
        index.ingest(b"\x30\x03garbage", at=test_now)


def test_refresh_from_file_is_due_before_next_update(
    test_hierarchy: Hierarchy, test_now, tmp_path: Path
) -> None:
    crl_file = tmp_path / "auth.crl"
    index = RevocationIndex(
        test_hierarchy.auth_ca_certificate,
        source=FileCrlSource(crl_file),
        refresh_margin=dt.timedelta(hours=2),
    )
    assert index.refresh_due(at=test_now)
    assert index.refresh_if_due(at=test_now) is None  # the file is not there yet
    assert isinstance(index.last_error, CrlFetchError)
    crl_file.write_bytes(signed_crl(test_hierarchy, number=1, this_update=test_now))
    assert index.refresh_if_due(at=test_now).crl_number == 1
    assert not index.refresh_due(at=test_now + dt.timedelta(hours=21))
    assert index.refresh_due(at=test_now + dt.timedelta(hours=22))
    crl_file.write_bytes(b"not a crl")
    assert index.refresh_if_due(at=test_now + dt.timedelta(hours=22)) is None
    assert index.current.crl_number == 1  # the bad file did not replace the good CRL
    crl_file.write_bytes(
        signed_crl(test_hierarchy, number=2, this_update=test_now + dt.timedelta(hours=22))
    )
    assert index.refresh_if_due(at=test_now + dt.timedelta(hours=22)).crl_number == 2


def test_refresh_over_http(test_hierarchy: Hierarchy, test_now) -> None:
    der = signed_crl(test_hierarchy, number=1, this_update=test_now)
    requests = []

    def serve(request: httpx.Request) -> httpx.Response:
        requests.append(request.url.path)
        if request.url.path == "/auth.crl":
            return httpx.Response(200, content=der)
        return httpx.Response(404)

    client = httpx.Client(transport=httpx.MockTransport(serve))
    index = RevocationIndex(
        test_hierarchy.auth_ca_certificate,
        source=HttpCrlSource("http://testca.invalid/auth.crl", client=client),
    )
    assert index.refresh(at=test_now).sha256 == hashlib.sha256(der).hexdigest()
    missing = RevocationIndex(
        test_hierarchy.auth_ca_certificate,
        source=HttpCrlSource("http://testca.invalid/none.crl", client=client),
    )
    with pytest.raises(CrlFetchError):
        missing.refresh(at=test_now)
    assert requests == ["/auth.crl", "/none.crl"]


def test_restart_restores_the_index_without_reparsing(
    test_hierarchy: Hierarchy, test_now, tmp_path: Path
) -> None:
    entries = [RevokedEntry(31337, test_now, x509.ReasonFlags.cessation_of_operation)]
    der = signed_crl(test_hierarchy, number=7, this_update=test_now, entries=entries)
    first = RevocationIndex(test_hierarchy.auth_ca_certificate, cache_dir=tmp_path)
    first.ingest(der, at=test_now)

    restarted = RevocationIndex(test_hierarchy.auth_ca_certificate, cache_dir=tmp_path)
    assert restarted.restored_from_cache
    assert restarted.current == first.current
    answer = restarted.check(31337, at=test_now)
    assert answer.status is RevocationStatus.REVOKED
    assert answer.entry.reason is x509.ReasonFlags.cessation_of_operation

    # A tampered cached CRL fails its signature check and is not used.
    crl_file = next(tmp_path.glob("*.crl"))
    tampered = bytearray(crl_file.read_bytes())
    tampered[-5] ^= 0xFF
    crl_file.write_bytes(bytes(tampered))
    after_tamper = RevocationIndex(test_hierarchy.auth_ca_certificate, cache_dir=tmp_path)
    assert after_tamper.current is None
    assert after_tamper.check(31337, at=test_now).status is RevocationStatus.UNAVAILABLE


def test_pem_crl_is_accepted(test_hierarchy: Hierarchy, index: RevocationIndex, test_now) -> None:
    from jpki.testca.crl import crl_pem

    der = signed_crl(
        test_hierarchy,
        number=1,
        this_update=test_now,
        entries=[RevokedEntry(99, test_now, x509.ReasonFlags.superseded)],
    )
    info = index.ingest(crl_pem(der), at=test_now)
    assert info.sha256 == hashlib.sha256(der).hexdigest()
    assert index.check(99, at=test_now).status is RevocationStatus.REVOKED
    with pytest.raises(CrlMalformedError):
        index.ingest(crl_pem(der)[:-40], at=test_now)


def test_refresh_over_real_loopback_http(test_hierarchy: Hierarchy, test_now) -> None:
    """HttpCrlSource with its own client against an HTTP server on 127.0.0.1."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    der = signed_crl(test_hierarchy, number=1, this_update=test_now)

    class ServeCrl(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/pkix-crl")
            self.send_header("Content-Length", str(len(der)))
            self.end_headers()
            self.wfile.write(der)

        def log_message(self, format: str, *args: object) -> None:
            """Quiet."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), ServeCrl)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/auth.crl"
        index = RevocationIndex(test_hierarchy.auth_ca_certificate, source=HttpCrlSource(url))
        assert index.refresh(at=test_now).sha256 == hashlib.sha256(der).hexdigest()
        too_small = RevocationIndex(
            test_hierarchy.auth_ca_certificate, source=HttpCrlSource(url, max_bytes=100)
        )
        with pytest.raises(CrlFetchError, match="limit"):
            too_small.refresh(at=test_now)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.mark.parametrize(
    "entry",
    [
        b"\x30\x03\x02\x01\x05",  # no revocationDate
        b"\x30\x05\x02\x01\x05\x17\x00",  # empty time
        b"\x31\x03\x02\x01\x05",  # a SET, not a SEQUENCE
        b"\x30\x10\x02\x01\x05",  # length runs past the list
    ],
)
def test_signed_crl_with_a_malformed_entry_is_malformed(
    test_hierarchy: Hierarchy, index: RevocationIndex, test_now, entry: bytes
) -> None:
    """Correctly signed by the CA, yet structurally broken: refused as malformed, not a crash."""
    der = build_crl(
        issuer_certificate=test_hierarchy.auth_ca_certificate,
        issuer_key=test_hierarchy.ca_key("auth"),
        crl_number=1,
        this_update=test_now,
        next_update=test_now + DAY,
        encoded_entries=entry,
    )
    with pytest.raises(CrlMalformedError):
        index.ingest(der, at=test_now)


def test_unwritable_cache_does_not_fail_ingest(
    test_hierarchy: Hierarchy, test_now, tmp_path: Path
) -> None:
    not_a_directory = tmp_path / "cache"
    not_a_directory.write_text("a file where the cache directory should be")
    index = RevocationIndex(test_hierarchy.auth_ca_certificate, cache_dir=not_a_directory)
    info = index.ingest(signed_crl(test_hierarchy, number=1, this_update=test_now), at=test_now)
    assert index.current == info
    assert isinstance(index.persist_error, OSError)


# --- the persisted index is trusted only when intact ------------------------------------------

CACHED_REVOKED = (31337, 4242, 77)
INDEX_HEADER = 72  # magic 12, CRL SHA-256 32, CRL number 20, entry count 8


def _cached_index(hierarchy: Hierarchy, now: dt.datetime, cache: Path) -> Path:
    entries = [
        RevokedEntry(serial, now, x509.ReasonFlags.key_compromise) for serial in CACHED_REVOKED
    ]
    der = signed_crl(hierarchy, number=7, this_update=now, entries=entries)
    RevocationIndex(hierarchy.auth_ca_certificate, cache_dir=cache).ingest(der, at=now)
    return next(cache.glob("*.idx"))


def _flip(raw: bytes, position: int) -> bytes:
    damaged = bytearray(raw)
    damaged[position] ^= 0x01
    return bytes(damaged)


def _old_format_index(raw: bytes) -> bytes:
    """A well-formed format-1 file (no digest) for the same CRL, claiming no entries."""
    return b"JPKICRLIDX\x00\x01" + raw[12:64] + (0).to_bytes(8, "little")


DAMAGE = {
    "truncated_to_the_header": lambda raw: raw[:64],
    "truncated_by_one_byte": lambda raw: raw[:-1],
    "truncated_in_the_keys": lambda raw: raw[: INDEX_HEADER + 8],
    "zeros_after_the_header": lambda raw: raw[:INDEX_HEADER] + bytes(len(raw) - INDEX_HEADER),
    "flipped_byte_in_a_key": lambda raw: _flip(raw, INDEX_HEADER + 1),
    "flipped_byte_in_an_offset": lambda raw: _flip(raw, INDEX_HEADER + 8 * 3 + 1),
    "flipped_byte_in_the_header_crl_number": lambda raw: _flip(raw, 12 + 32 + 19),
    "flipped_byte_in_the_header_count": lambda raw: _flip(raw, 64),
    "flipped_byte_in_the_header_magic": lambda raw: _flip(raw, 0),
    "flipped_byte_in_the_digest": lambda raw: _flip(raw, len(raw) - 1),
    "old_format": _old_format_index,
    "empty_file": lambda raw: b"",
}


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_a_damaged_index_cache_is_rebuilt_so_revoked_stays_revoked(
    test_hierarchy: Hierarchy, test_now, tmp_path: Path, damage: str
) -> None:
    import structlog

    idx_file = _cached_index(test_hierarchy, test_now, tmp_path)
    intact = idx_file.read_bytes()
    idx_file.write_bytes(DAMAGE[damage](intact))

    with structlog.testing.capture_logs() as captured:
        restarted = RevocationIndex(test_hierarchy.auth_ca_certificate, cache_dir=tmp_path)
    for serial in CACHED_REVOKED:
        assert restarted.check(serial, at=test_now).status is RevocationStatus.REVOKED
    assert not restarted.restored_from_cache  # rebuilt from the signed CRL, not trusted
    assert restarted.check(5, at=test_now).status is RevocationStatus.GOOD
    assert restarted.current.entries == len(CACHED_REVOKED)
    rejected = [event for event in captured if event["event"] == "revocation_cache_rejected"]
    assert len(rejected) == 1 and rejected[0]["log_level"] == "warning"
    assert rejected[0]["file"] == idx_file.name and rejected[0]["reason"]

    # The rebuilt index was written back intact: the next restart uses it again.
    assert idx_file.read_bytes() == intact
    again = RevocationIndex(test_hierarchy.auth_ca_certificate, cache_dir=tmp_path)
    assert again.restored_from_cache
    assert again.check(CACHED_REVOKED[0], at=test_now).status is RevocationStatus.REVOKED


def test_a_damaged_cached_crl_leaves_revocation_unavailable_and_is_logged(
    test_hierarchy: Hierarchy, test_now, tmp_path: Path
) -> None:
    import structlog

    _cached_index(test_hierarchy, test_now, tmp_path)
    crl_file = next(tmp_path.glob("*.crl"))
    crl_file.write_bytes(crl_file.read_bytes()[:-100])
    with structlog.testing.capture_logs() as captured:
        restarted = RevocationIndex(test_hierarchy.auth_ca_certificate, cache_dir=tmp_path)
    assert restarted.current is None
    answer = restarted.check(CACHED_REVOKED[0], at=test_now)
    assert answer.status is RevocationStatus.UNAVAILABLE
    events = {event["event"]: event for event in captured}
    assert events["revocation_cache_unusable"]["log_level"] == "error"


def test_a_switch_over_window_accepts_yesterdays_list_for_that_long_and_no_longer(
    test_hierarchy: Hierarchy, test_now
) -> None:
    """A platform operator's daily CRL: for a while after nextUpdate it may still serve
    yesterday's list. Within the configured window the list installs and answers; past
    it, or with no window, it is stale (and validation says revocation_unavailable)."""
    yesterday = signed_crl(
        test_hierarchy,
        number=7,
        this_update=test_now - dt.timedelta(hours=25),
        next_update=test_now - dt.timedelta(minutes=30),
        entries=[RevokedEntry(1234, test_now - dt.timedelta(days=3))],
    )
    strict = RevocationIndex(test_hierarchy.auth_ca_certificate)
    with pytest.raises(CrlStaleError, match="past its nextUpdate"):
        strict.ingest(yesterday, at=test_now)
    window = RevocationIndex(
        test_hierarchy.auth_ca_certificate, switchover_grace=dt.timedelta(hours=1)
    )
    window.ingest(yesterday, at=test_now)
    assert window.check(99, at=test_now).status is RevocationStatus.GOOD
    assert window.check(1234, at=test_now).status is RevocationStatus.REVOKED
    past = window.check(99, at=test_now + dt.timedelta(minutes=40))
    assert past.status is RevocationStatus.STALE
    assert "switch-over window" in past.detail
