"""Provider SDK (and the kiosk side of the API) on httpx, sync and async.

    from commonid.client import ProviderClient
    with ProviderClient("https://commonid.example", api_key) as client:
        session = client.create_session(mode="identity", claims=["name"], purpose="口座開設")
        ...  # show session.user_code to the customer
        result = client.wait_for_result(session.id, timeout=300)

Errors are ``CommonIdError`` with the problem document's ``code``. Pass
``transport=httpx.ASGITransport(app)`` (async) or a ``TestClient``-style
transport to talk to an app in process.
"""

from __future__ import annotations

import base64
import hashlib
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol

import httpx


class CardAnswerLike(Protocol):
    """What the card produced for a challenge (commonid.card_answer.CardAnswer has this
    shape); a protocol, so the SDK needs no card library."""

    @property
    def auth_certificate(self) -> bytes: ...
    @property
    def auth_signature(self) -> bytes: ...
    @property
    def sign_certificate(self) -> bytes | None: ...
    @property
    def sign_signature(self) -> bytes | None: ...


DEFAULT_TIMEOUT = 40.0  # above the longest long-poll wait


class CommonIdError(Exception):
    """An API refusal: ``code`` is the problem's stable code (see docs/service.md)."""

    def __init__(self, status: int, code: str, title: str, detail: str, problem: dict[str, Any]):
        self.status = status
        self.code = code
        self.title = title
        self.detail = detail
        self.problem = problem
        super().__init__(f"{status} {code}: {detail}")


@dataclass(frozen=True)
class Challenge:
    to_be_signed: bytes
    payload: dict[str, str]


@dataclass(frozen=True)
class CreatedSession:
    id: str
    user_code: str
    status: str
    mode: str
    claims: list[str]
    purpose: str
    reuse: bool
    expires_at: datetime
    challenge: Challenge
    document: str | None = None


@dataclass(frozen=True)
class SessionResult:
    id: str
    status: str
    mode: str
    claims: list[str]
    expires_at: datetime
    completed_at: datetime | None
    reason_code: str | None
    sub: str | None
    verified_claims: dict[str, Any] | None
    did: str | None
    credential: Any | None
    reuse: dict[str, Any] | None
    # The document asked for: {"kind", "status", "sign_by"}; status pending,
    # awaiting_signature, signed, declined (the person chose not to sign) or not_signed
    # (the signing window closed).
    document: dict[str, Any] | None = None
    # Signed documents: {"id", "kind", "media_type", "sha256", "size", "signed_at"};
    # fetch each with download_document().
    documents: list[dict[str, Any]] = field(default_factory=list)

    @property
    def final(self) -> bool:
        """Nothing more will happen: a final status, and the document (if asked) settled."""
        if self.status in ("pending", "awaiting_card"):
            return False
        settled = ("signed", "declined", "not_signed")
        return self.document is None or self.document["status"] in settled


@dataclass(frozen=True)
class SignedDocumentFile:
    """A signed document as downloaded; ``sha256`` was checked against ``Repr-Digest``."""

    document_id: str
    content: bytes
    sha256: str
    media_type: str


@dataclass(frozen=True)
class KioskSession:
    id: str
    user_code: str
    status: str
    provider_name: str
    mode: str
    claims: list[str]
    purpose: str
    reuse: bool
    expires_at: datetime
    challenge: Challenge
    document: str | None = None


@dataclass(frozen=True)
class KioskDocument:
    """The document a kiosk has the person sign: the exact PDF, and what it says."""

    document_id: str
    session_id: str
    kind: str
    pdf: bytes
    sha256: str
    provider_name: str
    purpose: str
    claims: list[str]
    created_at: datetime
    timestamp_url: str | None


@dataclass(frozen=True)
class CredentialCheck:
    valid: bool
    reason: str
    subject_did: str | None
    verified_claims: dict[str, Any] | None


def _time(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None


def _challenge(body: dict[str, Any]) -> Challenge:
    encoded = body["to_be_signed"]
    return Challenge(
        base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)), dict(body["payload"])
    )


