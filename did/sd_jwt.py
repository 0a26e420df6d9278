"""SD-JWT VC (IETF SD-JWT, SD-JWT VC): issue, present, verify, strictly.

Compact form: ``<issuer-signed JWT>~<disclosure>~...~<KB-JWT or nothing>``. A
disclosure is base64url(JSON ``[salt, name, value]``); the issuer-signed JWT
lists the SHA-256 digest of each in an ``_sd`` array (with decoy digests, so the
number of claims is hidden). A holder presents a subset of the disclosures and,
when the credential has ``cnf.jwk``, a key binding JWT (``typ: kb+jwt``) over
the verifier's ``nonce`` and ``aud`` and the ``sd_hash`` of what it presents.

The verifier here is strict where the reference library (``sd-jwt``) is lenient:
every disclosure must be referenced exactly once, ``typ`` and times are checked,
and the key binding may be ES256 (a wallet key) or RS256 (the My Number Card's
authentication key, signing a DigestInfo through ``sign_digest_info``).
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, RSAKey

from did.presentation import sha256_digest_info

SD_JWT_VC_TYP = "dc+sd-jwt"
KB_JWT_TYP = "kb+jwt"
SD_ALG = "sha-256"
ISSUER_ALGORITHM = "ES256"
KEY_BINDING_ALGORITHMS = ("ES256", "RS256")  # a wallet key; the card's RSA key
MAX_SD_JWT_BYTES = 64 * 1024
CLOCK_LEEWAY = timedelta(seconds=30)
# A key binding JWT older than this is refused even if its nonce is right.
KEY_BINDING_MAX_AGE = timedelta(minutes=5)
_RESERVED_NAMES = {"_sd", "...", "_sd_alg"}

SignDigestInfo = Callable[[bytes], bytes]


class _Registry(jws.JWSRegistry):
    max_header_length = 8192  # x5c chains and RSA JWKs
    max_payload_length = 64 * 1024


_ISSUER_REGISTRY = _Registry(algorithms=[ISSUER_ALGORITHM])
_KB_REGISTRY = _Registry(algorithms=list(KEY_BINDING_ALGORITHMS))


class SdJwtReason(StrEnum):
    """Why an SD-JWT VC presentation was accepted or refused (stable codes)."""

    VALID = "valid"
    MALFORMED = "credential_malformed"
    UNTRUSTED_ISSUER = "credential_untrusted_issuer"
    INVALID_PROOF = "credential_invalid_proof"  # the issuer's signature
    DISCLOSURE_INVALID = "disclosure_invalid"  # tampered, unlisted or repeated disclosure
    WRONG_VCT = "credential_wrong_vct"
    NOT_YET_VALID = "credential_not_yet_valid"
    EXPIRED = "credential_expired"
    KEY_BINDING_MISSING = "key_binding_missing"
    KEY_BINDING_INVALID = "key_binding_invalid"  # signature, typ, sd_hash or age
    NONCE_MISMATCH = "key_binding_nonce_mismatch"
    AUDIENCE_MISMATCH = "key_binding_audience_mismatch"
    REVOKED = "credential_revoked"
    SUPERSEDED = "credential_superseded"
    SUSPENDED = "credential_suspended"
    STATUS_UNAVAILABLE = "credential_status_unavailable"
    STATUS_INVALID = "credential_status_invalid"
    CLAIM_NOT_DISCLOSED = "claim_not_disclosed"


class SdJwtError(ValueError):
    def __init__(self, reason: SdJwtReason, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else str(reason))
        self.reason = reason
        self.detail = detail


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    if not isinstance(text, str) or "=" in text or any(c in text for c in "+/"):
        raise ValueError("not base64url without padding")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def signing_input(header: Mapping[str, Any], payload: Mapping[str, Any]) -> str:
    """A JWS signing input: base64url(JSON header) "." base64url(JSON payload)."""
    return ".".join(
        b64url(json.dumps(dict(part), separators=(",", ":")).encode()) for part in (header, payload)
    )


def digest(text: str) -> str:
    """The SD-JWT digest: base64url(SHA-256(ASCII text))."""
    return b64url(hashlib.sha256(text.encode("ascii")).digest())


@dataclass(frozen=True)
class Disclosure:
    encoded: str
    name: str | None  # None for an array element
    value: Any

    @classmethod
    def of(cls, name: str, value: Any) -> Disclosure:
        salt = b64url(secrets.token_bytes(16))
        text = json.dumps([salt, name, value], ensure_ascii=False, separators=(",", ":"))
        return cls(b64url(text.encode("utf-8")), name, value)

    @property
    def digest(self) -> str:
        return digest(self.encoded)


def _decoys(count_range: tuple[int, int] = (1, 4)) -> list[str]:
    low, high = count_range
    return [b64url(secrets.token_bytes(32)) for _ in range(low + secrets.randbelow(high - low))]


def conceal(claims: Mapping[str, Any], disclosures: list[Disclosure]) -> dict[str, Any]:
    """``claims`` as an object whose every key is selectively disclosable (the
    disclosures are appended to ``disclosures``); sorted digests with decoys."""
    digests = []
    for name, value in claims.items():
        disclosure = Disclosure.of(name, value)
        disclosures.append(disclosure)
        digests.append(disclosure.digest)
    return {"_sd": sorted(digests + _decoys())}


@dataclass(frozen=True)
class IssuerSigningKey:
    key: ECKey
    kid: str
    x5c: tuple[str, ...] = ()  # base64 DER, leaf first, when the key has a certificate


def issue(
    *,
    clear: Mapping[str, Any],
    disclosable: Mapping[str, Any],
    nested_disclosable: Mapping[str, Mapping[str, Any]] | None = None,
    signer: IssuerSigningKey,
) -> str:
    """An SD-JWT (no key binding yet, ending in ``~``): ``clear`` claims as they are,
    each of ``disclosable`` selectively disclosable, and each ``nested_disclosable``
    object in clear with its every key selectively disclosable."""
    disclosures: list[Disclosure] = []
    payload = dict(clear)
    payload["_sd_alg"] = SD_ALG
    for name, claims in (nested_disclosable or {}).items():
        payload[name] = conceal(claims, disclosures)
    top = conceal(disclosable, disclosures)
    payload["_sd"] = top["_sd"]
    header: dict[str, Any] = {"alg": ISSUER_ALGORITHM, "typ": SD_JWT_VC_TYP, "kid": signer.kid}
    if signer.x5c:
        header["x5c"] = list(signer.x5c)
    token = jws.serialize_compact(
        header, json.dumps(payload, ensure_ascii=False).encode(), signer.key
    )
    return "~".join([token, *(d.encoded for d in disclosures), ""])


# --- parsing ----------------------------------------------------------------


@dataclass(frozen=True)
class SdJwtParts:
    issuer_jwt: str
    disclosures: tuple[str, ...]
    key_binding_jwt: str | None

    @property
    def without_key_binding(self) -> str:
        return "~".join([self.issuer_jwt, *self.disclosures, ""])


def split(text: str) -> SdJwtParts:
    if not isinstance(text, str) or len(text.encode()) > MAX_SD_JWT_BYTES:
        raise SdJwtError(SdJwtReason.MALFORMED, "not an SD-JWT of a sensible size")
    parts = text.split("~")
    if len(parts) < 2 or parts[0].count(".") != 2:
        raise SdJwtError(SdJwtReason.MALFORMED, "not the compact SD-JWT form")
    key_binding = parts[-1] or None
    if key_binding is not None and key_binding.count(".") != 2:
        raise SdJwtError(SdJwtReason.MALFORMED, "the last part is not a key binding JWT")
    if any(not part for part in parts[1:-1]):
        raise SdJwtError(SdJwtReason.MALFORMED, "an empty disclosure")
    return SdJwtParts(parts[0], tuple(parts[1:-1]), key_binding)


def unverified_header(token: str) -> dict[str, Any]:
    try:
        header = json.loads(b64url_decode(token.split(".")[0]))
    except (ValueError, UnicodeDecodeError) as error:
        raise SdJwtError(SdJwtReason.MALFORMED, "unreadable JOSE header") from error
    if not isinstance(header, dict):
        raise SdJwtError(SdJwtReason.MALFORMED, "the JOSE header is not an object")
    return header


def unverified_payload(token: str) -> dict[str, Any]:
    try:
        payload = json.loads(b64url_decode(token.split(".")[1]))
    except (ValueError, UnicodeDecodeError, IndexError) as error:
        raise SdJwtError(SdJwtReason.MALFORMED, "unreadable JWT payload") from error
    if not isinstance(payload, dict):
        raise SdJwtError(SdJwtReason.MALFORMED, "the JWT payload is not an object")
    return payload


def _decode_disclosure(encoded: str) -> Disclosure:
    try:
        value = json.loads(b64url_decode(encoded))
    except (ValueError, UnicodeDecodeError) as error:
        raise SdJwtError(SdJwtReason.DISCLOSURE_INVALID, "a disclosure is not JSON") from error
    if not isinstance(value, list) or len(value) not in (2, 3) or not isinstance(value[0], str):
        raise SdJwtError(SdJwtReason.DISCLOSURE_INVALID, "a disclosure is not [salt, ...]")
    if len(value) == 2:
        return Disclosure(encoded, None, value[1])
    if not isinstance(value[1], str) or value[1] in _RESERVED_NAMES:
        raise SdJwtError(SdJwtReason.DISCLOSURE_INVALID, "a disclosure's claim name is reserved")
    return Disclosure(encoded, value[1], value[2])


def disclosed_claims(payload: Mapping[str, Any], disclosures: Sequence[str]) -> dict[str, Any]:
    """The payload with the presented disclosures put in and digests taken out. Every
    disclosure must be referenced exactly once (by the payload or another disclosure)."""
    if payload.get("_sd_alg", SD_ALG) != SD_ALG:
        raise SdJwtError(SdJwtReason.MALFORMED, "unsupported _sd_alg")
    by_digest: dict[str, Disclosure] = {}
    for encoded in disclosures:
        decoded = _decode_disclosure(encoded)
        if decoded.digest in by_digest:
            raise SdJwtError(SdJwtReason.DISCLOSURE_INVALID, "a disclosure is repeated")
        by_digest[decoded.digest] = decoded
    used: set[str] = set()

    def take(found: str) -> Disclosure | None:
        if found in used:
            raise SdJwtError(SdJwtReason.DISCLOSURE_INVALID, "a digest is referenced twice")
        used.add(found)
        return by_digest.get(found)

    def unpack(value: Any) -> Any:
        if isinstance(value, list):
            out = []
            for element in value:
                if isinstance(element, dict) and set(element) == {"..."}:
                    disclosure = take(str(element["..."]))
                    if disclosure is not None:
                        if disclosure.name is not None:
                            raise SdJwtError(SdJwtReason.DISCLOSURE_INVALID, "wrong kind")
                        out.append(unpack(disclosure.value))
                else:
                    out.append(unpack(element))
            return out
        if isinstance(value, dict):
            out_object = {k: unpack(v) for k, v in value.items() if k not in ("_sd", "_sd_alg")}
            digests = value.get("_sd", [])
            if not isinstance(digests, list):
                raise SdJwtError(SdJwtReason.MALFORMED, "_sd is not an array")
            for found in digests:
                disclosure = take(str(found))
                if disclosure is None:
                    continue  # not presented, or a decoy
                if disclosure.name is None or disclosure.name in out_object:
                    raise SdJwtError(SdJwtReason.DISCLOSURE_INVALID, "wrong kind or clash")
                out_object[disclosure.name] = unpack(disclosure.value)
            return out_object
        return value

    claims = unpack(payload)
    if set(by_digest) - used:
        raise SdJwtError(SdJwtReason.DISCLOSURE_INVALID, "a disclosure the credential never lists")
    return claims


# --- presenting (the holder) --------------------------------------------------


@dataclass(frozen=True)
class KeyBindingSigner:
    """How the holder signs with its key (key binding JWTs, and proofs of possession at
    issuance): a wallet's ES256 key, or the card."""

    algorithm: str
    ec_key: ECKey | None = None
    sign_digest_info: SignDigestInfo | None = None  # RS256 by the card (PKCS#1 v1.5)

    @classmethod
    def wallet(cls, key: ECKey) -> KeyBindingSigner:
        return cls("ES256", ec_key=key)

    @classmethod
    def card(cls, sign_digest_info: SignDigestInfo) -> KeyBindingSigner:
        return cls("RS256", sign_digest_info=sign_digest_info)

    def sign_compact(self, header: Mapping[str, Any], payload: Mapping[str, Any]) -> str:
        if self.ec_key is not None:
            return jws.serialize_compact(
                dict(header), json.dumps(dict(payload)).encode(), self.ec_key
            )
        assert self.sign_digest_info is not None
        text = signing_input(header, payload)
        signature = self.sign_digest_info(sha256_digest_info(text.encode("ascii")))
        return f"{text}.{b64url(signature)}"


