"""A statement, signed by the service, that a person's new did:key follows old ones.

A renewed My Number Card has new keys, so a new did:key. When the service joins
it to the person's record (on evidence: the operator's linkage record, or a
fresh verification of the same basic attributes), it signs a JWT naming the
new DID and the earlier ones, so that anyone holding the service's DID
document (its did:web document, or the issuer did:key itself) can check the
link without asking the service. Algorithm ``Ed25519`` (RFC 9864), the issuer
key's.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import OKPKey

from did.keys import (
    DIDKeyError,
    IssuerKey,
    did_key_from_ed25519_jwk,
    public_jwk_from_did_document,
)

LINK_TYPE = "commonid-did-link+jwt"
ALGORITHM = "Ed25519"


class DidLinkError(ValueError):
    """A link statement that does not verify against the given DID document."""


def sign_did_link(
    key: IssuerKey,
    *,
    current: str,
    previous: Sequence[str],
    evidence: str,
    at: datetime,
) -> str:
    header = {"alg": ALGORITHM, "typ": LINK_TYPE, "kid": key.verification_method}
    claims = {
        "iss": key.did,
        "sub": current,
        "previous_dids": list(previous),
        "evidence": evidence,
        "iat": int(at.timestamp()),
    }
    private = OKPKey.import_key(json.loads(key.private_jwk))
    return jwt.encode(header, claims, private, algorithms=[ALGORITHM])


def verify_did_link(statement: str, did_document: Mapping[str, Any]) -> dict[str, Any]:
    """The statement's claims, if a verification method of ``did_document`` signed it."""
    try:
        header = _header(statement)
        if header.get("typ") != LINK_TYPE or header.get("alg") != ALGORITHM:
            raise DidLinkError("not a Common-ID DID link statement")
        jwk = _public_jwk(did_document, str(header.get("kid")))
        token = jwt.decode(statement, OKPKey.import_key(jwk), algorithms=[ALGORITHM])
    except (JoseError, DIDKeyError, ValueError) as error:
        if isinstance(error, DidLinkError):
            raise
        raise DidLinkError(f"the link statement does not verify: {error}") from None
    claims = dict(token.claims)
    if not isinstance(claims.get("sub"), str) or not isinstance(claims.get("previous_dids"), list):
        raise DidLinkError("the link statement names no DIDs")
    return claims


def _public_jwk(did_document: Mapping[str, Any], kid: str) -> dict[str, Any]:
    """The key that signed: the method ``kid`` names in a did:key document, or, in the
    service's did:web document, the assertion key whose did:key ``kid`` names (the
    statement is signed as the issuer did:key, which the did:web document lists)."""
    signer = kid.split("#", 1)[0]
    if did_document.get("id") == signer:
        return public_jwk_from_did_document(dict(did_document), kid)
    assertion = set(did_document.get("assertionMethod", []))
    for method in did_document.get("verificationMethod", []):
        jwk = method.get("publicKeyJwk")
        if method.get("id") in assertion and jwk and did_key_from_ed25519_jwk(jwk) == signer:
            return dict(jwk)
    raise DIDKeyError(f"{kid} is not a key of {did_document.get('id')}")


def _header(statement: str) -> dict[str, Any]:
    encoded = statement.split(".", 1)[0]
    decoded: dict[str, Any] = json.loads(
        base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
    )
    return decoded
