"""Card-signed verifiable presentations: a compact JWS (RS256) made by the card.

The card never sees JSON: the JWS signing input is hashed with SHA-256, wrapped
in a DigestInfo and handed to ``sign_digest_info`` (the card's authentication
key after the person entered the PIN, or a software key in tests). RSASSA-PKCS1
v1.5 over that DigestInfo is exactly RS256, so any JOSE library verifies it
with the public key from the subject's did:key document: offline, no service.

Payload (JWT claims, VC data model 1.1 section 6.3.1): ``iss`` and ``sub`` are
the subject DID, ``aud`` and ``nonce`` come from the verifier, ``iat``/``exp``
bound its life, ``vp`` carries the credential if one is presented.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol

from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import RSAKey

from did._didkit import DIDKitError
from did.keys import (
    DIDKeyError,
    did_key_verification_method,
    public_jwk_from_did_document,
    resolve_did_document,
)
from did.status import VC_V1_CONTEXT

# DER prefix of DigestInfo { AlgorithmIdentifier sha256 NULL, OCTET STRING(32) } (RFC 8017 9.2).
SHA256_DIGEST_INFO_PREFIX = bytes.fromhex("3031300d060960864801650304020105000420")
DEFAULT_LIFETIME = timedelta(minutes=5)
MAX_LIFETIME = timedelta(minutes=10)
# A presentation carries one credential (a few kB): anything this size is not one, and
# is refused before any decoding or key resolution.
MAX_PRESENTATION_BYTES = 64 * 1024
CLOCK_LEEWAY = timedelta(seconds=30)

SignDigestInfo = Callable[[bytes], bytes]


class _PresentationJWSRegistry(jws.JWSRegistry):
    # An RSA did:key is ~400 characters and the kid repeats it: joserfc's default
    # 512-byte header limit is for ordinary kids. Payloads carry a credential.
    max_header_length = 4096
    max_payload_length = 256 * 1024


_JWS_REGISTRY = _PresentationJWSRegistry(algorithms=["RS256"])


def sha256_digest_info(data: bytes) -> bytes:
    """DigestInfo(SHA-256(data)): what the card signs with PKCS#1 v1.5."""
    return SHA256_DIGEST_INFO_PREFIX + hashlib.sha256(data).digest()


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64url_decode(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def _json_segment(value: Mapping[str, Any]) -> str:
    return _b64url(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))


def create_presentation(
    *,
    subject_did: str,
    audience: str,
    nonce: str,
    sign_digest_info: SignDigestInfo,
    issued_at: datetime,
    lifetime: timedelta = DEFAULT_LIFETIME,
    credential: str | Mapping[str, Any] | None = None,
) -> str:
    """A compact JWS presentation signed through ``sign_digest_info``."""
    if issued_at.tzinfo is None:
        raise ValueError("issued_at must be timezone-aware")
    header = {"alg": "RS256", "typ": "JWT", "kid": did_key_verification_method(subject_did)}
    presentation: dict[str, Any] = {
        "@context": [VC_V1_CONTEXT],
        "type": ["VerifiablePresentation"],
        "holder": subject_did,
    }
    if credential is not None:
        presentation["verifiableCredential"] = [_embeddable(credential)]
    issued = int(issued_at.timestamp())
    payload = {
        "iss": subject_did,
        "sub": subject_did,
        "aud": audience,
        "nonce": nonce,
        "iat": issued,
        "nbf": issued,
        "exp": issued + int(lifetime.total_seconds()),
        "jti": f"urn:uuid:{uuid.uuid4()}",
        "vp": presentation,
    }
    signing_input = f"{_json_segment(header)}.{_json_segment(payload)}"
    signature = sign_digest_info(sha256_digest_info(signing_input.encode("ascii")))
    return f"{signing_input}.{_b64url(signature)}"


# --- verification -----------------------------------------------------------


class PresentationReason(StrEnum):
    """Why a presentation was accepted or rejected (stable, machine-readable)."""

    VALID = "valid"
    MALFORMED = "presentation_malformed"
    UNSUPPORTED_ALGORITHM = "presentation_unsupported_algorithm"
    KEY_MISMATCH = "presentation_key_mismatch"
    INVALID_SIGNATURE = "presentation_invalid_signature"
    WRONG_AUDIENCE = "presentation_wrong_audience"
    WRONG_NONCE = "presentation_wrong_nonce"
    NOT_YET_VALID = "presentation_not_yet_valid"
    EXPIRED = "presentation_expired"
    LIFETIME_TOO_LONG = "presentation_lifetime_too_long"
    REPLAYED = "presentation_replayed"
    TOO_LARGE = "presentation_too_large"


class NonceStore(Protocol):
    """The verifier's memory of nonces already used (shared by all its instances)."""

    def consume(self, nonce: str, *, expires_at: datetime) -> bool:
        """Record ``nonce``; False if it was recorded before (a replay)."""
        ...


