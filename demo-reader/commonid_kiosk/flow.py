"""One person at the kiosk: the steps of a session, held by the agent.

The agent, not the page, holds the session (its challenge, the card
connection, the first signature of an identity verification): the page only
shows the step the agent says it is at. Every method returns that step as a
view (plain JSON), and every step can be cancelled.
"""

from __future__ import annotations

import contextlib
import enum
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from commonid.documents.consent_pdf import releases_signed_document
from commonid_kiosk.card_session import CardAnswer, CardSession, CardStatus, SignedByKey
from commonid_kiosk.outcomes import (
    Explanation,
    explain,
    explain_card_error,
    explain_document_code,
    explain_service_code,
)
from commonid_kiosk.secret_entry import SecretEntry
from commonid_kiosk.service_client import (
    KioskDocument,
    KioskService,
    KioskSession,
    ServiceProblem,
)
from commonid_kiosk.visit import VisitTally, send_visit
from did.sd_jwt import b64url, card_key_binding_signing_input
from jpki.card import PinKind
from jpki.errors import (
    CardRemovedError,
    CardResetError,
    JPKIError,
    LastTryConfirmationRequired,
    PinBlockedError,
    PinFormatError,
    WrongPinError,
)

# The service's codes: 8 characters of a 30-letter alphabet; people may type a dash.
_USER_CODE = re.compile(r"[A-Z0-9]{4,16}")
_ENTRY_ID = re.compile(r"[A-Za-z0-9_-]{8,64}")
_SUCCESS_STATUSES = {"verified": "verified", "reuse_granted": "reuse_granted"}


def _needs_sign_certificate(session: KioskSession) -> bool:
    return session.mode == "identity"


def _document_view(document: KioskDocument) -> dict[str, Any]:
    """What the person reads before signing: the document's text, not the PDF's bytes."""
    return {
        "document_id": document.document_id,
        "kind": document.kind,
        "provider_name": document.provider_name,
        "purpose": document.purpose,
        "claims": list(document.claims),
        # Whether the provider receives the signed PDF, whose certificate discloses all
        # four basic attributes (the service's rule; the person is told before signing).
        "released_to_provider": releases_signed_document(document.claims),
        "created_at": document.created_at.isoformat(),
        "sha256": document.sha256,
        "size": len(document.pdf),
    }


class Step(enum.StrEnum):
    START = "start"  # staff enters the user code
    CONSENT = "consent"  # who asks for what, and why
    INSERT_CARD = "insert_card"
    PIN = "pin"  # authentication PIN (4 digits)
    PASSWORD = "password"  # noqa: S105 - the step name; signature password (identity mode only)
    # After a verified identity, when the provider asked for it: the document to sign.
    DOCUMENT = "document"
    # A wallet asks the card to sign a presentation's key binding JWT: the PIN, once.
    KEY_BINDING = "key_binding"
    RESULT = "result"


@dataclass(frozen=True)
class Result:
    success: bool
    explanation: Explanation


class StepRefused(Exception):
    """An action that does not belong to the current step (e.g. a PIN while no card is checked)."""


@dataclass
class KeyBindingRequest:
    """A wallet's card-bound presentation waiting for the person's PIN at this kiosk.

    The agent builds what the card signs from the presentation, the verifier and
    its nonce (never an opaque blob from the wallet), and shows the person the
    verifier and the disclosed claims' names before the PIN is asked."""

    presented: str  # the SD-JWT with the disclosures the wallet chose, ending in "~"
    audience: str
    nonce: str
    claims: list[str]
    done: threading.Event = field(default_factory=threading.Event)
    key_binding_jwt: str | None = None
    refusal: str | None = None  # cancelled | card_blocked | card_removed | ...

    def settle(self, *, key_binding_jwt: str | None = None, refusal: str | None = None) -> None:
        if not self.done.is_set():
            self.key_binding_jwt, self.refusal = key_binding_jwt, refusal
            self.done.set()


