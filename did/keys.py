"""DIDs: the subject's did:key from the card's RSA key, and the service's issuer keys.

The subject DID is did:key of the JPKI authentication public key: multicodec
``rsa-pub`` (0x1205, varint-prefixed) over the PKCS#1 DER RSAPublicKey, encoded
base58btc with multibase prefix ``z`` (W3C CCG did:key, RSA section). Anyone
holding the auth certificate derives it; only the card can sign for it.

The issuer identity is an Ed25519 key ring kept in one JSON key file: the current
key signs, retired keys stay listed so credentials they signed still verify.
"""

from __future__ import annotations

import base64
import functools
import json
import logging
import os
import tempfile
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    PublicFormat,
    load_der_public_key,
)

from did import _didkit

_log = logging.getLogger(__name__)

RSA_PUB_MULTICODEC = 0x1205
ED25519_PUB_MULTICODEC = 0xED
_BASE58_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
KEYRING_FORMAT = "commonid-issuer-keyring/v1"


class DIDKeyError(ValueError):
    """A string that is not a did:key of the expected kind."""


# --- multibase / multicodec -------------------------------------------------


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _read_varint(data: bytes) -> tuple[int, int]:
    value = shift = 0
    for position, byte in enumerate(data[:9]):
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, position + 1
        shift += 7
    raise DIDKeyError("bad multicodec varint")


_BASE58_CHUNK = 58**10


def base58btc_encode(data: bytes) -> str:
    number = int.from_bytes(data, "big")
    digits: list[int] = []  # least significant first
    while number:
        # Ten digits per division of the big number: an RSA key is ~370 digits.
        number, chunk = divmod(number, _BASE58_CHUNK)
        for _ in range(10):
            chunk, remainder = divmod(chunk, 58)
            digits.append(remainder)
    while digits and digits[-1] == 0:  # the last chunk's padding, above the top digit
        digits.pop()
    leading_zeros = len(data) - len(data.lstrip(b"\0"))
    return "1" * leading_zeros + "".join(_BASE58_ALPHABET[digit] for digit in reversed(digits))


def base58btc_decode(text: str) -> bytes:
    number = 0
    for char in text:
        index = _BASE58_ALPHABET.find(char)
        if index < 0:
            raise DIDKeyError("not base58btc")
        number = number * 58 + index
    body = number.to_bytes((number.bit_length() + 7) // 8, "big")
    leading_ones = len(text) - len(text.lstrip("1"))
    return b"\0" * leading_ones + body


# --- subject DIDs (RSA did:key) ---------------------------------------------


def did_key_from_public_key(public_key: rsa.RSAPublicKey) -> str:
    """did:key of an RSA public key (the card's authentication key)."""
    if not isinstance(public_key, rsa.RSAPublicKey):
        raise DIDKeyError("the subject DID is defined for RSA keys only")
    pkcs1 = public_key.public_bytes(Encoding.DER, PublicFormat.PKCS1)
    return "did:key:z" + base58btc_encode(_varint(RSA_PUB_MULTICODEC) + pkcs1)


@functools.lru_cache(maxsize=4096)
def did_key_from_certificate(certificate_der: bytes) -> str:
    """did:key of the public key in a (JPKI authentication) certificate (remembered for
    the cards seen lately: every returning card's response derives it again)."""
    certificate = x509.load_der_x509_certificate(certificate_der)
    public_key = certificate.public_key()
    if not isinstance(public_key, rsa.RSAPublicKey):
        raise DIDKeyError("certificate key is not RSA")
    return did_key_from_public_key(public_key)


def rsa_public_key_from_did_key(did: str) -> rsa.RSAPublicKey:
    """The RSA key a did:key encodes (the inverse of :func:`did_key_from_public_key`)."""
    prefix = "did:key:z"
    if not did.startswith(prefix) or "#" in did:
        raise DIDKeyError("not a did:key with base58btc multibase")
    raw = base58btc_decode(did[len(prefix) :])
    codec, length = _read_varint(raw)
    if codec != RSA_PUB_MULTICODEC:
        raise DIDKeyError(f"did:key multicodec 0x{codec:x} is not rsa-pub")
    # PKCS#1 RSAPublicKey DER; cryptography's DER loader takes SubjectPublicKeyInfo,
    # so wrap it with the rsaEncryption AlgorithmIdentifier.
    pkcs1 = raw[length:]
    algorithm = bytes.fromhex("300d06092a864886f70d0101010500")
    bit_string = b"\x03" + _der_length(len(pkcs1) + 1) + b"\x00" + pkcs1
    spki_body = algorithm + bit_string
    spki = b"\x30" + _der_length(len(spki_body)) + spki_body
    try:
        key = load_der_public_key(spki)
    except ValueError as error:
        raise DIDKeyError("did:key does not hold a valid RSA public key") from error
    if not isinstance(key, rsa.RSAPublicKey):  # pragma: no cover - guarded by the codec
        raise DIDKeyError("not an RSA key")
    return key


def _der_length(length: int) -> bytes:
    if length < 0x80:
        return bytes([length])
    encoded = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(encoded)]) + encoded


