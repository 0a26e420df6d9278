"""Admin API (separate admin credential): providers and kiosks, as the CLI manages them."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from sqlalchemy.exc import IntegrityError

from commonid import auditing, wallet_status
from commonid.api.deps import Db, RuntimeDep, require_admin
from commonid.api.paths import KioskId, ProviderId, WalletCredentialId
from commonid.api.schemas import (
    KioskCreate,
    KioskCreated,
    KioskOut,
    NewApiKey,
    ProviderCreate,
    ProviderCreated,
    ProviderOut,
    WalletCredentialStatusView,
)
from commonid.problems import Problem
from commonid.store import accounts
from commonid.store.models import Kiosk, Provider
from commonid.webhooks import new_webhook_secret

router = APIRouter(prefix="/v1/admin", tags=["admin"], dependencies=[Depends(require_admin)])


def _audit(runtime: RuntimeDep, db: Db, action: str, target_type: str, target_id: str) -> None:
    auditing.record(
        runtime, db, [auditing.admin_action("admin_api", action, target_type, target_id)]
    )


def _provider(db: Db, provider_id: str) -> Provider:
    provider = db.get(Provider, provider_id)
    if provider is None:
        raise Problem("not_found", "no such provider")
    return provider


@router.get("/providers", response_model=list[ProviderOut])
def list_providers(db: Db) -> list[ProviderOut]:
    return [
        ProviderOut.model_validate(p, from_attributes=True) for p in accounts.list_providers(db)
    ]


@router.post("/providers", status_code=201, response_model=ProviderCreated)
def add_provider(body: ProviderCreate, runtime: RuntimeDep, db: Db) -> ProviderCreated:
    secret = new_webhook_secret() if body.webhook_url else None
    try:
        with db.begin_nested():
            created = accounts.add_provider(
                db,
                name=body.name,
                allowed_claims=[c.value for c in body.allowed_claims],
                reuse_max_age_seconds=body.reuse_max_age_seconds,
                now=runtime.clock(),
                cipher=runtime.cipher,
                webhook_url=body.webhook_url,
                webhook_secret=secret,
            )
    except IntegrityError:
        raise Problem("name_taken", f"a provider is already called {body.name!r}") from None
    _audit(runtime, db, "provider_added", "provider", created.account.id)
    return ProviderCreated(
        provider=ProviderOut.model_validate(created.account, from_attributes=True),
        api_key=created.credential,
        webhook_secret=secret,
    )


@router.post("/providers/{provider_id}/rotate-key", response_model=NewApiKey)
def rotate_key(provider_id: ProviderId, runtime: RuntimeDep, db: Db) -> NewApiKey:
    api_key = accounts.rotate_provider_key(db, _provider(db, provider_id))
    _audit(runtime, db, "provider_key_rotated", "provider", provider_id)
    return NewApiKey(api_key=api_key)


@router.post("/providers/{provider_id}/disable", response_model=ProviderOut)
def disable_provider(provider_id: ProviderId, runtime: RuntimeDep, db: Db) -> ProviderOut:
    provider = _provider(db, provider_id)
    provider.disabled = True
    _audit(runtime, db, "provider_disabled", "provider", provider_id)
    return ProviderOut.model_validate(provider, from_attributes=True)


@router.get("/kiosks", response_model=list[KioskOut])
def list_kiosks(db: Db) -> list[KioskOut]:
    return [KioskOut.model_validate(k, from_attributes=True) for k in accounts.list_kiosks(db)]


@router.post("/kiosks", status_code=201, response_model=KioskCreated)
def add_kiosk(body: KioskCreate, runtime: RuntimeDep, db: Db) -> KioskCreated:
    try:
        with db.begin_nested():
            created = accounts.add_kiosk(db, name=body.name, now=runtime.clock())
    except IntegrityError:
        raise Problem("name_taken", f"a kiosk is already called {body.name!r}") from None
    _audit(runtime, db, "kiosk_added", "kiosk", created.account.id)
    return KioskCreated(
        kiosk=KioskOut.model_validate(created.account, from_attributes=True),
        credential=created.credential,
    )


@router.post("/kiosks/{kiosk_id}/disable", response_model=KioskOut)
def disable_kiosk(kiosk_id: KioskId, runtime: RuntimeDep, db: Db) -> KioskOut:
    kiosk = db.get(Kiosk, kiosk_id)
    if kiosk is None:
        raise Problem("not_found", "no such kiosk")
    kiosk.disabled = True
    _audit(runtime, db, "kiosk_disabled", "kiosk", kiosk_id)
    return KioskOut.model_validate(kiosk, from_attributes=True)


def _suspension(
    credential_id: str, runtime: RuntimeDep, db: Db, *, suspended: bool
) -> WalletCredentialStatusView:
    status, event = wallet_status.set_suspended(
        db, credential_id, suspended=suspended, now=runtime.clock()
    )
    action = "wallet_credential_suspended" if suspended else "wallet_credential_reinstated"
    auditing.record(runtime, db, [event])
    _audit(runtime, db, action, "wallet_credential", credential_id)
    return WalletCredentialStatusView(credential_id=credential_id, status=status)


@router.post(
    "/wallet-credentials/{credential_id}/suspend", response_model=WalletCredentialStatusView
)
def suspend_wallet_credential(
    credential_id: WalletCredentialId, runtime: RuntimeDep, db: Db
) -> WalletCredentialStatusView:
    """Suspend a wallet credential (its token status list says 2) until reinstated."""
    return _suspension(credential_id, runtime, db, suspended=True)


@router.post(
    "/wallet-credentials/{credential_id}/reinstate", response_model=WalletCredentialStatusView
)
def reinstate_wallet_credential(
    credential_id: WalletCredentialId, runtime: RuntimeDep, db: Db
) -> WalletCredentialStatusView:
    """Lift a suspension (a revoked credential stays revoked)."""
    return _suspension(credential_id, runtime, db, suspended=False)
