"""The audit API mounted on the service app, signed with the service's issuer key."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from commonid.audit.checkpoint import open_checkpoint
from commonid.audit.service import checkpoint_verifiers
from commonid.audit.settings import AuditSettings


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_service_app_serves_checkpoints_signed_by_the_issuer_key(
    service_runtime, service_client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    admin = {"Authorization": "Bearer admin-secret-for-tests"}
    assert service_client.get("/v1/audit/checkpoints").status_code == 401
    created = service_client.post("/v1/audit/checkpoint", headers=admin)
    assert created.status_code == 201
    verifiers = checkpoint_verifiers(service_runtime.keyring, AuditSettings().origin)
    signed = open_checkpoint(created.json()["note"], verifiers)
    assert signed.tree_size == created.json()["tree_size"]