def select(sd_jwt: str, disclose: Callable[[list[str], Any], bool]) -> str:
    """The SD-JWT with only the disclosures ``disclose(path, value)`` keeps (and the
    ones holding those, so a nested claim brings its parent)."""
    parts = split(sd_jwt)
    payload = unverified_payload(parts.issuer_jwt)
    by_digest = {digest(encoded): _decode_disclosure(encoded) for encoded in parts.disclosures}
    kept: list[str] = []

    def walk(value: Any, path: list[str]) -> None:
        if isinstance(value, dict):
            for found in value.get("_sd", []):
                disclosure = by_digest.get(found)
                if disclosure is not None and disclosure.name is not None:
                    claim_path = [*path, disclosure.name]
                    nested_before = len(kept)
                    walk(disclosure.value, claim_path)
                    if disclose(claim_path, disclosure.value) or len(kept) > nested_before:
                        kept.insert(nested_before, disclosure.encoded)
            for name, child in value.items():
                if name not in ("_sd", "_sd_alg"):
                    walk(child, [*path, name])

    walk(payload, [])
    return "~".join([parts.issuer_jwt, *kept, ""])


def key_binding_claims(
    presented: str, *, audience: str, nonce: str, issued_at: datetime
) -> dict[str, Any]:
    return {
        "iat": int(issued_at.timestamp()),
        "aud": audience,
        "nonce": nonce,
        "sd_hash": digest(presented),
    }


