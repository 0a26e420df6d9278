"""Signed checkpoints in the C2SP formats: tlog-checkpoint inside a signed note.

A checkpoint is the note text::

    <origin>
    <tree size, decimal>
    <root hash, base64>
    time <RFC 3339 UTC>

followed by a blank line and one signature line per key,
``— <key name> <base64(key id || Ed25519 signature)>``, where the key id is the
first 4 bytes of SHA-256(key name || "\\n" || 0x01 || public key) (C2SP
signed-note, Ed25519 type 0x01). The ``time`` line is a tlog-checkpoint
extension line: clients that do not know it ignore it. Reviewers can check
these notes with any signed-note implementation, given the verifier key
``<name>+<hex key id>+<base64(0x01 || public key)>``.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from commonid.audit.events import format_time
from commonid.audit.merkle import HASH_SIZE

ED25519_SIGNATURE_TYPE = b"\x01"
SIGNATURE_PREFIX = "\u2014 "  # em dash and space start every signature line
TIME_EXTENSION = "time "


class CheckpointError(ValueError):
    """A note that is not a well-formed checkpoint, or whose signature does not verify."""


@dataclass(frozen=True)
class Checkpoint:
    origin: str
    tree_size: int
    root_hash: bytes
    time: datetime

    def body(self) -> str:
        """The note text that is signed."""
        root = base64.b64encode(self.root_hash).decode()
        time_line = TIME_EXTENSION + format_time(self.time)
        return f"{self.origin}\n{self.tree_size}\n{root}\n{time_line}\n"

    @classmethod
    def parse_body(cls, text: str) -> Checkpoint:
        lines = text.split("\n")
        if len(lines) < 4 or lines[-1] != "":
            raise CheckpointError("a checkpoint has origin, size, root hash and ends in a newline")
        origin, size_text, root_text, *extensions = lines[:-1]
        if not origin or not size_text.isdigit() or (size_text != "0" and size_text[0] == "0"):
            raise CheckpointError("bad checkpoint origin or tree size")
        try:
            root_hash = base64.b64decode(root_text, validate=True)
        except ValueError as error:
            raise CheckpointError("checkpoint root hash is not base64") from error
        if len(root_hash) != HASH_SIZE:
            raise CheckpointError("checkpoint root hash is not 32 bytes")
        times = [line[len(TIME_EXTENSION) :] for line in extensions if line.startswith("time ")]
        if len(times) != 1:
            raise CheckpointError("a Common-ID checkpoint carries exactly one time line")
        try:
            moment = datetime.strptime(times[0], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
        except ValueError as error:
            raise CheckpointError("bad checkpoint time") from error
        return cls(origin, int(size_text), root_hash, moment)


def ed25519_key_id(name: str, public_key: bytes) -> bytes:
    return hashlib.sha256(name.encode() + b"\n" + ED25519_SIGNATURE_TYPE + public_key).digest()[:4]


def _check_key_name(name: str) -> None:
    if not name or any(char.isspace() or char == "+" for char in name):
        raise ValueError("a signed-note key name has no spaces and no '+'")


class NoteSigner:
    """Signs checkpoints. ``sign`` is any Ed25519 signing callable (a key ring, an HSM)."""

    def __init__(self, name: str, public_key: bytes, sign: Callable[[bytes], bytes]) -> None:
        _check_key_name(name)
        if len(public_key) != 32:
            raise ValueError("an Ed25519 public key is 32 bytes")
        self.name = name
        self.public_key = public_key
        self._sign = sign

    @classmethod
    def from_private_key(cls, name: str, private_key: Ed25519PrivateKey) -> NoteSigner:
        public = private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        return cls(name, public, private_key.sign)

    @classmethod
    def from_private_jwk(cls, name: str, private_jwk: dict[str, str]) -> NoteSigner:
        """From an Ed25519 OKP JWK, as did.keys.IssuerKey holds the service's issuer key."""
        if private_jwk.get("kty") != "OKP" or private_jwk.get("crv") != "Ed25519":
            raise ValueError("checkpoints are signed with an Ed25519 key")
        seed = _b64url_decode(private_jwk["d"])
        return cls.from_private_key(name, Ed25519PrivateKey.from_private_bytes(seed))

    @property
    def key_id(self) -> bytes:
        return ed25519_key_id(self.name, self.public_key)

    def verifier(self) -> NoteVerifier:
        return NoteVerifier(self.name, self.public_key)

    def sign_checkpoint(self, checkpoint: Checkpoint) -> str:
        """The signed note for ``checkpoint``."""
        body = checkpoint.body()
        signature = self._sign(body.encode())
        encoded = base64.b64encode(self.key_id + signature).decode()
        return f"{body}\n{SIGNATURE_PREFIX}{self.name} {encoded}\n"


