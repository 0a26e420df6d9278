"""Admin endpoints: their own credential; providers and kiosks over HTTP."""

from __future__ import annotations

from fastapi.testclient import TestClient

from commonid.api.app import create_app
from commonid.runtime import Runtime

from .flow_helpers import bearer

ADMIN = bearer("admin-secret-for-tests")


def test_admin_creates_rotates_and_disables_a_provider(service_client: TestClient) -> None:
    created = service_client.post(
        "/v1/admin/providers",
        json={"name": "Acme", "allowed_claims": ["did"], "webhook_url": "https://acme.test/h"},
        headers=ADMIN,
    )
    assert created.status_code == 201, created.text
    body = created.json()
    key, provider_id = body["api_key"], body["provider"]["id"]
    assert body["webhook_secret"].startswith("whsec_")
    session = {"mode": "auth", "purpose": "x", "claims": ["did"]}
    assert service_client.post("/v1/sessions", json=session, headers=bearer(key)).status_code == 201

    again = service_client.post("/v1/admin/providers", json={"name": "Acme"}, headers=ADMIN)
    assert again.status_code == 409 and again.json()["code"] == "name_taken"
    listed = service_client.get("/v1/admin/providers", headers=ADMIN).json()
    assert [p["name"] for p in listed] == ["Acme"] and "api_key" not in listed[0]

    rotated = service_client.post(f"/v1/admin/providers/{provider_id}/rotate-key", headers=ADMIN)
    new_key = rotated.json()["api_key"]
    old = service_client.post("/v1/sessions", json=session, headers=bearer(key))
    assert old.status_code == 401
    service_client.post(f"/v1/admin/providers/{provider_id}/disable", headers=ADMIN)
    disabled = service_client.post("/v1/sessions", json=session, headers=bearer(new_key))
    assert disabled.status_code == 403 and disabled.json()["code"] == "account_disabled"
    runtime = service_client.app.state.runtime
    actions = [e.entry for e in runtime.audit.entries(event_type="admin.action")]
    assert len(actions) == 3 and all(provider_id in entry for entry in actions)
    assert key not in "".join(actions) and new_key not in "".join(actions)


def test_admin_needs_the_admin_credential(service_client: TestClient) -> None:
    wrong = service_client.get("/v1/admin/kiosks", headers=bearer("guess"))
    assert wrong.status_code == 401 and wrong.json()["code"] == "unauthenticated"
    kiosk = service_client.post("/v1/admin/kiosks", json={"name": "K"}, headers=ADMIN)
    assert kiosk.status_code == 201 and kiosk.json()["credential"].startswith("cid_kiosk_")
    # A kiosk credential is not an admin credential.
    as_kiosk = service_client.get("/v1/admin/kiosks", headers=bearer(kiosk.json()["credential"]))
    assert as_kiosk.status_code == 401


def test_admin_endpoints_are_off_without_a_configured_credential(
    service_runtime: Runtime,
) -> None:
    service_runtime.settings = service_runtime.settings.model_copy(update={"admin_token": None})
    with TestClient(create_app(runtime=service_runtime)) as client:
        response = client.get("/v1/admin/providers", headers=ADMIN)
    assert response.status_code == 403 and response.json()["code"] == "admin_disabled"
