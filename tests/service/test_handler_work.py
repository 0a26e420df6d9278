"""Where the hot endpoints' database work runs: on the event loop (default) or in threads."""

from __future__ import annotations

import asyncio

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from commonid.api.app import create_app
from commonid.runtime import Runtime
from jpki.testca import IssuedPerson
from tests.fixtures.service import ServiceAccounts

from .flow_helpers import CardKeys, full_flow


def _statements_on_the_loop(runtime: Runtime) -> list[tuple[str, bool]]:
    """Each SQL statement run from now on, and whether an event loop's thread ran it."""
    seen: list[tuple[str, bool]] = []

    @sa.event.listens_for(runtime.engine, "before_cursor_execute")
    def _record(_conn: object, _cursor: object, statement: str, *_rest: object) -> None:
        try:
            asyncio.get_running_loop()
            seen.append((statement, True))
        except RuntimeError:
            seen.append((statement, False))

    return seen


@pytest.mark.parametrize("inline", [True, False])
def test_a_flow_runs_its_statements_where_the_setting_says(
    service_runtime: Runtime,
    service_accounts: ServiceAccounts,
    demo_person: IssuedPerson,
    inline: bool,
) -> None:
    service_runtime.settings.inline_handler_work = inline
    seen = _statements_on_the_loop(service_runtime)
    with TestClient(create_app(runtime=service_runtime)) as client:
        flow_result = full_flow(
            client,
            service_accounts.provider_a_key,
            service_accounts.kiosk_credential,
            CardKeys(demo_person),
            mode="auth",
            claims=["did"],
        )
    assert flow_result["status"] == "verified"
    # The session's INSERT (create), its consent and card-response UPDATEs, the audit
    # entries, and the provider's result read.
    hot = [
        on_loop
        for statement, on_loop in seen
        if statement.startswith(("INSERT INTO sessions", "UPDATE sessions"))
        or "INSERT INTO audit_entries" in statement  # one statement on PostgreSQL
    ]
    assert len(hot) >= 5
    assert all(hot) if inline else not any(hot)
