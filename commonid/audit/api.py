"""HTTP API of the audit log under /v1/audit, for the read-only reviewer role.

Reviewers present ``Authorization: Bearer <reviewer token>``
(COMMONID_AUDIT_REVIEWER_TOKEN); the admin token is accepted too and is the
only one that may ask for a checkpoint on demand. Hashes travel as base64
(as in the checkpoint note); proofs are RFC 9162 PATH / PROOF lists.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.responses import PlainTextResponse, StreamingResponse
from pydantic import SecretStr

from commonid.api.paths import MAX_BIGINT, AuditIndex
from commonid.audit.checkpoint import NoteVerifier
from commonid.audit.export import entry_line, export_csv
from commonid.audit.log import AuditForkError, AuditLog, LoggedEntry, StoredCheckpoint
from commonid.audit.merkle import ProofError, hash_text
from commonid.problems import Problem

NO_CHECKPOINT = "audit_no_checkpoint"
LOG_FORK = "audit_log_fork"
BAD_TREE_SIZE = "audit_bad_tree_size"


@dataclass(frozen=True)
class AuditAccess:
    """What the audit endpoints need, kept on ``app.state.audit``."""

    log: AuditLog
    verifiers: list[NoteVerifier]
    reviewer_token: SecretStr | None
    admin_token: SecretStr | None = None


def install_audit(app: FastAPI, access: AuditAccess) -> None:
    app.state.audit = access
    app.include_router(router)


def _access(request: Request) -> AuditAccess:
    return request.app.state.audit


def _presented(request: Request) -> bytes:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Problem(
            "unauthenticated",
            "send the reviewer credential as 'Authorization: Bearer <token>'",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return hashlib.sha256(token.strip().encode()).digest()


def _matches(presented: bytes, configured: SecretStr | None) -> bool:
    if configured is None:
        return False
    expected = hashlib.sha256(configured.get_secret_value().encode()).digest()
    return hmac.compare_digest(presented, expected)


def reviewer(request: Request) -> AuditAccess:
    access = _access(request)
    presented = _presented(request)
    if not (_matches(presented, access.reviewer_token) or _matches(presented, access.admin_token)):
        raise Problem("unauthenticated", "unknown reviewer credential")
    return access


def admin(request: Request) -> AuditAccess:
    access = _access(request)
    if not _matches(_presented(request), access.admin_token):
        raise Problem("unauthenticated", "an on-demand checkpoint needs the admin credential")
    return access


Reviewer = Annotated[AuditAccess, Depends(reviewer)]
Admin = Annotated[AuditAccess, Depends(admin)]

router = APIRouter(prefix="/v1/audit", tags=["audit"])


def checkpoint_view(stored: StoredCheckpoint) -> dict[str, Any]:
    return {
        "tree_size": stored.tree_size,
        "root_hash": hash_text(stored.root_hash),
        "time": stored.created_at,
        "note": stored.note,
    }


def entry_view(logged: LoggedEntry) -> dict[str, Any]:
    return {
        "index": logged.index,
        "leaf_hash": hash_text(logged.leaf_hash),
        "entry": logged.entry,
        "event": json.loads(logged.entry),
    }


def _latest(access: AuditAccess) -> StoredCheckpoint:
    latest = access.log.latest_checkpoint()
    if latest is None:
        raise Problem(NO_CHECKPOINT, "no checkpoint has been signed yet", status=404)
    return latest


@router.get("/checkpoint")
def latest_checkpoint(access: Reviewer) -> dict[str, Any]:
    """The latest signed checkpoint (C2SP signed note) and what it says."""
    return checkpoint_view(_latest(access))


@router.get("/checkpoint/note", response_class=PlainTextResponse)
def latest_checkpoint_note(access: Reviewer) -> str:
    """The latest checkpoint as the bare signed note, for signed-note tools."""
    return _latest(access).note


@router.post("/checkpoint", status_code=201)
def new_checkpoint(access: Admin) -> dict[str, Any]:
    """Sign a checkpoint of the log as it is now; 409 ``audit_log_fork`` when the log
    does not extend a checkpoint the service already signed (nothing is signed)."""
    try:
        return checkpoint_view(access.log.checkpoint())
    except AuditForkError as fork:
        raise Problem(
            LOG_FORK,
            f"refused to sign: {fork.detail}",
            status=409,
            title="The audit log contradicts a checkpoint the service signed",
            extra={
                "signed_tree_size": fork.signed.tree_size,
                "signed_root_hash": hash_text(fork.signed.root_hash),
                "log_tree_size": fork.log_size,
            },
        ) from fork


@router.get("/checkpoints")
def all_checkpoints(access: Reviewer) -> list[dict[str, Any]]:
    return [checkpoint_view(stored) for stored in access.log.checkpoints()]


@router.get("/verifier-keys")
def verifier_keys(access: Reviewer) -> dict[str, Any]:
    """The signed-note verifier keys of every checkpoint signing key, retired ones included."""
    return {"origin": access.log.origin, "keys": [v.verifier_key() for v in access.verifiers]}


@router.get("/entries")
def search_entries(
    access: Reviewer,
    event_type: Annotated[str | None, Query(alias="type", max_length=60)] = None,
    q: Annotated[str | None, Query(max_length=100)] = None,
    before: Annotated[int | None, Query(ge=0, le=MAX_BIGINT)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> dict[str, Any]:
    """Newest first; ``q`` matches ids, codes and hashes inside the entry text."""
    entries = list(
        access.log.entries(
            stop=before, event_type=event_type, contains=q, newest_first=True, limit=limit
        )
    )
    return {"entries": [entry_view(logged) for logged in entries]}


@router.get("/entries/{index}")
def one_entry(index: AuditIndex, access: Reviewer) -> dict[str, Any]:
    logged = access.log.entry(index)
    if logged is None:
        raise Problem("not_found", f"no audit entry {index}")
    return entry_view(logged)


@router.get("/entries/{index}/proof")
def inclusion_proof(
    index: AuditIndex,
    access: Reviewer,
    tree_size: Annotated[int | None, Query(ge=1, le=MAX_BIGINT)] = None,
) -> dict[str, Any]:
    """RFC 9162 inclusion proof of entry ``index`` in the tree of ``tree_size``
    (default: the latest checkpoint, whose signed note is returned with it)."""
    checkpoint = access.log.checkpoint_at(tree_size) if tree_size else _latest(access)
    size = tree_size or (checkpoint.tree_size if checkpoint else 0)
    logged = access.log.entry(index)
    if logged is None:
        raise Problem("not_found", f"no audit entry {index}")
    tree = access.log.tree()
    try:
        path = tree.inclusion_proof(index, size)
    except ProofError as error:
        raise Problem(BAD_TREE_SIZE, str(error), status=422) from None
    return {
        "index": index,
        "tree_size": size,
        "leaf_hash": hash_text(logged.leaf_hash),
        "inclusion_path": [hash_text(node) for node in path],
        "root_hash": hash_text(tree.root(size)),
        "checkpoint": checkpoint_view(checkpoint) if checkpoint else None,
    }


@router.get("/consistency")
def consistency_proof(
    access: Reviewer,
    first: Annotated[int, Query(ge=1, le=MAX_BIGINT)],
    second: Annotated[int | None, Query(ge=1, le=MAX_BIGINT)] = None,
) -> dict[str, Any]:
    """RFC 9162 consistency proof from tree size ``first`` to ``second``
    (default: the latest checkpoint)."""
    size = second or _latest(access).tree_size
    tree = access.log.tree()
    try:
        path = tree.consistency_proof(first, size)
    except ProofError as error:
        raise Problem(BAD_TREE_SIZE, str(error), status=422) from None
    return {
        "first": first,
        "second": size,
        "first_root_hash": hash_text(tree.root(first)),
        "second_root_hash": hash_text(tree.root(size)),
        "consistency_path": [hash_text(node) for node in path],
    }


@router.get(
    "/export.jsonl",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/jsonl": {"schema": {"type": "string"}}}}},
)
def export_jsonl(access: Reviewer) -> StreamingResponse:
    """The whole log and its checkpoints, verifiable offline with ``commonid audit verify``."""

    def lines() -> Iterator[str]:
        for logged in access.log.entries():
            yield entry_line(logged)
        for stored in access.log.checkpoints():
            yield json.dumps({"checkpoint": stored.note}, ensure_ascii=False) + "\n"

    return StreamingResponse(lines(), media_type="application/jsonl")


@router.get(
    "/export.csv",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/csv": {"schema": {"type": "string"}}}}},
)
def export_csv_view(
    access: Reviewer,
    event_type: Annotated[str | None, Query(alias="type", max_length=60)] = None,
) -> StreamingResponse:
    buffer = io.StringIO()
    export_csv(access.log, buffer, event_type=event_type)
    return StreamingResponse(iter([buffer.getvalue()]), media_type="text/csv")