def _created(body: dict[str, Any]) -> CreatedSession:
    return CreatedSession(
        id=body["id"],
        user_code=body["user_code"],
        status=body["status"],
        mode=body["mode"],
        claims=list(body["claims"]),
        purpose=body["purpose"],
        reuse=body["reuse"],
        expires_at=_time(body["expires_at"]),  # type: ignore[arg-type]
        challenge=_challenge(body["challenge"]),
        document=body.get("document"),
    )


def _result(body: dict[str, Any]) -> SessionResult:
    return SessionResult(
        id=body["id"],
        status=body["status"],
        mode=body["mode"],
        claims=list(body["claims"]),
        expires_at=_time(body["expires_at"]),  # type: ignore[arg-type]
        completed_at=_time(body.get("completed_at")),
        reason_code=body.get("reason_code"),
        sub=body.get("sub"),
        verified_claims=body.get("verified_claims"),
        did=body.get("did"),
        credential=body.get("credential"),
        reuse=body.get("reuse"),
        document=body.get("document"),
        documents=list(body.get("documents") or []),
    )


def _kiosk_session(body: dict[str, Any]) -> KioskSession:
    return KioskSession(
        id=body["id"],
        user_code=body["user_code"],
        status=body["status"],
        provider_name=body["provider"]["name"],
        mode=body["mode"],
        claims=list(body["claims"]),
        purpose=body["purpose"],
        reuse=body["reuse"],
        expires_at=_time(body["expires_at"]),  # type: ignore[arg-type]
        challenge=_challenge(body["challenge"]),
        document=body.get("document"),
    )


def _kiosk_document(body: dict[str, Any]) -> KioskDocument:
    content = body["content"]
    pdf = base64.b64decode(body["pdf"])
    if hashlib.sha256(pdf).hexdigest() != body["sha256"]:
        raise CommonIdError(200, "document_digest_mismatch", "Bad document", "hash differs", body)
    return KioskDocument(
        document_id=body["document_id"],
        session_id=body["session_id"],
        kind=body["kind"],
        pdf=pdf,
        sha256=body["sha256"],
        provider_name=content["provider_name"],
        purpose=content["purpose"],
        claims=list(content["claims"]),
        created_at=_time(content["created_at"]),  # type: ignore[arg-type]
        timestamp_url=body.get("timestamp_url"),
    )


def _signed_document(document_id: str, response: httpx.Response) -> SignedDocumentFile:
    if not response.is_success:
        _check(response)
    content = response.content
    digest = hashlib.sha256(content).digest()
    expected = response.headers.get("repr-digest", "")
    if expected and expected != f"sha-256=:{base64.b64encode(digest).decode()}:":
        # The bytes are not the ones the service stored: never hand them on.
        raise CommonIdError(
            response.status_code,
            "document_digest_mismatch",
            "Download corrupted",
            "the document does not match its Repr-Digest",
            {},
        )
    return SignedDocumentFile(
        document_id=document_id,
        content=content,
        sha256=digest.hex(),
        media_type=response.headers.get("content-type", "application/pdf"),
    )


def _check(response: httpx.Response) -> Any:
    if response.is_success:
        return response.json() if response.content else None
    try:
        problem = response.json()
    except ValueError:
        problem = {}
    if not isinstance(problem, dict):
        problem = {}
    raise CommonIdError(
        response.status_code,
        str(problem.get("code", "http_error")),
        str(problem.get("title", response.reason_phrase)),
        str(problem.get("detail", response.text[:200])),
        problem,
    )


def _session_body(
    mode: str,
    claims: list[str] | None,
    purpose: str,
    reuse: bool,
    document: str | None,
    reference: str | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "mode": mode,
        "claims": list(claims or []),
        "purpose": purpose,
        "reuse": reuse,
    }
    if document is not None:
        body["document"] = document
    if reference is not None:
        body["reference"] = reference
    return body


def _headers(key: str, idempotency_key: str | None = None) -> dict[str, str]:
    headers = {"Authorization": f"Bearer {key}"}
    if idempotency_key:
        headers["Idempotency-Key"] = idempotency_key
    return headers


