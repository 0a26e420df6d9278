"""What a client sends is refused at the edge with a 4xx, the same on SQLite and PostgreSQL.

Issue 15, part 1: malformed path ids, NUL characters, out-of-range integers,
unparseable or over-deep JSON and non-JSON bodies were 500s (on PostgreSQL
only, some of them), and a card response to a made-up session id left a row
and an audit entry behind. Each case runs over the real app on both databases.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.testclient import TestClient

from commonid.api.edge import MAX_JSON_DEPTH
from commonid.api.paths import MAX_BIGINT
from commonid.runtime import Runtime
from commonid.store.models import RejectedResponse, Session
from tests.fixtures.service import LiveService, ServiceAccounts

from .flow_helpers import bearer, consent, create_session

ADMIN = "admin-secret-for-tests"
# Answers to a card response need a body that passes the schema.
CARD_BODY = {"auth_certificate": "AAAA", "auth_signature": "AAAA"}
WELL_SHAPED_UNKNOWN_SESSION = "ses_" + "A" * 22


def assert_problem(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["code"] == code and problem["status"] == status
    return problem


def _count(runtime: Runtime, model: type) -> int:
    with runtime.engine.connect() as connection:
        return connection.execute(sa.select(sa.func.count()).select_from(model)).scalar_one()


def _audit_size(runtime: Runtime) -> int:
    assert runtime.audit is not None
    return len(list(runtime.audit.entries()))


def _credential(accounts: ServiceAccounts, who: str) -> dict[str, str]:
    keys = {
        "provider": accounts.provider_a_key,
        "kiosk": accounts.kiosk_credential,
        "admin": ADMIN,
    }
    return bearer(keys[who]) if who in keys else {}


# --- the card response to a session id that is not one -----------------------------


@pytest.mark.parametrize(
    "session_id",
    [
        "0",
        "ses_!",
        "ses_a:b",
        "ses_" + "a" * 37,  # 41 characters: over the VARCHAR(40) of rejected_responses
        "ses_" + "a" * 96,  # 100
        "ses_" + "a" * 97,  # 101: over the audit allow-list's id length too
        "prv_" + "a" * 22,  # another kind of id
    ],
)
def test_card_response_to_a_malformed_session_id_leaves_nothing(
    service_client: TestClient,
    service_accounts: ServiceAccounts,
    service_runtime: Runtime,
    session_id: str,
) -> None:
    audit_before = _audit_size(service_runtime)
    response = service_client.post(
        f"/v1/kiosk/sessions/{session_id}/card-response",
        json=CARD_BODY,
        headers=bearer(service_accounts.kiosk_credential),
    )
    problem = assert_problem(response, 422, "invalid_request")
    assert problem["errors"][0]["loc"] == ["path", "session_id"]
    if len(session_id) > 10:
        assert session_id not in response.text  # never the submitted value
    assert _count(service_runtime, RejectedResponse) == 0
    assert _audit_size(service_runtime) == audit_before


def test_card_response_to_an_unknown_session_is_refused_without_a_record(
    service_client: TestClient, service_accounts: ServiceAccounts, service_runtime: Runtime
) -> None:
    kiosk = bearer(service_accounts.kiosk_credential)
    audit_before = _audit_size(service_runtime)
    for _ in range(3):
        unknown = service_client.post(
            f"/v1/kiosk/sessions/{WELL_SHAPED_UNKNOWN_SESSION}/card-response",
            json=CARD_BODY,
            headers=kiosk,
        )
        assert_problem(unknown, 404, "session_not_found")
    assert _count(service_runtime, RejectedResponse) == 0
    assert _audit_size(service_runtime) == audit_before

    # A real session's refusal is still recorded: consented at kiosk 1, answered at kiosk 2.
    session = create_session(service_client, service_accounts.provider_a_key, mode="auth")
    consent(service_client, service_accounts.kiosk_credential, session)
    audit_before = _audit_size(service_runtime)
    foreign = service_client.post(
        f"/v1/kiosk/sessions/{session['id']}/card-response",
        json=CARD_BODY,
        headers=bearer(service_accounts.other_kiosk_credential),
    )
    assert_problem(foreign, 404, "session_not_found")
    assert _count(service_runtime, RejectedResponse) == 1
    assert service_runtime.audit is not None
    logged = [entry.event_type for entry in service_runtime.audit.entries()][audit_before:]
    assert logged == ["card_response.rejected"]


# --- NUL characters and lone surrogates ----------------------------------------------

JSON = {"content-type": "application/json"}


@pytest.mark.parametrize(
    ("who", "method", "path", "body"),
    [
        ("provider", "POST", "/v1/sessions", {"mode": "auth", "purpose": "a\u0000b"}),
        ("provider", "POST", "/v1/sessions", b'{"mode": "auth", "purpose": "a\\ud800b"}'),
        ("provider", "POST", "/v1/sessions", b'{"mode": "auth", "purpose": "\\udc00"}'),
        ("admin", "POST", "/v1/admin/providers", {"name": "Acme\u0000"}),
        ("admin", "POST", "/v1/admin/kiosks", {"name": "\u0000"}),
        ("provider", "POST", "/v1/credentials/verify", {"credential": {"id": "a\u0000"}}),
        ("provider", "POST", "/v1/credentials/verify", {"credential": {"a\u0000": 1}}),
        ("provider", "GET", "/v1/sessions/ses_%00x", None),
        ("kiosk", "GET", "/v1/kiosk/sessions/AB%00CD", None),
        ("kiosk", "POST", "/v1/kiosk/sessions/ses_%00x/card-response", CARD_BODY),
        ("kiosk", "POST", "/v1/kiosk/sessions/ses_%00x/consent", {}),
        ("provider", "GET", "/v1/identities/a%00b", None),
        ("provider", "DELETE", "/v1/identities/a%00b", None),
        ("anyone", "GET", "/v1/status-lists/a%00", None),
        ("admin", "POST", "/v1/admin/providers/prv_a%00/disable", None),
        ("admin", "GET", "/v1/audit/entries?q=ses_%00", None),
        ("admin", "GET", "/v1/audit/entries?type=a%00", None),
    ],
)
def test_nul_and_lone_surrogates_are_refused_before_the_database(
    service_client: TestClient,
    service_accounts: ServiceAccounts,
    service_runtime: Runtime,
    who: str,
    method: str,
    path: str,
    body: Any,
) -> None:
    headers = _credential(service_accounts, who)
    if isinstance(body, bytes):
        response = service_client.request(method, path, content=body, headers=headers | JSON)
    else:
        response = service_client.request(method, path, json=body, headers=headers)
    problem = assert_problem(response, 422, "invalid_request")
    assert problem["errors"][0]["type"] in ("text_invalid", "string_pattern_mismatch")
    assert _count(service_runtime, Session) == 0
    assert _count(service_runtime, RejectedResponse) == 0


# --- integers beyond BIGINT ------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        f"/v1/audit/entries/{MAX_BIGINT + 1}",
        f"/v1/audit/entries/{MAX_BIGINT + 1}/proof",
        f"/v1/audit/entries/{10**30}",
        "/v1/audit/entries/-1",
        f"/v1/audit/entries?before={MAX_BIGINT + 1}",
        f"/v1/audit/entries/0/proof?tree_size={MAX_BIGINT + 1}",
        f"/v1/audit/consistency?first=1&second={MAX_BIGINT + 1}",
    ],
)
def test_audit_indexes_beyond_bigint_are_refused(
    service_client: TestClient, service_accounts: ServiceAccounts, path: str
) -> None:
    create_session(service_client, service_accounts.provider_a_key, mode="auth")
    signed = service_client.post("/v1/audit/checkpoint", headers=bearer(ADMIN))
    assert signed.status_code == 201, signed.text
    assert_problem(service_client.get(path, headers=bearer(ADMIN)), 422, "invalid_request")
    # The largest index there can be is an ordinary miss.
    largest = service_client.get(f"/v1/audit/entries/{MAX_BIGINT}", headers=bearer(ADMIN))
    assert_problem(largest, 404, "not_found")


# --- request bodies ------------------------------------------------------------------------


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def _deep_credential(arrays: int) -> str:
    return '{"credential": {"a": ' + _nested(arrays) + "}}"


def _deep_purpose(arrays: int) -> str:
    return '{"mode": "auth", "purpose": ' + _nested(arrays) + "}"


@pytest.mark.parametrize(
    ("path", "content", "content_type", "status", "code"),
    [
        ("/v1/sessions", b'{"mode": "auth", "purpose": "\xff\xfe"}', "application/json", 400,
         "malformed_json"),
        ("/v1/sessions", '{"mode": "auth", "purpose": "x"}'.encode("utf-16"), "application/json",
         400, "malformed_json"),
        ("/v1/sessions", _deep_purpose(5000), "application/json",
         400, "malformed_json"),
        ("/v1/credentials/verify", _deep_credential(5000),
         "application/json", 400, "malformed_json"),
        ("/v1/credentials/verify", _deep_credential(MAX_JSON_DEPTH),
         "application/json", 400, "malformed_json"),
        ("/v1/sessions", '{"mode": "auth", "purpose": "x"}', "text/plain", 415,
         "unsupported_media_type"),
        ("/v1/sessions", '{"mode": "auth", "purpose": "x"}', None, 415, "unsupported_media_type"),
        ("/v1/credentials/verify", '{"credential": "x"}', "text/plain", 415,
         "unsupported_media_type"),
        ("/v1/documents/verify", '{"credential": "x"}', "application/json", 415,
         "unsupported_media_type"),
    ],
)  # fmt: skip
def test_bodies_the_api_does_not_read_get_their_documented_codes(
    service_client: TestClient,
    service_accounts: ServiceAccounts,
    service_runtime: Runtime,
    path: str,
    content: str | bytes,
    content_type: str | None,
    status: int,
    code: str,
) -> None:
    headers = bearer(service_accounts.provider_a_key)
    if content_type is not None:
        headers["content-type"] = content_type
    response = service_client.post(path, content=content, headers=headers)
    assert_problem(response, status, code)
    assert _count(service_runtime, Session) == 0


def test_json_at_the_depth_limit_is_read(
    service_client: TestClient, service_accounts: ServiceAccounts
) -> None:
    # {"credential": {"a": [...]}}: two objects around the arrays.
    document = _deep_credential(MAX_JSON_DEPTH - 2)
    response = service_client.post(
        "/v1/credentials/verify",
        content=document,
        headers=bearer(service_accounts.provider_a_key) | JSON,
    )
    assert response.status_code == 200, response.text
    assert response.json()["valid"] is False


# --- the OpenAPI document shows the limits ---------------------------------------------


def test_every_path_parameter_and_request_string_is_bounded_in_openapi(
    service_client: TestClient,
) -> None:
    openapi = service_client.get("/openapi.json").json()
    for path, operations in openapi["paths"].items():
        for method, operation in operations.items():
            for parameter in operation.get("parameters", []):
                if parameter["in"] != "path":
                    continue
                schema = parameter["schema"]
                if schema["type"] == "string":
                    assert "pattern" in schema and "maxLength" in schema, (method, path)
                else:
                    assert schema["type"] == "integer", (method, path)
                    assert schema["minimum"] == 0 and schema["maximum"] == MAX_BIGINT
    for name, schema in openapi["components"]["schemas"].items():
        if name.endswith(("Request", "Create", "Response", "Consent")):
            for field, prop in schema.get("properties", {}).items():
                for option in prop.get("anyOf", [prop]):
                    if option.get("type") == "string" and "enum" not in option:
                        assert "maxLength" in option or "pattern" in option, (name, field)


# --- the connection outlives refusals and faults (live HTTP, one keep-alive connection) ---


def _local_port(response: httpx.Response) -> int:
    return response.extensions["network_stream"].get_extra_info("client_addr")[1]


@pytest.fixture
def faulty_app(service_app: FastAPI) -> FastAPI:
    """The service with one route that fails as a bug would (mounted before it starts)."""

    def fault() -> None:
        raise RuntimeError("a bug")

    service_app.add_api_route("/test-only/fault", fault, include_in_schema=False)
    return service_app


def test_refusals_and_faults_keep_the_keep_alive_connection(
    faulty_app: FastAPI, live_service: LiveService, service_accounts: ServiceAccounts
) -> None:
    kiosk = bearer(service_accounts.kiosk_credential)
    provider = bearer(service_accounts.provider_a_key)
    requests: list[tuple[str, str, dict[str, Any], int, str]] = [
        ("POST", "/v1/kiosk/sessions/0/card-response", {"json": CARD_BODY, "headers": kiosk},
         422, "invalid_request"),
        ("POST", f"/v1/kiosk/sessions/ses_{'a' * 60}/card-response",
         {"json": CARD_BODY, "headers": kiosk}, 422, "invalid_request"),
        ("POST", "/v1/sessions", {"json": {"mode": "auth", "purpose": "\u0000"},
         "headers": provider}, 422, "invalid_request"),
        ("GET", f"/v1/audit/entries/{MAX_BIGINT + 1}", {"headers": bearer(ADMIN)}, 422,
         "invalid_request"),
        ("POST", "/v1/sessions", {"content": _nested(5000), "headers": provider | JSON}, 400,
         "malformed_json"),
        ("POST", "/v1/sessions", {"content": b"{}", "headers": provider | {
            "content-type": "text/plain"}}, 415, "unsupported_media_type"),
        ("GET", "/test-only/fault", {}, 500, "internal_error"),
    ]  # fmt: skip
    with httpx.Client(base_url=live_service.base_url, timeout=10) as client:
        port = _local_port(client.get("/healthz"))
        for method, path, options, status, code in requests:
            assert_problem(client.request(method, path, **options), status, code)
            after = client.get("/healthz")
            assert after.status_code == 200
            assert _local_port(after) == port, f"the connection was dropped after {path}"


def test_a_failed_audit_write_on_the_rejection_path_still_answers_the_refusal(
    live_service: LiveService, service_accounts: ServiceAccounts, service_runtime: Runtime
) -> None:
    with httpx.Client(base_url=live_service.base_url, timeout=10) as client:
        created = client.post(
            "/v1/sessions",
            json={"mode": "auth", "purpose": "x"},
            headers=bearer(service_accounts.provider_a_key),
        ).json()
        kiosk = bearer(service_accounts.kiosk_credential)
        assert client.get(f"/v1/kiosk/sessions/{created['user_code']}", headers=kiosk).is_success
        url = f"/v1/kiosk/sessions/{created['id']}"
        assert client.post(f"{url}/consent", json={}, headers=kiosk).is_success
        port = _local_port(client.get("/healthz"))
        # The audit log's table goes away under the running service: a real database fault.
        with service_runtime.engine.begin() as connection:
            connection.execute(sa.text("ALTER TABLE audit_entries RENAME TO audit_entries_gone"))
        refused = client.post(
            f"{url}/card-response",
            json=CARD_BODY,
            headers=bearer(service_accounts.other_kiosk_credential),
        )
        assert_problem(refused, 404, "session_not_found")
        assert _local_port(client.get("/healthz")) == port
    # Recording it failed as a whole (one transaction): no row without its audit entry.
    assert _count(service_runtime, RejectedResponse) == 0
