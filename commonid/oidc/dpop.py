"""DPoP proofs (RFC 9449): access tokens bound to a key the client holds.

Authlib has no DPoP (client or server), so the checks are here, on joserfc:
the proof is a JWT of type ``dpop+jwt`` signed with an asymmetric key carried
in its header; it names the HTTP method and URL it was made for, when it was
made, a unique ``jti``, and at a resource the hash of the access token
(``ath``). A token issued with a proof is bound to that key's thumbprint
(``cnf.jkt`` in the token's record); presenting it needs a fresh proof from the
same key, so a stolen token alone is useless.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
from collections.abc import Callable
from typing import Any

from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import JWKRegistry

SIGNING_ALGORITHMS = ("ES256", "PS256", "RS256", "EdDSA")
# A proof is accepted this long after (and this little before) its iat.
MAX_AGE = dt.timedelta(seconds=60)
CLOCK_SKEW = dt.timedelta(seconds=10)
MAX_PROOF_LENGTH = 8000


class InvalidProof(ValueError):
    """The DPoP proof is missing a part, malformed, stale, replayed or for another request."""


def thumbprint(jwk: dict[str, Any]) -> str:
    """The JWK SHA-256 thumbprint (RFC 7638), base64url: the key a token is bound to."""
    return JWKRegistry.import_key(jwk).thumbprint()


def access_token_hash(access_token: str) -> str:
    digest = hashlib.sha256(access_token.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def verify_proof(
    proof: str,
    *,
    method: str,
    url: str,
    now: dt.datetime,
    first_use: Callable[[str, dt.datetime], bool],
    access_token: str | None = None,
) -> str:
    """Check ``proof`` for a ``method`` request to ``url``; returns the key's thumbprint.

    ``first_use(key, expires)`` records the proof's jti and says whether it is new.
    """
    if len(proof) > MAX_PROOF_LENGTH or proof.count(".") != 2:
        raise InvalidProof("the DPoP proof is not a compact JWS")
    try:
        segment = proof.split(".")[0]
        header = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    except (ValueError, UnicodeDecodeError):  # binascii.Error is a ValueError
        raise InvalidProof("the DPoP proof's header is not base64url JSON") from None
    if not isinstance(header, dict) or header.get("typ") != "dpop+jwt":
        raise InvalidProof("the DPoP proof's typ must be dpop+jwt")
    if header.get("alg") not in SIGNING_ALGORITHMS:
        raise InvalidProof("the DPoP proof must be signed with an asymmetric algorithm")
    jwk = header.get("jwk")
    if not isinstance(jwk, dict) or "d" in jwk or "k" in jwk:
        raise InvalidProof("the DPoP proof must carry a public key in its jwk header")
    try:
        key = JWKRegistry.import_key(jwk)
        verified = jws.deserialize_compact(proof, key, algorithms=[header["alg"]])
        claims = _claims(verified.payload)
    except (JoseError, ValueError, TypeError, KeyError) as error:
        raise InvalidProof(f"the DPoP proof does not verify: {error}") from None
    if claims.get("htm") != method:
        raise InvalidProof("the DPoP proof is for another HTTP method")
    if claims.get("htu") != _without_query(url):
        raise InvalidProof("the DPoP proof is for another URL")
    issued = claims.get("iat")
    if not isinstance(issued, int):
        raise InvalidProof("the DPoP proof has no iat")
    made = dt.datetime.fromtimestamp(issued, dt.UTC)
    if made > now + CLOCK_SKEW or now - made > MAX_AGE:
        raise InvalidProof("the DPoP proof is too old or from the future")
    jti = claims.get("jti")
    if not isinstance(jti, str) or not 8 <= len(jti) <= 200:
        raise InvalidProof("the DPoP proof needs a unique jti")
    if access_token is not None and claims.get("ath") != access_token_hash(access_token):
        raise InvalidProof("the DPoP proof is not for this access token (ath)")
    bound_to = key.thumbprint()
    if not first_use(f"{bound_to}:{jti}"[:200], made + MAX_AGE + CLOCK_SKEW):
        raise InvalidProof("the DPoP proof was used before")
    return bound_to


def _claims(payload: bytes) -> dict[str, Any]:
    claims = json.loads(payload)
    if not isinstance(claims, dict):
        raise ValueError("the DPoP proof's payload is not an object")
    return claims


def _without_query(url: str) -> str:
    return url.split("?", 1)[0].split("#", 1)[0]
