"""Instances on one database share their keys, or the second one refuses to start.

Two data directories against one database are two hosts of one service: before, the
second generated its own issuer and attribute keys, and every card response then
failed `signature_invalid` and every result read failed to decrypt.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from commonid.api.app import create_app
from commonid.runtime import Runtime, build_runtime
from commonid.settings import SECRETS_FILE_NAME, Settings
from commonid.shared_keys import SharedKeysMismatch
from commonid.store import accounts
from did.keys import IssuerKeyring
from jpki.testca import Hierarchy, IssuedPerson

from .flow_helpers import CardKeys, bearer, full_flow


def _settings(data_dir: Path, database_url: str, hierarchy_dir: Path, **shared) -> Settings:
    return Settings(
        data_dir=data_dir,
        database_url=database_url,
        trust_mode="test",
        test_hierarchy_dir=hierarchy_dir,
        webhook_dispatch_interval_seconds=0,
        crl_refresh_interval_seconds=0,
        **shared,
    )


@pytest.fixture
def first_host(
    tmp_path: Path, database_url: str, test_hierarchy: Hierarchy, test_hierarchy_dir: Path
) -> Iterator[tuple[Runtime, Settings]]:
    settings = _settings(tmp_path / "host-a", database_url, test_hierarchy_dir)
    runtime = build_runtime(settings)
    yield runtime, settings
    runtime.close()


def test_a_second_host_with_its_own_keys_refuses_to_start(
    first_host: tuple[Runtime, Settings],
    tmp_path: Path,
    database_url: str,
    test_hierarchy_dir: Path,
) -> None:
    with pytest.raises(SharedKeysMismatch, match="issuer key") as refused:
        build_runtime(_settings(tmp_path / "host-b", database_url, test_hierarchy_dir))
    assert "COMMONID_ISSUER_KEY_FILE" in str(refused.value)


def test_every_shared_key_is_checked(
    first_host: tuple[Runtime, Settings],
    tmp_path: Path,
    database_url: str,
    test_hierarchy_dir: Path,
) -> None:
    _, first = first_host
    issuer = {"issuer_key_file": first.data_dir / "issuer-key.json"}
    own_secrets = _settings(tmp_path / "b", database_url, test_hierarchy_dir, **issuer)
    with pytest.raises(SharedKeysMismatch, match="pairwise secret"):
        build_runtime(own_secrets)
    stored = first.with_generated_secrets()
    other_attribute_key = _settings(
        tmp_path / "c",
        database_url,
        test_hierarchy_dir,
        pairwise_secret=stored.pairwise_secret,
        attribute_keys={"k1": "A" * 43},
        current_attribute_key_id="k1",
        **issuer,
    )
    with pytest.raises(SharedKeysMismatch, match="attribute key k1"):
        build_runtime(other_attribute_key)
    own_signing_key = _settings(
        tmp_path / "d",
        database_url,
        test_hierarchy_dir,
        secrets_file=first.data_dir / SECRETS_FILE_NAME,
        **issuer,  # the issuer key and the secrets shared, the ID token key not
    )
    with pytest.raises(SharedKeysMismatch, match="OpenID signing key") as refused:
        build_runtime(own_signing_key)
    assert "COMMONID_OIDC_SIGNING_KEY_FILE" in str(refused.value)


def test_a_rotated_id_token_key_is_taken_up_not_refused(
    first_host: tuple[Runtime, Settings],
    tmp_path: Path,
    database_url: str,
    test_hierarchy_dir: Path,
) -> None:
    from commonid.oidc.keys import SigningKeys

    _, first = first_host
    key_file = first.data_dir / "oidc-signing-keys.json"
    SigningKeys.load(key_file).rotated().save()  # `commonid oidc rotate-key`
    again = _settings(
        tmp_path / "e",
        database_url,
        test_hierarchy_dir,
        issuer_key_file=first.data_dir / "issuer-key.json",
        secrets_file=first.data_dir / SECRETS_FILE_NAME,
        oidc_signing_key_file=key_file,
        credential_issuer_key_file=first.data_dir / "credential-issuer-keys.json",
    )
    build_runtime(again).close()


def test_the_credential_issuer_key_is_shared_and_its_rotation_taken_up(
    first_host: tuple[Runtime, Settings],
    tmp_path: Path,
    database_url: str,
    test_hierarchy_dir: Path,
) -> None:
    from commonid.oidc.keys import SigningKeys

    _, first = first_host
    shared = {
        "issuer_key_file": first.data_dir / "issuer-key.json",
        "secrets_file": first.data_dir / SECRETS_FILE_NAME,
        "oidc_signing_key_file": first.data_dir / "oidc-signing-keys.json",
    }
    own = _settings(tmp_path / "f", database_url, test_hierarchy_dir, **shared)
    with pytest.raises(SharedKeysMismatch, match="credential issuer key") as refused:
        build_runtime(own)
    assert "COMMONID_CREDENTIAL_ISSUER_KEY_FILE" in str(refused.value)
    key_file = first.data_dir / "credential-issuer-keys.json"
    SigningKeys.load(key_file).rotated().save()  # `commonid credential-issuer rotate-key`
    again = _settings(
        tmp_path / "g",
        database_url,
        test_hierarchy_dir,
        credential_issuer_key_file=key_file,
        **shared,
    )
    build_runtime(again).close()


def test_hosts_given_the_shared_keys_serve_one_service(
    first_host: tuple[Runtime, Settings],
    tmp_path: Path,
    database_url: str,
    test_hierarchy_dir: Path,
    demo_person: IssuedPerson,
) -> None:
    runtime_a, first = first_host
    second = _settings(
        tmp_path / "host-b",
        database_url,
        test_hierarchy_dir,
        issuer_key_file=first.data_dir / "issuer-key.json",
        secrets_file=first.data_dir / SECRETS_FILE_NAME,
        oidc_signing_key_file=first.data_dir / "oidc-signing-keys.json",
        credential_issuer_key_file=first.data_dir / "credential-issuer-keys.json",
    )
    runtime_b = build_runtime(second)
    try:
        with runtime_a.sessions.begin() as db:
            provider = accounts.add_provider(
                db,
                name="Pay",
                allowed_claims=["name", "address"],
                reuse_max_age_seconds=3600,
                now=runtime_a.clock(),
                cipher=runtime_a.cipher,
            )
            kiosk = accounts.add_kiosk(db, name="Counter", now=runtime_a.clock())
        with (
            TestClient(create_app(runtime=runtime_a)) as host_a,
            TestClient(create_app(runtime=runtime_b)) as host_b,
        ):
            outcome = full_flow(
                host_a,
                provider.credential,
                kiosk.credential,
                CardKeys(demo_person),
                mode="identity",
                claims=["name", "address"],
            )
            assert outcome["status"] == "verified"
            # The other host reads (decrypts) the result of a flow the first one ran.
            again = host_b.get(f"/v1/sessions/{outcome['id']}", headers=bearer(provider.credential))
            assert again.status_code == 200, again.text
            assert again.json()["verified_claims"] == outcome["verified_claims"]
    finally:
        runtime_b.close()


def test_an_issuer_key_rotated_on_the_shared_file_is_accepted_and_the_old_file_is_not(
    first_host: tuple[Runtime, Settings],
    tmp_path: Path,
    database_url: str,
    test_hierarchy_dir: Path,
) -> None:
    _, first = first_host
    key_file = first.data_dir / "issuer-key.json"
    stale_copy = tmp_path / "stale-issuer-key.json"
    stale_copy.write_bytes(key_file.read_bytes())
    IssuerKeyring.load(key_file).rotate()
    build_runtime(first).close()  # the rotated key is recorded
    stale = first.model_copy(update={"issuer_key_file": stale_copy})
    with pytest.raises(SharedKeysMismatch, match="issuer key"):
        build_runtime(stale)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_serve_refuses_in_one_line_naming_what_to_share(
    first_host: tuple[Runtime, Settings], tmp_path: Path, database_url: str
) -> None:
    finished = subprocess.run(
        [sys.executable, "-m", "commonid.cli", "serve", "--port", "0"],
        env=os.environ
        | {"COMMONID_DATA_DIR": str(tmp_path / "host-b"), "COMMONID_DATABASE_URL": database_url},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert finished.returncode == 1
    assert "refusing to start: issuer key" in finished.stderr
    assert "Traceback" not in finished.stderr
