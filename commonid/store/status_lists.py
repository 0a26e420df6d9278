"""Status lists (did.status.StatusList) persisted in the store, allocated under a row lock."""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import TypeVar

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session as DbSession

from commonid.store.models import IssuedCredential, StatusList, TokenStatusListRow
from did.keys import IssuerKey, IssuerKeyring
from did.status import StatusList as Bitstring
from did.status import StatusListKind, StatusPurpose

# The lists of credentials issued before lists were kept per issuer key (signed by the
# current key, as they always were).
REVOCATION_LIST_ID = "revocation-1"
SUSPENSION_LIST_ID = "suspension-1"
# The shape of a list id (the two above, and any later ones): the API refuses others.
LIST_ID_PATTERN = r"^[a-z0-9-]{1,40}$"


def list_url(base_url: str, list_id: str) -> str:
    return f"{base_url.rstrip('/')}/v1/status-lists/{list_id}"


def issuer_tag(issuer_did: str) -> str:
    """The part of a list id that names the issuer key whose credentials it holds."""
    return hashlib.sha256(issuer_did.encode()).hexdigest()[:16]


# New lists are W3C Bitstring Status Lists; the ones without this prefix are the
# StatusList2021 lists made before, served as they were while their credentials live.
BITSTRING_PREFIX = "bitstring-"


def list_ids_for(issuer_did: str) -> tuple[str, str]:
    """(revocation list, suspension list) of the credentials one issuer key signs: each
    list is signed by that key, so its issuer is its credentials' issuer after rotation."""
    tag = issuer_tag(issuer_did)
    return f"{BITSTRING_PREFIX}revocation-{tag}", f"{BITSTRING_PREFIX}suspension-{tag}"


def kind_of(list_id: str) -> StatusListKind:
    if list_id.startswith(BITSTRING_PREFIX):
        return StatusListKind.BITSTRING
    return StatusListKind.STATUS_LIST_2021


def signing_key(keyring: IssuerKeyring, list_id: str) -> IssuerKey:
    """The key a list is signed with: its issuer key's, or the current one (legacy lists)."""
    tag = list_id.rpartition("-")[2]
    for key in keyring.keys:
        if issuer_tag(key.did) == tag:
            return key
    return keyring.current


def ensure_lists(
    db: DbSession, *, base_url: str, now: datetime, issuer_did: str | None = None
) -> None:
    """Create the revocation and suspension lists if missing: the legacy pair, and with
    ``issuer_did`` that key's pair (an insert that loses a race to another worker is
    fine: the list exists)."""
    revocation, suspension = (
        list_ids_for(issuer_did) if issuer_did else (REVOCATION_LIST_ID, SUSPENSION_LIST_ID)
    )
    for list_id, purpose in (
        (revocation, StatusPurpose.REVOCATION),
        (suspension, StatusPurpose.SUSPENSION),
    ):
        if db.get(StatusList, list_id) is not None:
            continue
        bitstring = Bitstring.new(list_url(base_url, list_id), purpose, kind=kind_of(list_id))
        try:
            with db.begin_nested():
                db.add(
                    StatusList(
                        id=list_id,
                        purpose=purpose.value,
                        url=bitstring.url,
                        serialized=bitstring.to_bytes(),
                        updated_at=now,
                    )
                )
        except IntegrityError:  # another worker created it first
            continue


def load_for_update(db: DbSession, list_id: str, *, now: datetime) -> tuple[StatusList, Bitstring]:
    """The list's row, locked until commit (locked_list_row), and its bitstring."""
    row = locked_list_row(db, StatusList, list_id, now=now)
    return row, Bitstring.from_bytes(row.serialized)


ListRow = TypeVar("ListRow", StatusList, TokenStatusListRow)


def locked_list_row(db: DbSession, model: type[ListRow], list_id: str, *, now: datetime) -> ListRow:
    """A status list's row (W3C or token), locked until commit: it is written first
    (touching updated_at), which on PostgreSQL takes the row lock and on SQLite the
    write lock, so the read that follows sees the latest state and no other
    transaction can interleave its own allocation or change."""
    touched = db.execute(
        sa.update(model)
        .where(model.id == list_id)
        .values(updated_at=now)
        .execution_options(synchronize_session=False)
    )
    if touched.rowcount != 1:
        raise LookupError(f"status list {list_id} does not exist")
    row = db.scalar(
        sa.select(model).where(model.id == list_id).execution_options(populate_existing=True)
    )
    assert row is not None
    return row


def save(row: StatusList, bitstring: Bitstring, *, now: datetime) -> None:
    row.serialized = bitstring.to_bytes()
    row.updated_at = now


def get(db: DbSession, list_id: str) -> Bitstring | None:
    row = db.get(StatusList, list_id)
    return Bitstring.from_bytes(row.serialized) if row is not None else None


def live_credentials_of_person(db: DbSession, person_id: str) -> list[IssuedCredential]:
    return list(
        db.scalars(
            sa.select(IssuedCredential).where(
                IssuedCredential.person_id == person_id, IssuedCredential.revoked_at.is_(None)
            )
        )
    )


def is_superseded(db: DbSession, credential_id: str) -> bool:
    row = db.get(IssuedCredential, credential_id)
    return row is not None and row.superseded_at is not None


def credentials_of_certificate(db: DbSession, serial_hash: str) -> list[IssuedCredential]:
    return list(
        db.scalars(
            sa.select(IssuedCredential).where(
                IssuedCredential.certificate_serial_hash == serial_hash,
                IssuedCredential.revoked_at.is_(None),
            )
        )
    )