def did_key_verification_method(did: str) -> str:
    """The id of a did:key's single verification method (``did#fingerprint``)."""
    if not did.startswith("did:key:z") or "#" in did:
        raise DIDKeyError("not a did:key")
    return f"{did}#{did.removeprefix('did:key:')}"


def resolve_did_document(did: str) -> dict[str, Any]:
    """The DID document of a did:key, as didkit resolves it (locally, no network)."""
    return _didkit.resolve_did(did)


def public_jwk_from_did_document(document: dict[str, Any], method_id: str) -> dict[str, Any]:
    """The ``publicKeyJwk`` of verification method ``method_id`` in a DID document."""
    for method in document.get("verificationMethod", []):
        if method.get("id") == method_id and "publicKeyJwk" in method:
            return dict(method["publicKeyJwk"])
    raise DIDKeyError(f"{method_id} is not a verification method of {document.get('id')}")


# --- issuers a verifier trusts ----------------------------------------------


class IssuerTrust(Protocol):
    """Which issuer DIDs a verifier accepts (the key ring, or a provider's pinned set)."""

    def trusts(self, did: str) -> bool: ...


def did_key_from_ed25519_jwk(jwk: Mapping[str, Any]) -> str:
    """did:key of an Ed25519 public key given as an OKP JWK."""
    if jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519":
        raise DIDKeyError("not an Ed25519 JWK")
    raw = base64.urlsafe_b64decode(str(jwk["x"]) + "=" * (-len(str(jwk["x"])) % 4))
    if len(raw) != 32:
        raise DIDKeyError("an Ed25519 public key is 32 bytes")
    return "did:key:z" + base58btc_encode(_varint(ED25519_PUB_MULTICODEC) + raw)


@dataclass(frozen=True)
class TrustedIssuers:
    """A verifier's set of trusted issuer did:keys, without any private key."""

    dids: frozenset[str]

    def trusts(self, did: str) -> bool:
        return did in self.dids

    @classmethod
    def from_did_web_document(cls, document: Mapping[str, Any]) -> TrustedIssuers:
        """The did:key of every assertion key in the service's did:web document.

        Derived from the published keys themselves, not from ``alsoKnownAs``.
        """
        assertion = set(document.get("assertionMethod", []))
        return cls(
            frozenset(
                did_key_from_ed25519_jwk(method["publicKeyJwk"])
                for method in document.get("verificationMethod", [])
                if method.get("id") in assertion and "publicKeyJwk" in method
            )
        )


# --- the issuer key ring (Ed25519) ------------------------------------------


@dataclass(frozen=True)
class IssuerKey:
    """One Ed25519 issuer key; the private JWK never appears in repr()."""

    private_jwk: str = field(repr=False)
    created_at: datetime
    retired_at: datetime | None = None

    @functools.cached_property
    def did(self) -> str:
        # Every challenge names the service by this DID: derive it once per key.
        return _didkit.key_to_did_key(self.private_jwk)

    @property
    def verification_method(self) -> str:
        return did_key_verification_method(self.did)

    @property
    def public_jwk(self) -> dict[str, str]:
        jwk = json.loads(self.private_jwk)
        return {name: jwk[name] for name in ("kty", "crv", "x")}

    @property
    def fingerprint(self) -> str:
        return self.did.removeprefix("did:key:")