@dataclass(frozen=True)
class NoteVerifier:
    name: str
    public_key: bytes

    @classmethod
    def parse(cls, verifier_key: str) -> NoteVerifier:
        """From a signed-note verifier key ``name+hexid+base64(0x01||key)``."""
        try:
            name, key_id_hex, encoded = verifier_key.strip().split("+", 2)
            raw = base64.b64decode(encoded, validate=True)
        except ValueError as error:
            raise CheckpointError("not a signed-note verifier key") from error
        if raw[:1] != ED25519_SIGNATURE_TYPE or len(raw) != 33:
            raise CheckpointError("only Ed25519 verifier keys are supported")
        verifier = cls(name, raw[1:])
        if verifier.key_id.hex() != key_id_hex.lower():
            raise CheckpointError("verifier key id does not match its name and key")
        return verifier

    @classmethod
    def from_public_jwk(cls, name: str, jwk: dict[str, str]) -> NoteVerifier:
        if jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519":
            raise CheckpointError("not an Ed25519 JWK")
        return cls(name, _b64url_decode(jwk["x"]))

    @property
    def key_id(self) -> bytes:
        return ed25519_key_id(self.name, self.public_key)

    def verifier_key(self) -> str:
        encoded = base64.b64encode(ED25519_SIGNATURE_TYPE + self.public_key).decode()
        return f"{self.name}+{self.key_id.hex()}+{encoded}"

    def verifies(self, body: str, signature: bytes) -> bool:
        try:
            Ed25519PublicKey.from_public_bytes(self.public_key).verify(signature, body.encode())
        except InvalidSignature:
            return False
        return True


def split_note(note: str) -> tuple[str, list[tuple[str, bytes]]]:
    """The signed text and its (key name, key id || signature) lines."""
    body, separator, signature_block = note.rpartition("\n\n")
    if not separator or not signature_block.endswith("\n"):
        raise CheckpointError("a signed note is text, a blank line, then signature lines")
    signatures = []
    for line in signature_block[:-1].split("\n"):
        if not line.startswith(SIGNATURE_PREFIX):
            raise CheckpointError("signature lines start with an em dash")
        name, _, encoded = line[len(SIGNATURE_PREFIX) :].partition(" ")
        try:
            raw = base64.b64decode(encoded, validate=True)
        except ValueError as error:
            raise CheckpointError("signature is not base64") from error
        if len(raw) < 5:
            raise CheckpointError("signature too short")
        signatures.append((name, raw))
    return body + "\n", signatures


def open_checkpoint(note: str, verifiers: Iterable[NoteVerifier]) -> Checkpoint:
    """The checkpoint in ``note`` if one of ``verifiers`` signed it, else CheckpointError."""
    body, signatures = split_note(note)
    known = {(verifier.name, verifier.key_id): verifier for verifier in verifiers}
    for name, raw in signatures:
        verifier = known.get((name, raw[:4]))
        if verifier is not None and verifier.verifies(body, raw[4:]):
            checkpoint = Checkpoint.parse_body(body)
            return checkpoint
    raise CheckpointError("no trusted key signed this checkpoint")


def read_checkpoint_unverified(note: str) -> Checkpoint:
    """The checkpoint a note claims, without checking who signed it (for display only)."""
    body, _ = split_note(note)
    return Checkpoint.parse_body(body)


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
