"""What the OpenAPI document says beyond the routes: who may call each operation, and the
limits this instance enforces (the same settings the handlers read)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from commonid.settings import Settings

# Every credential is sent as `Authorization: Bearer <credential>`; each kind has its scheme.
SECURITY_SCHEMES: dict[str, dict[str, str]] = {
    "providerKey": {
        "type": "http",
        "scheme": "bearer",
        "description": "A provider's API key (`commonid provider add`).",
    },
    "kioskCredential": {
        "type": "http",
        "scheme": "bearer",
        "description": "A kiosk's credential (`commonid kiosk add`).",
    },
    "adminToken": {
        "type": "http",
        "scheme": "bearer",
        "description": "The operator's admin token (setting `admin_token`).",
    },
    "reviewerToken": {
        "type": "http",
        "scheme": "bearer",
        "description": "The reviewer credential (the admin token is accepted too).",
    },
    # The OpenID Provider's callers (docs/oidc.md).
    "oidcClient": {
        "type": "http",
        "scheme": "basic",
        "description": "An OpenID client: client_secret_basic, or private_key_jwt "
        "(client_assertion in the form instead).",
    },
    "oidcAccessToken": {
        "type": "http",
        "scheme": "bearer",
        "description": "An access token from /oidc/token (a DPoP-bound one as "
        "`Authorization: DPoP <token>` with a `DPoP` proof).",
    },
    # The wallet door (docs/wallet.md): the access token of the pre-authorized code grant.
    "walletAccessToken": {
        "type": "http",
        "scheme": "bearer",
        "description": "An access token from /oid4vci/token (pre-authorized code grant).",
    },
    "oidcBrowser": {
        "type": "apiKey",
        "in": "cookie",
        "name": "cid_oidc",
        "description": "The browser that opened the sign-in page (set by /oidc/authorize).",
    },
}

# (method or "*", path prefix) -> the schemes that admit a caller; first match wins.
# Public operations (DID document, health, metrics, status lists, OpenID discovery and
# JWKS, the wallet door's metadata, token, nonce and OpenID4VP endpoints) have none.
_CALLERS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("*", "/v1/sessions", ("providerKey",)),
    ("*", "/v1/identities", ("providerKey",)),
    ("*", "/v1/records", ("providerKey",)),
    ("*", "/v1/credentials/verify", ("providerKey",)),
    ("*", "/v1/presentation-requests", ("providerKey",)),
    ("post", "/oid4vci/credential", ("walletAccessToken",)),
    ("*", "/v1/documents/verify", ("providerKey",)),
    ("*", "/v1/kiosk/", ("kioskCredential",)),
    ("*", "/v1/admin/", ("adminToken",)),
    ("post", "/v1/audit/checkpoint", ("adminToken",)),
    ("*", "/v1/audit/", ("reviewerToken", "adminToken")),
    ("post", "/oidc/par", ("oidcClient",)),
    ("post", "/oidc/token", ("oidcClient",)),
    ("*", "/oidc/userinfo", ("oidcAccessToken",)),
    ("get", "/oidc/sign-in/", ("oidcBrowser",)),
)


def callers(method: str, path: str) -> tuple[str, ...]:
    """The security schemes that admit a caller of this operation (none: public)."""
    for rule_method, prefix, schemes in _CALLERS:
        if rule_method in ("*", method) and path.startswith(prefix):
            return schemes
    return ()


def install_openapi(app: FastAPI, settings: Settings) -> None:
    """Generate the document once, with the security schemes and this instance's limits."""
    generated: dict[str, Any] | None = None

    def openapi() -> dict[str, Any]:
        nonlocal generated
        if generated is None:
            generated = _described(app, settings)
        return generated

    app.openapi = openapi  # type: ignore[method-assign]


def _described(app: FastAPI, settings: Settings) -> dict[str, Any]:
    document = get_openapi(
        title=app.title, version=app.version, description=app.description, routes=app.routes
    )
    document.setdefault("components", {})["securitySchemes"] = SECURITY_SCHEMES
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            schemes = callers(method, path)
            if schemes:
                operation["security"] = [{scheme: []} for scheme in schemes]
            _state_long_poll_limit(operation, settings.max_long_poll_seconds)
    return document


def _state_long_poll_limit(operation: dict[str, Any], limit: int) -> None:
    """The handler refuses a ``wait`` above this instance's maximum: say so here."""
    for parameter in operation.get("parameters", ()):
        if parameter.get("name") == "wait":
            schema = parameter.get("schema", {})
            for option in schema.get("anyOf", [schema]):
                if "maximum" in option:
                    option["maximum"] = limit