class KioskFlow:
    """The state of the kiosk's one session, safe to call from several threads."""

    def __init__(
        self,
        client: KioskService,
        open_card: Callable[[], CardSession],
        *,
        inactivity_timeout: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._open_card = open_card
        self._clock = clock
        self.inactivity_timeout = inactivity_timeout
        self._lock = threading.RLock()
        self._visit: VisitTally | None = None
        self._clear()

    def _clear(self) -> None:
        self._step = Step.START
        self._session: KioskSession | None = None
        self._card: CardSession | None = None
        self._card_status: CardStatus | None = None
        self._auth_signed: SignedByKey | None = None
        self._document: KioskDocument | None = None
        self._notice: Explanation | None = None
        self._result: Result | None = None
        # The wallet credential offer shown with a verified identity (docs/wallet.md).
        self._wallet_offer: dict[str, Any] | None = None
        self._key_binding: KeyBindingRequest | None = None
        # Entry ids already sent to the card: a repeated request (double tap,
        # retried HTTP call) must never become a second VERIFY.
        self._used_entries: set[str] = set()
        self._last_activity = self._clock()

    # --- views ------------------------------------------------------------------------

    @property
    def step(self) -> Step:
        return self._step

    def view(self) -> dict[str, Any]:
        with self._lock:
            return self._view()

    def _view(self) -> dict[str, Any]:
        session = self._session
        return {
            "step": self._step.value,
            "session": None
            if session is None
            else {
                "user_code": session.user_code,
                "provider_name": session.provider_name,
                "mode": session.mode,
                "claims": list(session.claims),
                "purpose": session.purpose,
                "reuse": session.reuse,
                "document": session.document,
                "expires_at": session.expires_at.isoformat(),
                # What the card signs, readable: the service, the session, the expiry.
                "challenge": session.challenge.payload,
            },
            "card": None
            if self._card_status is None
            else {
                "auth_tries_left": self._card_status.auth_tries_left,
                "sign_tries_left": self._card_status.sign_tries_left,
            },
            "document": None if self._document is None else _document_view(self._document),
            "key_binding": None
            if self._key_binding is None or self._key_binding.done.is_set()
            else {"audience": self._key_binding.audience, "claims": self._key_binding.claims},
            "notice": None if self._notice is None else self._notice.to_json(),
            "result": None
            if self._result is None
            else {
                "success": self._result.success,
                **self._result.explanation.to_json(),
                "wallet_offer": self._wallet_offer,
            },
            "inactivity_timeout_seconds": self.inactivity_timeout,
        }

    def _touch(self) -> None:
        self._last_activity = self._clock()
        self._notice = None

    def _require(self, *steps: Step) -> None:
        if self._step not in steps:
            raise StepRefused(f"not possible at step {self._step.value}")

    # --- the steps --------------------------------------------------------------------

    def look_up(self, user_code: str) -> dict[str, Any]:
        """Staff entered (or scanned) a user code: fetch the session, show the request."""
        with self._lock:
            self._end()
            code = re.sub(r"[\s-]", "", user_code).upper()
            if not _USER_CODE.fullmatch(code):
                self._notice = explain("session_not_found")
                return self._view()
            asked = self._clock()
            try:
                session = self._client.session_by_user_code(code)
            except ServiceProblem as problem:
                self._notice = explain_service_code(problem.code)
                return self._view()
            if session.status not in ("pending", "awaiting_card"):
                self._notice = explain("session_used")
                return self._view()
            self._session = session
            self._visit = VisitTally(session.id, started=asked, clock=self._clock)
            self._visit.service_seconds = self._clock() - asked
            self._step = Step.CONSENT
            return self._view()

    def consent(self, *, approved: bool) -> dict[str, Any]:
        with self._lock:
            self._require(Step.CONSENT)
            self._touch()
            session = self._session
            assert session is not None
            try:
                with self._at_the_service():
                    self._client.record_consent(session.id, approved=approved)
            except ServiceProblem as problem:
                # Agreed at this kiosk before (then cancelled): the consent stands.
                if not (
                    approved
                    and problem.code == "consent_already_recorded"
                    and session.status == "awaiting_card"
                ):
                    return self._finish(False, explain_service_code(problem.code))
            if not approved:
                return self._finish(False, explain("declined"))
            self._step = Step.INSERT_CARD
            return self._view()

    def check_card(self) -> dict[str, Any]:
        """The card is on the reader: connect, check it is a My Number Card, read tries left."""
        with self._lock:
            self._require(Step.INSERT_CARD, Step.PIN, Step.PASSWORD)
            self._touch()
            session = self._session
            assert session is not None
            self._drop_card()
            self._step = Step.INSERT_CARD
            try:
                with self._at_the_card():
                    self._card = self._open_card()
                    status = self._card.status(with_sign=_needs_sign_certificate(session))
            except JPKIError as error:
                self._drop_card()
                self._notice = explain_card_error(error)
                return self._view()
            self._card_status = status
            if status.auth_tries_left == 0:
                self._tally("card_blocked")
                return self._finish(False, explain("pin_blocked", tries_left=0))
            if status.sign_tries_left == 0:
                self._tally("card_blocked")
                return self._finish(False, explain("password_blocked", tries_left=0))
            self._step = Step.PIN
            return self._view()

    def enter_pin(
        self, entry: SecretEntry, *, entry_id: str, confirm_last_try: bool
    ) -> dict[str, Any]:
        """The person's PIN: one VERIFY, then the authentication key signs the challenge."""
        with entry, self._lock:
            if self._step is Step.KEY_BINDING:
                return self._sign_key_binding(entry, entry_id, confirm_last_try)
            self._require(Step.PIN)
            self._touch()
            self._claim_entry(entry_id)
            session, card = self._session, self._card
            assert session is not None and card is not None
            try:
                with self._at_the_card(confirm_last_try):
                    signed = card.sign(
                        PinKind.AUTH,
                        entry,
                        session.challenge.to_be_signed,
                        confirm_last_try=confirm_last_try,
                    )
            except JPKIError as error:
                return self._card_failed(error, PinKind.AUTH)
            if not _needs_sign_certificate(session):
                return self._submit(
                    CardAnswer(auth_certificate=signed.certificate, auth_signature=signed.signature)
                )
            self._auth_signed = signed
            self._step = Step.PASSWORD
            return self._view()

    def enter_password(
        self, entry: SecretEntry, *, entry_id: str, confirm_last_try: bool
    ) -> dict[str, Any]:
        """The signature password: one VERIFY, then the signature key signs the same challenge."""
        with entry, self._lock:
            self._require(Step.PASSWORD)
            self._touch()
            self._claim_entry(entry_id)
            session, card, auth = self._session, self._card, self._auth_signed
            assert session is not None and card is not None and auth is not None
            try:
                with self._at_the_card(confirm_last_try):
                    signed = card.sign(
                        PinKind.SIGN,
                        entry,
                        session.challenge.to_be_signed,
                        confirm_last_try=confirm_last_try,
                    )
            except JPKIError as error:
                return self._card_failed(error, PinKind.SIGN)
            return self._submit(
                CardAnswer(
                    auth_certificate=auth.certificate,
                    auth_signature=auth.signature,
                    sign_certificate=signed.certificate,
                    sign_signature=signed.signature,
                )
            )

    def sign_document(
        self, entry: SecretEntry, *, entry_id: str, confirm_last_try: bool
    ) -> dict[str, Any]:
        """The signature password again: one VERIFY, the card signs the document, it goes out."""
        with entry, self._lock:
            self._require(Step.DOCUMENT)
            self._touch()
            self._claim_entry(entry_id)
            session, document = self._session, self._document
            assert session is not None and document is not None
            if self._card is None and not self._connect_for_document():
                return self._view()  # no card: nothing was sent, the notice says why
            card = self._card
            assert card is not None
            try:
                with self._at_the_card(confirm_last_try):
                    signed = card.sign_document(
                        entry,
                        document.pdf,
                        confirm_last_try=confirm_last_try,
                        timestamp_url=document.timestamp_url,
                    )
            except JPKIError as error:
                return self._document_card_failed(error)
            self._drop_card()
            try:
                with self._at_the_service():
                    self._client.submit_document(session.id, signed)
            except ServiceProblem as problem:
                return self._finish(False, explain_document_code(problem.code))
            return self._finish(True, explain("document_signed"))

    def decline_document(self) -> dict[str, Any]:
        """The person does not want to sign: the service tells the provider now, and the
        identity verification stands. Nothing goes to the card."""
        with self._lock:
            self._require(Step.DOCUMENT)
            self._touch()
            session = self._session
            assert session is not None
            try:
                with self._at_the_service():
                    self._client.decline_document(session.id)
            except ServiceProblem as problem:
                return self._finish(False, explain_document_code(problem.code))
            return self._finish(True, explain("document_declined"))

    def card_removed(self) -> dict[str, Any]:
        """The reader reports the card gone: whatever was verified on it is lost."""
        with self._lock:
            if self._card is not None:
                self._tally("card_removed")
            if self._step is Step.DOCUMENT and self._card is not None:
                self._drop_card()
                self._notice = explain("card_removed")
                return self._view()
            if self._step in (Step.PIN, Step.PASSWORD):
                self._drop_card()
                self._step = Step.INSERT_CARD
                self._notice = explain("card_removed")
            return self._view()

    # --- a wallet's card-bound presentation -------------------------------------------

    def begin_key_binding(self, request: KeyBindingRequest) -> dict[str, Any]:
        """Take a wallet's request while the kiosk is idle: check the card, then ask for
        the PIN (the page shows the verifier and the claims)."""
        with self._lock:
            self._require(Step.START)
            self._touch()
            try:
                with self._at_the_card():
                    self._card = self._open_card()
                    self._card_status = self._card.status(with_sign=False)
            except JPKIError as error:
                self._drop_card()
                raise StepRefused(
                    f"the card is not ready: {explain_card_error(error).code}"
                ) from None
            if self._card_status.auth_tries_left == 0:
                self._drop_card()
                raise StepRefused("the card's PIN is blocked")
            self._key_binding = request
            self._step = Step.KEY_BINDING
            return self._view()

    def _sign_key_binding(
        self, entry: SecretEntry, entry_id: str, confirm_last_try: bool
    ) -> dict[str, Any]:
        self._touch()
        self._claim_entry(entry_id)
        request, card = self._key_binding, self._card
        assert request is not None and card is not None
        signing_input = card_key_binding_signing_input(
            request.presented,
            audience=request.audience,
            nonce=request.nonce,
            issued_at=datetime.now(UTC),
        )
        try:
            with self._at_the_card(confirm_last_try):
                signed = card.sign(
                    PinKind.AUTH,
                    entry,
                    signing_input.encode("ascii"),
                    confirm_last_try=confirm_last_try,
                )
        except (WrongPinError, LastTryConfirmationRequired, PinFormatError) as error:
            return self._card_failed(error, PinKind.AUTH)  # the PIN again, same request
        except JPKIError as error:
            request.settle(refusal=explain_card_error(error).code)
            return self._finish(False, explain_card_error(error))
        request.settle(key_binding_jwt=f"{signing_input}.{b64url(signed.signature)}")
        return self._finish(True, explain("presentation_signed"))

    def touch(self) -> dict[str, Any]:
        """The person is still there (typing on the pad): restart the inactivity clock."""
        with self._lock:
            self._last_activity = self._clock()
            return self._view()

    def cancel(self) -> dict[str, Any]:
        """Cancel button or inactivity: end everything and clear the screen for the next person."""
        with self._lock:
            self._end()
            return self._view()

    def expire_if_idle(self) -> bool:
        """Clear the session, or a notice left on the start screen, after the inactivity
        timeout; True when it did."""
        with self._lock:
            idle = self._clock() - self._last_activity
            at_clean_start = self._step is Step.START and self._notice is None
            if at_clean_start or idle < self.inactivity_timeout:
                return False
            self._end(outcome="timed_out")
            return True

    def close(self) -> None:
        with self._lock:
            self._end()

    # --- the visit's account (commonid_kiosk.visit) ------------------------------------

    def _at_the_card(self, confirm_last_try: bool = False) -> contextlib.AbstractContextManager:
        if self._visit is None:
            return contextlib.nullcontext()
        if confirm_last_try:
            self._visit.count("last_try_confirmed")
        return self._visit.at_the_card()

    def _at_the_service(self) -> contextlib.AbstractContextManager:
        return contextlib.nullcontext() if self._visit is None else self._visit.at_the_service()

    def _tally(self, what: str) -> None:
        if self._visit is not None:
            self._visit.count(what)

    def _send_visit(self, outcome: str) -> None:
        visit, self._visit = self._visit, None
        if visit is not None:
            send_visit(self._client, visit, outcome)

    # --- helpers ----------------------------------------------------------------------

    def _claim_entry(self, entry_id: str) -> None:
        if not _ENTRY_ID.fullmatch(entry_id) or entry_id in self._used_entries:
            raise StepRefused("this entry was already used: ask the person to enter it again")
        self._used_entries.add(entry_id)

    def _card_failed(self, error: JPKIError, kind: PinKind) -> dict[str, Any]:
        is_password = kind is PinKind.SIGN
        explanation = explain_card_error(error, password=is_password)
        if isinstance(error, PinBlockedError):
            self._tally("card_blocked")
            return self._finish(False, explanation)
        if isinstance(error, WrongPinError) and self._visit is not None:
            self._visit.wrong_entry(kind)
        if isinstance(error, CardRemovedError | CardResetError) and self._card is not None:
            self._tally("card_removed")
        if isinstance(error, WrongPinError | LastTryConfirmationRequired | PinFormatError):
            tries = getattr(error, "tries_left", None)
            if tries is not None and self._card_status is not None:
                self._card_status = CardStatus(
                    auth_tries_left=self._card_status.auth_tries_left if is_password else tries,
                    sign_tries_left=tries if is_password else self._card_status.sign_tries_left,
                )
            self._notice = explanation
            return self._view()
        # Removed, reset, unreadable: start again from the card, with a fresh connection.
        self._drop_card()
        self._step = Step.INSERT_CARD
        self._notice = (
            explain("card_removed")
            if isinstance(error, CardRemovedError | CardResetError)
            else explanation
        )
        return self._view()

    def _submit(self, answer: CardAnswer) -> dict[str, Any]:
        session = self._session
        assert session is not None
        self._drop_card()  # the card's part is done: reset it before talking to the service
        try:
            with self._at_the_service():
                outcome = self._client.submit_card_response(session.id, answer)
        except ServiceProblem as problem:
            return self._finish(False, explain_service_code(problem.code))
        if outcome.status == "verified" and session.document is not None:
            return self._start_document()
        if outcome.status in _SUCCESS_STATUSES:
            return self._finish(True, explain(_SUCCESS_STATUSES[outcome.status]))
        return self._finish(False, explain_service_code(outcome.reason_code or outcome.status))

    def _start_document(self) -> dict[str, Any]:
        """The identity is verified; now the document the provider asked the person to sign."""
        session = self._session
        assert session is not None
        try:
            with self._at_the_service():
                self._document = self._client.document(session.id)
        except ServiceProblem as problem:
            return self._finish(False, explain_document_code(problem.code))
        self._step = Step.DOCUMENT
        self._connect_for_document()
        return self._view()

    def _connect_for_document(self) -> bool:
        """A fresh connection to the card (the identity steps reset it), and its tries left."""
        try:
            with self._at_the_card():
                self._card = self._open_card()
                status = self._card.status(with_sign=True)
        except JPKIError as error:
            self._drop_card()
            self._notice = explain_card_error(error)
            return False
        self._card_status = status
        if status.sign_tries_left == 0:
            self._tally("card_blocked")
            self._finish(False, explain("password_blocked", tries_left=0))
            return False
        return True

    def _document_card_failed(self, error: JPKIError) -> dict[str, Any]:
        if isinstance(error, CardRemovedError | CardResetError):
            self._tally("card_removed")
            self._drop_card()  # signing again reconnects; the password is asked again
            self._notice = explain("card_removed")
            return self._view()
        view = self._card_failed(error, PinKind.SIGN)
        if self._step is not Step.RESULT:
            self._step = Step.DOCUMENT  # a wrong password: ask for it again, same document
        return view

    def _finish(self, success: bool, explanation: Explanation) -> dict[str, Any]:
        self._drop_card()
        if self._key_binding is not None:  # a PIN blocked meanwhile, say: the wallet is told
            self._key_binding.settle(refusal=explanation.code)
            self._key_binding = None
        # A verified identity (with or without its document): the wallet offer.
        if success and explanation.code in {"verified", "document_signed", "document_declined"}:
            self._wallet_offer = self._offer_for_wallet()
        self._document = None
        self._auth_signed = None
        self._card_status = None
        self._result = Result(success, explanation)
        self._step = Step.RESULT
        self._send_visit(explanation.code)
        return self._view()

    def _offer_for_wallet(self) -> dict[str, Any] | None:
        """The person can keep the verified identity in a wallet: the service's offer
        (QR code, link, and the code to type). Without one, the result stands as it is."""
        session = self._session
        if session is None or session.mode != "identity":
            return None
        try:
            with self._at_the_service():
                offer = self._client.credential_offer(session.id)
        except ServiceProblem:
            return None
        return {key: offer[key] for key in ("offer_uri", "qr_svg", "tx_code", "expires_at")}

    def _drop_card(self) -> None:
        self._auth_signed = None
        self._card_status = None
        card, self._card = self._card, None
        if card is not None:
            # A card already gone cannot keep anything verified.
            with contextlib.suppress(JPKIError):
                card.close()

    def _end(self, outcome: str = "cancelled") -> None:
        """Clear everything; a visit that had no result yet is reported as ``outcome``."""
        if self._key_binding is not None:
            self._key_binding.settle(refusal=outcome)
        self._send_visit(outcome)
        self._drop_card()
        self._clear()
