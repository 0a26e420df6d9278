"""The OpenAPI document says who may call each operation, what each returns and takes, and
the limits the service enforces."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from commonid.api.openapi import SECURITY_SCHEMES
from tests.fixtures.service import ServiceAccounts

from .flow_helpers import bearer

PUBLIC = {
    "/.well-known/did.json",
    "/.well-known/openid-configuration",
    "/oidc/jwks",
    "/healthz",
    "/metrics",
    "/v1/status-lists/{list_id}",
    # The wallet door: metadata, the pre-authorized code grant, nonces, token status
    # lists and OpenID4VP's request objects and answers (docs/wallet.md).
    "/.well-known/openid-credential-issuer",
    "/.well-known/oauth-authorization-server",
    "/.well-known/jwt-vc-issuer",
    "/oid4vci/token",
    "/oid4vci/nonce",
    "/v1/token-status-lists/{list_id}",
    "/oid4vp/requests/{request_id}",
    "/oid4vp/response",
}


@pytest.fixture
def openapi(service_client: TestClient) -> dict:
    return service_client.get("/openapi.json").json()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_every_operation_but_the_public_ones_names_its_bearer_scheme(openapi: dict) -> None:
    assert openapi["components"]["securitySchemes"] == SECURITY_SCHEMES
    for path, operations in openapi["paths"].items():
        for method, operation in operations.items():
            if path in PUBLIC:
                assert "security" not in operation, (method, path)
                continue
            names = [name for requirement in operation["security"] for name in requirement]
            assert names and set(names) <= set(SECURITY_SCHEMES), (method, path)
    sessions = openapi["paths"]["/v1/sessions"]["post"]["security"]
    assert sessions == [{"providerKey": []}]
    checkpoint = openapi["paths"]["/v1/audit/checkpoint"]
    assert checkpoint["post"]["security"] == [{"adminToken": []}]
    assert {"reviewerToken": []} in checkpoint["get"]["security"]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_content_types_are_the_ones_served(
    openapi: dict, service_client: TestClient, service_accounts: ServiceAccounts
) -> None:
    def declared(path: str, method: str = "get") -> set[str]:
        return set(openapi["paths"][path][method]["responses"]["200"]["content"])

    served = service_client.get("/metrics").headers["content-type"]
    assert declared("/metrics") == {served}
    assert declared("/v1/audit/export.jsonl") == {"application/jsonl"}
    assert declared("/v1/audit/export.csv") == {"text/csv"}
    for path in ("/v1/documents/verify", "/v1/kiosk/sessions/{session_id}/document"):
        body = openapi["paths"][path]["post"]["requestBody"]
        assert body["required"] is True
        assert body["content"] == {
            "application/pdf": {"schema": {"type": "string", "format": "binary"}}
        }


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_long_poll_maximum_stated_is_the_one_enforced(
    openapi: dict, service_client: TestClient, service_accounts: ServiceAccounts
) -> None:
    runtime = service_client.app.state.runtime
    (wait,) = [
        parameter
        for parameter in openapi["paths"]["/v1/sessions/{session_id}"]["get"]["parameters"]
        if parameter["name"] == "wait"
    ]
    assert wait["schema"]["maximum"] == runtime.settings.max_long_poll_seconds == 30
    headers = bearer(service_accounts.provider_a_key)
    over = service_client.get("/v1/sessions/ses_missing?wait=31", headers=headers)
    assert over.status_code == 422 and over.json()["code"] == "invalid_request"
    assert "at most 30" in over.json()["detail"]
    at_most = service_client.get("/v1/sessions/ses_missing?wait=0", headers=headers)
    assert at_most.status_code == 404
