"""Settings: environment over TOML file over defaults; secrets generated once, 0600."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from commonid.settings import Settings


def test_environment_overrides_toml_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "commonid.toml"
    config.write_text('session_ttl_seconds = 120\ntrust_mode = "test"\nmax_body_bytes = 1000\n')
    monkeypatch.setenv("COMMONID_CONFIG_FILE", str(config))
    monkeypatch.setenv("COMMONID_MAX_BODY_BYTES", "2000")
    settings = Settings()
    assert settings.session_ttl_seconds == 120
    assert settings.trust_mode == "test"
    assert settings.max_body_bytes == 2000


def test_default_database_is_sqlite_under_data_dir(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    assert settings.effective_database_url == f"sqlite:///{tmp_path}/commonid.sqlite3"


def test_missing_secrets_are_generated_once_with_private_mode(tmp_path: Path) -> None:
    first = Settings(data_dir=tmp_path).with_generated_secrets()
    second = Settings(data_dir=tmp_path).with_generated_secrets()
    secrets_file = tmp_path / "secrets.json"
    assert stat.S_IMODE(secrets_file.stat().st_mode) == 0o600
    assert len(first.attribute_key_bytes()[first.current_attribute_key_id]) == 32
    assert first.attribute_key_bytes() == second.attribute_key_bytes()
    assert first.pairwise_secret.get_secret_value() == second.pairwise_secret.get_secret_value()


def test_configured_secrets_are_not_replaced(tmp_path: Path) -> None:
    key = "A" * 43
    settings = Settings(
        data_dir=tmp_path,
        attribute_keys={"ops1": key},
        current_attribute_key_id="ops1",
        pairwise_secret="configured",
    ).with_generated_secrets()
    assert not (tmp_path / "secrets.json").exists()
    assert settings.current_attribute_key_id == "ops1"
    assert settings.pairwise_secret.get_secret_value() == "configured"


@pytest.mark.parametrize(
    "setting",
    [
        "provider_rate_per_second",
        "kiosk_rate_per_second",
        "provider_rate_burst",
        "kiosk_rate_burst",
    ],
)
def test_a_rate_limit_that_could_never_refill_is_refused_at_start(
    setting: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A zero rate once reached math.ceil(inf) in Retry-After: a 500 at the first empty bucket.
    monkeypatch.setenv(f"COMMONID_{setting.upper()}", "0")
    with pytest.raises(ValueError, match=setting):
        Settings()
