"""The agent's configuration: read once at start-up from COMMONID_KIOSK_* or the command line."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class KioskSettings(BaseSettings):
    """Where the service is, who this kiosk is, which reader it owns."""

    model_config = SettingsConfigDict(env_prefix="COMMONID_KIOSK_", extra="ignore")

    service_url: str = "http://127.0.0.1:8000"
    # The kiosk's bearer credential (``commonid kiosk add`` prints it once).
    credential: SecretStr | None = None
    # None: the first reader that holds a My Number Card (else any card, else the first).
    reader: str | None = None
    # Where the reader staff choose on the page is remembered across restarts; it
    # wins over ``reader``. None: choices last until the agent stops.
    reader_choice_file: Path | None = None
    # The screen clears itself after this long without a touch.
    inactivity_timeout_seconds: float = Field(90.0, gt=0)
    service_timeout_seconds: float = Field(30.0, gt=0)
