"""What an OpenID Connect request asks of Common-ID, and what the answer releases.

Scopes follow the Digital Agency's Digital Authentication App: ``openid`` and
the four basic attributes ``name``, ``birthdate``, ``gender``, ``address``.
``acr_values`` choose between a fresh verification with the card and a reuse
of the claims verified earlier (the PIN only, within the provider's freshness
policy). The answer's claims come from the session's result, as the REST API
gives it: the same pairwise ``sub``, the same ``verified_claims``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from commonid.api.schemas import ClaimName, CreateSessionRequest, Mode

ATTRIBUTE_SCOPES = ("name", "birthdate", "gender", "address")
SCOPES_SUPPORTED = ("openid", *ATTRIBUTE_SCOPES)
# A fresh verification with the card: the signature certificate (password) when
# attributes are asked, the authentication certificate (PIN) alone otherwise.
ACR_CARD = "urn:commonid:acr:jpki:card"
# Claims verified earlier with the card, released after the PIN alone.
ACR_REUSE = "urn:commonid:acr:jpki:reuse"
ACR_VALUES_SUPPORTED = (ACR_CARD, ACR_REUSE)
# RFC 8176: a smart card (hardware key) unlocked by a PIN.
AMR = ["sc", "hwk", "pin"]


class RequestRefused(ValueError):
    """The request asks for something this provider may not have (``invalid_scope``,
    ``invalid_request``): an OAuth error, never a 5xx."""

    def __init__(self, error: str, description: str) -> None:
        super().__init__(description)
        self.error = error
        self.description = description


@dataclass(frozen=True)
class Wanted:
    """The Common-ID session an authorization request becomes."""

    scopes: tuple[str, ...]
    acr: str
    # verified_claims asked through the ``claims`` parameter, per target
    verified_claims_in_id_token: bool
    verified_claims_in_userinfo: bool

    @property
    def attributes(self) -> list[str]:
        return [scope for scope in self.scopes if scope in ATTRIBUTE_SCOPES]

    def session_request(self, purpose: str) -> CreateSessionRequest:
        reuse = self.acr == ACR_REUSE
        mode = Mode.IDENTITY if self.attributes and not reuse else Mode.AUTH
        return CreateSessionRequest(
            mode=mode,
            claims=[ClaimName(attribute) for attribute in self.attributes],
            purpose=purpose,
            reuse=reuse and bool(self.attributes),
        )


def wanted(scope: str, acr_values: str | None, claims: str | None, allowed: list[str]) -> Wanted:
    scopes = tuple(dict.fromkeys(scope.split()))
    if "openid" not in scopes:
        raise RequestRefused("invalid_scope", "the openid scope is required")
    unknown = [s for s in scopes if s not in SCOPES_SUPPORTED]
    if unknown:
        raise RequestRefused("invalid_scope", f"unknown scope: {' '.join(unknown)}")
    refused = [s for s in scopes if s in ATTRIBUTE_SCOPES and s not in allowed]
    if refused:
        raise RequestRefused("invalid_scope", f"not allowed for this client: {' '.join(refused)}")
    acr = next((v for v in (acr_values or "").split() if v in ACR_VALUES_SUPPORTED), ACR_CARD)
    in_id_token, in_userinfo = _verified_claims_asked(claims, scopes)
    return Wanted(scopes, acr, in_id_token, in_userinfo)


def _verified_claims_asked(claims: str | None, scopes: tuple[str, ...]) -> tuple[bool, bool]:
    """Where the ``claims`` parameter asks for ``verified_claims`` (OIDC4IDA); only claims
    the scopes already cover may be asked (a claims request cannot widen consent)."""
    if not claims:
        return False, False
    try:
        request = json.loads(claims)
    except ValueError:
        raise RequestRefused("invalid_request", "claims is not JSON") from None
    if not isinstance(request, dict):
        raise RequestRefused("invalid_request", "claims must be a JSON object")
    asked = []
    for target in ("id_token", "userinfo"):
        member = request.get(target) or {}
        if not isinstance(member, dict):
            raise RequestRefused("invalid_request", f"claims.{target} must be an object")
        verified = member.get("verified_claims")
        if verified is None:
            asked.append(False)
            continue
        inner = verified.get("claims", {}) if isinstance(verified, dict) else None
        if not isinstance(inner, dict):
            raise RequestRefused("invalid_request", "verified_claims.claims must be an object")
        beyond = [name for name in inner if name not in scopes]
        if beyond:
            raise RequestRefused(
                "invalid_request",
                f"verified_claims asks for claims outside the scopes: {' '.join(beyond)}",
            )
        asked.append(True)
    return asked[0], asked[1]


def acr_achieved(status: str) -> str:
    return ACR_REUSE if status == "reuse_granted" else ACR_CARD


def standard_claims(result: dict[str, Any], scopes: tuple[str, ...]) -> dict[str, Any]:
    """The attributes as OpenID Connect standard claims (as the Digital Authentication App
    returns them), from the verified result, for the scopes consented."""
    verified = (result.get("verified_claims") or {}).get("claims", {})
    return {
        name: verified[name] for name in ATTRIBUTE_SCOPES if name in scopes and name in verified
    }


def verified_claims(result: dict[str, Any], scopes: tuple[str, ...]) -> dict[str, Any] | None:
    """OIDC4IDA ``verified_claims``: the verification evidence and the scoped claims."""
    source = result.get("verified_claims")
    if not source:
        return None
    claims = {k: v for k, v in source.get("claims", {}).items() if k in scopes}
    verification = dict(source["verification"])
    if result.get("reuse"):
        # How and when the claims were first verified: this release is a reuse of them.
        verification["verification_process"] = "reuse"
        verification["time"] = result["reuse"]["first_verified_at"]
    return {"verification": verification, "claims": claims}
