"""The keys that sign ID tokens: ES256, in a key file shared by every instance.

A new key is created on first start; ``rotate`` adds a new current key and
keeps the previous ones in the JWKS, so ID tokens signed before a rotation
still verify for as long as clients may hold them. The file is re-read when it
changes, like the issuer key file, so a rotation reaches running instances.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from joserfc.jwk import ECKey

ALGORITHM = "ES256"
FORMAT = "commonid-oidc-signing-keys/1"
# How long a retired key stays published: longer than any ID token lives.
RETIRED_KEPT = dt.timedelta(days=30)


@dataclass(frozen=True)
class SigningKeys:
    path: Path
    keys: tuple[dict[str, Any], ...]  # private JWKs with created_at, oldest first

    @property
    def current(self) -> ECKey:
        return ECKey.import_key(self.keys[-1]["jwk"])

    @property
    def current_kid(self) -> str:
        return str(self.keys[-1]["jwk"]["kid"])

    def key(self, kid: str) -> ECKey | None:
        """The key with this kid, current or retired (published or not)."""
        for entry in self.keys:
            if entry["jwk"].get("kid") == kid:
                return ECKey.import_key(entry["jwk"])
        return None

    def jwks(
        self, now: dt.datetime, *, retired_kept: dt.timedelta = RETIRED_KEPT
    ) -> dict[str, Any]:
        published = []
        for index, entry in enumerate(self.keys):
            retired = self.keys[index + 1]["created_at"] if index + 1 < len(self.keys) else None
            if retired and now - dt.datetime.fromisoformat(retired) > retired_kept:
                continue
            key = ECKey.import_key(entry["jwk"])
            published.append(key.as_dict(private=False) | {"use": "sig", "alg": ALGORITHM})
        return {"keys": published}

    @classmethod
    def open(cls, path: Path) -> SigningKeys:
        if path.exists():
            return cls.load(path)
        keys = cls(path, (_new_key(),))
        try:
            keys.save(exclusive=True)
        except FileExistsError:  # another instance made it first
            return cls.load(path)
        return keys

    @classmethod
    def load(cls, path: Path) -> SigningKeys:
        document = json.loads(path.read_text())
        if document.get("format") != FORMAT or not document.get("keys"):
            raise ValueError(f"{path} is not a Common-ID OpenID signing key file")
        return cls(path, tuple(document["keys"]))

    def rotated(self) -> SigningKeys:
        return SigningKeys(self.path, (*self.keys, _new_key()))

    def save(self, *, exclusive: bool = False) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps({"format": FORMAT, "keys": list(self.keys)}, indent=2)
        if exclusive:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as out:
                out.write(text)
            return
        partial = self.path.with_name(self.path.name + ".partial")
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(text)
        os.replace(partial, self.path)


def _new_key() -> dict[str, Any]:
    key = ECKey.generate_key("P-256", private=True)
    jwk = key.as_dict(private=True)
    jwk["kid"] = key.thumbprint()
    return {"jwk": jwk, "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}


class SigningKeysFile:
    """The key file as it is now: re-read when its inode, size or mtime changes."""

    def __init__(self, path: Path) -> None:
        self._keys = SigningKeys.open(path)
        self._stamp = self._stat()
        self._lock = threading.Lock()

    def _stat(self) -> tuple[int, int, int] | None:
        try:
            status = os.stat(self._keys.path)
        except OSError:
            return None
        return (status.st_ino, status.st_size, status.st_mtime_ns)

    def keys(self) -> SigningKeys:
        stamp = self._stat()
        if stamp is not None and stamp != self._stamp:
            with self._lock:
                try:
                    self._keys = SigningKeys.load(self._keys.path)
                    self._stamp = stamp
                except (OSError, ValueError):
                    pass  # a half-written file: keep the keys last loaded
        return self._keys
