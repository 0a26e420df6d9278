"""The service's flows, one module per flow: sessions, the card response, reuse, identities.

Routers (and the standard doors) call these with a Runtime and a database
session; these functions speak the domain and raise Problem with a stable
code for anything refused. Nothing outside this package reaches into
``commonid.store`` around them.
"""

from commonid.flows.card_response import CardOutcome, KioskCredential, process_card_response
from commonid.flows.identities import identity_view, withdraw_identity
from commonid.flows.kiosk_visits import record_kiosk_visit
from commonid.flows.sessions import (
    SESSION_COMPLETED_EVENT,
    active_provider,
    challenge_view,
    create_session,
    is_final,
    open_session_for_kiosk,
    provider_session_result,
    record_consent,
    request_fingerprint,
    session_challenge,
    session_for_provider,
    session_result,
)

__all__ = [
    "SESSION_COMPLETED_EVENT",
    "CardOutcome",
    "KioskCredential",
    "active_provider",
    "challenge_view",
    "create_session",
    "identity_view",
    "is_final",
    "open_session_for_kiosk",
    "process_card_response",
    "provider_session_result",
    "record_consent",
    "record_kiosk_visit",
    "request_fingerprint",
    "session_challenge",
    "session_for_provider",
    "session_result",
    "withdraw_identity",
]
