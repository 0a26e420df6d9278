"""The service refuses to sign a checkpoint of a log that contradicts one it signed (a fork)."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
import structlog
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import SecretStr

from commonid.api.problems import install_problem_handlers
from commonid.audit.api import AuditAccess, install_audit
from commonid.audit.checkpoint import read_checkpoint_unverified
from commonid.audit.log import AuditForkError, AuditLog
from tests.audit import rfc9162
from tests.audit.conftest import session_event

ADMIN = "adm_test-admin-token"


def _execute(log: AuditLog, statement: str, **parameters) -> None:
    with log._sessions.begin() as db:
        db.execute(sa.text(statement), parameters)


def _fill(log: AuditLog, clock, sizes=(10, 25, 40)) -> None:
    written = 0
    for size in sizes:
        log.append_many([session_event(n) for n in range(written, size)])
        written = size
        clock.advance(60)
        log.checkpoint()


def _roll_back_entries(log: AuditLog, size: int) -> None:
    """What a restored backup of the entries looks like: the log ends at ``size``."""
    _execute(log, "DELETE FROM audit_entries WHERE idx >= :size", size=size)
    _execute(log, "UPDATE audit_head SET size = :size", size=size)


def _grow_differently(log: AuditLog, start: int, stop: int) -> None:
    """New events after a rollback: the same indexes as before, other entries."""
    log.append_many([session_event(n + 1000) for n in range(start, stop)])


def _checkpoint_count(log: AuditLog) -> int:
    return len(log.checkpoints())


def _entries(log: AuditLog) -> list[bytes]:
    return [logged.entry.encode() for logged in log.entries()]


def _restarted(log: AuditLog, signer, clock, **options) -> AuditLog:
    return AuditLog(log._sessions, signer, clock=clock, checkpoint_interval=None, **options)


def test_an_honest_log_is_checkpointed_again_and_again(audit_log: AuditLog, clock, signer) -> None:
    audit_log.checkpoint()  # the empty log
    _fill(audit_log, clock)
    clock.advance(60)
    audit_log.checkpoint()  # same size again: consistent with itself
    restarted = _restarted(audit_log, signer, clock)
    restarted.append_many([session_event(n) for n in range(40, 47)])
    assert restarted.checkpoint().tree_size == 47
    assert restarted.fork is None
    # Every signed root is the reference MTH of that prefix of the stored entries.
    entries = _entries(audit_log)
    for stored in audit_log.checkpoints():
        assert stored.root_hash == rfc9162.mth(entries[: stored.tree_size])


@pytest.mark.parametrize("process", ["restarted", "same_process"])
def test_after_a_rollback_the_service_refuses_to_sign_a_fork(
    audit_log: AuditLog, clock, signer, process: str
) -> None:
    _fill(audit_log, clock)
    signed = audit_log.latest_checkpoint()
    _roll_back_entries(audit_log, 30)
    _grow_differently(audit_log, 30, 45)
    # Independent check that this is a fork: the log's first 40 entries no longer
    # hash to the root signed at size 40.
    assert rfc9162.mth(_entries(audit_log)[:40]) != signed.root_hash

    log = _restarted(audit_log, signer, clock) if process == "restarted" else audit_log
    before = _checkpoint_count(log)
    with structlog.testing.capture_logs() as captured, pytest.raises(AuditForkError) as refused:
        log.checkpoint()
    assert _checkpoint_count(log) == before  # nothing signed, nothing stored
    assert refused.value.signed.tree_size == 40 and refused.value.log_size == 45
    assert "not an extension of the checkpoint of size 40" in refused.value.detail
    assert log.fork is refused.value
    (event,) = [e for e in captured if e["event"] == "audit_checkpoint_refused"]
    assert event["log_level"] == "error" and event["reason"] == "fork"
    assert event["signed_tree_size"] == 40 and event["log_tree_size"] == 45
    # It stays refused: the periodic path does not sign it either.
    clock.advance(3600)
    log.checkpoint_interval = None
    with pytest.raises(AuditForkError):
        log.checkpoint()
    assert _checkpoint_count(log) == before


def test_a_log_shorter_than_its_signed_checkpoint_is_refused(
    audit_log: AuditLog, clock, signer
) -> None:
    _fill(audit_log, clock)
    _roll_back_entries(audit_log, 31)
    with pytest.raises(AuditForkError, match="holds 31 entries but a checkpoint of 40"):
        _restarted(audit_log, signer, clock).checkpoint()
    assert _checkpoint_count(audit_log) == 3


def test_a_whole_database_restored_from_backup_is_caught_by_the_kept_checkpoint(
    audit_log: AuditLog, clock, signer, tmp_path: Path
) -> None:
    """Entries and checkpoints roll back together; the file outside the database does not."""
    state = tmp_path / "data" / "audit-signed-checkpoint.note"
    log = _restarted(audit_log, signer, clock, signed_state=state)
    _fill(log, clock)
    assert read_checkpoint_unverified(state.read_text()).tree_size == 40
    # The backup was taken at size 25: its checkpoints end at 25 too.
    _roll_back_entries(log, 25)
    _execute(log, "DELETE FROM audit_checkpoints WHERE tree_size > 25")
    _grow_differently(log, 25, 45)

    # Without the kept checkpoint nothing contradicts the restored database...
    assert rfc9162.mth(_entries(log)[:25]) == log.latest_checkpoint().root_hash
    # ...with it, the service refuses after its restart.
    restarted = _restarted(log, signer, clock, signed_state=state)
    with pytest.raises(AuditForkError) as refused:
        restarted.checkpoint()
    assert refused.value.anchor == "signed-state file"
    assert _checkpoint_count(log) == 2
    assert read_checkpoint_unverified(state.read_text()).tree_size == 40


def test_the_checkpoint_api_answers_409_audit_log_fork(audit_log: AuditLog, clock, signer) -> None:
    _fill(audit_log, clock)
    app = FastAPI()
    install_problem_handlers(app)
    install_audit(app, AuditAccess(audit_log, [signer.verifier()], None, SecretStr(ADMIN)))
    client = TestClient(app)
    headers = {"Authorization": f"Bearer {ADMIN}"}
    assert client.post("/v1/audit/checkpoint", headers=headers).status_code == 201
    _roll_back_entries(audit_log, 30)
    _grow_differently(audit_log, 30, 45)
    response = client.post("/v1/audit/checkpoint", headers=headers)
    assert response.status_code == 409
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["code"] == "audit_log_fork"
    assert problem["signed_tree_size"] == 40 and problem["log_tree_size"] == 45
    assert _checkpoint_count(audit_log) == 4


@pytest.fixture
def forked_service_env(tmp_path: Path, database_url: str) -> dict[str, str]:
    """The CLI's view of a service whose log was rolled back and grew differently."""
    from sqlalchemy.orm import sessionmaker

    from commonid.audit.service import SIGNED_STATE_FILE, checkpoint_signer
    from commonid.store.database import create_engine, upgrade
    from did.keys import IssuerKeyring

    upgrade(database_url)
    key_file = tmp_path / "issuer.json"
    data_dir = tmp_path / "data"
    engine = create_engine(database_url)
    log = AuditLog(
        sessionmaker(engine),
        checkpoint_signer(IssuerKeyring.open(key_file), "cli.test/audit"),
        signed_state=data_dir / SIGNED_STATE_FILE,
    )
    log.append_many([session_event(n) for n in range(20)])
    log.checkpoint()
    _roll_back_entries(log, 12)
    _grow_differently(log, 12, 24)
    engine.dispose()
    return {
        "COMMONID_DATABASE_URL": database_url,
        "COMMONID_DATA_DIR": str(data_dir),
        "COMMONID_ISSUER_KEY_FILE": str(key_file),
        "COMMONID_AUDIT_ORIGIN": "cli.test/audit",
    }