class ProviderClient:
    """The provider API, synchronous."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        transport: httpx.BaseTransport | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self._key = api_key
        self._http = httpx.Client(base_url=base_url, transport=transport, timeout=timeout)

    def __enter__(self) -> ProviderClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def create_session(
        self,
        *,
        mode: str,
        purpose: str,
        claims: list[str] | None = None,
        reuse: bool = False,
        document: str | None = None,
        idempotency_key: str | None = None,
        reference: str | None = None,
    ) -> CreatedSession:
        """``document="consent"`` (identity mode): the person also signs the consent document.
        ``reference``: your own opaque customer or transaction number, kept in the
        verification record (docs/compliance.md)."""
        response = self._http.post(
            "/v1/sessions",
            json=_session_body(mode, claims, purpose, reuse, document, reference),
            headers=_headers(self._key, idempotency_key),
        )
        return _created(_check(response))

    def get_session(self, session_id: str, *, wait: float = 0) -> SessionResult:
        response = self._http.get(
            f"/v1/sessions/{session_id}",
            params={"wait": wait} if wait else None,
            headers=_headers(self._key),
        )
        return _result(_check(response))

    def wait_for_result(
        self, session_id: str, *, timeout: float = 300, poll_seconds: float = 30
    ) -> SessionResult:
        """Long-poll until the session is final or ``timeout`` passes, ``poll_seconds`` per
        request (the service refuses more than its max_long_poll_seconds, 30 by default)."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            result = self.get_session(session_id, wait=max(0, min(poll_seconds, remaining)))
            if result.final or remaining <= 0:
                return result

    def download_document(self, session_id: str, document_id: str) -> SignedDocumentFile:
        """A signed document listed in the session result's ``documents``."""
        response = self._http.get(
            f"/v1/sessions/{session_id}/documents/{document_id}", headers=_headers(self._key)
        )
        return _signed_document(document_id, response)

    def get_identity(self, sub: str) -> dict[str, Any]:
        return _check(self._http.get(f"/v1/identities/{sub}", headers=_headers(self._key)))

    def withdraw_identity(self, sub: str) -> None:
        _check(self._http.delete(f"/v1/identities/{sub}", headers=_headers(self._key)))

    def verify_credential(self, credential: str | dict[str, Any]) -> CredentialCheck:
        body = _check(
            self._http.post(
                "/v1/credentials/verify",
                json={"credential": credential},
                headers=_headers(self._key),
            )
        )
        return CredentialCheck(**body)


