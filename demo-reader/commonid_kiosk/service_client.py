"""The agent's side of the Common-ID kiosk API (httpx): look up, consent, card response.

Problems (RFC 9457 with a ``code``) come back as :class:`ServiceProblem`; a
service that cannot be reached is the problem ``service_unreachable``. What
goes out is certificates and signatures, never a PIN: the methods take no
argument that could carry one.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote

import httpx

from commonid_kiosk.card_session import CardAnswer


class ServiceProblem(Exception):
    """The service refused, with a stable code (``session_not_found``, ``certificate_expired``)."""

    def __init__(self, code: str, status: int, detail: str = "") -> None:
        self.code = code
        self.status = status
        self.detail = detail
        super().__init__(f"{code} ({status}): {detail}")


@dataclass(frozen=True)
class KioskSession:
    """A session as the kiosk shows it: who asks, for what, why, and what the card signs."""

    id: str
    user_code: str
    status: str
    provider_name: str
    mode: str  # "identity" | "auth"
    claims: tuple[str, ...]
    purpose: str
    reuse: bool
    expires_at: datetime
    to_be_signed: bytes
    challenge_payload: dict[str, str]

    @property
    def needs_sign_certificate(self) -> bool:
        return self.mode == "identity"


@dataclass(frozen=True)
class CardResponseOutcome:
    status: str  # verified | reuse_granted | reverification_required | rejected
    reason_code: str | None


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class KioskServiceClient:
    """Calls the service's /v1/kiosk endpoints with the kiosk's bearer credential."""

    def __init__(
        self,
        base_url: str,
        credential: str,
        *,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._http = httpx.Client(
            base_url=base_url.rstrip("/"),
            headers={"Authorization": f"Bearer {credential}"},
            timeout=timeout,
            transport=transport,
        )

    def close(self) -> None:
        self._http.close()

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        try:
            response = self._http.request(method, path, json=body)
        except httpx.HTTPError as error:
            raise ServiceProblem("service_unreachable", 0, type(error).__name__) from None
        if response.is_success:
            return response.json()
        try:
            problem = response.json()
        except ValueError:
            problem = {}
        code = problem.get("code") if isinstance(problem, dict) else None
        raise ServiceProblem(
            code or f"http_{response.status_code}",
            response.status_code,
            str(problem.get("detail", "")) if isinstance(problem, dict) else "",
        )

    def session_by_user_code(self, user_code: str) -> KioskSession:
        body = self._call("GET", f"/v1/kiosk/sessions/{quote(user_code, safe='')}")
        return KioskSession(
            id=body["id"],
            user_code=body["user_code"],
            status=body["status"],
            provider_name=body["provider"]["name"],
            mode=body["mode"],
            claims=tuple(body["claims"]),
            purpose=body["purpose"],
            reuse=bool(body["reuse"]),
            expires_at=datetime.fromisoformat(body["expires_at"]),
            to_be_signed=_b64url_decode(body["challenge"]["to_be_signed"]),
            challenge_payload=dict(body["challenge"]["payload"]),
        )

    def record_consent(self, session_id: str, *, approved: bool) -> str:
        """Record the person's decision; returns the session's new status."""
        path = f"/v1/kiosk/sessions/{quote(session_id, safe='')}/consent"
        body = self._call("POST", path, {"approved": approved})
        return str(body["status"])

    def submit_card_response(self, session_id: str, answer: CardAnswer) -> CardResponseOutcome:
        payload: dict[str, Any] = {
            "auth_certificate": _b64(answer.auth_certificate),
            "auth_signature": _b64(answer.auth_signature),
        }
        if answer.sign_certificate is not None and answer.sign_signature is not None:
            payload["sign_certificate"] = _b64(answer.sign_certificate)
            payload["sign_signature"] = _b64(answer.sign_signature)
        body = self._call(
            "POST", f"/v1/kiosk/sessions/{quote(session_id, safe='')}/card-response", payload
        )
        return CardResponseOutcome(status=str(body["status"]), reason_code=body.get("reason_code"))
