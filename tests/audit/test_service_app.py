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


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_reviewer_token_from_the_environment_opens_api_and_pages(
    service_runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    from commonid.api.app import create_app

    monkeypatch.setenv("COMMONID_AUDIT_REVIEWER_TOKEN", "rvw_from-env")
    client = TestClient(create_app(runtime=service_runtime))
    reviewer = {"Authorization": "Bearer rvw_from-env"}
    assert client.get("/v1/audit/checkpoints", headers=reviewer).status_code == 200
    # Read-only: the reviewer cannot sign a checkpoint.
    assert client.post("/v1/audit/checkpoint", headers=reviewer).status_code == 401
    client.post("/reviewer/login", data={"token": "rvw_from-env"})
    assert "PoCの数値" in client.get("/reviewer/").text


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_running_service_signs_checkpoints_on_schedule_without_appends(
    service_runtime,
) -> None:
    import time
    from datetime import timedelta

    from commonid.api.app import create_app

    audit_log = service_runtime.audit
    audit_log.checkpoint_interval = timedelta(seconds=1)
    audit_log._next_due_check = float("inf")  # appends never sign: only the timer may
    audit_log.append("admin.action", action="first")
    assert audit_log.checkpoints() == []

    with TestClient(create_app(runtime=service_runtime)):  # runs the lifespan
        deadline = time.monotonic() + 5
        while not audit_log.checkpoints() and time.monotonic() < deadline:
            time.sleep(0.05)
    checkpoints = audit_log.checkpoints()
    assert [c.tree_size for c in checkpoints] == [audit_log.size()]