class AsyncProviderClient:
    """The provider API, asynchronous."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self._key = api_key
        self._http = httpx.AsyncClient(base_url=base_url, transport=transport, timeout=timeout)

    async def __aenter__(self) -> AsyncProviderClient:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def create_session(
        self,
        *,
        mode: str,
        purpose: str,
        claims: list[str] | None = None,
        reuse: bool = False,
        document: str | None = None,
        idempotency_key: str | None = None,
        reference: str | None = None,
    ) -> CreatedSession:
        """``document="consent"`` (identity mode): the person also signs the consent document.
        ``reference``: your own opaque customer or transaction number, kept in the
        verification record (docs/compliance.md)."""
        response = await self._http.post(
            "/v1/sessions",
            json=_session_body(mode, claims, purpose, reuse, document, reference),
            headers=_headers(self._key, idempotency_key),
        )
        return _created(_check(response))

    async def get_session(self, session_id: str, *, wait: float = 0) -> SessionResult:
        response = await self._http.get(
            f"/v1/sessions/{session_id}",
            params={"wait": wait} if wait else None,
            headers=_headers(self._key),
        )
        return _result(_check(response))

    async def wait_for_result(self, session_id: str, *, timeout: float = 300) -> SessionResult:
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            result = await self.get_session(session_id, wait=max(0, min(30, remaining)))
            if result.final or remaining <= 0:
                return result

    async def download_document(self, session_id: str, document_id: str) -> SignedDocumentFile:
        response = await self._http.get(
            f"/v1/sessions/{session_id}/documents/{document_id}", headers=_headers(self._key)
        )
        return _signed_document(document_id, response)

    async def get_identity(self, sub: str) -> dict[str, Any]:
        return _check(await self._http.get(f"/v1/identities/{sub}", headers=_headers(self._key)))

    async def withdraw_identity(self, sub: str) -> None:
        _check(await self._http.delete(f"/v1/identities/{sub}", headers=_headers(self._key)))

    async def verify_credential(self, credential: str | dict[str, Any]) -> CredentialCheck:
        body = _check(
            await self._http.post(
                "/v1/credentials/verify",
                json={"credential": credential},
                headers=_headers(self._key),
            )
        )
        return CredentialCheck(**body)


class KioskClient:
    """The kiosk side: show a session, record consent, submit the card's response."""

    def __init__(
        self,
        base_url: str,
        credential: str,
        *,
        transport: httpx.BaseTransport | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self._key = credential
        self._http = httpx.Client(base_url=base_url, transport=transport, timeout=timeout)

    def __enter__(self) -> KioskClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self._http.close()

    def session(self, user_code: str) -> KioskSession:
        response = self._http.get(f"/v1/kiosk/sessions/{user_code}", headers=_headers(self._key))
        return _kiosk_session(_check(response))

    def consent(
        self, session_id: str, *, approved: bool = True, claims: list[str] | None = None
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"approved": approved}
        if claims is not None:
            body["claims"] = claims
        return _check(
            self._http.post(
                f"/v1/kiosk/sessions/{session_id}/consent", json=body, headers=_headers(self._key)
            )
        )

    def card_response(
        self,
        session_id: str,
        *,
        auth_certificate: bytes,
        auth_signature: bytes,
        sign_certificate: bytes | None = None,
        sign_signature: bytes | None = None,
        consent: Literal[True] | list[str] | None = None,
    ) -> dict[str, Any]:
        """``consent``: the person's consent, sent with the response in one request
        (``True``: to everything asked; a list: to those claims) instead of through
        ``consent()`` first; None when it was recorded already."""
        body: dict[str, Any] = {
            "auth_certificate": base64.b64encode(auth_certificate).decode(),
            "auth_signature": base64.b64encode(auth_signature).decode(),
        }
        if sign_certificate is not None and sign_signature is not None:
            body["sign_certificate"] = base64.b64encode(sign_certificate).decode()
            body["sign_signature"] = base64.b64encode(sign_signature).decode()
        if consent is not None:
            body["consent"] = {} if consent is True else {"claims": consent}
        return _check(
            self._http.post(
                f"/v1/kiosk/sessions/{session_id}/card-response",
                json=body,
                headers=_headers(self._key),
            )
        )

    def credential_offer(self, session_id: str) -> dict[str, Any]:
        """Right after a verified identity: the OpenID4VCI offer for the person's wallet
        (``offer_uri``, ``qr_svg``, ``tx_code`` to show beside it, ``expires_at``)."""
        return _check(
            self._http.post(
                f"/v1/kiosk/sessions/{session_id}/credential-offer", headers=_headers(self._key)
            )
        )

    def report_visit(self, session_id: str, tally: dict[str, Any]) -> dict[str, Any]:
        """How a visit went (``KioskVisit``: outcome, times, counts), for the PoC report."""
        return _check(
            self._http.post(
                f"/v1/kiosk/sessions/{session_id}/visit", json=tally, headers=_headers(self._key)
            )
        )

    def submit_card_answer(
        self,
        session_id: str,
        answer: CardAnswerLike,
        *,
        consent: Literal[True] | list[str] | None = None,
    ) -> dict[str, Any]:
        """``card_response`` with the certificates and signatures of one card answer."""
        return self.card_response(
            session_id,
            auth_certificate=answer.auth_certificate,
            auth_signature=answer.auth_signature,
            sign_certificate=answer.sign_certificate,
            sign_signature=answer.sign_signature,
            consent=consent,
        )

    def document(self, session_id: str) -> KioskDocument:
        """The document to have signed (after the consent, at this kiosk)."""
        response = self._http.get(
            f"/v1/kiosk/sessions/{session_id}/document", headers=_headers(self._key)
        )
        return _kiosk_document(_check(response))

    def submit_document(self, session_id: str, signed_pdf: bytes) -> dict[str, Any]:
        """The signed PDF (after the identity verification); accepted once."""
        headers = {**_headers(self._key), "Content-Type": "application/pdf"}
        return _check(
            self._http.post(
                f"/v1/kiosk/sessions/{session_id}/document", content=signed_pdf, headers=headers
            )
        )

    def decline_document(self, session_id: str) -> dict[str, Any]:
        """The person does not sign: the provider's result says ``declined`` at once."""
        return _check(
            self._http.post(
                f"/v1/kiosk/sessions/{session_id}/document/decline", headers=_headers(self._key)
            )
        )
