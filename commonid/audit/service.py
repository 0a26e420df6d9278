"""The audit log as the running service holds it: its database, key and clock."""

from __future__ import annotations

import asyncio
import json
import logging

from fastapi import FastAPI

from commonid.audit.api import AuditAccess, install_audit
from commonid.audit.checkpoint import NoteSigner, NoteVerifier
from commonid.audit.log import AuditForkError, AuditLog
from commonid.audit.report import ReportSigning
from commonid.audit.settings import AuditSettings
from commonid.runtime import Runtime
from did.keys import IssuerKeyring

log = logging.getLogger(__name__)


def checkpoint_signer(keyring: IssuerKeyring, origin: str) -> NoteSigner:
    """Checkpoints are signed with the service's current Ed25519 issuer key."""
    return NoteSigner.from_private_jwk(origin, json.loads(keyring.current.private_jwk))


def checkpoint_verifiers(keyring: IssuerKeyring, origin: str) -> list[NoteVerifier]:
    """Every issuer key, retired ones included: old checkpoints stay verifiable."""
    return [NoteVerifier.from_public_jwk(origin, key.public_jwk) for key in keyring.keys]


# In the data directory: the last checkpoint this service signed (see AuditLog).
SIGNED_STATE_FILE = "audit-signed-checkpoint.note"


def audit_log_for_runtime(runtime: Runtime, settings: AuditSettings | None = None) -> AuditLog:
    settings = settings or AuditSettings()
    refusals = runtime.metrics.audit_checkpoints_refused
    return AuditLog(
        runtime.sessions,
        checkpoint_signer(runtime.keyring, settings.origin),
        clock=runtime.clock,
        checkpoint_interval=settings.checkpoint_interval,
        signed_state=runtime.settings.data_dir / SIGNED_STATE_FILE,
        on_fork=lambda _fork: refusals.labels("fork").inc(),
    )


async def checkpoint_forever(audit_log: AuditLog, interval_seconds: float) -> None:
    """Background task: a checkpoint whenever one is due, even when nothing is appended."""
    while True:
        await asyncio.sleep(interval_seconds)
        try:
            await asyncio.to_thread(audit_log.checkpoint_if_due)
        except AuditForkError:
            pass  # logged as audit_checkpoint_refused and counted; refused again next round
        except Exception:  # the next round tries again
            log.exception("audit checkpoint failed")


def checkpoint_cadence(audit_log: AuditLog) -> float | None:
    """How often the background task looks: a quarter of the interval, so a checkpoint
    is never more than 1.25 intervals late; None when periodic checkpoints are off."""
    if audit_log.signer is None or audit_log.checkpoint_interval is None:
        return None
    return max(audit_log.checkpoint_interval.total_seconds() / 4, 0.05)


def install_audit_for_runtime(app: FastAPI, runtime: Runtime) -> AuditLog:
    """Mount /v1/audit on the service app, on the runtime's audit log if it has one.

    Returns that log: the app's lifespan runs its periodic checkpoints.
    """
    settings = AuditSettings()
    audit_log = getattr(runtime, "audit", None) or audit_log_for_runtime(runtime, settings)
    install_audit(
        app,
        AuditAccess(
            audit_log,
            checkpoint_verifiers(runtime.keyring, settings.origin),
            reviewer_token=settings.reviewer_token,
            admin_token=runtime.settings.admin_token,
        ),
    )
    from commonid.audit.web import install_reviewer_pages

    install_reviewer_pages(
        app,
        ReportSigning(
            runtime.settings.effective_report_signing_dir,
            runtime.service_did,
            runtime.settings.timestamp_url,
            runtime.timestamp_roots,
        ),
    )
    return audit_log