def card_key_binding_signing_input(
    presented: str, *, audience: str, nonce: str, issued_at: datetime
) -> str:
    """What the card signs (RS256) for a key binding JWT over ``presented``: a signer
    that holds the card (a kiosk) builds it itself, so it knows what it signs."""
    header = {"alg": "RS256", "typ": KB_JWT_TYP}
    payload = key_binding_claims(presented, audience=audience, nonce=nonce, issued_at=issued_at)
    return signing_input(header, payload)


def key_binding_jwt(
    presented: str,
    *,
    signer: KeyBindingSigner,
    audience: str,
    nonce: str,
    issued_at: datetime,
) -> str:
    """A key binding JWT over ``presented`` (an SD-JWT ending in ``~``)."""
    header = {"alg": signer.algorithm, "typ": KB_JWT_TYP}
    payload = key_binding_claims(presented, audience=audience, nonce=nonce, issued_at=issued_at)
    return signer.sign_compact(header, payload)


def disclosed_claim_paths(presented: str) -> list[str]:
    """The claims a presentation discloses, as dotted paths (names only, no values)."""
    parts = split(presented)
    payload = unverified_payload(parts.issuer_jwt)
    claims = disclosed_claims(payload, parts.disclosures)
    clear = set(_leaf_paths(disclosed_claims(payload, ())))  # the issuer-signed part alone
    return sorted(path for path in _leaf_paths(claims) if path not in clear)


