"""The platform operator's OCSP endpoint: how the service reaches it.

Private businesses receive J-LIS revocation information through a certified
platform operator, which answers only the businesses it has a contract with:
the service authenticates with a bearer token or with a client certificate
(mutual TLS), as ``Settings`` say. The OCSP protocol itself, and checking the
answers, is ``jpki.ocsp_client``'s.
"""

from __future__ import annotations

import logging
import ssl
from datetime import timedelta

import httpx
from cryptography import x509

from commonid.settings import Settings
from jpki.ocsp_client import OcspClient

log = logging.getLogger(__name__)
TIMEOUT_SECONDS = 5.0  # an operator that does not answer in time counts as unreachable


def operator_http_client(settings: Settings) -> httpx.Client:
    headers = {}
    if settings.operator_ocsp_token is not None:
        headers["Authorization"] = f"Bearer {settings.operator_ocsp_token.get_secret_value()}"
    # One TLS context for both: the operator's CA (else the system's), and our client
    # certificate for mutual TLS.
    tls = ssl.create_default_context(
        cafile=str(settings.operator_ca_file) if settings.operator_ca_file else None
    )
    if settings.operator_client_certificate is not None and settings.operator_client_key:
        tls.load_cert_chain(
            str(settings.operator_client_certificate), str(settings.operator_client_key)
        )
    return httpx.Client(headers=headers, verify=tls, timeout=TIMEOUT_SECONDS)


def operator_ocsp_clients(
    settings: Settings, ca_certificates: list[x509.Certificate]
) -> tuple[OcspClient, ...]:
    """One OCSP client per issuing CA, all through the operator's endpoint."""
    if not settings.operator_ocsp_url:
        return ()
    http = operator_http_client(settings)
    return tuple(
        OcspClient(
            settings.operator_ocsp_url,
            ca,
            client=http,
            timeout=TIMEOUT_SECONDS,
            max_age=timedelta(seconds=settings.operator_ocsp_max_age_seconds),
        )
        for ca in ca_certificates
    )


class LinkageSource:
    """The operator's certificate linkage records: which certificate a renewed one
    replaced. Evidence for joining a renewed card to its record (docs/compliance.md)."""

    def __init__(self, base_url: str, client: httpx.Client) -> None:
        self.base_url = base_url.rstrip("/") + "/"
        self._client = client

    def previous_serial(self, purpose: str, new_serial: int) -> int | None:
        """The serial the certificate ``new_serial`` replaced, or None: no record, or the
        operator did not answer (then the card is not linked this way, and the log says
        why a record was made)."""
        try:
            response = self._client.get(f"{self.base_url}{purpose}/{new_serial:x}")
        except httpx.HTTPError as error:
            log.warning("linkage records unreachable: %s", type(error).__name__)
            return None
        if response.status_code != 200:
            if response.status_code != 404:
                log.warning("linkage records answered HTTP %d", response.status_code)
            return None
        try:
            return int(response.json()["old_serial"], 16)
        except (ValueError, KeyError, TypeError):
            log.warning("linkage record unreadable")
            return None


def linkage_source(settings: Settings) -> LinkageSource | None:
    if not settings.operator_linkage_url:
        return None
    return LinkageSource(settings.operator_linkage_url, operator_http_client(settings))
