"""The HTTP API (FastAPI): ``commonid.api.app.create_app`` builds it."""
