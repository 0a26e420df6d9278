"""OCSP (RFC 6960) client for one issuing CA.

Each request carries a fresh random nonce; a response is accepted only if it
is signed by the CA itself or by a responder certificate the CA issued with
the id-kp-OCSPSigning EKU, answers for the serial asked about, echoes our
nonce (a replayed response carries an old one), and is fresh at `at`. Good
answers are cached until their nextUpdate.
"""

from __future__ import annotations

import enum
import hashlib
import os
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx
from asn1crypto import keys as asn1_keys
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID

from jpki.signatures import SignatureCheckError, verify_with_certificate

NONCE_BYTES = 16


class OcspError(Exception):
    """No usable OCSP answer; the caller may fall back to the CRL."""


class OcspFetchError(OcspError):
    """The responder could not be reached or answered with an HTTP error."""


class OcspResponseError(OcspError):
    """The response is malformed, unsigned by an authorized responder, stale or not ours."""


class OcspCertStatus(enum.StrEnum):
    GOOD = "good"
    REVOKED = "revoked"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class OcspAnswer:
    serial: int
    status: OcspCertStatus
    produced_at: datetime
    this_update: datetime
    next_update: datetime | None
    revoked_at: datetime | None
    reason: x509.ReasonFlags | None
    responder: str  # "ca" or the SHA-256 fingerprint of the delegated responder certificate
    sha256: str  # of the response DER, for the audit log