class InMemoryNonceStore:
    """A process-local NonceStore; forgets nonces once they could no longer verify."""

    def __init__(self, clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self._clock = clock
        self._seen: dict[str, datetime] = {}
        self._lock = threading.Lock()

    def consume(self, nonce: str, *, expires_at: datetime) -> bool:
        with self._lock:
            now = self._clock()
            for stale in [n for n, until in self._seen.items() if until < now]:
                del self._seen[stale]
            if nonce in self._seen:
                return False
            self._seen[nonce] = expires_at
            return True


@dataclass(frozen=True)
class PresentationVerification:
    reason: PresentationReason
    subject_did: str | None = None
    credential: str | dict[str, Any] | None = None  # the presented credential, unverified
    detail: str = ""

    @property
    def valid(self) -> bool:
        return self.reason is PresentationReason.VALID


def verify_presentation(
    token: str,
    *,
    audience: str,
    nonce: str,
    at: datetime,
    nonce_store: NonceStore,
    max_lifetime: timedelta = MAX_LIFETIME,
    leeway: timedelta = CLOCK_LEEWAY,
) -> PresentationVerification:
    """Check a card-signed presentation: key, signature, audience, nonce, time, replay.

    A presented credential is returned, not verified: pass it to
    ``did.credentials.verify_identity_credential`` and check that its subject is
    this presentation's subject.
    """
    if len(token) > MAX_PRESENTATION_BYTES:
        return PresentationVerification(
            PresentationReason.TOO_LARGE, detail=f"over {MAX_PRESENTATION_BYTES} bytes"
        )
    try:
        header = json.loads(_b64url_decode(token.split(".")[0]))
        if header.get("alg") != "RS256":  # the card signs RS256; never "none" or HMAC
            return PresentationVerification(PresentationReason.UNSUPPORTED_ALGORITHM)
        kid = str(header["kid"])
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        return PresentationVerification(PresentationReason.MALFORMED, detail=str(error))
    subject_did = kid.partition("#")[0]
    try:
        if kid != did_key_verification_method(subject_did):
            raise DIDKeyError("kid is not the did:key's verification method")
        document = resolve_did_document(subject_did)
        public_key = RSAKey.import_key(public_jwk_from_did_document(document, kid))
    except (DIDKeyError, DIDKitError, ValueError, JoseError) as error:
        # DIDKitError: a kid whose did:key does not decode (no signature needed to get here).
        return PresentationVerification(PresentationReason.KEY_MISMATCH, detail=str(error))
    try:
        verified = jws.deserialize_compact(
            token, public_key, algorithms=["RS256"], registry=_JWS_REGISTRY
        )
        claims = json.loads(verified.payload)
    except JoseError as error:
        return PresentationVerification(PresentationReason.INVALID_SIGNATURE, detail=str(error))
    except ValueError as error:
        return PresentationVerification(PresentationReason.MALFORMED, detail=str(error))
    return _check_claims(
        claims, subject_did, audience, nonce, at, nonce_store, max_lifetime, leeway
    )


def _check_claims(
    claims: dict[str, Any],
    subject_did: str,
    audience: str,
    nonce: str,
    at: datetime,
    nonce_store: NonceStore,
    max_lifetime: timedelta,
    leeway: timedelta,
) -> PresentationVerification:
    def rejected(reason: PresentationReason, detail: str = "") -> PresentationVerification:
        return PresentationVerification(reason, subject_did, detail=detail)

    try:
        if claims["iss"] != subject_did or claims["sub"] != subject_did:
            return rejected(PresentationReason.KEY_MISMATCH, "iss/sub is not the signing DID")
        audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
        issued_at = datetime.fromtimestamp(int(claims["iat"]), UTC)
        expires_at = datetime.fromtimestamp(int(claims["exp"]), UTC)
        presented_nonce = claims["nonce"]
        vp = claims["vp"]
        if not isinstance(vp, dict) or "VerifiablePresentation" not in vp.get("type", ()):
            raise ValueError("vp is not a VerifiablePresentation object")
    except (KeyError, TypeError, ValueError, OverflowError, OSError) as error:
        # OverflowError/OSError: an iat or exp beyond what a datetime holds (1e18, 1e30).
        return rejected(PresentationReason.MALFORMED, str(error))
    if audience not in audiences:
        return rejected(PresentationReason.WRONG_AUDIENCE)
    if presented_nonce != nonce:
        return rejected(PresentationReason.WRONG_NONCE)
    if at + leeway < issued_at:
        return rejected(PresentationReason.NOT_YET_VALID)
    if at - leeway >= expires_at:
        return rejected(PresentationReason.EXPIRED)
    if expires_at - issued_at > max_lifetime:
        return rejected(PresentationReason.LIFETIME_TOO_LONG)
    # Consumed last: a presentation rejected for another reason does not burn the nonce.
    if not nonce_store.consume(nonce, expires_at=expires_at + leeway):
        return rejected(PresentationReason.REPLAYED)
    credentials = vp.get("verifiableCredential")
    credential = credentials[0] if isinstance(credentials, list) and credentials else None
    return PresentationVerification(PresentationReason.VALID, subject_did, credential)


def _embeddable(credential: str | Mapping[str, Any]) -> str | dict[str, Any]:
    """A credential as a presentation embeds it: a VC-JWT as its compact string, a JSON-LD
    credential as the object (its JSON text embedded as a string is not a credential)."""
    if isinstance(credential, Mapping):
        return dict(credential)
    text = credential.strip()
    if text.startswith("{"):
        parsed = json.loads(text)
        if not isinstance(parsed, dict):
            raise ValueError("a JSON credential must be an object")
        return parsed
    return text
