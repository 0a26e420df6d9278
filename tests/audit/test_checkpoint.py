"""Checkpoints as C2SP signed notes, signed with the service's issuer key."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from commonid.audit.checkpoint import (
    Checkpoint,
    CheckpointError,
    NoteSigner,
    NoteVerifier,
    open_checkpoint,
)
from commonid.audit.service import checkpoint_signer, checkpoint_verifiers
from did.keys import IssuerKeyring

ORIGIN = "commonid.test/audit"
CHECKPOINT = Checkpoint(
    ORIGIN, 42, hashlib.sha256(b"root").digest(), datetime(2026, 11, 25, tzinfo=UTC)
)


def test_note_layout_and_signature_follow_c2sp() -> None:
    private = Ed25519PrivateKey.generate()
    signer = NoteSigner.from_private_key(ORIGIN, private)
    note = signer.sign_checkpoint(CHECKPOINT)
    body, signature_line = note.split("\n\n")
    root = base64.b64encode(CHECKPOINT.root_hash).decode()
    assert body == f"{ORIGIN}\n42\n{root}\ntime 2026-11-25T00:00:00.000000Z"
    prefix = f"\u2014 {ORIGIN} "
    assert signature_line.startswith(prefix) and signature_line.endswith("\n")
    raw = base64.b64decode(signature_line[len(prefix) :])
    public = private.public_key().public_bytes_raw()
    # Key id = SHA-256(name || '\n' || 0x01 || key)[:4]; the signature covers the text.
    assert raw[:4] == hashlib.sha256(ORIGIN.encode() + b"\n\x01" + public).digest()[:4]
    Ed25519PublicKey.from_public_bytes(public).verify(raw[4:], (body + "\n").encode())
    assert open_checkpoint(note, [signer.verifier()]) == CHECKPOINT


def test_verifier_key_round_trips_and_rejects_a_wrong_id() -> None:
    verifier = NoteSigner.from_private_key(ORIGIN, Ed25519PrivateKey.generate()).verifier()
    text = verifier.verifier_key()
    assert NoteVerifier.parse(text) == verifier
    name, _, key = text.split("+", 2)
    with pytest.raises(CheckpointError):
        NoteVerifier.parse(f"{name}+00000000+{key}")


def test_edited_note_or_other_key_is_refused() -> None:
    signer = NoteSigner.from_private_key(ORIGIN, Ed25519PrivateKey.generate())
    other = NoteSigner.from_private_key(ORIGIN, Ed25519PrivateKey.generate())
    note = signer.sign_checkpoint(CHECKPOINT)
    with pytest.raises(CheckpointError):
        open_checkpoint(note.replace("\n42\n", "\n43\n"), [signer.verifier()])
    with pytest.raises(CheckpointError):
        open_checkpoint(note, [other.verifier()])


def test_signed_with_the_issuer_keyring_and_verified_after_rotation(tmp_path: Path) -> None:
    keyring = IssuerKeyring.open(tmp_path / "issuer.json")
    note = checkpoint_signer(keyring, ORIGIN).sign_checkpoint(CHECKPOINT)
    rotated = keyring.rotate()
    # The retired key still verifies old checkpoints; it is the ring's Ed25519 key.
    assert open_checkpoint(note, checkpoint_verifiers(rotated, ORIGIN)) == CHECKPOINT
    jwk = json.loads(keyring.current.private_jwk)
    expected_public = base64.urlsafe_b64decode(jwk["x"] + "=" * (-len(jwk["x"]) % 4))
    assert checkpoint_signer(keyring, ORIGIN).public_key == expected_public
    with pytest.raises(CheckpointError):
        open_checkpoint(note, checkpoint_verifiers(rotated, "another.origin/audit"))
