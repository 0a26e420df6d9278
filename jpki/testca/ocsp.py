"""An RFC 6960 OCSP responder for the test hierarchy, over HTTP on loopback.

Production JPKI status is not reachable by URL (J-LIS serves certified
verifiers only); this responder lets the product's OCSP path be tested against
a real HTTP exchange. It answers for both test CAs, signing with the CA key or,
with `delegated=True`, with a responder certificate (id-kp-OCSPSigning) that
the CA issued. Status is read from the hierarchy on every request, so
revocations made by another process show at once.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hmac
import json
import secrets
import ssl
import threading
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from jpki.testca import names
from jpki.testca.hierarchy import SERIAL_RANGE, Hierarchy, new_rsa_key

OCSP_REQUEST_TYPE = "application/ocsp-request"
OCSP_RESPONSE_TYPE = "application/ocsp-response"
MAX_REQUEST_BYTES = 64 * 1024
RESPONSE_VALIDITY = dt.timedelta(hours=1)
DELEGATE_VALIDITY = dt.timedelta(days=30)
_STATUS = {
    "good": ocsp.OCSPCertStatus.GOOD,
    "revoked": ocsp.OCSPCertStatus.REVOKED,
    "unknown": ocsp.OCSPCertStatus.UNKNOWN,
}


@dataclass(frozen=True)
class _Signer:
    """Who signs responses for one CA: the CA itself or its delegated responder."""

    certificate: x509.Certificate
    key: rsa.RSAPrivateKey
    chain: tuple[x509.Certificate, ...]  # certificates sent with the response


def _key_hash(certificate: x509.Certificate, algorithm: hashes.HashAlgorithm) -> bytes:
    # RFC 6960: the hash of the subjectPublicKey BIT STRING value; for RSA that
    # is the PKCS#1 RSAPublicKey DER.
    public_bytes = certificate.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.PKCS1
    )
    digest = hashes.Hash(algorithm)
    digest.update(public_bytes)
    return digest.finalize()


def _name_hash(certificate: x509.Certificate, algorithm: hashes.HashAlgorithm) -> bytes:
    digest = hashes.Hash(algorithm)
    digest.update(certificate.subject.public_bytes())
    return digest.finalize()


def issue_delegated_responder(
    hierarchy: Hierarchy, purpose: str, *, now: dt.datetime | None = None
) -> tuple[x509.Certificate, rsa.RSAPrivateKey]:
    """A responder certificate with id-kp-OCSPSigning and ocsp-nocheck, issued by the CA."""
    now = (now or hierarchy.now()).replace(microsecond=0)
    key = new_rsa_key()
    ca_certificate = hierarchy.ca_certificate(purpose)
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "JP"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, names.TEST_O),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, names.TEST_OU),
            x509.NameAttribute(NameOID.COMMON_NAME, f"OCSP responder ({purpose})"),
        ]
    )
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca_certificate.subject)
        .public_key(key.public_key())
        .serial_number(secrets.choice(SERIAL_RANGE))
        .not_valid_before(now)
        .not_valid_after(min(now + DELEGATE_VALIDITY, ca_certificate.not_valid_after_utc))
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.OCSP_SIGNING]), critical=True)
        .add_extension(x509.OCSPNoCheck(), critical=False)
        .add_extension(
            x509.KeyUsage(True, False, False, False, False, False, False, False, False),
            critical=True,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(
                hierarchy.ca_key(purpose).public_key()
            ),
            critical=False,
        )
        .sign(hierarchy.ca_key(purpose), hashes.SHA256())
    )
    return certificate, key


class OcspAnswerer:
    """Turns a DER OCSP request into a signed DER OCSP response (no HTTP here)."""

    def __init__(self, hierarchy: Hierarchy, *, delegated: bool = False) -> None:
        self.hierarchy = hierarchy
        self._signers: dict[str, _Signer] = {}
        for purpose in names.PURPOSES:
            ca_certificate = hierarchy.ca_certificate(purpose)
            if delegated:
                certificate, key = issue_delegated_responder(hierarchy, purpose)
                self._signers[purpose] = _Signer(certificate, key, (certificate,))
            else:
                self._signers[purpose] = _Signer(ca_certificate, hierarchy.ca_key(purpose), ())

    def responder_certificate(self, purpose: str) -> x509.Certificate:
        return self._signers[names.check_purpose(purpose)].certificate

    def _purpose_of(self, request: ocsp.OCSPRequest) -> str | None:
        algorithm = request.hash_algorithm
        for purpose in names.PURPOSES:
            ca_certificate = self.hierarchy.ca_certificate(purpose)
            if request.issuer_key_hash == _key_hash(
                ca_certificate, algorithm
            ) and request.issuer_name_hash == _name_hash(ca_certificate, algorithm):
                return purpose
        return None

    def answer(self, request_der: bytes) -> bytes:
        try:
            request = ocsp.load_der_ocsp_request(request_der)
            nonce = self._nonce(request)
        except ValueError:
            return _unsuccessful(ocsp.OCSPResponseStatus.MALFORMED_REQUEST)
        purpose = self._purpose_of(request)
        if purpose is None:
            # Not one of our CAs: RFC 6960 says "unauthorized", not "unknown".
            return _unsuccessful(ocsp.OCSPResponseStatus.UNAUTHORIZED)
        now = self.hierarchy.now().replace(microsecond=0)
        status = self.hierarchy.status(purpose, request.serial_number, at=now)
        signer = self._signers[purpose]
        builder = (
            ocsp.OCSPResponseBuilder()
            .add_response_by_hash(
                issuer_name_hash=request.issuer_name_hash,
                issuer_key_hash=request.issuer_key_hash,
                serial_number=request.serial_number,
                algorithm=request.hash_algorithm,
                cert_status=_STATUS[status.status],
                this_update=now,
                next_update=now + RESPONSE_VALIDITY,
                revocation_time=status.revoked_at,
                revocation_reason=status.reason if status.status == "revoked" else None,
            )
            .responder_id(ocsp.OCSPResponderEncoding.HASH, signer.certificate)
        )
        if signer.chain:
            builder = builder.certificates(list(signer.chain))
        if nonce is not None:
            builder = builder.add_extension(x509.OCSPNonce(nonce), critical=False)
        return builder.sign(signer.key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)

    @staticmethod
    def _nonce(request: ocsp.OCSPRequest) -> bytes | None:
        try:
            return request.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce
        except x509.ExtensionNotFound:
            return None


def _unsuccessful(status: ocsp.OCSPResponseStatus) -> bytes:
    return ocsp.OCSPResponseBuilder.build_unsuccessful(status).public_bytes(
        serialization.Encoding.DER
    )


LINKAGE_PATH = "/linkage/"
CRL_PATH = "/crl/"


class _OcspHandler(BaseHTTPRequestHandler):
    server: _OcspHttpServer

    def _admitted(self) -> bool:
        """A platform operator answers its contracted businesses only: with a token
        configured, the request must carry it (mutual TLS is checked at the handshake)."""
        token = self.server.client_token
        if token is None or hmac.compare_digest(
            self.headers.get("Authorization", "").encode(), f"Bearer {token}".encode()
        ):
            return True
        self.send_error(HTTPStatus.UNAUTHORIZED, "client authentication required")
        return False

    def do_POST(self) -> None:
        if not self._admitted():
            return
        length = int(self.headers.get("Content-Length") or 0)
        if length <= 0 or length > MAX_REQUEST_BYTES:
            self.send_error(HTTPStatus.BAD_REQUEST, "OCSP request body missing or too large")
            return
        content_type = (self.headers.get("Content-Type") or "").split(";")[0].strip()
        if content_type != OCSP_REQUEST_TYPE:
            self.send_error(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, f"expected {OCSP_REQUEST_TYPE}")
            return
        self._reply(self.rfile.read(length))

    def do_GET(self) -> None:
        if not self._admitted():
            return
        if self.path.startswith(LINKAGE_PATH):
            self._linkage(self.path.removeprefix(LINKAGE_PATH))
            return
        if self.path.startswith(CRL_PATH):
            self._crl(self.path.removeprefix(CRL_PATH))
            return
        # RFC 6960 A.1: GET {url}/{url-encoding of base-64 encoding of the DER request}
        encoded = urllib.parse.unquote(self.path.rsplit("/", 1)[-1])
        try:
            request_der = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            request_der = b""
        if not request_der or len(request_der) > MAX_REQUEST_BYTES:
            self.send_error(HTTPStatus.BAD_REQUEST, "expected a base64 OCSP request in the path")
            return
        self._reply(request_der)

    def _crl(self, purpose: str) -> None:
        """The operator's daily CRL, ``/crl/<purpose>``. Inside its switch-over window
        the operator still serves yesterday's list: thisUpdate a day before, nextUpdate
        already ``in_switchover`` past."""
        if purpose not in ("auth", "sign"):
            self.send_error(HTTPStatus.NOT_FOUND, "expected /crl/auth or /crl/sign")
            return
        hierarchy = self.server.answerer.hierarchy
        late = self.server.in_switchover
        if late is None:
            body = hierarchy.crl(purpose)
        else:
            now = hierarchy.now()
            body = hierarchy.crl(
                purpose, this_update=now - late - dt.timedelta(days=1), next_update=now - late
            )
        self._send(body, "application/pkix-crl")

    def _linkage(self, rest: str) -> None:
        """The operator's certificate linkage record (証明書の紐付け): which certificate a
        renewed one replaced. ``/linkage/<purpose>/<new serial, hex>`` -> JSON, or 404."""
        purpose, _, serial_hex = rest.partition("/")
        try:
            new_serial = int(serial_hex, 16)
        except ValueError:
            self.send_error(HTTPStatus.BAD_REQUEST, "expected /linkage/<purpose>/<serial hex>")
            return
        found = [
            linkage
            for linkage in self.server.answerer.hierarchy.linkages(purpose)
            if linkage.new_serial == new_serial
        ]
        if not found:
            self.send_error(HTTPStatus.NOT_FOUND, "no linkage record for this certificate")
            return
        linkage = found[-1]
        body = json.dumps(
            {
                "purpose": linkage.purpose,
                "old_serial": format(linkage.old_serial, "x"),
                "new_serial": format(linkage.new_serial, "x"),
                "reason": linkage.reason.value,
                "at": linkage.at.isoformat(),
            }
        ).encode()
        self._send(body, "application/json")

    def _reply(self, request_der: bytes) -> None:
        self._send(self.server.answerer.answer(request_der), OCSP_RESPONSE_TYPE)

    def _send(self, body: bytes, content_type: str) -> None:
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        # Method and status only: the request path of a GET carries the request itself.
        if self.server.log is not None:
            self.server.log(f"{self.command} -> {int(code) if str(code).isdigit() else code}")

    def log_message(self, format: str, *args: object) -> None:
        """Silence the stdlib's stderr access log."""


