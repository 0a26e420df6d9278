"""Schemathesis, a real API fuzzer, against the service's own OpenAPI document.

Every operation gets generated requests (a bounded, derandomized number, so CI is
repeatable) with the credential its security scheme names, on SQLite and on PostgreSQL,
and every answer must be within the document: no 5xx, a status code and content type it
declares, a body its schema allows. 40 examples per operation; measured on the 2-core
machine: 25 s for both databases.
"""

from __future__ import annotations

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from commonid.api.openapi import callers
from commonid.audit.report_signing import create_test_organisation
from commonid.runtime import Runtime
from tests.fixtures.service import ServiceAccounts

EXAMPLES_PER_OPERATION = 40
CHECKS = [
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
    content_type_conformance,
]


@schemathesis.serializer("application/pdf")
def _pdf_body(_context: object, value: object) -> bytes:
    """The PDF endpoints take the file itself: generated binary strings are sent as they are
    (they are no PDF, which is what a fuzzer should try)."""
    return value if isinstance(value, bytes) else str(value).encode()


def _credential(case: schemathesis.Case, accounts: ServiceAccounts) -> dict[str, str]:
    """The credential of the first scheme the operation names (the admin token stands in
    for the reviewer's, which the service accepts for the audit API)."""
    schemes = callers(case.method.lower(), case.operation.path)
    if not schemes or schemes[0].startswith(("oidc", "wallet")):
        # The OpenID and wallet endpoints take what the fuzzer makes of their own
        # credentials (tests/service/test_oidc.py and tests/wallet drive them with real ones).
        return {}
    token = {
        "providerKey": accounts.provider_a_key,
        "kioskCredential": accounts.kiosk_credential,
        "adminToken": "admin-secret-for-tests",
        "reviewerToken": "admin-secret-for-tests",
    }[schemes[0]]
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.slow
def test_every_answer_is_within_the_openapi_document(
    service_client: TestClient, service_accounts: ServiceAccounts, service_runtime: Runtime
) -> None:
    # A service as deployed signs its record exports (without the organisation's material
    # they are 503, tests/service/test_records.py): fuzz the configured path.
    create_test_organisation(service_runtime.settings.effective_report_signing_dir)
    # Each operation in turn, in one test per database (schemathesis's pytest plugin
    # builds a service per operation, and its fixture loader does not run on pytest 9).
    schema = schemathesis.openapi.from_asgi("/openapi.json", service_client.app)
    failures: dict[str, str] = {}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 30

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def fuzz(case: schemathesis.Case) -> None:
            case.call_and_validate(headers=_credential(case, service_accounts), checks=CHECKS)

        try:
            fuzz()
        except BaseExceptionGroup as failure:  # schemathesis's FailureGroup: try them all
            failures[operation.label] = str(failure)[:1500]
    assert failures == {}
