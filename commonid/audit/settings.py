"""Audit log settings (``COMMONID_AUDIT_*``), read once at start-up like commonid.settings."""

from __future__ import annotations

from datetime import timedelta

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class AuditSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="COMMONID_AUDIT_", extra="ignore")

    # The checkpoint origin and signed-note key name; it names this log for reviewers.
    origin: str = "commonid.example/audit"
    # A signed checkpoint at least this often while the log grows; 0 turns it off.
    checkpoint_interval_seconds: int = 300
    # Bearer credential of the read-only reviewer role; the audit API is closed while unset.
    reviewer_token: SecretStr | None = None

    @property
    def checkpoint_interval(self) -> timedelta | None:
        if self.checkpoint_interval_seconds <= 0:
            return None
        return timedelta(seconds=self.checkpoint_interval_seconds)