def test_the_checkpoint_command_refuses_a_fork(forked_service_env: dict[str, str]) -> None:
    from typer.testing import CliRunner

    from commonid.audit.cli import audit_app

    refused = CliRunner().invoke(audit_app, ["checkpoint"], env=forked_service_env)
    assert refused.exit_code == 3, refused.output
    assert "refused: audit log fork" in refused.output
    assert "cli.test/audit\n24\n" not in refused.output  # no note printed


def test_the_running_service_counts_the_refusal_and_reports_it_in_health(
    service_runtime, service_client: TestClient
) -> None:
    log = service_runtime.audit
    log.append_many([session_event(n) for n in range(20)])
    log.checkpoint()
    assert service_client.get("/healthz").json()["status"] == "ok"
    _roll_back_entries(log, 12)
    _grow_differently(log, 12, 24)

    headers = {"Authorization": "Bearer admin-secret-for-tests"}
    response = service_client.post("/v1/audit/checkpoint", headers=headers)
    assert response.status_code == 409 and response.json()["code"] == "audit_log_fork"
    metrics = service_client.get("/metrics").text
    assert 'commonid_audit_checkpoints_refused_total{reason="fork"} 1.0' in metrics
    health = service_client.get("/healthz").json()
    assert health["status"] == "degraded" and health["audit"]["status"] == "fork"