class _OcspHttpServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(
        self,
        address: tuple[str, int],
        answerer: OcspAnswerer,
        log: Callable[[str], None] | None,
        client_token: str | None = None,
        tls: ssl.SSLContext | None = None,
        in_switchover: dt.timedelta | None = None,
    ) -> None:
        super().__init__(address, _OcspHandler)
        self.in_switchover = in_switchover
        self.answerer = answerer
        self.log = log
        self.client_token = client_token
        if tls is not None:
            # A handshake a client fails (no certificate, an unknown one) ends that
            # connection only: accept() raises an OSError the server shrugs off.
            self.socket = tls.wrap_socket(self.socket, server_side=True)


class OcspResponder:
    """The responder as an HTTP server in a background thread.

    >>> responder = OcspResponder(hierarchy, "127.0.0.1", 0).start()  # port 0: any free
    >>> responder.url  # 'http://127.0.0.1:40123/'
    >>> responder.stop()
    """

    def __init__(
        self,
        hierarchy: Hierarchy,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        delegated: bool = False,
        log: Callable[[str], None] | None = None,
        client_token: str | None = None,
        tls: ssl.SSLContext | None = None,
        in_switchover: dt.timedelta | None = None,
    ) -> None:
        """``client_token`` / ``tls`` (a server context, with ``verify_mode``
        CERT_REQUIRED for mutual TLS): the platform operator's client authentication.
        ``in_switchover``: the operator is that far into its daily CRL's switch-over
        window (its CRL endpoint still serves yesterday's list)."""
        self.answerer = OcspAnswerer(hierarchy, delegated=delegated)
        self._client_token = client_token
        self._tls = tls
        self._in_switchover = in_switchover
        self._address = (host, port)
        self._log = log
        self._server: _OcspHttpServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> OcspResponder:
        if self._server is not None:
            raise RuntimeError("the OCSP responder is already running")
        self._server = self._new_server()
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="ocsp-responder", daemon=True
        )
        self._thread.start()
        return self

    def _new_server(self) -> _OcspHttpServer:
        return _OcspHttpServer(
            self._address,
            self.answerer,
            self._log,
            self._client_token,
            self._tls,
            self._in_switchover,
        )

    def serve_forever(self) -> None:
        """Serve in the calling thread until interrupted (for the CLI)."""
        self._server = self._new_server()
        try:
            self._server.serve_forever()
        finally:
            self._server.server_close()
            self._server = None

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None
        self._thread = None

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the OCSP responder is not running")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        host = self._address[0]
        scheme = "https" if self._tls is not None else "http"
        return f"{scheme}://{host}:{self.port}/"

    def __enter__(self) -> OcspResponder:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
