"""Providers and kiosks: the callers of the API and their credentials."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Generic, TypeVar

import sqlalchemy as sa
from sqlalchemy.orm import Session as DbSession

from commonid.store.encryption import AttributeCipher, Sealed, binding
from commonid.store.ids import hash_credential, new_id, new_secret
from commonid.store.models import Kiosk, Provider
from commonid.store.rows import KIOSKS, PROVIDERS, KioskRow, ProviderRow, one_row, select_all

PROVIDER_KEY_PREFIX = "cid_pk"
KIOSK_CREDENTIAL_PREFIX = "cid_kiosk"
WEBHOOK_SECRET_PREFIX = "whsec_"  # noqa: S105 - a format prefix, not a secret


T = TypeVar("T")


@dataclass(frozen=True)
class NewCredential(Generic[T]):
    """A just-created account and its bearer credential, shown exactly once."""

    account: T
    credential: str


def _webhook_binding(provider_id: str) -> bytes:
    return binding("provider", provider_id, "webhook_secret")


def add_provider(
    db: DbSession,
    *,
    name: str,
    allowed_claims: list[str],
    reuse_max_age_seconds: int,
    now: datetime,
    cipher: AttributeCipher,
    webhook_url: str | None = None,
    webhook_secret: str | None = None,
) -> NewCredential[Provider]:
    api_key = new_secret(PROVIDER_KEY_PREFIX)
    provider = Provider(
        id=new_id("prv"),
        name=name,
        api_key_hash=hash_credential(api_key),
        allowed_claims=sorted(set(allowed_claims)),
        reuse_max_age_seconds=reuse_max_age_seconds,
        disabled=False,
        created_at=now,
    )
    set_webhook(provider, webhook_url, webhook_secret, cipher)
    db.add(provider)
    db.flush()
    return NewCredential(provider, api_key)


def set_webhook(
    provider: Provider, url: str | None, secret: str | None, cipher: AttributeCipher
) -> None:
    provider.webhook_url = url
    if url and secret:
        sealed = cipher.seal(secret.encode(), binding=_webhook_binding(provider.id))
        provider.webhook_secret_encrypted = sealed.blob
        provider.webhook_secret_key_id = sealed.key_id
    else:
        provider.webhook_secret_encrypted = None
        provider.webhook_secret_key_id = None


def webhook_secret(provider: Provider | ProviderRow, cipher: AttributeCipher) -> str | None:
    if provider.webhook_secret_encrypted is None or provider.webhook_secret_key_id is None:
        return None
    sealed = Sealed(provider.webhook_secret_key_id, provider.webhook_secret_encrypted)
    return cipher.open(sealed, binding=_webhook_binding(provider.id)).decode()


# Built once: every request authenticates with one of these. Rows, not ORM objects:
# the caller is only read (commonid.store.rows says why).
_PROVIDER_BY_KEY_HASH = select_all(PROVIDERS).where(PROVIDERS.c.api_key_hash == sa.bindparam("h"))
_PROVIDER_BY_ID = select_all(PROVIDERS).where(PROVIDERS.c.id == sa.bindparam("id"))
_KIOSK_BY_CREDENTIAL_HASH = select_all(KIOSKS).where(KIOSKS.c.credential_hash == sa.bindparam("h"))


def provider_by_api_key(db: DbSession, api_key: str) -> ProviderRow | None:
    return one_row(db, _PROVIDER_BY_KEY_HASH, {"h": hash_credential(api_key)}, ProviderRow)


def provider_by_id(db: DbSession, provider_id: str) -> ProviderRow | None:
    return one_row(db, _PROVIDER_BY_ID, {"id": provider_id}, ProviderRow)


def provider_by_name_or_id(db: DbSession, name_or_id: str) -> Provider | None:
    return db.scalar(
        sa.select(Provider).where((Provider.id == name_or_id) | (Provider.name == name_or_id))
    )


def list_providers(db: DbSession) -> list[Provider]:
    return list(db.scalars(sa.select(Provider).order_by(Provider.created_at)))


def rotate_provider_key(db: DbSession, provider: Provider) -> str:
    """Replace the provider's API key; the old one stops working at once."""
    api_key = new_secret(PROVIDER_KEY_PREFIX)
    provider.api_key_hash = hash_credential(api_key)
    db.flush()
    return api_key


def add_kiosk(db: DbSession, *, name: str, now: datetime) -> NewCredential[Kiosk]:
    credential = new_secret(KIOSK_CREDENTIAL_PREFIX)
    kiosk = Kiosk(
        id=new_id("ksk"),
        name=name,
        credential_hash=hash_credential(credential),
        disabled=False,
        created_at=now,
    )
    db.add(kiosk)
    db.flush()
    return NewCredential(kiosk, credential)


def kiosk_by_credential(db: DbSession, credential: str) -> KioskRow | None:
    return one_row(db, _KIOSK_BY_CREDENTIAL_HASH, {"h": hash_credential(credential)}, KioskRow)


def kiosk_by_name_or_id(db: DbSession, name_or_id: str) -> Kiosk | None:
    return db.scalar(sa.select(Kiosk).where((Kiosk.id == name_or_id) | (Kiosk.name == name_or_id)))


def list_kiosks(db: DbSession) -> list[Kiosk]:
    return list(db.scalars(sa.select(Kiosk).order_by(Kiosk.created_at)))