def _leaf_paths(claims: Mapping[str, Any], prefix: str = "") -> list[str]:
    paths: list[str] = []
    for name, value in claims.items():
        if isinstance(value, dict) and value:
            paths.extend(_leaf_paths(value, f"{prefix}{name}."))
        else:
            paths.append(f"{prefix}{name}")
    return paths


def present(
    sd_jwt: str,
    *,
    disclose: Callable[[list[str], Any], bool],
    signer: KeyBindingSigner | None,
    audience: str,
    nonce: str,
    issued_at: datetime,
) -> str:
    presented = select(sd_jwt, disclose)
    if signer is None:
        return presented
    return presented + key_binding_jwt(
        presented, signer=signer, audience=audience, nonce=nonce, issued_at=issued_at
    )


# --- verifying ----------------------------------------------------------------


IssuerKeyLookup = Callable[[str, Mapping[str, Any]], "ECKey | None"]


@dataclass(frozen=True)
class KeyBindingCheck:
    audience: str
    nonce: str
    required: bool = True


@dataclass(frozen=True)
class SdJwtVerification:
    reason: SdJwtReason
    claims: dict[str, Any] = field(default_factory=dict)  # issuer-signed + disclosed
    header: dict[str, Any] = field(default_factory=dict)
    holder_key: dict[str, Any] | None = None  # cnf.jwk
    key_bound: bool = False  # a key binding JWT was checked
    detail: str = ""

    @property
    def valid(self) -> bool:
        return self.reason is SdJwtReason.VALID

    @property
    def holder_binding(self) -> str | None:
        """ "card" (the card's RSA authentication key), "wallet" (an EC key) or None."""
        if not self.holder_key:
            return None
        return "card" if self.holder_key.get("kty") == "RSA" else "wallet"


