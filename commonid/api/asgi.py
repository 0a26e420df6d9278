"""Entry point for uvicorn workers: each builds its own app from the environment.

The parent process (``commonid serve``) has already migrated the database, so
workers do not race each other running migrations.
"""

from __future__ import annotations

from fastapi import FastAPI

from commonid.api.app import create_app
from commonid.runtime import build_runtime
from commonid.settings import Settings


def app_factory() -> FastAPI:
    return create_app(runtime=build_runtime(Settings(), migrate=False))
