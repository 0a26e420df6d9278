"""The /v1/audit API: reviewer access, proofs that verify against signed checkpoints."""

from __future__ import annotations

import base64
import json

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import SecretStr

from commonid.api.problems import install_problem_handlers
from commonid.audit.api import AuditAccess, install_audit
from commonid.audit.checkpoint import NoteVerifier, open_checkpoint
from commonid.audit.log import AuditLog
from commonid.audit.merkle import verify_consistency, verify_inclusion
from tests.audit import rfc9162
from tests.audit.conftest import session_event

REVIEWER = "rvw_test-reviewer-token"
ADMIN = "adm_test-admin-token"


@pytest.fixture
def client(audit_log: AuditLog, signer) -> TestClient:
    app = FastAPI()
    install_problem_handlers(app)
    install_audit(
        app,
        AuditAccess(audit_log, [signer.verifier()], SecretStr(REVIEWER), SecretStr(ADMIN)),
    )
    return TestClient(app)


def _as(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_only_reviewers_read_and_only_admins_checkpoint(client: TestClient, audit_log) -> None:
    audit_log.append("admin.action", action="provider_added")
    assert client.get("/v1/audit/checkpoints").status_code == 401
    assert client.get("/v1/audit/checkpoints", headers=_as("wrong")).status_code == 401
    assert client.post("/v1/audit/checkpoint", headers=_as(REVIEWER)).status_code == 401
    response = client.get("/v1/audit/checkpoint", headers=_as(REVIEWER))
    assert response.status_code == 404
    assert response.json()["code"] == "audit_no_checkpoint"
    assert client.post("/v1/audit/checkpoint", headers=_as(ADMIN)).status_code == 201
    assert client.get("/v1/audit/checkpoint", headers=_as(REVIEWER)).json()["tree_size"] == 1


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_inclusion_and_consistency_proofs_verify_against_the_signed_notes(
    client: TestClient, audit_log: AuditLog
) -> None:
    audit_log.append_many([session_event(n) for n in range(6)])
    first = client.post("/v1/audit/checkpoint", headers=_as(ADMIN)).json()
    audit_log.append_many([session_event(n) for n in range(6, 23)])
    client.post("/v1/audit/checkpoint", headers=_as(ADMIN))
    keys = client.get("/v1/audit/verifier-keys", headers=_as(REVIEWER)).json()
    verifiers = [NoteVerifier.parse(key) for key in keys["keys"]]
    note = client.get("/v1/audit/checkpoint/note", headers=_as(REVIEWER)).text
    signed = open_checkpoint(note, verifiers)
    assert signed.tree_size == 23

    proof = client.get("/v1/audit/entries/13/proof", headers=_as(REVIEWER)).json()
    entry = client.get("/v1/audit/entries/13", headers=_as(REVIEWER)).json()
    path = [base64.b64decode(node) for node in proof["inclusion_path"]]
    leaf = rfc9162.mth([entry["entry"].encode()])  # a one-leaf tree's root is its leaf hash
    assert base64.b64decode(proof["leaf_hash"]) == leaf
    assert verify_inclusion(13, 23, leaf, path, signed.root_hash)
    assert proof["checkpoint"]["note"] == note

    consistency = client.get(
        "/v1/audit/consistency", params={"first": first["tree_size"]}, headers=_as(REVIEWER)
    ).json()
    first_signed = open_checkpoint(first["note"], verifiers)
    assert verify_consistency(
        6,
        23,
        first_signed.root_hash,
        signed.root_hash,
        [base64.b64decode(node) for node in consistency["consistency_path"]],
    )
    bad = client.get("/v1/audit/consistency?first=30&second=23", headers=_as(REVIEWER))
    assert bad.status_code == 422 and bad.json()["code"] == "audit_bad_tree_size"


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_search_and_exports(client: TestClient, audit_log: AuditLog) -> None:
    audit_log.append_many([session_event(n) for n in range(9)])
    audit_log.checkpoint()
    found = client.get(
        "/v1/audit/entries", params={"q": "ses_000004"}, headers=_as(REVIEWER)
    ).json()
    assert [e["index"] for e in found["entries"]] == [4]
    completed = client.get(
        "/v1/audit/entries", params={"type": "session.completed"}, headers=_as(REVIEWER)
    ).json()
    assert [e["index"] for e in completed["entries"]] == [8, 5, 2]
    lines = client.get("/v1/audit/export.jsonl", headers=_as(REVIEWER)).text.splitlines()
    assert len(lines) == 10 and "checkpoint" in json.loads(lines[-1])
    csv_text = client.get("/v1/audit/export.csv", headers=_as(REVIEWER)).text
    assert csv_text.splitlines()[0] == "index,time,type,leaf_hash,data"
    assert len(csv_text.splitlines()) == 10
