"""The virtual card's persistent memory: keys, certificates, PIN reference data, counters.

A real card keeps its private keys, its four certificates and the reference
data of its two PINs in EEPROM; the try counters survive power loss. The card
file is that EEPROM: one JSON document, written atomically with mode 0600, so
a blocked card stays blocked across emulator restarts. The PIN and the
password are never stored, only a salted scrypt hash of each.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import os
import re
import secrets
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

STATE_VERSION = 1

AUTH_PIN_MAX_TRIES = 3
SIGN_PASSWORD_MAX_TRIES = 5

_AUTH_PIN_FORMAT = re.compile(r"[0-9]{4}")
_SIGN_PASSWORD_FORMAT = re.compile(r"[A-Z0-9]{6,16}")

# scrypt cost: a VERIFY costs one derivation (~30 ms), which is acceptable for
# a card and makes an offline guess of a stolen card file far from free.
_SCRYPT_N = 2**14
_SCRYPT_R = 8
_SCRYPT_P = 1


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text.encode("ascii"), validate=True)


@dataclass
class PinReference:
    """Reference data of one PIN as the card holds it: a salted hash and a try counter."""

    salt: bytes
    digest: bytes
    max_tries: int
    tries_left: int
    scrypt_n: int = _SCRYPT_N
    scrypt_r: int = _SCRYPT_R
    scrypt_p: int = _SCRYPT_P

    @classmethod
    def create(cls, secret: bytes, *, max_tries: int) -> PinReference:
        salt = secrets.token_bytes(16)
        return cls(
            salt=salt,
            digest=_derive(secret, salt, _SCRYPT_N, _SCRYPT_R, _SCRYPT_P),
            max_tries=max_tries,
            tries_left=max_tries,
        )

    @property
    def blocked(self) -> bool:
        return self.tries_left <= 0

    def matches(self, candidate: bytes) -> bool:
        """Compare a presented PIN with the reference (constant time); no counter change."""
        derived = _derive(candidate, self.salt, self.scrypt_n, self.scrypt_r, self.scrypt_p)
        return hmac.compare_digest(derived, self.digest)

    def to_json(self) -> dict[str, Any]:
        return {
            "kdf": "scrypt",
            "n": self.scrypt_n,
            "r": self.scrypt_r,
            "p": self.scrypt_p,
            "salt": _b64(self.salt),
            "hash": _b64(self.digest),
            "max_tries": self.max_tries,
            "tries_left": self.tries_left,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PinReference:
        if data.get("kdf") != "scrypt":
            raise ValueError(f"unsupported PIN hash {data.get('kdf')!r} in card file")
        reference = cls(
            salt=_unb64(data["salt"]),
            digest=_unb64(data["hash"]),
            max_tries=int(data["max_tries"]),
            tries_left=int(data["tries_left"]),
            scrypt_n=int(data["n"]),
            scrypt_r=int(data["r"]),
            scrypt_p=int(data["p"]),
        )
        if not 0 <= reference.tries_left <= reference.max_tries <= 15:
            raise ValueError("card file has an impossible PIN try counter")
        return reference


def _derive(secret: bytes, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(secret, salt=salt, n=n, r=r, p=p, maxmem=64 * 1024 * 1024, dklen=32)


def _private_key_to_pem(key: rsa.RSAPrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode("ascii")


def _private_key_from_pem(text: str) -> rsa.RSAPrivateKey:
    key = serialization.load_pem_private_key(text.encode("ascii"), password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("card file holds a key that is not RSA")
    return key


@dataclass
class CardState:
    """Everything a My Number Card remembers between sessions (JPKI AP only)."""

    auth_private_key: rsa.RSAPrivateKey
    sign_private_key: rsa.RSAPrivateKey
    auth_certificate: bytes
    auth_ca_certificate: bytes
    sign_certificate: bytes
    sign_ca_certificate: bytes
    auth_pin: PinReference
    sign_password: PinReference
    version: int = STATE_VERSION

    @classmethod
    def create(
        cls,
        *,
        auth_private_key: rsa.RSAPrivateKey,
        sign_private_key: rsa.RSAPrivateKey,
        auth_certificate: bytes,
        auth_ca_certificate: bytes,
        sign_certificate: bytes,
        sign_ca_certificate: bytes,
        auth_pin: str,
        sign_password: str,
    ) -> CardState:
        """A freshly issued card: full try counters, PIN and password hashed.

        The password is upper-cased, as the issuing terminal and every client
        do; a PIN or password outside the JPKI formats is refused.
        """
        if not _AUTH_PIN_FORMAT.fullmatch(auth_pin):
            raise ValueError("the authentication PIN must be exactly 4 digits")
        password = sign_password.upper()
        if not _SIGN_PASSWORD_FORMAT.fullmatch(password):
            raise ValueError("the signature password must be 6 to 16 characters A-Z, 0-9")
        for key in (auth_private_key, sign_private_key):
            if key.key_size != 2048:
                raise ValueError("JPKI keys are RSA 2048")
        return cls(
            auth_private_key=auth_private_key,
            sign_private_key=sign_private_key,
            auth_certificate=bytes(auth_certificate),
            auth_ca_certificate=bytes(auth_ca_certificate),
            sign_certificate=bytes(sign_certificate),
            sign_ca_certificate=bytes(sign_ca_certificate),
            auth_pin=PinReference.create(auth_pin.encode("ascii"), max_tries=AUTH_PIN_MAX_TRIES),
            sign_password=PinReference.create(
                password.encode("ascii"), max_tries=SIGN_PASSWORD_MAX_TRIES
            ),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "auth": {
                "private_key": _private_key_to_pem(self.auth_private_key),
                "certificate": _b64(self.auth_certificate),
                "ca_certificate": _b64(self.auth_ca_certificate),
                "pin": self.auth_pin.to_json(),
            },
            "sign": {
                "private_key": _private_key_to_pem(self.sign_private_key),
                "certificate": _b64(self.sign_certificate),
                "ca_certificate": _b64(self.sign_ca_certificate),
                "password": self.sign_password.to_json(),
            },
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CardState:
        version = data.get("version")
        if version != STATE_VERSION:
            raise ValueError(f"unsupported card file version {version!r}")
        auth, sign = data["auth"], data["sign"]
        return cls(
            auth_private_key=_private_key_from_pem(auth["private_key"]),
            sign_private_key=_private_key_from_pem(sign["private_key"]),
            auth_certificate=_unb64(auth["certificate"]),
            auth_ca_certificate=_unb64(auth["ca_certificate"]),
            sign_certificate=_unb64(sign["certificate"]),
            sign_ca_certificate=_unb64(sign["ca_certificate"]),
            auth_pin=PinReference.from_json(auth["pin"]),
            sign_password=PinReference.from_json(sign["password"]),
            version=version,
        )

    def save(self, path: Path) -> None:
        """Write the card file atomically (temp file + rename), mode 0600.

        A crash mid-write leaves the previous file intact: a try counter is
        never lost, which is what keeps a blocked card blocked.
        """
        path = Path(path)
        payload = json.dumps(self.to_json(), indent=2).encode("utf-8") + b"\n"
        descriptor, temp_name = tempfile.mkstemp(
            prefix=f".{path.name}.", suffix=".tmp", dir=path.parent
        )
        try:
            os.fchmod(descriptor, 0o600)
            with os.fdopen(descriptor, "wb") as handle:
                handle.write(payload)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temp_name, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temp_name)
            raise

    @classmethod
    def load(cls, path: Path) -> CardState:
        with open(path, "rb") as handle:
            return cls.from_json(json.load(handle))
