"""Common-ID as an OpenID Provider: a thin door onto the same sessions as the REST API.

Built on Authlib's authorization server (``server``) with its gaps filled
here: PKCE is required and S256 only, for every client; pushed authorization
requests (RFC 9126); client assertions' ``jti`` are single use; the RFC 9207
``iss`` parameter on every authorization response. The door reaches the engine
only through :mod:`commonid.flows` (sessions are created and read there) and
keeps its own state (clients, codes, tokens) in :mod:`commonid.store.oidc`.

Modules: ``claims`` (scopes, acr values and the claims released), ``keys``
(the ID token signing keys), ``server`` (Authlib), ``router`` (the endpoints
and the authorization page).
"""