def verify(
    presentation: str,
    *,
    issuer_key: IssuerKeyLookup,
    at: datetime,
    vct: str | None = None,
    key_binding: KeyBindingCheck | None = None,
) -> SdJwtVerification:
    """Check an SD-JWT VC presentation: issuer signature, disclosures, times, ``vct``,
    then the key binding JWT. Status is the caller's (it knows how to fetch lists)."""
    try:
        return _verify(presentation, issuer_key=issuer_key, at=at, vct=vct, key_binding=key_binding)
    except SdJwtError as error:
        return SdJwtVerification(error.reason, detail=error.detail)


def _verify(
    presentation: str,
    *,
    issuer_key: IssuerKeyLookup,
    at: datetime,
    vct: str | None,
    key_binding: KeyBindingCheck | None,
) -> SdJwtVerification:
    parts = split(presentation)
    header = unverified_header(parts.issuer_jwt)
    if header.get("typ") != SD_JWT_VC_TYP or header.get("alg") != ISSUER_ALGORITHM:
        raise SdJwtError(SdJwtReason.MALFORMED, "not a dc+sd-jwt signed with ES256")
    unverified = unverified_payload(parts.issuer_jwt)
    key = issuer_key(str(unverified.get("iss", "")), header)
    if key is None:
        raise SdJwtError(SdJwtReason.UNTRUSTED_ISSUER, "no trusted key for this issuer")
    try:
        jws.deserialize_compact(parts.issuer_jwt, key, registry=_ISSUER_REGISTRY)
    except (JoseError, ValueError) as error:
        raise SdJwtError(SdJwtReason.INVALID_PROOF, "the issuer's signature") from error
    claims = disclosed_claims(unverified, parts.disclosures)
    if vct is not None and claims.get("vct") != vct:
        raise SdJwtError(SdJwtReason.WRONG_VCT, f"vct is not {vct}")
    _check_times(claims, at)
    holder_key = claims.get("cnf", {}).get("jwk") if isinstance(claims.get("cnf"), dict) else None
    key_bound = False
    if parts.key_binding_jwt is not None or (key_binding is not None and key_binding.required):
        if key_binding is None:
            raise SdJwtError(SdJwtReason.KEY_BINDING_INVALID, "no audience and nonce to check")
        if parts.key_binding_jwt is None:
            raise SdJwtError(SdJwtReason.KEY_BINDING_MISSING)
        if not isinstance(holder_key, dict):
            raise SdJwtError(SdJwtReason.KEY_BINDING_INVALID, "the credential has no cnf.jwk")
        _check_key_binding(parts, holder_key, key_binding, at)
        key_bound = True
    return SdJwtVerification(SdJwtReason.VALID, claims, header, holder_key, key_bound)


