"""The admin CLI against a real database file: providers, kiosks, keys, purge."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from commonid.cli import app
from commonid.store import accounts
from commonid.store.database import create_engine, session_factory


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, database_url: str) -> str:
    monkeypatch.setenv("COMMONID_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("COMMONID_DATABASE_URL", database_url)
    return database_url


def run(*args: str) -> str:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def key_from(output: str, label: str) -> str:
    match = re.search(rf"{label} \(shown once\): (\S+)", output)
    assert match, output
    return match.group(1)


def test_provider_lifecycle(cli_env: str) -> None:
    added = run(
        "provider",
        "add",
        "Acme Pay",
        "--claims",
        "name,did",
        "--reuse-max-age",
        "3600",
        "--webhook-url",
        "https://acme.test/hooks",
    )
    api_key = key_from(added, "api key")
    assert key_from(added, "webhook secret").startswith("whsec_")
    listing = run("provider", "list")
    assert "Acme Pay" in listing and "claims=did,name" in listing and api_key not in listing

    engine = create_engine(cli_env)
    make = session_factory(engine)
    with make() as db:
        assert accounts.provider_by_api_key(db, api_key).name == "Acme Pay"
    new_key = key_from(run("provider", "rotate-key", "Acme Pay"), "new api key")
    run("provider", "disable", "Acme Pay")
    with make() as db:
        assert accounts.provider_by_api_key(db, api_key) is None
        assert accounts.provider_by_api_key(db, new_key).disabled is True
    engine.dispose()


def test_unknown_claim_and_unknown_provider_are_errors(cli_env: str) -> None:
    bad = CliRunner().invoke(app, ["provider", "add", "X", "--claims", "passport"])
    assert bad.exit_code != 0
    missing = CliRunner().invoke(app, ["provider", "disable", "nobody"])
    assert missing.exit_code == 1


def test_kiosks_and_purge(cli_env: str) -> None:
    credential = key_from(run("kiosk", "add", "Shibuya 1"), "kiosk credential")
    assert credential.startswith("cid_kiosk_")
    assert "Shibuya 1\tactive" in run("kiosk", "list")
    run("kiosk", "disable", "Shibuya 1")
    assert "Shibuya 1\tdisabled" in run("kiosk", "list")
    assert "purged 0 sessions" in run("purge")
    assert "database at head" in run("db", "upgrade")


def test_admin_actions_at_the_command_line_are_in_the_audit_log(cli_env: str) -> None:
    import json

    from commonid.audit.log import AuditLog

    key_from(run("provider", "add", "Acme Pay", "--claims", "did"), "api key")
    run("provider", "rotate-key", "Acme Pay")
    run("provider", "disable", "Acme Pay")
    key_from(run("kiosk", "add", "Shibuya 1"), "kiosk credential")
    run("kiosk", "disable", "Shibuya 1")
    run("provider", "list")  # reading is not an action

    engine = create_engine(cli_env)
    try:
        logged = [json.loads(entry.entry) for entry in AuditLog(session_factory(engine)).entries()]
        with session_factory(engine)() as db:
            provider_id = accounts.provider_by_name_or_id(db, "Acme Pay").id
            kiosk_id = accounts.kiosk_by_name_or_id(db, "Shibuya 1").id
    finally:
        engine.dispose()
    assert [(e["type"], e["data"]) for e in logged] == [
        ("admin.action", {"action": a, "actor": "admin_cli", "target_type": t, "target_id": i})
        for a, t, i in (
            ("provider_added", "provider", provider_id),
            ("provider_key_rotated", "provider", provider_id),
            ("provider_disabled", "provider", provider_id),
            ("kiosk_added", "kiosk", kiosk_id),
            ("kiosk_disabled", "kiosk", kiosk_id),
        )
    ]
