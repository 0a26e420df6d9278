"""Kiosk API: show a session to the person, record consent, submit the card response."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from commonid import flows
from commonid.api.deps import (
    CurrentKiosk,
    Db,
    RuntimeDep,
    admit_kiosk,
    authenticate_kiosk,
    bearer_hash,
    run_handler_work,
)
from commonid.api.paths import SessionId, UserCode
from commonid.api.schemas import (
    CardResponse,
    CardResponseOutcome,
    ConsentRecorded,
    ConsentRequest,
    CredentialOfferView,
    KioskSessionView,
    KioskVisit,
    KioskVisitRecorded,
    ProviderView,
)
from commonid.flows import presentations, wallet_issuance
from commonid.store import accounts, sessions

router = APIRouter(prefix="/v1/kiosk/sessions", tags=["kiosk"])


@router.get("/{user_code}", response_model=KioskSessionView)
def session_by_user_code(
    user_code: UserCode, kiosk: CurrentKiosk, runtime: RuntimeDep, db: Db
) -> KioskSessionView:
    """What the person will be asked: who asks, for which claims, why, and the challenge."""
    session = flows.open_session_for_kiosk(runtime, sessions.session_by_user_code(db, user_code))
    provider = accounts.provider_by_id(db, session.provider_id)
    assert provider is not None
    return KioskSessionView(
        id=session.id,
        user_code=session.user_code,
        status=sessions.effective_status(session, runtime.clock()).value,
        provider=ProviderView(id=provider.id, name=provider.name),
        mode=session.mode,
        claims=session.claims,
        purpose=session.purpose,
        reuse=session.reuse,
        document=session.document,
        expires_at=session.expires_at,
        challenge=flows.challenge_view(flows.session_challenge(runtime, session)),
    )


@router.post("/{session_id}/consent", response_model=ConsentRecorded)
async def consent(
    session_id: SessionId, body: ConsentRequest, request: Request, runtime: RuntimeDep
) -> Response:
    # One thread-pool call and one transaction: authentication, the consent, its audit entry.
    def work() -> ConsentRecorded:
        with runtime.write_transaction() as db:
            kiosk = authenticate_kiosk(request, db)
            session = flows.record_consent(
                runtime, db, session_id, kiosk, approved=body.approved, claims=body.claims
            )
            return ConsentRecorded(
                session_id=session.id, status=session.status, claims=session.consent_claims or []
            )

    recorded = await run_handler_work(runtime, work)
    return Response(recorded.model_dump_json(), media_type="application/json")


@router.post("/{session_id}/card-response", response_model=CardResponseOutcome)
async def card_response(
    session_id: SessionId, body: CardResponse, request: Request, runtime: RuntimeDep
) -> Response:
    """Certificates and signatures over the session's challenge. Accepted once."""

    def work() -> flows.CardOutcome:
        caller = flows.KioskCredential(
            bearer_hash(request), lambda kiosk: admit_kiosk(request, kiosk)
        )
        return flows.process_card_response(runtime, session_id, caller, body)

    outcome = await run_handler_work(runtime, work)
    return Response(
        CardResponseOutcome(
            session_id=outcome.session_id,
            status=outcome.status.value,
            reason_code=outcome.reason_code,
        ).model_dump_json(),
        media_type="application/json",
    )


@router.post("/{session_id}/visit", response_model=KioskVisitRecorded)
async def visit(
    session_id: SessionId, body: KioskVisit, request: Request, runtime: RuntimeDep
) -> Response:
    """How one visit at this kiosk went (times, wrong entries, removals), for the PoC
    report. Sent by the kiosk when its screen is cleared; counts only."""

    def work() -> KioskVisitRecorded:
        with runtime.write_transaction() as db:
            kiosk = authenticate_kiosk(request, db)
            flows.record_kiosk_visit(runtime, db, session_id, kiosk, body.model_dump())
            return KioskVisitRecorded(session_id=session_id, kiosk_id=kiosk.id)

    recorded = await run_handler_work(runtime, work)
    return Response(recorded.model_dump_json(), media_type="application/json")


@router.post("/{session_id}/credential-offer", response_model=CredentialOfferView, status_code=201)
def credential_offer(
    session_id: SessionId, kiosk: CurrentKiosk, runtime: RuntimeDep, db: Db
) -> CredentialOfferView:
    """Right after this kiosk verified a person's identity: an OpenID4VCI offer of the
    identity as an SD-JWT VC for the person's wallet (QR code and link), and the
    transaction code to show beside it. One offer per session."""
    offer = wallet_issuance.create_offer(runtime, db, session_id, kiosk)
    return CredentialOfferView(
        offer_id=offer.offer_id,
        offer_uri=offer.offer_uri,
        credential_offer=offer.credential_offer,
        qr_svg=presentations.qr_svg(offer.offer_uri),
        tx_code=offer.tx_code,
        expires_at=offer.expires_at,
    )
