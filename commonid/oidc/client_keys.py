"""A client's public keys for private_key_jwt: registered with it, or fetched from its
JWKS URL (kept for a few minutes, fetched again when a key id is not in it)."""

from __future__ import annotations

import threading
import time

import httpx
from authlib.oauth2.rfc6749 import InvalidClientError
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

CACHE_SECONDS = 300.0
MAX_JWKS_BYTES = 64 * 1024
FETCH_TIMEOUT = 5.0
# An unknown key id fetches the set again (the client rotated), at most this often:
# made-up key ids must not turn the service into a load on the client's server.
MIN_REFETCH_SECONDS = 1.0


class JwksCache:
    def __init__(self, transport: httpx.BaseTransport | None = None) -> None:
        self._sets: dict[str, tuple[float, KeySet]] = {}
        self._lock = threading.Lock()
        self._transport = transport

    def keys(self, uri: str, *, kid: str | None = None) -> KeySet:
        now = time.monotonic()
        with self._lock:
            cached = self._sets.get(uri)
        if cached is not None:
            fetched_at, keys = cached
            fresh = now - fetched_at < CACHE_SECONDS
            known = kid is None or any(key.kid == kid for key in keys.keys)
            if fresh and (known or now - fetched_at < MIN_REFETCH_SECONDS):
                return keys
        keys = self._fetch(uri)
        with self._lock:
            self._sets[uri] = (now, keys)
        return keys

    def _fetch(self, uri: str) -> KeySet:
        try:
            with httpx.Client(
                timeout=FETCH_TIMEOUT, follow_redirects=False, transport=self._transport
            ) as client:
                response = client.get(uri, headers={"Accept": "application/json"})
        except httpx.HTTPError:
            raise InvalidClientError(
                description="the client's JWKS URL cannot be reached"
            ) from None
        if response.status_code != 200 or len(response.content) > MAX_JWKS_BYTES:
            raise InvalidClientError(description="the client's JWKS URL gave no key set")
        try:
            document = response.json()
            if any("d" in key for key in document.get("keys", [])):
                raise ValueError("private key published")
            return KeySet.import_key_set(document)
        except (ValueError, AttributeError, TypeError, JoseError):
            raise InvalidClientError(description="the client's JWKS URL gave no key set") from None