def _number(claims: Mapping[str, Any], name: str) -> float | None:
    value = claims.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise SdJwtError(SdJwtReason.MALFORMED, f"{name} is not a number")
    return float(value)


def _check_times(claims: Mapping[str, Any], at: datetime) -> None:
    now = at.timestamp()
    leeway = CLOCK_LEEWAY.total_seconds()
    not_before = _number(claims, "nbf")
    issued = _number(claims, "iat")
    expires = _number(claims, "exp")
    if (not_before is not None and now + leeway < not_before) or (
        issued is not None and now + leeway < issued
    ):
        raise SdJwtError(SdJwtReason.NOT_YET_VALID)
    if expires is not None and now - leeway >= expires:
        raise SdJwtError(SdJwtReason.EXPIRED)


def _holder_public_key(jwk: Mapping[str, Any]) -> ECKey | RSAKey:
    try:
        if jwk.get("kty") == "EC" and jwk.get("crv") == "P-256":
            return ECKey.import_key(dict(jwk))
        if jwk.get("kty") == "RSA":
            return RSAKey.import_key(dict(jwk))
    except (JoseError, ValueError) as error:
        raise SdJwtError(SdJwtReason.KEY_BINDING_INVALID, "cnf.jwk is not a key") from error
    raise SdJwtError(SdJwtReason.KEY_BINDING_INVALID, "cnf.jwk is neither P-256 nor RSA")


def _check_key_binding(
    parts: SdJwtParts, holder_jwk: Mapping[str, Any], check: KeyBindingCheck, at: datetime
) -> None:
    assert parts.key_binding_jwt is not None
    header = unverified_header(parts.key_binding_jwt)
    holder = _holder_public_key(holder_jwk)
    expected_alg = "RS256" if isinstance(holder, RSAKey) else "ES256"
    if header.get("typ") != KB_JWT_TYP or header.get("alg") != expected_alg:
        raise SdJwtError(SdJwtReason.KEY_BINDING_INVALID, "typ or alg of the key binding JWT")
    try:
        jws.deserialize_compact(parts.key_binding_jwt, holder, registry=_KB_REGISTRY)
    except (JoseError, ValueError) as error:
        raise SdJwtError(SdJwtReason.KEY_BINDING_INVALID, "not signed by cnf.jwk") from error
    payload = unverified_payload(parts.key_binding_jwt)
    if payload.get("sd_hash") != digest(parts.without_key_binding):
        raise SdJwtError(SdJwtReason.KEY_BINDING_INVALID, "sd_hash is not of this presentation")
    if payload.get("nonce") != check.nonce:
        raise SdJwtError(SdJwtReason.NONCE_MISMATCH)
    if payload.get("aud") != check.audience:
        raise SdJwtError(SdJwtReason.AUDIENCE_MISMATCH)
    issued = _number(payload, "iat")
    if issued is None:
        raise SdJwtError(SdJwtReason.KEY_BINDING_INVALID, "no iat")
    age = at.timestamp() - issued
    if age > KEY_BINDING_MAX_AGE.total_seconds() or age < -CLOCK_LEEWAY.total_seconds():
        raise SdJwtError(SdJwtReason.KEY_BINDING_INVALID, "iat is too old or in the future")
