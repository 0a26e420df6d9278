"""The agent's side of the Common-ID kiosk API, through the SDK's ``KioskClient``.

Refusals come back as :class:`ServiceProblem` with the service's stable code;
a service that cannot be reached is the code ``service_unreachable``. What
goes out is certificates and signatures, never a PIN: no method takes an
argument that could carry one.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx

from commonid.client import CommonIdError, KioskClient, KioskDocument, KioskSession
from commonid_kiosk.card_session import CardAnswer

__all__ = [
    "CardResponseOutcome",
    "KioskDocument",
    "KioskService",
    "KioskSession",
    "ServiceProblem",
]


class ServiceProblem(Exception):
    """The service refused, with a stable code (``session_not_found``, ``certificate_expired``)."""

    def __init__(self, code: str, status: int, detail: str = "") -> None:
        self.code = code
        self.status = status
        self.detail = detail
        super().__init__(f"{code} ({status}): {detail}")


@dataclass(frozen=True)
class CardResponseOutcome:
    status: str  # verified | reuse_granted | reverification_required | rejected
    reason_code: str | None


@contextlib.contextmanager
def _calling_the_service() -> Iterator[None]:
    try:
        yield
    except CommonIdError as refused:
        raise ServiceProblem(refused.code, refused.status, refused.detail) from None
    except httpx.HTTPError as error:
        raise ServiceProblem("service_unreachable", 0, type(error).__name__) from None


class KioskService:
    """The service's /v1/kiosk endpoints, with this kiosk's bearer credential."""

    def __init__(
        self,
        base_url: str,
        credential: str,
        *,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._resources = contextlib.ExitStack()
        self._client = self._resources.enter_context(
            KioskClient(base_url.rstrip("/"), credential, transport=transport, timeout=timeout)
        )

    def close(self) -> None:
        self._resources.close()

    def session_by_user_code(self, user_code: str) -> KioskSession:
        """The session a user code names (the caller checked the code's alphabet)."""
        with _calling_the_service():
            return self._client.session(user_code)

    def record_consent(self, session_id: str, *, approved: bool) -> str:
        """Record the person's decision; returns the session's new status."""
        with _calling_the_service():
            return str(self._client.consent(session_id, approved=approved)["status"])

    def submit_card_response(self, session_id: str, answer: CardAnswer) -> CardResponseOutcome:
        with _calling_the_service():
            body = self._client.submit_card_answer(session_id, answer)
        return CardResponseOutcome(status=str(body["status"]), reason_code=body.get("reason_code"))

    def document(self, session_id: str) -> KioskDocument:
        """The document the person is asked to sign (the exact PDF, and its text)."""
        with _calling_the_service():
            return self._client.document(session_id)

    def submit_document(self, session_id: str, signed_pdf: bytes) -> str:
        """The signed PDF; returns its SHA-256 as the service stored it."""
        with _calling_the_service():
            return str(self._client.submit_document(session_id, signed_pdf)["sha256"])

    def report_visit(self, session_id: str, tally: dict[str, float | int | str]) -> None:
        """How a visit went, for the PoC report (commonid_kiosk.visit)."""
        with _calling_the_service():
            self._client.report_visit(session_id, tally)

    def credential_offer(self, session_id: str) -> dict[str, Any]:
        """The wallet credential offer for the person just verified (QR, link, code)."""
        with _calling_the_service():
            return self._client.credential_offer(session_id)

    def decline_document(self, session_id: str) -> None:
        """The person declines to sign the document."""
        with _calling_the_service():
            self._client.decline_document(session_id)