@dataclass(frozen=True)
class IssuerKeyring:
    """The service's signing key and the retired keys still trusted for verification."""

    path: Path
    keys: tuple[IssuerKey, ...]

    @classmethod
    def open(cls, path: Path, *, now: datetime | None = None) -> IssuerKeyring:
        """Load the key file, creating it (mode 0600) with a first key if it is missing."""
        path = Path(path)
        if path.exists():
            return cls.load(path)
        keyring = cls(path=path, keys=(_new_key(now),))
        try:
            keyring.save(exclusive=True)
        except FileExistsError:
            # Another service instance created it first: use that one.
            return cls.load(path)
        return keyring

    @classmethod
    def load(cls, path: Path) -> IssuerKeyring:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
        if document.get("format") != KEYRING_FORMAT:
            raise ValueError(f"{path} is not a Common-ID issuer key file")
        keys = tuple(
            IssuerKey(
                private_jwk=json.dumps(entry["jwk"], separators=(",", ":")),
                created_at=datetime.fromisoformat(entry["created_at"]),
                retired_at=(
                    datetime.fromisoformat(entry["retired_at"]) if entry.get("retired_at") else None
                ),
            )
            for entry in document["keys"]
        )
        if not keys or keys[-1].retired_at is not None:
            raise ValueError(f"{path} has no current issuer key")
        return cls(path=Path(path), keys=keys)

    def save(self, *, exclusive: bool = False) -> None:
        """Write the key file atomically, readable by its owner only.

        ``exclusive`` refuses to replace an existing file (first start).
        """
        document = {
            "format": KEYRING_FORMAT,
            "keys": [
                {
                    "jwk": json.loads(key.private_jwk),
                    "created_at": key.created_at.isoformat(),
                    "retired_at": key.retired_at.isoformat() if key.retired_at else None,
                }
                for key in self.keys
            ],
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        descriptor, temporary = tempfile.mkstemp(prefix=".issuer-", dir=self.path.parent)
        try:
            os.fchmod(descriptor, 0o600)
            with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
                json.dump(document, handle, indent=2)
                handle.flush()
                os.fsync(handle.fileno())
            if exclusive:
                os.link(temporary, self.path)
                Path(temporary).unlink()
            else:
                os.replace(temporary, self.path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    @property
    def current(self) -> IssuerKey:
        return self.keys[-1]

    @property
    def retired(self) -> Sequence[IssuerKey]:
        return self.keys[:-1]

    def rotate(self, *, now: datetime | None = None) -> IssuerKeyring:
        """A new current key; the old one is retired but kept for verification. Saved."""
        moment = now or datetime.now(UTC)
        keys = (*self.keys[:-1], replace(self.current, retired_at=moment), _new_key(moment))
        rotated = IssuerKeyring(path=self.path, keys=keys)
        rotated.save()
        return rotated

    def key_for(self, did: str) -> IssuerKey | None:
        """The key (current or retired) whose did:key is ``did``, if it is ours."""
        for key in self.keys:
            if key.did == did:
                return key
        return None

    def trusts(self, did: str) -> bool:
        return self.key_for(did) is not None

    def trusted_issuers(self) -> TrustedIssuers:
        """The public side of the ring, for verifiers that must not hold the keys."""
        return TrustedIssuers(frozenset(key.did for key in self.keys))

    def did_web_document(self, domain: str) -> dict[str, Any]:
        """The did.json served at ``https://<domain>/.well-known/did.json``.

        Lists every key: the current one for authentication and assertion,
        retired ones for assertion only, so old credentials remain verifiable.
        ``domain`` may carry a port ("localhost:8000") or a path ("host/issuer").
        """
        did = did_web(domain)
        methods = [
            {
                "id": f"{did}#{key.fingerprint}",
                "type": "JsonWebKey2020",
                "controller": did,
                "publicKeyJwk": key.public_jwk,
            }
            for key in self.keys
        ]
        return {
            "@context": [
                "https://www.w3.org/ns/did/v1",
                "https://w3id.org/security/suites/jws-2020/v1",
            ],
            "id": did,
            "alsoKnownAs": [key.did for key in self.keys],
            "verificationMethod": methods,
            "assertionMethod": [method["id"] for method in methods],
            "authentication": [f"{did}#{self.current.fingerprint}"],
        }


def did_web(domain: str) -> str:
    """The did:web for a domain (port percent-encoded, path segments joined by ':')."""
    host, _, path = domain.strip("/").partition("/")
    segments = [quote(host, safe="")] + [quote(part, safe="") for part in path.split("/") if part]
    return "did:web:" + ":".join(segments)


def _new_key(now: datetime | None) -> IssuerKey:
    created_at = now or datetime.now(UTC)
    return IssuerKey(private_jwk=_didkit.generate_ed25519_jwk(), created_at=created_at)


class IssuerKeyringFile:
    """The key ring as its file says now: ``commonid issuer rotate`` (another process,
    perhaps another host on a shared file) reaches a running service at its next use.

    The file is replaced atomically on save, so a changed inode, size or modification
    time means a new ring; a file that cannot be read keeps the ring last loaded (a
    half-copied file on a shared volume must not stop issuance), and says so once.
    """

    def __init__(self, keyring: IssuerKeyring) -> None:
        self._keyring = keyring
        self._seen = self._stamp()
        self._lock = threading.Lock()

    def _stamp(self) -> tuple[int, int, int] | None:
        try:
            status = os.stat(self._keyring.path)
        except OSError:
            return None
        return (status.st_ino, status.st_size, status.st_mtime_ns)

    def keyring(self) -> IssuerKeyring:
        stamp = self._stamp()
        if stamp is None or stamp == self._seen:
            return self._keyring
        with self._lock:
            if stamp != self._seen:
                try:
                    self._keyring = IssuerKeyring.load(self._keyring.path)
                except (OSError, ValueError, KeyError) as error:
                    _log.warning("issuer key file unreadable, keeping the ring loaded: %s", error)
                self._seen = stamp
        return self._keyring