class OcspClient:
    """Query one CA's OCSP responder over HTTP POST (application/ocsp-request)."""

    def __init__(
        self,
        url: str,
        issuer_certificate: x509.Certificate,
        *,
        client: httpx.Client | None = None,
        timeout: float = 10.0,
        clock_skew: timedelta = timedelta(minutes=5),
        max_age_without_next_update: timedelta = timedelta(minutes=10),
        max_cached_answers: int = 100_000,
        max_age: timedelta | None = None,
    ) -> None:
        self.url = url
        self.issuer_certificate = issuer_certificate
        self._client = client
        self._timeout = timeout
        self.clock_skew = clock_skew
        self.max_age_without_next_update = max_age_without_next_update
        # The staleness a policy accepts: an answer whose thisUpdate is older is not used,
        # even before its nextUpdate (None: nextUpdate alone decides).
        self.max_age = max_age
        self._cache: dict[int, OcspAnswer] = {}  # serial -> answer, in insertion order
        self.max_cached_answers = max_cached_answers
        self._lock = threading.Lock()
        self._issuer_key_id = x509.SubjectKeyIdentifier.from_public_key(
            issuer_certificate.public_key()  # type: ignore[arg-type]
        ).digest

    def build_request(self, certificate: x509.Certificate, nonce: bytes) -> bytes:
        request = (
            ocsp.OCSPRequestBuilder()
            .add_certificate(certificate, self.issuer_certificate, hashes.SHA256())
            .add_extension(x509.OCSPNonce(nonce), critical=False)
            .build()
        )
        return request.public_bytes(serialization.Encoding.DER)

    def query(self, certificate: x509.Certificate, *, at: datetime) -> OcspAnswer:
        """Status of `certificate` at `at`, from the cache or the responder."""
        serial = certificate.serial_number
        with self._lock:
            cached = self._cache.get(serial)
        if cached is not None and self._fresh(cached, at) is None:
            return cached
        nonce = os.urandom(NONCE_BYTES)
        try:
            if self._client is None:  # made on first use: building its TLS context is slow
                self._client = httpx.Client(timeout=self._timeout)
            response = self._client.post(
                self.url,
                content=self.build_request(certificate, nonce),
                headers={"Content-Type": "application/ocsp-request"},
            )
        except httpx.HTTPError as error:
            raise OcspFetchError(f"OCSP responder unreachable: {error}") from error
        if response.status_code != 200:
            raise OcspFetchError(f"OCSP responder answered HTTP {response.status_code}")
        answer = self.verify_response(response.content, serial=serial, nonce=nonce, at=at)
        if answer.next_update is not None:
            with self._lock:
                self._cache.pop(serial, None)
                self._cache[serial] = answer
                if len(self._cache) > self.max_cached_answers:
                    self._evict(at)
        return answer

    @property
    def cached_answers(self) -> int:
        return len(self._cache)

    def _evict(self, at: datetime) -> None:
        """Drop expired answers; if still over the bound, the oldest ones (bounded memory)."""
        for serial in [s for s, a in self._cache.items() if self._fresh(a, at) is not None]:
            del self._cache[serial]
        while len(self._cache) > self.max_cached_answers:
            del self._cache[next(iter(self._cache))]

    def verify_response(
        self, response_der: bytes, *, serial: int, nonce: bytes, at: datetime
    ) -> OcspAnswer:
        """Check a response to our request for `serial` with `nonce`; raise OcspResponseError."""
        try:
            response = ocsp.load_der_ocsp_response(response_der)
        except ValueError as error:
            raise OcspResponseError("OCSP response is not DER") from error
        if response.response_status != ocsp.OCSPResponseStatus.SUCCESSFUL:
            raise OcspResponseError(f"OCSP responder said {response.response_status.name}")
        try:
            responder = self._check_signature(response, at)
            single = self._find_single(response, serial)
            echoed = response.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce
        except x509.ExtensionNotFound as error:
            raise OcspResponseError("OCSP response carries no nonce") from error
        except ValueError as error:
            raise OcspResponseError(f"OCSP response cannot be read: {error}") from error
        if echoed != nonce:
            raise OcspResponseError("OCSP nonce does not match the request (replayed response?)")
        status = {
            ocsp.OCSPCertStatus.GOOD: OcspCertStatus.GOOD,
            ocsp.OCSPCertStatus.REVOKED: OcspCertStatus.REVOKED,
            ocsp.OCSPCertStatus.UNKNOWN: OcspCertStatus.UNKNOWN,
        }[single.certificate_status]
        answer = OcspAnswer(
            serial=serial,
            status=status,
            produced_at=response.produced_at_utc,
            this_update=single.this_update_utc,
            next_update=single.next_update_utc,
            revoked_at=single.revocation_time_utc,
            reason=single.revocation_reason
            if single.revocation_reason is not None or status is not OcspCertStatus.REVOKED
            else x509.ReasonFlags.unspecified,
            responder=responder,
            sha256=hashlib.sha256(response_der).hexdigest(),
        )
        problem = self._fresh(answer, at)
        if problem is not None:
            raise OcspResponseError(problem)
        return answer

    def _fresh(self, answer: OcspAnswer, at: datetime) -> str | None:
        if answer.this_update > at + self.clock_skew:
            return "OCSP response thisUpdate is in the future"
        if self.max_age is not None and at - answer.this_update > self.max_age:
            return "OCSP response is older than the accepted staleness"
        if answer.next_update is None:
            if at - answer.this_update > self.max_age_without_next_update:
                return "OCSP response without nextUpdate is too old"
        elif at - self.clock_skew > answer.next_update:
            return "OCSP response is past its nextUpdate"
        return None

    def _find_single(self, response: ocsp.OCSPResponse, serial: int) -> ocsp.OCSPSingleResponse:
        for single in response.responses:
            if single.serial_number != serial:
                continue
            digest = hashlib.new(single.hash_algorithm.name)
            digest.update(self.issuer_certificate.subject.public_bytes())
            if single.issuer_name_hash != digest.digest():
                continue
            key_digest = hashlib.new(single.hash_algorithm.name)
            key_digest.update(self._issuer_public_key_bits())
            if single.issuer_key_hash != key_digest.digest():
                continue
            return single
        raise OcspResponseError("OCSP response does not answer for this certificate")

    def _issuer_public_key_bits(self) -> bytes:
        # The CertID key hash covers the subjectPublicKey BIT STRING contents (RFC 6960 4.1.1).
        spki = self.issuer_certificate.public_key().public_bytes(  # type: ignore[union-attr]
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return asn1_keys.PublicKeyInfo.load(spki)["public_key"].contents[1:]

    def _check_signature(self, response: ocsp.OCSPResponse, at: datetime) -> str:
        """Verify the response signature; return who signed it ("ca" or delegate fingerprint)."""
        signer, who = self._responder_certificate(response, at)
        try:
            verify_with_certificate(
                signer,
                response.signature_algorithm_oid.dotted_string,
                response.signature,
                response.tbs_response_bytes,
            )
        except SignatureCheckError as error:
            raise OcspResponseError(f"OCSP response {error}") from error
        return who

    def _responder_certificate(
        self, response: ocsp.OCSPResponse, at: datetime
    ) -> tuple[x509.Certificate, str]:
        ca = self.issuer_certificate
        if response.responder_key_hash == self._issuer_key_id or response.responder_name == (
            ca.subject
        ):
            return ca, "ca"
        for candidate in response.certificates:
            names_it = (
                response.responder_name == candidate.subject
                or response.responder_key_hash
                == x509.SubjectKeyIdentifier.from_public_key(
                    candidate.public_key()  # type: ignore[arg-type]
                ).digest
            )
            if not names_it:
                continue
            try:
                candidate.verify_directly_issued_by(ca)
            except (ValueError, TypeError, InvalidSignature) as error:
                raise OcspResponseError(
                    "OCSP responder certificate not issued by the CA"
                ) from error
            try:
                usages = candidate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
            except x509.ExtensionNotFound:
                usages = x509.ExtendedKeyUsage([])
            if ExtendedKeyUsageOID.OCSP_SIGNING not in usages:
                raise OcspResponseError("OCSP responder certificate lacks id-kp-OCSPSigning")
            skew = self.clock_skew
            if not (
                candidate.not_valid_before_utc - skew <= at <= candidate.not_valid_after_utc + skew
            ):
                raise OcspResponseError("OCSP responder certificate not valid at this time")
            return candidate, candidate.fingerprint(hashes.SHA256()).hex()
        raise OcspResponseError("OCSP response signed by an unauthorized responder")
