"""`commonid issuer show` and `commonid issuer rotate`."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

from typer.testing import CliRunner

from did.cli import issuer_app
from did.keys import IssuerKeyring

runner = CliRunner()


def test_rotate_creates_then_rotates_and_show_lists_both(tmp_path: Path) -> None:
    key_file = tmp_path / "issuer.json"
    created = runner.invoke(issuer_app, ["rotate", "--key-file", str(key_file)])
    assert created.exit_code == 0, created.output
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    first = IssuerKeyring.load(key_file).current.did
    assert first in created.output

    rotated = runner.invoke(issuer_app, ["rotate", "--key-file", str(key_file)])
    assert rotated.exit_code == 0, rotated.output
    second = IssuerKeyring.load(key_file).current.did
    assert second != first

    shown = runner.invoke(issuer_app, ["show"], env={"COMMONID_ISSUER_KEY_FILE": str(key_file)})
    assert shown.exit_code == 0, shown.output
    assert f"current: {second}" in shown.output
    assert f"retired: {first}" in shown.output


def test_show_prints_the_did_web_document(tmp_path: Path) -> None:
    key_file = tmp_path / "issuer.json"
    keyring = IssuerKeyring.open(key_file)
    shown = runner.invoke(
        issuer_app, ["show", "--key-file", str(key_file), "--did-web", "commonid.test"]
    )
    assert shown.exit_code == 0, shown.output
    document = json.loads(shown.output)
    assert document["id"] == "did:web:commonid.test"
    assert document["verificationMethod"][0]["publicKeyJwk"] == keyring.current.public_jwk


def test_show_without_a_key_file_does_not_create_one(tmp_path: Path) -> None:
    key_file = tmp_path / "missing.json"
    shown = runner.invoke(issuer_app, ["show", "--key-file", str(key_file)])
    assert shown.exit_code == 1
    assert not key_file.exists()
